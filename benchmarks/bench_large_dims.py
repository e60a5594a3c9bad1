"""Generated source size and compile time of large-dimension formulas, and the unrolling
threshold (issue "one engine for every target", kernel IR with loops).

    python benchmarks/bench_large_dims.py [--cases gpytorch onehot sum20k tensordot threshold]
        [--dims 8 16 32 64 128] [--n 4000] [--repeats 3]

Each formula is compiled in a fresh cache directory, so the time includes the C++ compile;
its result is compared with the NumPy reference backend. ``threshold`` compiles
``Sum(Square(x - y) * b)``-like Gaussian kernels of dimension D with unrolled vectors and
with loops (the CPU target's ``unroll_max`` above and below D) and prints the per-call time
of each: the threshold is the largest D where unrolling is still as fast.
It is a script, not a test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from functools import partial

import numpy as np

from lazykernels.codegen.cpp import render_cpu
from lazykernels.codegen.target_cpu import CPU
from lazykernels.core.genred import build_plan
from lazykernels.numpy import Genred


def _fresh_cache() -> None:
    os.environ["LAZYKERNELS_CACHE"] = tempfile.mkdtemp(prefix="lk-bench-dims-")


def _source_kb(formula: str, aliases: list[str], axis: int = 1) -> float:
    plan = build_plan(formula, aliases, axis=axis)
    return len(render_cpu(plan, "float64").source) / 1000


def _run(formula, aliases, make_args, n, axis=1) -> tuple[float, float, float]:
    """(source kB, compile s, max relative error vs the reference backend at size n).

    The compile time is that of a first call on 2 rows in a fresh cache (the thread pool's
    library is built before, by :func:`_warm_pool`)."""
    _fresh_cache()
    kb = _source_kb(formula, aliases, axis)
    fn = Genred(formula, aliases, axis=axis)
    t0 = time.perf_counter()
    fn(*make_args(2), backend="CPU")
    compile_s = time.perf_counter() - t0
    args = make_args(n)
    out = fn(*args, backend="CPU")
    ref = Genred(formula, aliases, axis=axis)(*args, backend="reference")
    err = float(np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1e-300))
    return kb, compile_s, err


def _warm_pool() -> None:
    fn = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
    fn(np.ones((2, 1)), np.ones((2, 1)), backend="CPU")


def _report(name: str, kb: float, compile_s: float, err: float) -> None:
    print(f"{name:22s} source {kb:7.1f} kB  compile {compile_s:6.2f} s  rel. err {err:.1e}")


def case_gpytorch(n: int) -> None:
    """exp(-|x - y|^2 / 2) times 64 probe vectors, and its gradients w.r.t. x and y."""

    def make_args(m):
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal((m, 3)), rng.standard_normal((m, 3))
        return x, y, rng.standard_normal((m, 64)), rng.standard_normal((m, 64))

    aliases = ["x = Vi(3)", "y = Vj(3)", "w = Vj(64)", "g = Vi(64)"]
    kernel = "Exp(-SqDist(x, y) / IntCst(2)) * w"
    for name, formula, axis in [
        ("gpytorch matvec", kernel, 1),
        ("gpytorch grad x", f"Grad({kernel}, x, g)", 1),
        ("gpytorch grad y", f"Grad({kernel}, y, g)", 0),
    ]:
        _report(name, *_run(formula, aliases, make_args, n, axis))


def case_onehot(n: int) -> None:
    """A histogram row per i: sum_j OneHot(y_j, 100000) b_j x_i (output 100,000 wide)."""

    def make_args(m):
        rng = np.random.default_rng(1)
        y = rng.integers(0, 100000, (m, 1)).astype(float)
        return rng.standard_normal((3, 1)), y, rng.standard_normal((m, 1))

    aliases = ["x = Vi(1)", "y = Vj(1)", "b = Vj(1)"]
    _report("OneHot(y, 100000)", *_run("OneHot(y, 100000) * b * x", aliases, make_args, n))


def case_sum20k(n: int) -> None:
    def make_args(m):
        rng = np.random.default_rng(2)
        return rng.standard_normal((m, 1)), rng.standard_normal((max(m // 10, 2), 20000))

    _report("Sum over 20000", *_run("Sum(v) * x", ["x = Vi(1)", "v = Vj(20000)"], make_args, n))


def case_tensordot(n: int) -> None:
    def make_args(m):
        rng = np.random.default_rng(3)
        return rng.standard_normal((m, 4096)), rng.standard_normal((m, 64))

    formula = "TensorDot(a, b, [64, 64], [64], [1], [0])"
    _report("TensorDot 4096", *_run(formula, ["a = Vi(4096)", "b = Vj(64)"], make_args, n // 4))


def case_threshold(n: int, dims: list[int], repeats: int) -> None:
    """Per-call time of a Gaussian matvec with a D-dim weight, unrolled vs looped.

    The CPU backend prints kernels for the default target; here its ``render_cpu`` is
    swapped for one with another ``unroll_max`` (and its in-memory kernel tables cleared).
    """
    import lazykernels.cpu as cpu

    print("    D | unrolled: per call, source, compile | looped: per call, source, compile")
    rng = np.random.default_rng(4)
    for d in dims:
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        w = rng.standard_normal((n, d))
        aliases = [f"x = Vi({d})", f"y = Vj({d})", f"w = Vj({d})"]
        formula = "Exp(-SqDist(x, y)) * w"
        row = []
        for unroll in (d, d - 1):
            target = replace(CPU, unroll_max=unroll)
            plan = build_plan(formula, aliases, axis=1)
            kb = len(render_cpu(plan, "float64", target=target).source) / 1000
            cpu.render_cpu = partial(render_cpu, target=target)
            cpu._KERNELS.clear()
            cpu._BY_ID.clear()
            _fresh_cache()
            fn = Genred(formula, aliases, axis=1)
            compile_s = _timed(fn, (x[:2], y[:2], w[:2]))
            best = min(_timed(fn, (x, y, w)) for _ in range(repeats))
            row.append(f"{best * 1e3:9.2f} ms {kb:6.1f} kB {compile_s:5.2f} s")
        cpu.render_cpu = render_cpu
        print(f"{d:5d} | {row[0]} | {row[1]}")


def _timed(fn, args) -> float:
    t0 = time.perf_counter()
    fn(*args, backend="CPU")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=["gpytorch", "onehot", "sum20k", "tensordot"])
    ap.add_argument("--dims", nargs="*", type=int, default=[8, 16, 32, 48, 64, 128])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    _fresh_cache()
    _warm_pool()
    for case in a.cases:
        if case == "threshold":
            case_threshold(a.n, a.dims, a.repeats)
        else:
            globals()[f"case_{case}"](a.n)


if __name__ == "__main__":
    main()
