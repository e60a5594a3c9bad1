"""Overhead of one jitted ``lazykernels.jax`` reduction at small sizes against the NumPy
``Genred`` call on the same data (issue #13: goal <= 2x at M = N = 100).

Usage: ``python benchmarks/jax_overhead.py [--m 100] [--repeat 7] [--number 200]``.
Prints the best and the spread (min..max over repeats) of the per-call time of each, and
the ratio of the bests. Timings only: the values are checked equal first.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import lazykernels.jax as lkj
    import lazykernels.numpy as lkn

    formula, aliases = (
        "Exp(-SqDist(x, y)) * b",
        [f"x = Vi({args.d})", f"y = Vj({args.d})", "b = Vj(1)"],
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, args.m, args.d))
    b = rng.normal(size=(args.m, 1))
    g_np = lkn.Genred(formula, aliases, axis=1)
    g_jax = lkj.Genred(formula, aliases, axis=1)
    xj, yj, bj = jnp.asarray(x), jnp.asarray(y), jnp.asarray(b)
    jitted = jax.jit(lambda x, y, b: g_jax(x, y, b))
    np.testing.assert_allclose(np.asarray(jitted(xj, yj, bj)), g_np(x, y, b), rtol=1e-12)

    runs = {
        "numpy Genred": lambda: g_np(x, y, b),
        "jax.jit Genred": lambda: jitted(xj, yj, bj).block_until_ready(),
        "jax eager Genred": lambda: g_jax(xj, yj, bj).block_until_ready(),
    }
    best = {}
    for name, fn in runs.items():
        times = np.array(timeit.repeat(fn, repeat=args.repeat, number=args.number))
        times = times / args.number * 1e6
        best[name] = times.min()
        print(
            f"{name:18s} best {times.min():8.1f} us   spread {times.min():.1f}..{times.max():.1f}"
        )
    ratio = best["jax.jit Genred"] / best["numpy Genred"]
    print(f"M = N = {args.m}: jitted JAX / NumPy Genred = {ratio:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
