"""Array adapters: the one place where an array library plugs into the core.

Design. The core never touches an array itself: binding (:mod:`.bind`), validation, output
allocation and dispatch (:mod:`.genred`, :mod:`.backends`) ask the call's
:class:`ArrayAdapter`, and the :class:`~lazykernels.core.plan.BoundCall` they build carries
the adapter, the arrays as the library holds them and their :class:`Device` (kind, index
and, for a GPU, the stream to run on). A backend then asks the same adapter for what it
needs — data pointers, shapes, element strides, contiguity, NumPy views of host memory —
so that it receives pointers, shapes and a device, whatever the library:

================  ===========================================================================
question          what the adapter answers
================  ===========================================================================
membership        :meth:`~ArrayAdapter.coerce`: the call's arrays as the library's
                  arrays (or an :class:`~lazykernels.errors.ArgumentError` naming the
                  argument), their one :class:`Device` (a
                  :class:`~lazykernels.errors.BackendError` names two arguments on
                  different devices) and their signature
dtype, shape      :meth:`~ArrayAdapter.dtype` (the NumPy spelling of the element type; a
                  type NumPy lacks stays the library's, for the error message),
                  :meth:`~ArrayAdapter.shape`, :meth:`~ArrayAdapter.signature` (the
                  hashable (shape, dtype) of every array: the key of the binding's cache)
layout            :meth:`~ArrayAdapter.strides` (in elements), :meth:`~ArrayAdapter.contiguous`
                  (C order), :meth:`~ArrayAdapter.sizes` (the batched ones take a list:
                  one call per question on the warm path)
memory            :meth:`~ArrayAdapter.pointers` (the address of each first element),
                  :meth:`~ArrayAdapter.device` and :meth:`~ArrayAdapter.stream`
allocation        :meth:`~ArrayAdapter.empty` (like an input, on its device),
                  :meth:`~ArrayAdapter.astype`, :meth:`~ArrayAdapter.contiguous_copy`,
                  :meth:`~ArrayAdapter.usable_out` (whether a given ``out=`` can be written)
copies            :meth:`~ArrayAdapter.to_host` (a NumPy *view* of host memory, a copy of
                  device memory), :meth:`~ArrayAdapter.from_host`
values            :meth:`~ArrayAdapter.first_nan` (the first array holding a NaN; one
                  reduction each, one value read back from a GPU for all of them)
================  ===========================================================================

Implementations: :data:`NUMPY` here; torch (CPU and CUDA tensors, without a ``.numpy()``
detour: host tensors reach the CPU backend by pointer) in :mod:`lazykernels.torch.arrays`;
JAX's arrays and abstract values in :mod:`lazykernels.jax.arrays` (XLA owns their buffers:
through it go the binding's shape and dtype checks). A front end hands its adapter to
:func:`lazykernels.core.genred.run_plan` / :func:`lazykernels.core.bind.bind_call`; the core
imports no array library but NumPy (CONTRIBUTING.md, "Layers"). A Dask, CuPy or JAX-GPU
front end plugs in the same way: one adapter, nothing else in the core or the backends.

Also here: :func:`check_device_id`, the one validator of KeOps's ``device_id`` (an int >= -1)
for every front end.
"""

from __future__ import annotations

import ctypes
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError
from ..reductions.plan import HOST, ArgSlot, Device

__all__ = [
    "HOST",
    "NUMPY",
    "ArrayAdapter",
    "Device",
    "NumpyAdapter",
    "check_device_id",
    "has_nan",
    "host_view",
]


class ArrayAdapter:
    """What the core and the backends ask of an array library (see the module docstring).

    Subclasses implement every method; ``noun`` names the library's arrays in messages.
    """

    name = "abstract"
    noun = "an array"

    def owns(self, value: Any) -> bool:
        """Whether ``value`` is one of the library's arrays."""
        raise NotImplementedError

    def coerce(
        self, args: Sequence[Any], slots: Sequence[ArgSlot]
    ) -> tuple[list, Device, tuple[Any, ...]]:
        """The call's inputs as the library's arrays, their one device, and their
        :meth:`signature` (one call: this is the warm path).

        Raises:
            ArgumentError: an input is not the library's array; BackendError: inputs on
                different devices, or on a device no backend serves.
        """
        raise NotImplementedError

    def signature(self, arrays: Sequence[Any]) -> tuple[Any, ...]:
        """A hashable ``(shape, dtype)`` per array (the library's own spellings will do)."""
        raise NotImplementedError

    def layout_key(self, args: Sequence[Any]) -> tuple[Any, ...] | None:
        """A hashable key of the exact layout of ``args`` in host memory (shape, dtype and
        strides of each), or None when some argument is not one of the library's plain
        arrays on the host (then no prepared call serves it: :mod:`.prepared`)."""
        return None

    def shape(self, array: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def dtype(self, array: Any) -> Any:
        """The element type as a NumPy dtype (the library's object when NumPy has none)."""
        raise NotImplementedError

    def strides(self, array: Any) -> tuple[int, ...]:
        """Strides in elements."""
        raise NotImplementedError

    def sizes(self, arrays: Sequence[Any]) -> list[int]:
        """The number of elements of each array."""
        return [math.prod(self.shape(a)) for a in arrays]

    def contiguous(self, arrays: Sequence[Any]) -> list[bool]:
        """Whether each array is C-contiguous."""
        raise NotImplementedError

    def pointers(self, arrays: Sequence[Any]) -> list[int]:
        """The address of each array's first element (the caller keeps them alive)."""
        raise NotImplementedError

    def device(self, array: Any) -> Device:
        raise NotImplementedError

    def stream(self, device: Device) -> int:
        """The stream a kernel on ``device`` runs on (0: the default; the host: 0)."""
        return 0

    def first_nan(self, arrays: Sequence[Any]) -> int:
        """The index of the first of ``arrays`` holding a NaN, or -1."""
        raise NotImplementedError

    def empty(self, shape: tuple[int, ...], dtype: np.dtype, device: Device) -> Any:
        """A new C-contiguous array on ``device``."""
        raise NotImplementedError

    def astype(self, array: Any, dtype: np.dtype) -> Any:
        """``array`` converted to ``dtype`` (on its device)."""
        raise NotImplementedError

    def contiguous_copy(self, array: Any) -> Any:
        """``array`` itself when C-contiguous, else a C-contiguous copy on its device."""
        raise NotImplementedError

    def usable_out(self, array: Any) -> bool:
        """Whether a given ``out=`` array can be written in place (contiguous, writeable)."""
        raise NotImplementedError

    def to_host(self, array: Any) -> np.ndarray:
        """A NumPy view of host memory (no copy), a NumPy copy of device memory."""
        raise NotImplementedError

    def from_host(self, array: np.ndarray, device: Device) -> Any:
        """The NumPy ``array`` as the library's array on ``device`` (copied to a GPU)."""
        raise NotImplementedError

    def copy_into(self, target: Any, source: Any) -> None:
        """Write ``source`` (same shape) into ``target``."""
        target[...] = source


class NumpyAdapter(ArrayAdapter):
    """NumPy arrays (and whatever ``np.asarray`` accepts: lists, scalars), host memory."""

    name = "numpy"
    noun = "a NumPy array"

    def owns(self, value: Any) -> bool:
        return isinstance(value, np.ndarray)

    def coerce(
        self, args: Sequence[Any], slots: Sequence[ArgSlot]
    ) -> tuple[list, Device, tuple[Any, ...]]:
        arrays = [np.asarray(a) for a in args]
        return arrays, HOST, tuple([(a.shape, a.dtype) for a in arrays])

    def signature(self, arrays: Sequence[np.ndarray]) -> tuple[Any, ...]:
        return tuple([(a.shape, a.dtype) for a in arrays])

    def layout_key(self, args: Sequence[Any]) -> tuple[Any, ...] | None:
        for a in args:
            if type(a) is not np.ndarray:
                return None
        return tuple([(a.shape, a.dtype, a.strides) for a in args])

    def shape(self, array: np.ndarray) -> tuple[int, ...]:
        return array.shape

    def dtype(self, array: np.ndarray) -> np.dtype:
        return array.dtype

    def strides(self, array: np.ndarray) -> tuple[int, ...]:
        item = array.itemsize
        return tuple(s // item for s in array.strides)

    def sizes(self, arrays: Sequence[np.ndarray]) -> list[int]:
        return [a.size for a in arrays]

    def contiguous(self, arrays: Sequence[np.ndarray]) -> list[bool]:
        return [a.flags.c_contiguous for a in arrays]

    def pointers(self, arrays: Sequence[np.ndarray]) -> list[int]:
        # ctypes.c_char.from_buffer is ~3x cheaper than array.ctypes.data (which builds a
        # helper object per call); it needs writable, C-contiguous, non-empty buffers
        try:
            return [_addressof(_from_buffer(a)) for a in arrays]
        except (TypeError, ValueError, BufferError):
            return [_address(a) for a in arrays]

    def device(self, array: np.ndarray) -> Device:
        return HOST

    def first_nan(self, arrays: Sequence[np.ndarray]) -> int:
        for k, array in enumerate(arrays):
            if has_nan(array):
                return k
        return -1

    def empty(self, shape: tuple[int, ...], dtype: np.dtype, device: Device) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def astype(self, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return array.astype(dtype)

    def contiguous_copy(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array)

    def usable_out(self, array: np.ndarray) -> bool:
        return array.flags.c_contiguous and array.flags.writeable

    def to_host(self, array: np.ndarray) -> np.ndarray:
        return array

    def from_host(self, array: np.ndarray, device: Device) -> np.ndarray:
        return array


NUMPY = NumpyAdapter()
"""The NumPy adapter (the core's default)."""

_CHAR = ctypes.c_char
_from_buffer = _CHAR.from_buffer
_addressof = ctypes.addressof


def _address(array: np.ndarray) -> int:
    try:
        return _addressof(_from_buffer(array))
    except (TypeError, ValueError, BufferError):  # read-only, non-contiguous or empty
        return array.ctypes.data


def has_nan(array: np.ndarray) -> bool:
    """Whether a floating ``array`` holds a NaN (one reduction, no temporary array).

    ``np.minimum`` propagates NaN (documented), so the minimum is NaN exactly when some
    element is.
    """
    return array.size > 0 and _isnan(_minimum(array, axis=None))


_minimum = np.minimum.reduce
_isnan = math.isnan


class _HostMemory:
    """Host memory described by the array interface; holds the array that owns it."""

    __slots__ = ("__array_interface__", "owner")


def host_view(
    pointer: int, shape: tuple[int, ...], strides: tuple[int, ...], dtype: np.dtype, owner: Any
) -> np.ndarray:
    """A NumPy array over the host memory at ``pointer`` (element ``strides``), no copy;
    ``owner`` (the library's array) stays alive as long as the view."""
    dtype = np.dtype(dtype)
    if math.prod(shape) == 0:
        return np.empty(shape, dtype=dtype)
    memory = _HostMemory()
    memory.__array_interface__ = {
        "data": (pointer, False),
        "shape": tuple(shape),
        "strides": tuple(s * dtype.itemsize for s in strides),
        "typestr": dtype.str,
        "version": 3,
    }
    memory.owner = owner
    return np.asarray(memory)


def check_device_id(device_id: Any, device: Device = HOST) -> int:
    """KeOps's ``device_id``: -1 (the default GPU) or a GPU index >= 0; for arrays already
    on a GPU (``device``), an explicit index must be theirs.

    Raises:
        ArgumentError: not an integer (``True``, ``1.5``, ``"0"``), below -1, or another
            GPU than the arrays'.

    Example:
        >>> check_device_id(-1), check_device_id(np.int64(2))
        (-1, 2)
    """
    if isinstance(device_id, bool) or not isinstance(device_id, numbers.Integral):
        raise ArgumentError(
            f"device_id must be an integer (-1: the default GPU), got {device_id!r}"
        )
    if device_id < -1:
        raise ArgumentError(f"device_id must be -1 or a GPU index >= 0, got {device_id}")
    if device_id >= 0 and not device.is_host and device.index != device_id:
        raise ArgumentError(
            f"device_id={device_id}, but the inputs are on {device}; pass device_id=-1 or "
            "move the inputs"
        )
    return int(device_id)
