"""The CPU lowering of :data:`~lazykernels.jax.primitive.reduce_p`: an XLA FFI custom call.

Two handlers, picked per call at lowering time (shapes, dtypes and the backend are static):

- the native one (:mod:`.ffi_native`, target ``lazykernels_reduce``): C++ built by our JIT
  against jaxlib's XLA FFI headers, which decodes XLA's call frame and calls the compiled
  kernel on XLA's buffers, without Python. Every call of the compiled backend in float32 or
  float64 with non-empty sizes takes it;
- the ctypes one (:mod:`.ffi_ctypes`, target ``lazykernels_reduce_py``): a Python callback
  that runs the NumPy core on views of XLA's buffers. It serves the rest (the reference
  backend, float16, empty sizes), and everything when the native handler cannot be built
  or ``LAZYKERNELS_JAX_FFI=ctypes`` is set (read at lowering time).

Both come back to JAX with our error message (NaN inputs...) as an FFI error.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from ..core.backends import resolve
from ..core.plan import ReductionPlan
from . import ffi_ctypes
from .ffi_native import TARGET, entry_key

_LOWER = jax.ffi.ffi_lowering(TARGET)


def native_requested() -> bool:
    """False when ``LAZYKERNELS_JAX_FFI=ctypes`` asks for the ctypes handler."""
    return os.environ.get("LAZYKERNELS_JAX_FFI", "").strip().lower() != "ctypes"


def lower_cpu(ctx: Any, *args: Any, plan: ReductionPlan, backend: str, ranges: Any) -> Any:
    """The MLIR lowering of ``reduce_p`` on CPU: a custom call to the native handler when it
    serves the call, else to the ctypes one."""
    if native_requested() and resolve(backend)[0] == "CPU":
        shapes = tuple(tuple(a.shape) for a in ctx.avals_in)
        dtypes = tuple(np.dtype(a.dtype) for a in ctx.avals_in)
        out_dtypes = tuple(np.dtype(a.dtype) for a in ctx.avals_out)
        key = entry_key(plan, shapes, dtypes, out_dtypes, ranges)
        if key is not None:
            return _LOWER(ctx, *args, key=np.int64(key))
    return ffi_ctypes.lower(ctx, *args, plan=plan, backend=backend, ranges=ranges)


__all__ = ["lower_cpu", "native_requested"]
