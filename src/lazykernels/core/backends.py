"""Backend registry: from the ``backend=`` name of a call to a function ``run(call)``.

- ``"reference"``: the NumPy tiled map-reduce (:mod:`lazykernels.reductions.reference`),
  always available.
- ``"CPU"``: the JIT-compiled C++ backend, the package :mod:`lazykernels.cpu` (imported
  lazily, so that a missing compiler never breaks ``import lazykernels``).
- ``"auto"``: ``"CPU"`` when that package exists and reports ``available()``, otherwise
  ``"reference"`` (:func:`resolve`); for a call (:func:`dispatch`), the GPU first when
  one is present, as KeOps does (:func:`lazykernels.cuda.device.available`, asked once per
  process), falling back to the CPU for a plan the CUDA kernels cannot print yet.
- ``"GPU"``: the CUDA kernels in the scheme
  :func:`lazykernels.codegen.target_cuda.choose_scheme` picks for the sizes;
  ``"GPU_1D"``, ``"GPU_1D_host"``, ``"GPU_1D_device"``: the 1D scheme; ``"GPU_2D"``,
  ``"GPU_2D_host"``, ``"GPU_2D_device"``: the 2D scheme. Host arrays run through
  :func:`lazykernels.cuda.runner.run` (copied to the GPU and back), arrays in GPU memory
  through :func:`lazykernels.cuda.resident.run` (used in place, on the call's stream).
  Arrays in GPU memory run on the GPU only: a CPU backend name raises.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from ..errors import BackendError, FormulaError
from ..reductions import reference
from .plan import HOST, BoundCall, Device, ReductionPlan

Runner = Callable[[BoundCall], None]

GPU_NAMES = (
    "GPU",
    "GPU_1D",
    "GPU_1D_device",
    "GPU_1D_host",
    "GPU_2D",
    "GPU_2D_device",
    "GPU_2D_host",
)
NAMES = ("auto", "CPU", "reference", *GPU_NAMES)
GPU_1D_NAMES = ("GPU", "GPU_1D", "GPU_1D_device", "GPU_1D_host")


def _cpu_module() -> ModuleType | None:
    """The compiled CPU backend package, or None when it is not installed."""
    if importlib.util.find_spec("lazykernels.cpu") is None:
        return None
    return importlib.import_module("lazykernels.cpu")


def _run_reference(call: BoundCall) -> None:
    reference.run(call)


def _gpu(scheme: str) -> Runner:
    def run(call: BoundCall) -> None:
        # by name, like the CPU backend: the GPU package sits above the core (CONTRIBUTING.md)
        where = "runner" if call.device.is_host else "resident"  # copied, or in place
        importlib.import_module(f"lazykernels.cuda.{where}").run(call, scheme=scheme)

    return run


_RUN_GPU = {"auto": _gpu("auto"), "1D": _gpu("1D"), "2D": _gpu("2D")}


def _run_gpu_or_cpu(call: BoundCall) -> None:
    """``"auto"`` for host arrays with a GPU present: the GPU, or the host backend for a
    plan the CUDA kernels cannot print yet."""
    try:
        importlib.import_module("lazykernels.cuda.runner").kernel_source(call.plan, call.dtype)
    except FormulaError:
        resolve("auto")[1](call)
        return
    _RUN_GPU["auto"](call)


_GPU_PRESENT: bool | None = None  # memo of gpu_present() (None: not asked yet)


def gpu_present() -> bool:
    """Whether a GPU is usable (the device interface's ``available()``, asked once)."""
    global _GPU_PRESENT
    if _GPU_PRESENT is None:
        present = False
        if importlib.util.find_spec("lazykernels.cuda") is not None:
            present = bool(importlib.import_module("lazykernels.cuda.device").available())
        _GPU_PRESENT = present
    return _GPU_PRESENT


def dispatch(name: str, device: Device = HOST) -> tuple[str, Runner]:
    """The backend that runs a call on arrays living on ``device``, and its ``run``.

    Host arrays: :func:`resolve`, except that ``"auto"`` picks the GPU when one is present.
    Arrays in GPU memory: ``"auto"`` and the GPU names run there (in place).

    Raises:
        BackendError: as :func:`resolve`; a CPU backend for arrays in GPU memory.
    """
    if device is HOST or device.kind == "cpu":
        resolved = resolve(name)
        if resolved[0] == "GPU" or not gpu_present():
            return resolved
        if name == "auto" or canonical_backend(name) == "auto":
            return "GPU", _run_gpu_or_cpu
        return resolved
    known = canonical_backend(name)
    if known == "auto":
        return "GPU", _RUN_GPU["auto"]
    if known in GPU_NAMES:
        return _resolve(known)
    raise BackendError(
        f"backend {known!r} runs on the CPU, but the inputs are in GPU memory ({device}); "
        "move them to the host (e.g. .cpu()) or use backend='GPU'"
    )


def canonical_backend(name: str) -> str:
    """``name`` spelled as in :data:`NAMES` (matching ignores case).

    Raises:
        BackendError: unknown name.
    """
    if isinstance(name, str):
        for known in NAMES:
            if name.lower() == known.lower():
                return known
    raise BackendError(f"unknown backend {name!r}; expected one of {', '.join(NAMES)}")


def resolve(name: str) -> tuple[str, Runner]:
    """The backend actually used for ``name`` and its ``run`` function.

    Raises:
        BackendError: unknown name, a GPU backend, or ``"CPU"`` when the compiled backend
            is missing or unavailable.

    Example:
        >>> resolve("reference")[0]
        'reference'
    """
    if not isinstance(name, str):
        return _resolve(name)  # raises BackendError
    key = (name, *_compiler_environment())
    hit = _RESOLVED.get(key)
    if hit is not None:
        return hit
    resolved = _resolve(name)
    if resolved[0] == "CPU" and len(_RESOLVED) < 64:
        _RESOLVED[key] = resolved  # availability is decided by the compiler environment
    return resolved


# (name as given, CXX, CXXFLAGS, PATH) -> a resolved "CPU" backend: a warm call neither
# searches for the package nor asks the compiler again. Failures are never memoised.
_RESOLVED: dict[tuple[Any, ...], tuple[str, Runner]] = {}
_ENVIRONMENT = ("CXX", "CXXFLAGS", "PATH")
_ENCODE = getattr(os.environ, "encodekey", None)
_KEYS = tuple(_ENCODE(v) for v in _ENVIRONMENT) if callable(_ENCODE) else ()


def _compiler_environment() -> tuple[Any, ...]:
    """The variables of ``lazykernels.jit.compiler.compiler_environment`` (not imported:
    the jit stays out of ``import lazykernels``), as a cache key.

    ``os.environ.get`` costs ~0.3 µs a variable (key encoding, value decoding), a tenth of a
    warm call's budget for three; the encoded mapping behind ``os.environ``, which every
    assignment to it updates, is read directly when it is there.
    """
    data = getattr(os.environ, "_data", None)
    if _KEYS and type(data) is dict:
        return tuple([data.get(k) for k in _KEYS])
    get = os.environ.get
    return tuple([get(v, "") for v in _ENVIRONMENT])


def _resolve(name: str) -> tuple[str, Runner]:
    name = canonical_backend(name)
    if name in GPU_NAMES:
        return "GPU", _RUN_GPU["auto" if name == "GPU" else name[4:6]]
    if name == "reference":
        return "reference", _run_reference
    cpu = _cpu_module()
    available = getattr(cpu, "available", None)
    usable = callable(available) and bool(available())
    if name == "auto":
        return ("CPU", cpu.run) if usable else ("reference", _run_reference)
    if cpu is None:
        raise BackendError("backend 'CPU': the compiled backend lazykernels.cpu is not installed")
    if not usable:
        reason = getattr(cpu, "unavailable_reason", None)
        detail = f" ({reason()})" if callable(reason) else ""
        raise BackendError(f"backend 'CPU' is not available{detail}; use 'reference'")
    return "CPU", cpu.run


def prepare(plans: Sequence[ReductionPlan], dtype: Any, backend: str = "auto") -> None:
    """Compile ahead, concurrently, the kernels that ``plans`` will run on ``backend``.

    Only the compiled backend has anything to prepare; an unknown or unavailable backend
    is left for the run itself to report.

    Raises:
        CompileError: a kernel does not compile.
    """
    try:
        name, _ = dispatch(backend)
    except BackendError:
        return
    cpu = _cpu_module() if name == "CPU" else None
    prepare_many = getattr(cpu, "prepare_many", None)
    if callable(prepare_many):
        prepare_many(plans, dtype)
