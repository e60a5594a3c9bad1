"""Warm per-call overhead of two source trees, taking turns: wall and CPU time per call.

    python benchmarks/bench_warm_ab.py --a /path/to/main/src --b src [--rounds 6]

Each round runs one fresh interpreter per tree (A then B, then B then A the next round) on
the ``warm`` probes of ``bench_cpu.py`` (Genred NumPy and torch at M = N = 100, and the
bare M = N = 2 NumPy call) and the LazyTensor ``(-((x_i - y_j)**2).sum(-1)).exp() @ b``
(NumPy, torch; built and reduced each call), best of batches of calls; the table keeps
each probe's best over the rounds and its spread. CPU time (``time.process_time``: all
threads of the process, so the kernel's pool too) is less sensitive than wall time to
other work on a shared machine. Load averages are printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import bench_cases as bc
rng = np.random.default_rng(0)
args = bc.gauss_inputs(rng, 100, 100, 1, "float32")
tiny = bc.gauss_inputs(rng, 2, 2, 1, "float32")
g = bc.gauss(1)
probes = {"numpy": lambda: g(*args, backend="CPU"), "numpy M=N=2": lambda: g(*tiny, backend="CPU")}
def lazy(lt, x, y, b):
    return lambda: (-((lt(x[:, None, :]) - lt(y[None, :, :])) ** 2).sum(-1)).exp() @ b
from lazykernels.numpy import LazyTensor
probes["LT numpy"] = lazy(LazyTensor, *args[:2], args[2])
try:
    import torch
    from lazykernels.torch import Genred
    tg = Genred(bc.GAUSS, bc.gauss_aliases(1), reduction_op="Sum", axis=1)
    targs = [torch.from_numpy(a) for a in args]
    probes["torch"] = lambda: tg(*targs, backend="CPU")
    from lazykernels.torch import LazyTensor as TorchLazyTensor
    probes["LT torch"] = lazy(TorchLazyTensor, *targs[:2], targs[2])
except ImportError:
    pass
calls, batches = int(sys.argv[2]), int(sys.argv[3])
best = {k: [float("inf"), float("inf")] for k in probes}
for f in probes.values():
    f()
for _ in range(batches):
    for k, f in probes.items():
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            f()
        w, c = (time.perf_counter() - w0) / calls, (time.process_time() - c0) / calls
        best[k] = [min(best[k][0], w), min(best[k][1], c)]
print(json.dumps(best))
"""


def run(src: str, calls: int, batches: int) -> dict[str, list[float]]:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(HERE), str(calls), str(batches)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="PYTHONPATH of tree A (e.g. main's src)")
    parser.add_argument("--b", required=True, help="PYTHONPATH of tree B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batches", type=int, default=10)
    opts = parser.parse_args()
    print(f"load at start {os.getloadavg()}")
    results: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(opts.rounds):
        order = ("A", "B") if r % 2 == 0 else ("B", "A")
        for side in order:
            results[side].append(run(opts.a if side == "A" else opts.b, opts.calls, opts.batches))
    print(f"load at end   {os.getloadavg()}")
    print(
        f"{'probe':14s} {'A wall us':>16s} {'B wall us':>16s} {'A cpu us':>16s} {'B cpu us':>16s}"
    )
    for probe in results["A"][0]:
        cells = []
        for k in (0, 1):
            for side in ("A", "B"):
                values = [run_[probe][k] * 1e6 for run_ in results[side]]
                cells.append(f"{min(values):7.2f} ({max(values):6.1f})")
        print(f"{probe:14s} {cells[0]:>16s} {cells[1]:>16s} {cells[2]:>16s} {cells[3]:>16s}")
    print("best of rounds (worst round in parentheses); A:", opts.a, "B:", opts.b)
    print(f"finished {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
