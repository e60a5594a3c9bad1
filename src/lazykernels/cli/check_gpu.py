"""The GPU part of ``lazykernels check``: driver, NVRTC, each GPU, one kernel on each.

Without a GPU (no driver, or no device) it says so, and still compiles one generated kernel
with NVRTC (which needs neither), so a CPU-only machine learns whether the ``cuda`` extra
works. Nothing here is a failure when the extra is not installed or there is no GPU; a GPU
whose kernel disagrees with dense NumPy is.
"""

from __future__ import annotations

import time

import numpy as np

from ..codegen.cuda import render_cuda
from ..core.genred import build_plan
from ..cuda import driver, nvrtc
from ..errors import LazyKernelsError
from ._common import human_bytes, human_seconds

TEST_SIZE = 2000
TOLERANCE = 1e-4
FORMULA = "Exp(-g * SqDist(x, y)) * b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
COMPILE_ARCH = "sm_80"


def _row(label: str, value: str) -> None:
    print(f"  {label:<12} {value}")


def _nvrtc_version() -> str | None:
    try:
        major, minor = nvrtc.version()
    except LazyKernelsError as exc:
        _row("NVRTC", f"not available ({exc})")
        return None
    _row("NVRTC", f"{major}.{minor} (the nvidia-cuda-nvrtc wheel; no CUDA toolkit needed)")
    return f"{major}.{minor}"


def compile_check(arch: str = COMPILE_ARCH) -> str | None:
    """Compile the test kernel with NVRTC for ``arch`` (no GPU needed); the failure or None."""
    plan = build_plan(FORMULA, ALIASES, axis=1)
    start = time.perf_counter()
    try:
        compiled = nvrtc.compile_source(render_cuda(plan, "float32").source, arch)
    except LazyKernelsError as exc:
        return f"NVRTC could not compile the test kernel: {exc}"
    seconds = time.perf_counter() - start
    _row(
        "compile",
        f"Gaussian kernel sum for {arch}: {len(compiled.cubin):,} bytes of cubin in "
        f"{human_seconds(seconds)}",
    )
    return None


def run_gpu_kernel(ordinal: int, seed: int = 0) -> str | None:
    """Run the Gaussian kernel sum on GPU ``ordinal`` (NumPy arrays, ``backend="GPU"``)
    and compare with dense NumPy in float64; the failure or None."""
    from ..numpy import Genred  # a front end, loaded when a GPU is there to run on

    rng = np.random.default_rng(seed)
    x = rng.random((TEST_SIZE, 3), dtype=np.float32)
    y = rng.random((TEST_SIZE + 7, 3), dtype=np.float32)
    b = rng.random((TEST_SIZE + 7, 1), dtype=np.float32)
    gamma = np.array([4.0], dtype=np.float32)
    routine = Genred(FORMULA, ALIASES, reduction_op="Sum", axis=1)
    try:
        start = time.perf_counter()
        routine(x, y, b, gamma, backend="GPU", device_id=ordinal)
        first = time.perf_counter() - start
        start = time.perf_counter()
        result = routine(x, y, b, gamma, backend="GPU", device_id=ordinal)
        warm = time.perf_counter() - start
    except LazyKernelsError as exc:
        return f"the GPU test kernel failed on GPU {ordinal}: {exc}"
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    dense = np.exp(-4.0 * ((x64[:, None, :] - y64[None, :, :]) ** 2).sum(-1)) @ b
    error = float(np.abs(result - dense).max() / np.abs(dense).max())
    _row(
        "",
        f"kernel: Gaussian sum M={TEST_SIZE}, float32: first call {human_seconds(first)}, "
        f"then {human_seconds(warm)} (with copies); max relative error {error:.1e}",
    )
    if not np.isfinite(error) or error > TOLERANCE:
        return f"the GPU Gaussian sum on GPU {ordinal} disagrees with dense NumPy ({error:.1e})"
    return None


def report_gpu(run_kernels: bool = True) -> str | None:
    """Print the GPU rows (and run the kernels unless ``run_kernels`` is False); return the
    failure reason, or None."""
    print("GPU backend:")
    nvrtc_version = _nvrtc_version()
    reason = driver.unavailable_reason()
    if reason is not None:
        _row("GPU", f"none: {reason}")
        if nvrtc_version is not None and run_kernels:
            return compile_check()
        return None
    version = driver.driver_version()
    _row("driver", f"CUDA {version // 1000}.{(version % 1000) // 10} ({version})")
    for ordinal in range(driver.device_count()):
        gpu = driver.device(ordinal)
        _row(
            f"GPU {ordinal}",
            f"{gpu.name}, compute capability {gpu.capability[0]}.{gpu.capability[1]} "
            f"({gpu.arch}), {human_bytes(gpu.total_memory)}",
        )
        if run_kernels:
            failure = run_gpu_kernel(ordinal)
            if failure:
                return failure
    return None
