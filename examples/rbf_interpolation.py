"""Kernel (RBF) interpolation with ``LazyTensor.solve``.

Given noisy samples ``b_i = f(x_i) + noise`` at points ``x_i``, kernel ridge interpolation
looks for ``f(t) = sum_j K(t, x_j) a_j`` with coefficients ``a`` that solve

    (alpha Id + K_xx) a = b,       K_xx[i, j] = k(x_i, x_j).

``K_xx`` is a symbolic LazyTensor, never stored: ``K_xx.solve(b, alpha=alpha)`` runs a
conjugate gradient whose matrix-vector products are lazykernels reductions, so memory stays
O(N) where ``np.linalg.solve`` needs the N x N matrix (and O(N^3) time).

Two kernels, in 1-D and 2-D:

- Gaussian  ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``,
- Laplacian ``k(x, y) = exp(-|x - y| / sigma)``.

The script prints, for each case, the relative residual ``|(alpha Id + K) a - b| / |b|``,
the largest gap between the lazykernels interpolant and the one from a dense
``np.linalg.solve`` on a grid, and both timings; it writes ``rbf_interpolation_1d.png``
and ``rbf_interpolation_2d.png``.

Run: ``python examples/rbf_interpolation.py [--n 1000] [--out-dir .]``
(KeOps tutorial ``interpolation/plot_RBF_interpolation_numpy.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import (
    dense_fits,
    make_parser,
    new_figure,
    parse,
    print_timings,
    save_figure,
    timed,
)

from lazykernels.numpy import LazyTensor, Vi, Vj

#: Kernel bandwidths, for points in the unit interval / square.
SIGMA = {"gaussian": 0.05, "laplacian": 0.1}
ALPHA = 0.5  # ridge: noisy data are smoothed, and the system is well conditioned


def lazy_kernel(kind: str, xi: LazyTensor, xj: LazyTensor) -> LazyTensor:
    """The symbolic kernel matrix ``k(x_i, x_j)``."""
    d2 = xi.sqdist(xj)
    if kind == "gaussian":
        return (-d2 / (2 * SIGMA[kind] ** 2)).exp()
    return (-d2.sqrt() / SIGMA[kind]).exp()


def dense_kernel(kind: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The same kernel matrix, stored (NumPy)."""
    d2 = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    if kind == "gaussian":
        return np.exp(-d2 / (2 * SIGMA[kind] ** 2))
    return np.exp(-np.sqrt(d2) / SIGMA[kind])


def target(x: np.ndarray) -> np.ndarray:
    """The function to recover, in 1-D or 2-D: shape (N, 1)."""
    if x.shape[1] == 1:
        t = x[:, 0]
        return (np.sin(6 * t) + 0.3 * np.cos(17 * t) + t)[:, None]
    return (np.sin(3 * np.pi * x[:, 0]) * np.cos(2 * np.pi * x[:, 1]) + x[:, 0])[:, None]


def grid(dim: int, size: int) -> np.ndarray:
    """A regular grid of the unit interval (size points) or square (size^2 points)."""
    t = np.linspace(0.0, 1.0, size)
    if dim == 1:
        return t[:, None]
    gx, gy = np.meshgrid(t, t, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def interpolate(kind: str, x: np.ndarray, b: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    """Solve for the coefficients lazily and densely; evaluate both interpolants at ``t``."""
    K = lazy_kernel(kind, Vi(x), Vj(x))
    timed(K.solve, b, alpha=ALPHA)  # warm-up: compiles (or loads) the kernel
    a, t_lazy = timed(K.solve, b, alpha=ALPHA)
    residual = np.linalg.norm(K @ a + ALPHA * a - b) / np.linalg.norm(b)
    f_lazy = lazy_kernel(kind, Vi(t), Vj(x)) @ a  # the interpolant, lazily too

    out: dict[str, Any] = {"a": a, "f": f_lazy, "residual": float(residual), "t_lazy": t_lazy}
    out["t_dense"] = out["interp_gap"] = out["dense_residual"] = None
    if dense_fits(len(x), len(x)):

        def dense_solve() -> np.ndarray:
            return np.linalg.solve(dense_kernel(kind, x, x) + ALPHA * np.eye(len(x)), b)

        a_dense, out["t_dense"] = timed(dense_solve)
        kd = dense_kernel(kind, x, x)
        dense_res = np.linalg.norm(kd @ a_dense + ALPHA * a_dense - b) / np.linalg.norm(b)
        out["dense_residual"] = float(dense_res)
        if dense_fits(len(t), len(x)):
            f_dense = dense_kernel(kind, t, x) @ a_dense
            out["interp_gap"] = float(np.max(np.abs(f_lazy - f_dense)))
    return out


def plot_1d(x: np.ndarray, b: np.ndarray, t: np.ndarray, fits: dict, out_dir: Any) -> Any:
    """Samples, true function and the two interpolants."""
    fig, ax = new_figure(size=6)
    ax.plot(x[:, 0], b[:, 0], ".", ms=2, color="0.6", label="noisy samples")
    ax.plot(t[:, 0], target(t)[:, 0], "k--", lw=1, label="true function")
    for kind, color in (("gaussian", "C0"), ("laplacian", "C3")):
        ax.plot(t[:, 0], fits[kind]["f"][:, 0], color=color, lw=1.5, label=f"{kind} kernel")
    ax.set_title(f"1-D kernel interpolation, N = {len(x)}, alpha = {ALPHA}")
    ax.legend(loc="upper left")
    return save_figure(fig, out_dir, "rbf_interpolation_1d.png")


def plot_2d(x: np.ndarray, t: np.ndarray, size: int, fits: dict, out_dir: Any) -> Any:
    """The two 2-D interpolants as images, with the sample points."""
    fig, axes = new_figure(ncols=2)
    for ax, kind in zip(axes, ("gaussian", "laplacian")):
        image = fits[kind]["f"].reshape(size, size)
        ax.imshow(image, origin="lower", extent=(0, 1, 0, 1), cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], s=1, c="k", alpha=0.3)
        ax.set_title(f"2-D, {kind} kernel")
    return save_figure(fig, out_dir, "rbf_interpolation_2d.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the residuals and interpolant gaps of the four cases."""
    parser = make_parser(__doc__.splitlines()[0], n_default=1000)
    parser.add_argument("--grid", type=int, default=60, help="2-D grid side for the plot")
    args = parse(parser, argv)
    rng = np.random.default_rng(args.seed)

    results: dict[str, Any] = {}
    timings: list[tuple[str, list[float | None]]] = []
    for dim, size in ((1, 400), (2, args.grid)):
        x = rng.random((args.n, dim))
        b = target(x) + 0.05 * rng.standard_normal((args.n, 1))
        t = grid(dim, size)
        fits = {kind: interpolate(kind, x, b, t) for kind in SIGMA}
        for kind, fit in fits.items():
            name = f"{dim}d_{kind}"
            results[name] = {k: fit[k] for k in ("a", "residual", "dense_residual", "interp_gap")}
            results[name].update(x=x, b=b)
            print(
                f"{name:>14s}: residual {fit['residual']:.2e} (dense solve "
                f"{_fmt(fit['dense_residual'])}), max |lazy - dense interpolant| = "
                f"{_fmt(fit['interp_gap'])}"
            )
            timings.append((name, [fit["t_lazy"], fit["t_dense"]]))
        if dim == 1:
            plot_1d(x, b, t, fits, args.out_dir)
        else:
            plot_2d(x, t, size, fits, args.out_dir)
    print_timings(
        f"Solve times, N = {args.n} (float64; lazykernels warm, CG to eps = 1e-6):",
        ["lazykernels K.solve", "np.linalg.solve"],
        timings,
    )
    residuals = [r["residual"] for r in results.values()]
    gaps = [r["interp_gap"] for r in results.values() if r["interp_gap"] is not None]
    results["max_residual"] = max(residuals)
    results["max_interp_gap"] = max(gaps) if gaps else None
    return results


def _fmt(value: float | None) -> str:
    return "skipped" if value is None else f"{value:.2e}"


if __name__ == "__main__":
    main()
