"""Gaussian kernel sum on the CPU: lazykernels' compiled backend vs dense NumPy vs the
hand-tuned limit kernel (``shared/bench/limit_gauss.cpp``), in one run.

    python benchmarks/bench_cpu.py [--sizes 1000 10000 100000] [--threads N]
                                   [--limit-source PATH] [--repeats 3]

Prints, for out_i = sum_j exp(-|x_i - y_j|^2 g) b_j (D = 3, float32, M = N): the best time
after a warm-up, Gpairs/s, and ratios. Dense NumPy runs where the M x N matrix fits
comfortably in memory. Timings on shared machines are noisy: compare ratios of one run.
On a machine whose cores are busy with other work, OpenMP's spin-then-sleep threads add
milliseconds per call (``OMP_WAIT_POLICY=passive`` or ``--threads 1`` avoid that).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from lazykernels.numpy import Genred

FORMULA = "Exp(-SqDist(x,y)*g)*b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
DENSE_LIMIT = 2e8  # largest M * N for the dense NumPy baseline
DEFAULT_LIMIT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "limit_gauss.cpp"


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, page faults)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def dense_numpy(x, y, b, g):
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return np.exp(-d * g[0]) @ b


def limit_kernel(source: Path | None, threads: int) -> Path | None:
    """Build the hand-tuned reference kernel; None when its source or g++ is missing."""
    if source is None or not source.exists() or shutil.which("g++") is None:
        return None
    exe = Path(tempfile.mkdtemp(prefix="lk_bench_")) / "limit_gauss"
    flags = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp"]
    subprocess.run(["g++", *flags, str(source), "-o", str(exe)], check=True)
    return exe


def run_limit(exe: Path, n: int, repeats: int, threads: int) -> float:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [str(exe), str(n), str(n), str(repeats)], capture_output=True, text=True, env=env
    )
    return float(re.search(r"best=([0-9.eE+-]+) s", out.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--threads", type=int, default=0, help="0: OpenMP default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit-source", type=Path, default=DEFAULT_LIMIT)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    rng = np.random.default_rng(0)
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    exe = limit_kernel(args.limit_source, args.threads)
    print(f"Gaussian kernel sum, D=3, float32, threads={args.threads or 'default'}")
    header = f"{'M=N':>8} {'ours s':>9} {'Gpairs/s':>9} {'numpy s':>9} {'x numpy':>8}"
    print(header + f" {'limit s':>9} {'Gpairs/s':>9} {'ours/limit':>10}")
    for n in args.sizes:
        x = rng.random((n, 3), dtype=np.float32)
        y = rng.random((n, 3), dtype=np.float32)
        b = rng.random((n, 1), dtype=np.float32)
        g = np.array([4.0], dtype=np.float32)
        repeats = args.repeats if n <= 10_000 else max(1, args.repeats - 1)
        ours = best_time(lambda: routine(x, y, b, g, backend="CPU"), repeats)  # noqa: B023
        pairs = float(n) * n
        row = f"{n:>8} {ours:>9.4f} {pairs / ours / 1e9:>9.3f}"
        if pairs <= DENSE_LIMIT:
            got = routine(x, y, b, g, backend="CPU")
            want = dense_numpy(x, y, b, g)
            assert np.allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))
            dense = best_time(lambda: dense_numpy(x, y, b, g), repeats)  # noqa: B023
            row += f" {dense:>9.4f} {dense / ours:>8.1f}"
        else:
            row += f" {'-':>9} {'-':>8}"
        if exe is not None and n >= 10_000:
            limit = run_limit(exe, n, repeats, args.threads)
            row += f" {limit:>9.4f} {pairs / limit / 1e9:>9.3f} {limit / ours:>10.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
