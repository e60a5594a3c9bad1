"""Measurements that need a process of their own, run by ``bench_cpu.py`` in a subprocess;
each prints one JSON line on stdout.

    python benchmarks/bench_worker.py threads --n 100000 --repeats 2   (OMP_NUM_THREADS set)
    python benchmarks/bench_worker.py compile                          (LAZYKERNELS_CACHE fresh)
    python benchmarks/bench_worker.py memory --m 1000000 --n 1000000

- threads: best time of the Gaussian sum (D=3, E=1, float32) at M = N = n, with the OpenMP
  thread count the parent put in the environment (read once by the OpenMP runtime).
- compile: time of the first call of a routine in a fresh kernel cache (the compiler probe,
  code generation, the C++ build, loading and the call), then of a second, new formula.
- memory: the peak RSS of this process (VmHWM, reset just before the call where Linux
  allows; ``ru_maxrss`` elsewhere) around one call at M x N; torch is never imported.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB; None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ``clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    """Peak RSS of this process in MB: VmHWM where /proc has it, else ``ru_maxrss``.

    ``ru_maxrss`` survives ``execve`` on Linux: a child started by a big parent reports the
    parent's size, which is why VmHWM (per address space) is preferred.
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # kB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def threads(n: int, repeats: int) -> dict:
    from bench_cases import gauss, gauss_inputs
    from bench_util import best_time

    rng = np.random.default_rng(0)
    small = gauss_inputs(rng, 200, 200, 1, "float32")
    args = gauss_inputs(rng, n, n, 1, "float32")
    routine = gauss(1)
    seconds = best_time(
        lambda: routine(*args, backend="CPU"), repeats, lambda: routine(*small, backend="CPU")
    )
    return {"seconds": seconds}


def compile_time() -> dict:
    t0 = time.perf_counter()
    from lazykernels.numpy import Genred

    import_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x, y, b = (rng.random((100, 3), dtype=np.float32) for _ in range(3))
    g = np.array([4.0], dtype=np.float32)
    t0 = time.perf_counter()
    routine = Genred("Exp(-SqDist(x,y)*g)*b", ["x=Vi(3)", "y=Vj(3)", "b=Vj(3)", "g=Pm(1)"], axis=1)
    routine(x, y, b, g, backend="CPU")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    routine(x, y, b, g, backend="CPU")
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    other = Genred("Exp(-Norm2(x-y)*g)*b", ["x=Vi(3)", "y=Vj(3)", "b=Vj(3)", "g=Pm(1)"], axis=1)
    other(x, y, b, g, backend="CPU")
    second = time.perf_counter() - t0
    return {"import_s": import_s, "first_call_s": first, "warm_call_s": warm, "second_s": second}


def memory(m: int, n: int) -> dict:
    from bench_cases import gauss, gauss_inputs

    rng = np.random.default_rng(0)
    routine = gauss(1)
    routine(*gauss_inputs(rng, 100, 100, 1, "float32"), backend="CPU")  # compile, load
    args = gauss_inputs(rng, m, n, 1, "float32")
    inputs_mb = sum(a.nbytes for a in args) / 2**20
    rss_before = _proc_status_mb("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    out = routine(*args, backend="CPU")
    seconds = time.perf_counter() - t0
    peak = _peak_mb()
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "rss_before_mb": rss_before,
        "peak_reset": reset,
        "inputs_mb": inputs_mb,
        "output_mb": out.nbytes / 2**20,
        "peak_minus_inputs_mb": peak - inputs_mb,
        "call_mb": None if rss_before is None or not reset else peak - rss_before,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["threads", "compile", "memory"])
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if args.what == "threads":
        result = threads(args.n, args.repeats)
    elif args.what == "compile":
        result = compile_time()
    else:
        result = memory(args.m, args.n)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
