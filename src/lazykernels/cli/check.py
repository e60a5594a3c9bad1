"""``lazykernels check``: is this machine ready to compile and run kernels?

Reports the compiler (path, version, where it came from), OpenMP, the SIMD extensions
``-march=native`` enables, the cache directory and its size, the versions of the array
libraries, then compiles one Gaussian kernel sum with ``backend="CPU"`` and compares it with
a dense NumPy computation; then the GPU backend (:mod:`.check_gpu`): the driver and NVRTC
versions, each GPU, one kernel run on each (without a GPU: an NVRTC compile check). Exits 1
with the reason when something is missing or wrong.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import sys
import time
from typing import Any

import numpy as np

from ..errors import LazyKernelsError
from ..version import __version__
from ._common import CACHE_ENV_HELP, human_bytes, human_seconds, package_version, plural
from .check_gpu import report_gpu

# Vector ISA extensions worth naming, in the order a reader expects them.
SIMD_FEATURES = (
    "sse2",
    "sse4.2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512vnni",
    "avx512bf16",
    "avx512fp16",
    "avxvnni",
    "amx-tile",
    "neon",
    "sve",
    "sve2",
)
LIBRARIES = ("numpy", "torch", "scipy", "matplotlib")
TEST_SIZE = 300
TOLERANCE = 1e-4


def register(subparsers: Any) -> None:
    """Add the ``check`` command to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "check",
        help="check the compiler, OpenMP, SIMD, cache and libraries; run one kernel",
        description=(
            "Report the C++ compiler (path, version, from CXX or PATH), OpenMP support, the "
            "SIMD extensions enabled by -march=native, the kernel cache directory and size, "
            "and the numpy/torch/scipy versions; then compile a Gaussian kernel sum with "
            "backend='CPU' and compare it with dense NumPy. Then the GPU backend: the driver "
            "and NVRTC versions, each GPU (name, compute capability, memory) with the same "
            "kernel run on it; without a GPU, an NVRTC compile check. Exits with status 1 and the "
            "reason when something is missing or wrong."
        ),
        epilog=CACHE_ENV_HELP,
    )
    parser.add_argument(
        "--no-kernel",
        action="store_true",
        help="only report the configuration; do not compile and run the test kernel",
    )
    parser.set_defaults(run=run)


def _row(label: str, value: str) -> None:
    print(f"  {label:<12} {value}")


def missing_compiler_reason() -> str | None:
    """Why no compiler can be found (checked before probing it), or None if one is found."""
    requested = os.environ.get("CXX", "").strip()
    if requested:
        if shutil.which(requested) is None:
            return (
                f"no C++ compiler found: CXX points to {requested}, which is not an "
                "executable; set CXX to a C++ compiler (a path or a program on PATH) or "
                "unset it to use g++, c++ or clang++ from PATH"
            )
        return None
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        return (
            "no C++ compiler found: CXX is not set and none of g++, c++, clang++ is on "
            "PATH; install one (e.g. `apt install g++`) or set CXX"
        )
    return None


def simd_summary(flags: tuple[str, ...], target: str) -> str:
    """The SIMD extensions the kernel flags enable, read from the ``-march=native`` dump.

    Example:
        >>> simd_summary(("-O3", "-march=native"), "-march=znver3 -mavx2 -mno-avx512f -mfma")
        '-march=native (znver3): avx2 fma'
    """
    if "-march=native" not in flags:
        return "baseline only (-march=native is not accepted by this compiler)"
    tokens = shlex.split(target)
    enabled: set[str] = set()
    cpu = ""
    for previous, token in zip([""] + tokens, tokens):
        if token.startswith("-march="):
            cpu = token.split("=", 1)[1]
        elif previous == "-target-cpu":
            cpu = token
        elif token.startswith("-m") and not token.startswith("-mno-"):
            enabled.add(token[2:])
        elif previous == "-target-feature" and token.startswith("+"):
            enabled.add(token[1:])
    names = [name for name in SIMD_FEATURES if name in enabled] or ["(none reported)"]
    summary = f"-march=native ({cpu or 'unknown cpu'}): {' '.join(names)}"
    if "-mprefer-vector-width=512" in flags:
        summary += "; -mprefer-vector-width=512"
    return summary


def report_compiler() -> str | None:
    """Print the compiler rows; return the failure reason, or None when it works."""
    reason = missing_compiler_reason()
    if reason is not None:
        _row("compiler", "NOT FOUND")
        return reason
    from ..jit import compiler_info  # import cost

    try:
        info = compiler_info()
    except LazyKernelsError as exc:
        _row("compiler", "NOT USABLE")
        return str(exc)
    requested = os.environ.get("CXX", "").strip()
    origin = f"from CXX={requested}" if requested else "from PATH"
    _row("compiler", f"{info.path} ({origin})")
    _row("version", info.version)
    _row("flags", " ".join(info.flags))
    _row("OpenMP", "yes" if info.openmp else "no (kernels run on one thread)")
    _row("SIMD", simd_summary(info.flags, info.target))
    return None


def report_cache() -> str | None:
    """Print the cache row; return the failure reason, or None."""
    from ..jit import cache_info  # import cost

    try:
        info = cache_info()
    except LazyKernelsError as exc:
        _row("cache", "NOT USABLE")
        return str(exc)
    size = human_bytes(info["total_bytes"])
    _row("cache", f"{info['path']} ({plural(info['num_kernels'], 'kernel')}, {size})")
    _row("", "yours and writable by you only (libraries are checked by sha256 before loading)")
    from ..jit.cache import source_budget  # import cost
    from ..jit.process import TIMEOUT_ENV, compile_timeout  # import cost

    try:
        timeout, budget = compile_timeout(), source_budget()
    except LazyKernelsError as exc:
        _row("limits", "NOT USABLE")
        return str(exc)
    limit = "none" if timeout is None else f"{timeout:g} s"
    _row("limits", f"compile time {limit} ({TIMEOUT_ENV}), source {budget / 1e6:g} MB")
    return None


def report_libraries() -> None:
    """Print one row per array library: its version or "not installed"."""
    for name in LIBRARIES:
        _row(name, package_version(name) or "not installed")


def run_test_kernel(seed: int = 0) -> str | None:
    """Compile and run a Gaussian kernel sum on the CPU backend; compare with dense NumPy.

    Returns:
        None when the result agrees within ``TOLERANCE``, else the failure reason.
    """
    from ..jit import cache_info  # import cost
    from ..numpy import Genred  # import cost

    rng = np.random.default_rng(seed)
    x = rng.random((TEST_SIZE, 3), dtype=np.float32)
    y = rng.random((TEST_SIZE + 7, 3), dtype=np.float32)
    b = rng.random((TEST_SIZE + 7, 1), dtype=np.float32)
    gamma = np.array([4.0], dtype=np.float32)
    print(f"kernel test: Gaussian kernel sum, M={len(x)}, N={len(y)}, D=3, float32, CPU")
    try:
        before = cache_info()["num_kernels"]
        routine = Genred(
            "Exp(-g * SqDist(x, y)) * b",
            ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"],
            reduction_op="Sum",
            axis=1,
        )
        start = time.perf_counter()
        routine(x, y, b, gamma, backend="CPU")
        first = time.perf_counter() - start
        built = cache_info()["num_kernels"] > before
        start = time.perf_counter()
        result = routine(x, y, b, gamma, backend="CPU")
        warm = time.perf_counter() - start
    except LazyKernelsError as exc:
        return f"the test kernel failed: {exc}"
    how = "compiled" if built else "loaded from the cache"
    print(f"  {how} in {human_seconds(first)}, ran in {human_seconds(warm)}")
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    sqdist = ((x64[:, None, :] - y64[None, :, :]) ** 2).sum(-1)
    dense = np.exp(-float(gamma[0]) * sqdist) @ b.astype(np.float64)
    error = float(np.abs(result - dense).max() / np.abs(dense).max())
    print(f"  max relative error vs dense NumPy (float64): {error:.1e}")
    if not np.isfinite(error) or error > TOLERANCE:
        return (
            f"the compiled Gaussian sum disagrees with dense NumPy: relative error {error:.1e} "
            f"> {TOLERANCE:.0e}"
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Run the checks; 0 when everything works, 1 with the reasons otherwise."""
    print(
        f"lazykernels {__version__} (Python {platform.python_version()}, "
        f"{sys.platform}-{platform.machine()})"
    )
    failures = [reason for reason in (report_compiler(), report_cache()) if reason]
    report_libraries()
    if not failures and not args.no_kernel:
        reason = run_test_kernel()
        if reason:
            failures.append(reason)
    reason = report_gpu(run_kernels=not args.no_kernel)
    if reason:
        failures.append(reason)
    if failures:
        for reason in failures:
            print(f"FAILED: {reason}", file=sys.stderr)
        print(
            "The NumPy reference backend (backend='reference') still works without a compiler.",
            file=sys.stderr,
        )
        return 1
    print("OK")
    return 0
