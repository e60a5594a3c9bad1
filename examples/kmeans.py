"""K-means clustering (Lloyd's algorithm) with ``argmin`` on a LazyTensor.

Each Lloyd iteration assigns every point to its nearest centroid, then moves every
centroid to the mean of its points. The assignment step is one lazykernels reduction over
the symbolic N x K matrix of squared distances,

    D_ij = |x_i - c_j|^2,      labels = D.argmin(axis=1),

in O(N + K) memory; the update step is a ``np.bincount`` per coordinate. The same
iterations with a stored N x K distance matrix (dense NumPy) run next to it, from the same
initial centroids: the assignments must be identical at every step.

Data: a mixture of ``--clusters`` Gaussian blobs in 2-D. Writes ``kmeans.png`` (points
coloured by cluster, centroids as crosses).

Run: ``python examples/kmeans.py [--n 20000] [--clusters 50] [--iters 10] [--out-dir .]``
(KeOps tutorial ``kmeans/plot_kmeans_numpy.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _common import dense_fits, make_parser, new_figure, parse, print_timings, save_figure, timed

from lazykernels.numpy import Vi, Vj


def assign_lazy(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each point, by a lazykernels ``argmin``."""
    d2 = Vi(x).sqdist(Vj(c))  # symbolic (N, K) matrix
    return d2.argmin(axis=1).ravel().astype(np.int64)


def assign_dense(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The same with the stored (N, K) matrix of squared distances."""
    d2 = np.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1)
    return np.argmin(d2, axis=1)


def update(x: np.ndarray, labels: np.ndarray, c: np.ndarray) -> np.ndarray:
    """New centroids: the mean of each cluster's points (an empty cluster keeps its place)."""
    k = len(c)
    counts = np.bincount(labels, minlength=k)
    sums = np.stack([np.bincount(labels, weights=x[:, d], minlength=k) for d in range(x.shape[1])])
    new = c.copy()
    filled = counts > 0
    new[filled] = sums.T[filled] / counts[filled, None]
    return new


def lloyd(
    x: np.ndarray, c0: np.ndarray, iters: int, assign: Callable[[np.ndarray, np.ndarray], Any]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """``iters`` Lloyd iterations from ``c0``; returns labels, centroids, labels per step."""
    c = c0.copy()
    history = []
    for _ in range(iters):
        labels = assign(x, c)
        history.append(labels)
        c = update(x, labels, c)
    return assign(x, c), c, history


def blobs(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points around ``k`` random centres in the unit square."""
    centres = rng.random((k, 2))
    which = rng.integers(0, k, size=n)
    return centres[which] + 0.03 * rng.standard_normal((n, 2))


def plot(x: np.ndarray, labels: np.ndarray, c: np.ndarray, out_dir: Any) -> Any:
    """Points coloured by cluster (at most 20,000 drawn), centroids as crosses."""
    fig, ax = new_figure(size=6)
    step = max(1, len(x) // 20000)
    ax.scatter(x[::step, 0], x[::step, 1], c=labels[::step], s=2, cmap="tab20")
    ax.scatter(c[:, 0], c[:, 1], c="k", marker="x", s=40, lw=1.5)
    ax.set_title(f"K-means (lazykernels argmin): N = {len(x)}, K = {len(c)}")
    ax.set_aspect("equal")
    return save_figure(fig, out_dir, "kmeans.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the labels and centroids of the lazy and dense runs."""
    parser = make_parser(__doc__.splitlines()[0], n_default=20000)
    parser.add_argument("--clusters", type=int, default=50, help="number of clusters K")
    parser.add_argument("--iters", type=int, default=10, help="Lloyd iterations")
    args = parse(parser, argv)
    rng = np.random.default_rng(args.seed)
    x = blobs(args.n, args.clusters, rng)
    c0 = x[rng.choice(args.n, args.clusters, replace=False)]  # Forgy initialisation

    assign_lazy(x, c0)  # warm-up: compiles (or loads) the kernel
    (labels, c, history), t_lazy = timed(lloyd, x, c0, args.iters, assign_lazy)
    inertia = float(np.sum((x - c[labels]) ** 2))
    result: dict[str, Any] = {"x": x, "labels": labels, "centroids": c, "inertia": inertia}

    t_dense = None
    if dense_fits(args.n, args.clusters):
        (labels_d, c_d, history_d), t_dense = timed(lloyd, x, c0, args.iters, assign_dense)
        result.update(
            dense_labels=labels_d,
            dense_centroids=c_d,
            same_labels_every_step=all(map(np.array_equal, history, history_d)),
        )
        print(
            f"assignments identical to dense argmin at every step: "
            f"{result['same_labels_every_step']}"
        )
    print(f"N = {args.n}, K = {args.clusters}, {args.iters} iterations, inertia {inertia:.4f}")
    print_timings(
        "K-means times (float64, lazykernels warm):",
        ["lazykernels argmin", "NumPy dense"],
        [(f"{args.iters} iterations", [t_lazy, t_dense])],
    )
    plot(x, labels, c, args.out_dir)
    return result


if __name__ == "__main__":
    main()
