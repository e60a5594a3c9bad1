"""The JAX array adapter (:mod:`lazykernels.core.arrays`): JAX arrays and abstract values.

XLA owns the buffers of JAX arrays: under ``jit`` the compiled kernel reads them through
the XLA FFI custom call (:mod:`lazykernels.jax.ffi`), never through the core. What goes
through the core's interface is the binding: the shape and dtype checks of abstract
evaluation (:func:`lazykernels.core.bind.layout_for` on ``ShapedArray`` / tracers) and the
eager host runs (the reference backend, ``pure_callback``), whose inputs the adapter hands
over as NumPy arrays (views of host buffers where JAX allows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ..core.arrays import HOST, Device, NumpyAdapter
from ..reductions.plan import ArgSlot

__all__ = ["JAX", "JaxAdapter"]


class JaxAdapter(NumpyAdapter):
    """JAX arrays, and the abstract values of tracing (shape and dtype only)."""

    name = "jax"
    noun = "a JAX array"

    def coerce(
        self, args: Sequence[Any], slots: Sequence[ArgSlot]
    ) -> tuple[list, Device, tuple[Any, ...]]:
        arrays = [np.asarray(a) for a in args]  # host buffers: read-only views, no copy
        return arrays, HOST, tuple([(a.shape, a.dtype) for a in arrays])

    def owns(self, value: Any) -> bool:
        return isinstance(value, jax.Array | np.ndarray)

    def shape(self, array: Any) -> tuple[int, ...]:
        return tuple(array.shape)

    def dtype(self, array: Any) -> np.dtype:
        return np.dtype(array.dtype)


JAX = JaxAdapter()
"""The JAX adapter."""
