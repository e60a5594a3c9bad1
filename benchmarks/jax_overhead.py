"""Overhead of one jitted ``lazykernels.jax`` reduction at small sizes against the NumPy
``Genred`` call on the same data (issue #13: goal <= 2x at M = N = 100).

Usage: ``python benchmarks/jax_overhead.py [--m 100] [--repeat 9] [--number 200]``.

Rows, timed in turns (each round runs every row once, so a load change hits them alike):

- ``numpy Genred``: the NumPy front end;
- ``jax.jit Genred``: the jitted JAX call, through the native XLA FFI handler (C++);
- ``jax.jit ctypes handler``: the same through the ctypes handler (the fallback);
- ``jax eager Genred``: the JAX call outside jit (a one-reduction XLA program);
- ``jax.jit jnp floor``: a jitted ``jax.numpy`` function of the same arrays, JAX's own
  dispatch cost (what no handler can go below).

Prints the best and the spread (min..max over rounds) of the per-call time of each, and the
ratio jitted / NumPy: of the bests, and its spread over rounds. Timings only: the values
are checked equal first.
"""

from __future__ import annotations

import argparse
import os
import timeit

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9)
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
    # the ctypes handler: LAZYKERNELS_JAX_FFI is read when a jitted function is lowered
    os.environ["LAZYKERNELS_JAX_FFI"] = "ctypes"
    via_ctypes = jax.jit(lambda x, y, b: g_jax(x, y, b))
    via_ctypes.lower(xj, yj, bj).compile()
    np.testing.assert_allclose(np.asarray(via_ctypes(xj, yj, bj)), g_np(x, y, b), rtol=1e-12)
    del os.environ["LAZYKERNELS_JAX_FFI"]
    np.testing.assert_allclose(np.asarray(jitted(xj, yj, bj)), g_np(x, y, b), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g_jax(xj, yj, bj)), g_np(x, y, b), rtol=1e-12)
    floor = jax.jit(lambda x, y, b: (x * y).sum(1, keepdims=True) + b)

    runs = {
        "numpy Genred": lambda: g_np(x, y, b),
        "jax.jit Genred": lambda: jitted(xj, yj, bj).block_until_ready(),
        "jax.jit ctypes handler": lambda: via_ctypes(xj, yj, bj).block_until_ready(),
        "jax eager Genred": lambda: g_jax(xj, yj, bj).block_until_ready(),
        "jax.jit jnp floor": lambda: floor(xj, yj, bj).block_until_ready(),
    }
    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            times[name].append(timeit.timeit(fn, number=args.number) / args.number * 1e6)
    for name, values in times.items():
        t = np.array(values)
        print(f"{name:24s} best {t.min():8.1f} us   spread {t.min():.1f}..{t.max():.1f}")
    jit, ref = np.array(times["jax.jit Genred"]), np.array(times["numpy Genred"])
    rounds = jit / ref
    print(
        f"M = N = {args.m}: jitted JAX / NumPy Genred = {jit.min() / ref.min():.2f}x "
        f"(per round {rounds.min():.2f}..{rounds.max():.2f}x; goal <= 2x)"
    )


if __name__ == "__main__":
    main()
