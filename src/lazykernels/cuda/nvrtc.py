"""NVRTC from the ``nvidia-cuda-nvrtc`` wheel, through ``cuda.bindings.nvrtc``.

Nothing here reads ``CUDA_PATH`` or calls ``nvcc``: ``cuda-bindings`` finds the NVRTC
library of the pip wheel (``pip install lazykernels[cuda]``). NVRTC needs no GPU and no
driver, so CUDA sources compile to PTX and cubin on a CPU-only machine (the CI tier).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import CompatibilityError, CompileError

OPTIONS = ("--std=c++17",)
"""NVRTC options besides the architecture (part of the cubin cache key)."""
_INSTALL = "install the GPU extra: pip install 'lazykernels[cuda]' (or [cuda12])"


def bindings(module: str):
    """``cuda.bindings.<module>`` (``nvrtc``, ``driver``).

    Raises:
        CompatibilityError: cuda-bindings is not installed (the message names the extra).
    """
    try:
        return importlib.import_module(f"cuda.bindings.{module}")
    except ImportError as e:
        raise CompatibilityError(f"cuda-bindings is not installed ({e}); {_INSTALL}") from None


def _nvrtc():
    return bindings("nvrtc")


def available() -> bool:
    """Whether NVRTC can be loaded (the bindings and the NVRTC library of the wheel)."""
    try:
        version()
    except CompatibilityError:
        return False
    return True


def _check(nvrtc, result, what: str) -> None:
    if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        _, text = nvrtc.nvrtcGetErrorString(result)
        raise CompileError(f"NVRTC {what} failed: {text.decode(errors='replace')}")


def version() -> tuple[int, int]:
    """NVRTC's (major, minor) version.

    Raises:
        CompatibilityError: cuda-bindings or the NVRTC library is missing.
    """
    nvrtc = _nvrtc()
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except RuntimeError as e:  # the bindings are there, the NVRTC library is not
        raise CompatibilityError(f"the NVRTC library cannot be loaded ({e}); {_INSTALL}") from None
    _check(nvrtc, err, "version")
    return int(major), int(minor)


@dataclass(frozen=True)
class Compiled:
    """The result of one compilation: PTX text, cubin bytes and NVRTC's log."""

    ptx: str
    cubin: bytes
    log: str
    arch: str


def compile_source(source: str, arch: str = "sm_80", name: str = "kernel.cu") -> Compiled:
    """Compile CUDA C++ ``source`` for ``arch`` (``sm_80``, ``sm_90``...) to PTX and cubin.

    Raises:
        CompatibilityError: NVRTC is not installed.
        CompileError: NVRTC rejected the source (the message carries its log).
    """
    if not (arch.startswith("sm_") and arch[3:].isdigit()):
        raise CompileError(f"architecture names are sm_<digits>, not {arch!r}")
    version()
    nvrtc = _nvrtc()
    err, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    _check(nvrtc, err, "program creation")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), *(o.encode() for o in OPTIONS)]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        err, n = nvrtc.nvrtcGetProgramLogSize(prog)
        log = b" " * n
        nvrtc.nvrtcGetProgramLog(prog, log)
        log_text = log.rstrip(b"\x00 ").decode(errors="replace")
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CompileError(f"NVRTC could not compile {name} for {arch}:\n{log_text}")
        err, n = nvrtc.nvrtcGetPTXSize(prog)
        _check(nvrtc, err, "PTX size")
        ptx = b" " * n
        _check(nvrtc, nvrtc.nvrtcGetPTX(prog, ptx)[0], "PTX")
        err, n = nvrtc.nvrtcGetCUBINSize(prog)
        _check(nvrtc, err, "cubin size")
        cubin = b" " * n
        _check(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin)[0], "cubin")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return Compiled(ptx.rstrip(b"\x00").decode(), cubin, log_text, arch)
