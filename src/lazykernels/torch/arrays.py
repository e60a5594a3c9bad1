"""The torch array adapter (:mod:`lazykernels.core.arrays`): CPU and CUDA tensors.

Tensors reach the backends by data pointer, shape and strides: CPU tensors are read in
place by the compiled CPU backend without a ``.numpy()`` view (the reference backend and
the copies of non-contiguous inputs get NumPy views built from the pointer), CUDA tensors
by the GPU runner on torch's current stream. Outputs are allocated on the inputs' device.
Tensors on any other device raise; nothing is copied between devices behind the user's
back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..core.arrays import HOST, ArrayAdapter, Device, host_view
from ..errors import ArgumentError, BackendError
from ..reductions.plan import ArgSlot

__all__ = ["TORCH", "TorchAdapter", "check_device"]

# torch dtype -> NumPy dtype (what the binding checks); the others stay torch's (bfloat16...)
_TO_NUMPY = {
    t: np.dtype(n)
    for t, n in (
        (torch.float16, np.float16),
        (torch.float32, np.float32),
        (torch.float64, np.float64),
        (torch.complex64, np.complex64),
        (torch.complex128, np.complex128),
        (torch.int8, np.int8),
        (torch.int16, np.int16),
        (torch.int32, np.int32),
        (torch.int64, np.int64),
        (torch.uint8, np.uint8),
        (torch.bool, np.bool_),
    )
}
_FROM_NUMPY = {n: t for t, n in _TO_NUMPY.items()}
_CPU = torch.device("cpu")


def check_device(tensor: torch.Tensor, what: str) -> None:
    """Raise unless ``tensor`` lives in CPU or CUDA memory.

    Raises:
        BackendError: a tensor on another device (``meta``, ``mps``...).
    """
    if tensor.device.type not in ("cpu", "cuda"):
        raise BackendError(
            f"{what} is on device {tensor.device}; only CPU and CUDA tensors are supported"
        )


def _name(slots: Sequence[ArgSlot], k: int) -> str:
    return slots[k].describe() if k < len(slots) else f"argument #{k}"


class TorchAdapter(ArrayAdapter):
    """torch tensors in CPU or CUDA memory."""

    name = "torch"
    noun = "a torch.Tensor"

    def owns(self, value: Any) -> bool:
        return isinstance(value, torch.Tensor)

    def coerce(
        self, args: Sequence[Any], slots: Sequence[ArgSlot]
    ) -> tuple[list, Device, tuple[Any, ...]]:
        tensors = list(args)
        for k, t in enumerate(tensors):
            # (is_cpu is cheaper than device.type; is_neg: a lazy negation, e.g. the
            # imaginary part of a conjugate, is not in memory as it reads)
            if type(t) is not torch.Tensor and not isinstance(t, torch.Tensor):
                raise ArgumentError(
                    f"{_name(slots, k)}: expected a torch.Tensor, got {type(t).__name__}"
                )
            if not t.is_cpu:
                device = self._one_device(tensors, slots)
                return tensors, device, self.signature(tensors)
            if t.is_neg():
                tensors[k] = t.resolve_neg()
        return tensors, HOST, tuple([(t.shape, t.dtype) for t in tensors])

    def _one_device(self, tensors: Sequence[torch.Tensor], slots: Sequence[ArgSlot]) -> Device:
        """The one device of ``tensors`` (at least one is not on the CPU)."""
        check_device(tensors[0], _name(slots, 0))
        first = tensors[0].device
        for k, t in enumerate(tensors[1:], 1):
            if not isinstance(t, torch.Tensor):
                raise ArgumentError(
                    f"{_name(slots, k)}: expected a torch.Tensor, got {type(t).__name__}"
                )
            if t.device != first:
                raise BackendError(
                    f"the inputs are on different devices: {_name(slots, 0)} is on {first} "
                    f"but {_name(slots, k)} is on {t.device}; move them to one device"
                )
        return self.device(tensors[0])

    def signature(self, arrays: Sequence[torch.Tensor]) -> tuple[Any, ...]:
        return tuple([(t.shape, t.dtype) for t in arrays])

    def layout_key(self, args: Sequence[Any]) -> tuple[Any, ...] | None:
        for t in args:
            if type(t) is not torch.Tensor or not t.is_cpu or t.is_neg():
                return None
        return tuple([(t.shape, t.dtype, t.stride()) for t in args])

    def shape(self, array: torch.Tensor) -> tuple[int, ...]:
        return tuple(array.shape)

    def dtype(self, array: torch.Tensor) -> Any:
        return _TO_NUMPY.get(array.dtype, array.dtype)

    def strides(self, array: torch.Tensor) -> tuple[int, ...]:
        return array.stride()

    def sizes(self, arrays: Sequence[torch.Tensor]) -> list[int]:
        return [t.numel() for t in arrays]

    def contiguous(self, arrays: Sequence[torch.Tensor]) -> list[bool]:
        return [t.is_contiguous() for t in arrays]

    def pointers(self, arrays: Sequence[torch.Tensor]) -> list[int]:
        return [t.data_ptr() for t in arrays]

    def device(self, array: torch.Tensor) -> Device:
        d = array.device
        if d.type == "cpu":
            return HOST
        index = d.index if d.index is not None else torch.cuda.current_device()
        return Device(d.type, index, self.stream(Device(d.type, index)))

    def stream(self, device: Device) -> int:
        if device.kind != "cuda":
            return 0
        return torch.cuda.current_stream(torch.device("cuda", device.index)).cuda_stream

    def first_nan(self, arrays: Sequence[torch.Tensor]) -> int:
        if not arrays:
            return -1
        flags = torch.stack([t.detach().isnan().any() for t in arrays])
        if not bool(flags.any()):  # one flag read back (from a GPU) for all inputs
            return -1
        return int(flags.to(torch.int8).argmax())

    def empty(self, shape: tuple[int, ...], dtype: np.dtype, device: Device) -> torch.Tensor:
        if device.is_host:  # (NumPy allocates ~3x faster than torch.empty on the CPU)
            return _from_numpy(np.empty(shape, dtype=dtype))
        return torch.empty(shape, dtype=_FROM_NUMPY[dtype], device=_torch_device(device))

    def astype(self, array: torch.Tensor, dtype: np.dtype) -> torch.Tensor:
        return array.detach().to(_FROM_NUMPY[np.dtype(dtype)])

    def contiguous_copy(self, array: torch.Tensor) -> torch.Tensor:
        return array.detach().contiguous()

    def usable_out(self, array: torch.Tensor) -> bool:
        return array.is_contiguous()

    def to_host(self, array: torch.Tensor) -> np.ndarray:
        if not array.is_cpu:
            array = array.detach().cpu()
        dtype = _TO_NUMPY.get(array.dtype)
        if dtype is None:
            raise ArgumentError(f"dtype {array.dtype} has no NumPy equivalent")
        return host_view(array.data_ptr(), tuple(array.shape), array.stride(), dtype, array)

    def from_host(self, array: np.ndarray, device: Device) -> torch.Tensor:
        tensor = _from_numpy(np.ascontiguousarray(array))
        return tensor if device.is_host else tensor.to(_torch_device(device))

    def copy_into(self, target: torch.Tensor, source: torch.Tensor) -> None:
        with torch.no_grad():
            target.copy_(source)


_from_numpy: Callable[[np.ndarray], torch.Tensor] = torch.from_numpy


def _torch_device(device: Device) -> torch.device:
    return _CPU if device.is_host else torch.device(device.kind, device.index)


TORCH = TorchAdapter()
"""The torch adapter."""
