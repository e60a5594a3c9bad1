"""Entropic optimal transport in JAX: a Sinkhorn loop under ``jax.jit`` with
``lazykernels.jax``, against OTT-JAX's online point cloud on the same problem.

Both solve ``min <P, C> - eps H(P)`` between uniform point clouds ``x`` (N points) and
``y`` (N points) with ``C_ij = |x_i - y_j|^2``, by log-domain Sinkhorn iterations with the
cost never stored: lazykernels reduces ``LogSumExp_j (g_j - C_ij) / eps`` with its compiled
kernel (one XLA FFI call per half-iteration); OTT-JAX's
``PointCloud(x, y, batch_size=...)`` recomputes the cost in blocks of ``batch_size`` rows
in pure JAX. Both run the same number of iterations; the script prints the regularised
transport cost ``<a, f> + <b, g>`` of each, their relative gap, the marginal error and the
time ratio (warm: each solver is compiled and run once before the timed run).

Usage: ``python examples/sinkhorn_jax.py [--n 20000] [--dims 3 64] [--iters 100]
[--eps 0.05] [--batch-size 2048] [--float64]``; ``main(argv)`` returns the numbers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def lazykernels_sinkhorn(x, y, eps: float, iters: int, gemm="auto"):
    """Potentials (f, g) after ``iters`` log-domain Sinkhorn iterations (jitted); ``gemm``
    chooses the dot-product path of high-dimensional distances (docs/gemm.md)."""
    import jax
    import jax.numpy as jnp

    from lazykernels.jax import Genred

    d = x.shape[1]
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "h = Vj(1)", "e = Pm(1)"]
    lse_j = Genred("h - SqDist(x, y) / e", aliases, "LogSumExp", axis=1, gemm=gemm)
    aliases_i = [f"x = Vi({d})", f"y = Vj({d})", "h = Vi(1)", "e = Pm(1)"]
    lse_i = Genred("h - SqDist(x, y) / e", aliases_i, "LogSumExp", axis=0, gemm=gemm)

    @jax.jit
    def solve(x, y):
        n, m = x.shape[0], y.shape[0]
        e = jnp.full((1,), eps, x.dtype)
        log_a, log_b = -jnp.log(n), -jnp.log(m)

        def step(_, fg):
            f, g = fg
            f = -eps * lse_j(x, y, g / eps + log_b, e)
            g = -eps * lse_i(x, y, f / eps + log_a, e)
            return f, g

        zeros = (jnp.zeros((n, 1), x.dtype), jnp.zeros((m, 1), x.dtype))
        f, g = jax.lax.fori_loop(0, iters, step, zeros)
        return f[:, 0], g[:, 0]

    return solve


def ott_sinkhorn(eps: float, iters: int, batch_size: int):
    """OTT-JAX's Sinkhorn on an online ``PointCloud`` (``batch_size`` rows at a time)."""
    import jax
    import jax.numpy as jnp
    from jax.interpreters import batching

    if not hasattr(batching, "is_vmappable"):
        # ott-jax 0.6.0 (the newest) calls jax.interpreters.batching.is_vmappable, which
        # JAX 0.10 removed; it was ``type(x) in vmappables``, False without custom
        # vmappable types (none here)
        batching.is_vmappable = lambda x: False
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    solver = sinkhorn.Sinkhorn(
        threshold=-1.0, min_iterations=iters, max_iterations=iters, inner_iterations=1
    )

    @jax.jit
    def solve(x, y):
        geom = pointcloud.PointCloud(x, y, epsilon=eps, batch_size=batch_size)
        out = solver(linear_problem.LinearProblem(geom))
        # OTT's plan is exp((f_i + g_j - C_ij) / eps); ours is a_i b_j exp(...): shift
        return out.f + eps * jnp.log(x.shape[0]), out.g + eps * jnp.log(y.shape[0])

    return solve


def _timed(fn, *args):
    start = time.perf_counter()
    result = [r.block_until_ready() for r in fn(*args)]
    return result, time.perf_counter() - start


def _marginal_error(x, y, f, g, eps):
    """max_i |sum_j P_ij - 1/N| * N with P = exp((f_i + g_j - C_ij)/eps) / (N M), on 200 rows."""
    rows = np.arange(0, x.shape[0], max(1, x.shape[0] // 200))
    c = ((x[rows, None, :] - y[None, :, :]) ** 2).sum(-1)
    p = np.exp((f[rows, None] + g[None, :] - c) / eps) / (x.shape[0] * y.shape[0])
    return float(np.abs(p.sum(1) * x.shape[0] - 1).max())


def run_case(n: int, d: int, eps: float, iters: int, batch_size: int, dtype, gemm="auto") -> dict:
    import jax.numpy as jnp

    rng = np.random.default_rng(d)
    x = jnp.asarray(rng.random((n, d)).astype(dtype))
    y = jnp.asarray((rng.random((n, d)) * 0.8 + 0.1).astype(dtype))
    scale = float(np.mean(np.sum((np.asarray(x[:500]) - np.asarray(y[:500])) ** 2, -1)))
    e = eps * scale  # the same absolute epsilon for both
    ours = lazykernels_sinkhorn(x, y, e, iters, gemm)
    theirs = ott_sinkhorn(e, iters, batch_size)
    results = {}
    for name, solve in (("lazykernels", ours), ("ott-jax", theirs)):
        _timed(solve, x, y)  # compile and warm up
        (f, g), seconds = _timed(solve, x, y)
        f, g = np.asarray(f, np.float64), np.asarray(g, np.float64)
        cost = float(f.mean() + g.mean())  # <a, f> + <b, g>, uniform weights
        error = _marginal_error(np.asarray(x, np.float64), np.asarray(y, np.float64), f, g, e)
        results[name] = {"seconds": seconds, "cost": cost, "marginal_error": error}
    ref = results["ott-jax"]["cost"]
    results["relative_gap"] = abs(results["lazykernels"]["cost"] - ref) / abs(ref)
    results["time_ratio"] = results["ott-jax"]["seconds"] / results["lazykernels"]["seconds"]
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dims", type=int, nargs="+", default=[3, 64])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--eps", type=float, default=0.05, help="relative to the mean cost")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument(
        "--gemm",
        choices=("auto", "on", "off"),
        default="auto",
        help="the dot-product path for high D (docs/gemm.md; 'on' as OTT-JAX's blocked matmul)",
    )
    args = parser.parse_args(argv)

    import jax

    dtype = np.float64 if args.float64 else np.float32
    report = {}
    for d in args.dims:
        with jax.enable_x64(args.float64):  # scoped: leaves the caller's setting alone
            gemm = {"auto": "auto", "on": True, "off": False}[args.gemm]
            r = run_case(args.n, d, args.eps, args.iters, args.batch_size, dtype, gemm)
        report[f"d{d}"] = r
        ours, theirs = r["lazykernels"], r["ott-jax"]
        print(
            f"N={args.n} D={d} {np.dtype(dtype).name} {args.iters} iterations, gemm={args.gemm}: "
            f"lazykernels {ours['seconds']:.3f} s (cost {ours['cost']:.8g}, marginal error "
            f"{ours['marginal_error']:.1e}) | OTT-JAX batch_size={args.batch_size} "
            f"{theirs['seconds']:.3f} s (cost {theirs['cost']:.8g}, marginal error "
            f"{theirs['marginal_error']:.1e}) | relative cost gap {r['relative_gap']:.1e} | "
            f"OTT-JAX time / lazykernels time = {r['time_ratio']:.2f}"
        )
    return report


if __name__ == "__main__":
    main()
