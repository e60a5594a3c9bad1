"""Spectral clustering with SciPy's ``eigsh`` on a kernel LazyTensor.

A NumPy LazyTensor has ``shape``, ``dtype``, ``matvec``, ``rmatvec`` and ``.T``, so
``scipy.sparse.linalg.aslinearoperator(K)`` turns the symbolic N x N Gaussian affinity
matrix ``K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2))`` into a SciPy linear operator whose
products are lazykernels reductions. With the degrees ``d = K 1`` (one more reduction),

    A = D^-1/2 K D^-1/2     (composed as  diag @ K @ diag  LinearOperators)

has the same eigenvectors as the normalised graph Laplacian ``I - A``; its largest
eigenvalues come from ``eigsh(A, k, which="LA")`` (Lanczos: a few dozen products with K,
never an N x N matrix). The points are split by the sign of the second eigenvector
(rescaled by ``D^-1/2``: the normalised cut of Shi and Malik), which separates two moons
or two circles that no linear boundary does.

The script compares the eigenvalues with a dense ``scipy.linalg.eigh`` of the stored matrix
and prints the clustering accuracy and both timings. Writes ``spectral.png`` (the
clusters, and the points in the spectral embedding).

Run: ``python examples/spectral.py [--n 2000] [--data moons|circles] [--out-dir .]``
(KeOps tutorial ``backends/plot_scipy.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import dense_fits, make_parser, new_figure, parse, print_timings, save_figure, timed
from scipy.linalg import eigh
from scipy.sparse import diags
from scipy.sparse.linalg import aslinearoperator, eigsh
from sklearn.datasets import make_circles, make_moons

from lazykernels.numpy import Vi, Vj

N_EIG = 3
SIGMA = {"moons": 0.15, "circles": 0.12}


def spectrum_lazy(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest eigenpairs of ``D^-1/2 K D^-1/2`` by ``eigsh`` on LazyTensor operators."""
    K = (-Vi(x).sqdist(Vj(x)) / (2 * sigma**2)).exp()  # symbolic (N, N) affinity
    degrees = (K @ np.ones(len(x))).ravel()
    scale = aslinearoperator(diags(1 / np.sqrt(degrees)))
    A = scale @ aslinearoperator(K) @ scale
    v0 = np.ones(len(x))  # a fixed start vector: reproducible runs
    values, vectors = eigsh(A, k=N_EIG, which="LA", v0=v0)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order], degrees


def spectrum_dense(x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The same eigenpairs from the stored matrix (LAPACK ``eigh``, top ones only)."""
    K = np.exp(-np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1) / (2 * sigma**2))
    s = 1 / np.sqrt(K.sum(axis=1))
    n = len(x)
    values, vectors = eigh(s[:, None] * K * s[None, :], subset_by_index=[n - N_EIG, n - 1])
    return values[::-1], vectors[:, ::-1]


def clusters(vectors: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Two clusters from the sign of the second eigenvector (scaled by ``D^-1/2``)."""
    fiedler = vectors[:, 1] / np.sqrt(degrees)
    return (fiedler > 0).astype(int)


def make_data(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two moons or two circles (scikit-learn's generators) with their true labels."""
    if kind == "moons":
        return make_moons(n_samples=n, noise=0.06, random_state=seed)
    return make_circles(n_samples=n, noise=0.04, factor=0.5, random_state=seed)


def plot(x: np.ndarray, labels: np.ndarray, vectors: np.ndarray, kind: str, out_dir: Any) -> Any:
    """Points coloured by cluster; the points in the (2nd, 3rd) eigenvector embedding."""
    fig, axes = new_figure(ncols=2, size=5)
    axes[0].scatter(x[:, 0], x[:, 1], c=labels, s=3, cmap="coolwarm")
    axes[0].set_title(f"spectral clustering of {kind}, N = {len(x)}")
    axes[0].set_aspect("equal")
    axes[1].scatter(vectors[:, 1], vectors[:, 2], c=labels, s=3, cmap="coolwarm")
    axes[1].set_xlabel("eigenvector 2")
    axes[1].set_ylabel("eigenvector 3")
    axes[1].set_title("spectral embedding (eigsh on a LazyTensor)")
    return save_figure(fig, out_dir, "spectral.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the eigenvalues (lazy and dense) and the accuracy."""
    parser = make_parser(__doc__.splitlines()[0], n_default=2000)
    parser.add_argument("--data", choices=sorted(SIGMA), default="moons")
    parser.add_argument("--sigma", type=float, default=None, help="kernel bandwidth")
    args = parse(parser, argv)
    sigma = args.sigma or SIGMA[args.data]
    x, truth = make_data(args.data, args.n, args.seed)

    spectrum_lazy(x[:10], sigma)  # warm-up: compiles (or loads) the kernel
    (values, vectors, degrees), t_lazy = timed(spectrum_lazy, x, sigma)
    labels = clusters(vectors, degrees)
    accuracy = float(max(np.mean(labels == truth), np.mean(labels != truth)))
    result: dict[str, Any] = {"x": x, "sigma": sigma, "eigenvalues": values, "accuracy": accuracy}
    print(f"{args.data}, N = {args.n}, sigma = {sigma}")
    print(f"largest eigenvalues of D^-1/2 K D^-1/2 (eigsh, lazykernels): {values}")

    t_dense = None
    if dense_fits(args.n, args.n):
        (dense_values, dense_vectors), t_dense = timed(spectrum_dense, x, sigma)
        result["dense_eigenvalues"] = dense_values
        # eigenvectors are defined up to sign: compare |<u_lazy, u_dense>| (1 = same)
        result["eigvec_alignment"] = np.abs(np.sum(vectors * dense_vectors, axis=0))
        print(f"largest eigenvalues (dense scipy.linalg.eigh):               {dense_values}")
    print(f"clustering accuracy against the true labels: {accuracy:.4f}")
    print_timings(
        "Eigen-solver times (float64, lazykernels warm):",
        ["eigsh + LazyTensor", "dense eigh"],
        [(f"{N_EIG} eigenpairs", [t_lazy, t_dense])],
    )
    plot(x, labels, vectors, args.data, args.out_dir)
    return result


if __name__ == "__main__":
    main()
