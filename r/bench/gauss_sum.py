"""The Python side of r/bench/r_vs_python.R, in a process of its own.

Times the Gaussian kernel sum sum_j exp(-|x_i - y_j|^2 / s) b_j of lazykernels.numpy on
N x N points, the same LazyTensor formula as the R benchmark, and prints one JSON line
{"times": [...], "checksum": ...}. Usage: python gauss_sum.py N D DTYPE REPEATS
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from lazykernels.numpy import LazyTensor


def gauss_sum(x: np.ndarray, y: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    """The Python call the R benchmark compares with (same formula as its R call)."""
    x_i = LazyTensor(x[:, None, :])
    y_j = LazyTensor(y[None, :, :])
    return (-((x_i - y_j) ** 2).sum(-1) / s).exp() @ b


def main() -> None:
    n, d, dtype, repeats = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rng = np.random.default_rng(0)
    x, y = (rng.random((n, d)).astype(dtype) for _ in range(2))
    b = rng.random((n, 1)).astype(dtype)
    gauss_sum(x[:256], y[:256], b[:256], 0.5)  # compiles / loads the kernel
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = gauss_sum(x, y, b, 0.5)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "checksum": float(out.sum())}))


if __name__ == "__main__":
    main()
