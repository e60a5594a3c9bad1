"""Entropic optimal transport between two point clouds: log-domain Sinkhorn iterations.

Between weighted clouds ``(a_i, x_i)`` (N points) and ``(b_j, y_j)`` (M points), with the
cost ``C_ij = |x_i - y_j|^2 / 2`` and the temperature ``eps``, the entropic transport plan
is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`` for the dual potentials ``f, g``
that Sinkhorn's algorithm finds by alternate updates, written in the log domain (stable
for small ``eps``):

    f_i = -eps log sum_j exp(log b_j + (g_j - C_ij) / eps)      (a logsumexp over j)
    g_j = -eps log sum_i exp(log a_i + (f_i - C_ij) / eps)      (a logsumexp over i)

Each update is one lazykernels ``logsumexp`` reduction over a symbolic N x M matrix, so
memory stays O(N + M). After an ``f`` update the plan's rows sum to ``a`` exactly; the
column error ``sum_j |sum_i P_ij - b_j|`` measures convergence (checked every 10
iterations). The script prints both marginal errors, the transport cost, and compares the
potentials and timings with the same iterations on a stored matrix (NumPy +
``scipy.special.logsumexp``). Writes ``sinkhorn.png``: the two clouds joined by the
largest entries of the plan (found lazily with ``argKmin``), and the marginal error per
iteration.

Run: ``python examples/sinkhorn.py [--n 1000] [--eps 0.002] [--out-dir .]``
(KeOps's ``optimal_transport`` tutorials point to GeomLoss, built on these reductions.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import dense_fits, make_parser, new_figure, parse, print_timings, save_figure, timed
from matplotlib.collections import LineCollection
from scipy.special import logsumexp

from lazykernels.numpy import Vi, Vj

CHECK_EVERY = 10


def clouds(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A Gaussian blob (N = n points) and a crescent (M = n points) in the unit square."""
    x = np.array([0.3, 0.5]) + 0.08 * rng.standard_normal((n, 2))
    t = rng.uniform(-0.6 * np.pi, 0.6 * np.pi, n)
    r = 0.25 + 0.03 * rng.standard_normal(n)
    y = np.stack([0.45 + r * np.cos(t), 0.5 + r * np.sin(t)], axis=1)
    return x, y


class LazySinkhorn:
    """The log-domain Sinkhorn updates and marginals as lazykernels reductions."""

    def __init__(self, x: np.ndarray, y: np.ndarray, eps: float) -> None:
        self.x, self.y, self.eps = x, y, eps
        self.log_a = np.full((len(x), 1), -np.log(len(x)))
        self.log_b = np.full((len(y), 1), -np.log(len(y)))

    def cost(self) -> Any:
        """Symbolic ``C_ij / eps``."""
        return Vi(self.x).sqdist(Vj(self.y)) / (2 * self.eps)

    def update_f(self, g: np.ndarray) -> np.ndarray:
        """``f_i = -eps LSE_j(log b_j + (g_j - C_ij) / eps)``."""
        return -self.eps * (Vj(self.log_b + g / self.eps) - self.cost()).logsumexp(axis=1)

    def update_g(self, f: np.ndarray) -> np.ndarray:
        """``g_j = -eps LSE_i(log a_i + (f_i - C_ij) / eps)``."""
        return -self.eps * (Vi(self.log_a + f / self.eps) - self.cost()).logsumexp(axis=0)

    def log_plan(self, f: np.ndarray, g: np.ndarray) -> Any:
        """Symbolic ``log P_ij``."""
        fi = Vi(self.log_a + f / self.eps)
        return fi + Vj(self.log_b + g / self.eps) - self.cost()

    def marginals(self, f: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column sums of the plan (two Sum reductions of ``exp(log P)``)."""
        plan = self.log_plan(f, g).exp()
        return plan.sum(axis=1), plan.sum(axis=0)

    def transport_cost(self, f: np.ndarray, g: np.ndarray) -> float:
        """``sum_ij P_ij C_ij``."""
        return float((self.log_plan(f, g).exp() * self.cost() * self.eps).sum(axis=1).sum())


def sinkhorn_lazy(
    solver: LazySinkhorn, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float]]]:
    """Iterate until the column marginal error is below ``tol`` (or ``max_iter``)."""
    g = np.zeros((len(solver.y), 1))
    history = []
    for it in range(1, max_iter + 1):
        f = solver.update_f(g)
        g = solver.update_g(f)
        if it % CHECK_EVERY == 0:
            # after the g update the columns are exact: the error is in the rows
            rows, _ = solver.marginals(f, g)
            history.append((it, float(np.abs(rows - np.exp(solver.log_a)).sum())))
            if history[-1][1] < tol:
                break
    return f, g, history


def sinkhorn_dense(
    x: np.ndarray, y: np.ndarray, eps: float, n_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """The same ``n_iter`` updates with the stored (N, M) cost matrix."""
    C = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1) / 2
    log_a, log_b = -np.log(len(x)), -np.log(len(y))
    g = np.zeros(len(y))
    for _ in range(n_iter):
        f = -eps * logsumexp(log_b + (g[None, :] - C) / eps, axis=1)
        g = -eps * logsumexp(log_a + (f[:, None] - C) / eps, axis=0)
    return f[:, None], g[:, None]


def plot(solver: LazySinkhorn, f: np.ndarray, g: np.ndarray, history: list, out_dir: Any):
    """Clouds joined by each point's 3 largest plan entries; marginal error per iteration."""
    fig, axes = new_figure(ncols=2, size=5)
    x, y = solver.x, solver.y
    # the largest P_ij of row i are the smallest -log P_ij: a lazy argKmin over j
    top = (-solver.log_plan(f, g)).argKmin(3, axis=1)
    rows = np.arange(0, len(x), max(1, len(x) // 300))  # at most ~300 points get lines
    i = np.repeat(rows, 3)
    j = top[rows].ravel()
    c = np.sum((x[i] - y[j]) ** 2, axis=1) / 2
    share = np.exp((f[i, 0] + g[j, 0] - c) / solver.eps + solver.log_b[j, 0])  # P_ij / a_i
    axes[0].scatter(x[:, 0], x[:, 1], s=3, c="tab:blue", label="source x_i")
    axes[0].scatter(y[:, 0], y[:, 1], s=3, c="tab:red", label="target y_j")
    colors = np.zeros((len(i), 4))
    colors[:, 3] = np.clip(share / share.max(), 0.05, 1.0)  # opacity ~ P_ij
    segments = np.stack([x[i], y[j]], axis=1)
    axes[0].add_collection(LineCollection(segments, colors=colors, linewidths=0.6))
    axes[0].set_title(f"entropic transport plan, eps = {solver.eps}")
    axes[0].set_aspect("equal")
    axes[0].legend(loc="lower left")
    its, errs = zip(*history)
    axes[1].semilogy(its, errs, "o-", ms=3)
    axes[1].set_xlabel("Sinkhorn iteration")
    axes[1].set_ylabel("marginal error (L1)")
    axes[1].set_title("convergence (lazykernels logsumexp)")
    return save_figure(fig, out_dir, "sinkhorn.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the marginal errors, the cost and the potentials' gaps."""
    parser = make_parser(__doc__.splitlines()[0], n_default=1000)
    parser.add_argument("--eps", type=float, default=0.002, help="entropic temperature")
    parser.add_argument("--max-iter", type=int, default=1000, help="most Sinkhorn iterations")
    parser.add_argument("--tol", type=float, default=1e-6, help="target marginal error (L1)")
    args = parse(parser, argv)
    x, y = clouds(args.n, np.random.default_rng(args.seed))
    solver = LazySinkhorn(x, y, args.eps)

    sinkhorn_lazy(solver, CHECK_EVERY, 0.0)  # warm-up: compiles (or loads) the kernels
    (f, g, history), t_lazy = timed(sinkhorn_lazy, solver, args.max_iter, args.tol)
    n_iter = history[-1][0]
    rows, cols = solver.marginals(f, g)
    a, b = np.exp(solver.log_a), np.exp(solver.log_b)
    result: dict[str, Any] = {
        "iterations": n_iter,
        "row_error": float(np.abs(rows - a).sum()),
        "col_error": float(np.abs(cols - b).sum()),
        "cost": solver.transport_cost(f, g),
        "x": x,
        "y": y,
        "eps": args.eps,
        "f": f,
        "g": g,
    }
    print(f"N = M = {args.n}, eps = {args.eps}: {n_iter} iterations")
    print(
        f"marginal errors (L1): rows {result['row_error']:.2e}, columns {result['col_error']:.2e}"
    )
    print(f"transport cost sum_ij P_ij C_ij = {result['cost']:.6f}")

    t_dense = None
    if dense_fits(len(x), len(y)):
        (f_d, g_d), t_dense = timed(sinkhorn_dense, x, y, args.eps, n_iter)
        # same start (g = 0), same number of updates: the potentials themselves must agree
        result["potential_gap"] = float(max(np.max(np.abs(f - f_d)), np.max(np.abs(g - g_d))))
        print(f"largest gap with the dense potentials: {result['potential_gap']:.2e}")
    print_timings(
        "Sinkhorn times (float64; lazykernels warm, with its convergence checks):",
        ["lazykernels logsumexp", "NumPy/SciPy dense"],
        [(f"{n_iter} iterations", [t_lazy, t_dense])],
    )
    plot(solver, f, g, history, args.out_dir)
    return result


if __name__ == "__main__":
    main()
