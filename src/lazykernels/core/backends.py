"""Backend registry: from the ``backend=`` name of a call to a function ``run(call)``.

- ``"reference"``: the NumPy tiled map-reduce (:mod:`lazykernels.reductions.reference`),
  always available.
- ``"CPU"``: the JIT-compiled C++ backend, the package :mod:`lazykernels.cpu` (imported
  lazily, so that a missing compiler never breaks ``import lazykernels``).
- ``"auto"``: ``"CPU"`` when that package exists and reports ``available()``, otherwise
  ``"reference"``.
- The GPU names of KeOps (``"GPU"``, ``"GPU_1D"``, ``"GPU_2D_device"``...) are recognised
  and refused with :class:`~lazykernels.errors.BackendError`: there is no GPU backend yet.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType

from ..errors import BackendError
from .plan import BoundCall

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


def _cpu_module() -> ModuleType | None:
    """The compiled CPU backend package, or None when it is not installed."""
    if importlib.util.find_spec("lazykernels.cpu") is None:
        return None
    return importlib.import_module("lazykernels.cpu")


def _run_reference(call: BoundCall) -> None:
    from ..reductions import reference  # the reductions package imports core.plan

    reference.run(call)


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
    name = canonical_backend(name)
    if name in GPU_NAMES:
        raise BackendError(f"backend {name!r}: no GPU backend yet; use 'CPU' or 'auto'")
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
