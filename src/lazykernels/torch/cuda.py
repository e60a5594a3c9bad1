"""CUDA tensors in place: the torch side of the GPU runner (:mod:`lazykernels.cuda.runner`).

The inputs stay where they are: their device pointers are passed to the kernel (a
non-contiguous input is made contiguous by torch, on its device), the outputs are allocated
by torch on the inputs' device, and the kernel runs on torch's current stream, so it is
ordered with the surrounding torch work. Only small tables (batch offsets, the ranges'
block table) are copied to the device, and the NaN check of the inputs reads one flag back.

``run_cuda`` takes the device to launch on: by default the GPU of the tensors, through
the driver; tests pass the host emulation (:class:`~lazykernels.cuda.emulation.EmulatedDevice`)
with CPU tensors, which runs everything here but the stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..codegen.cuda import BLOCK
from ..core.backends import GPU_NAMES, canonical_backend
from ..core.bind import layout_of, nan_error, orient_ranges
from ..core.plan import ReductionPlan
from ..cuda.runner import (
    default_device,
    default_device_id,
    kernel_source,
    launch_reduction,
    scheme_for,
)
from ..errors import ArgumentError, BackendError
from ..formula.ir import Cat
from ..reductions import SPECS

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def tensors_device(tensors: Sequence[torch.Tensor], plan: ReductionPlan) -> torch.device:
    """The one device of ``tensors``.

    Raises:
        BackendError: the inputs are on different devices (named in the message).
    """
    first = tensors[0]
    for k, t in enumerate(tensors[1:], 1):
        if t.device != first.device:
            raise BackendError(
                f"the inputs are on different devices: {plan.slots[0].describe()} is on "
                f"{first.device} but {plan.slots[k].describe()} is on {t.device}; move them "
                "to one device"
            )
    return first.device


def check_device_id(device: torch.device, device_id: int) -> None:
    """KeOps's rule: an explicit ``device_id`` must be the CUDA tensors' device.

    Raises:
        ArgumentError: it is not.
    """
    if device_id is not None and device_id >= 0 and device.index != device_id:
        raise ArgumentError(
            f"device_id={device_id}, but the inputs are on {device}; pass device_id=-1 or "
            "move the inputs"
        )


def _check_backend(backend: str, device: torch.device) -> None:
    name = canonical_backend(backend)
    if name == "auto" or name in GPU_NAMES:
        return
    raise BackendError(
        f"backend {name!r} runs on the CPU, but the inputs are CUDA tensors on {device}; "
        "move them with .cpu() or use backend='GPU'"
    )


def _check_nan(plan: ReductionPlan, tensors: Sequence[torch.Tensor]) -> None:
    if not tensors:
        return
    flags = torch.stack([t.isnan().any() for t in tensors])
    if bool(flags.any()):  # one flag read back for all inputs
        raise nan_error(plan.slots[int(flags.to(torch.int8).argmax())])


def _outputs(plan, layout, dtype, device, out) -> list[torch.Tensor]:
    spec = SPECS[plan.reduction]
    kinds = [torch.int64 if o.index else dtype for o in spec.outputs]
    shapes = [shape for shape, _ in layout.outputs]
    if out is None:
        return [torch.empty(s, dtype=k, device=device) for s, k in zip(shapes, kinds)]
    given = list(out) if isinstance(out, list | tuple) else [out]
    if len(given) != len(shapes):
        raise ArgumentError(
            f"out: {plan.reduction} returns {len(shapes)} tensor(s), got {len(given)}"
        )
    for o, shape, kind in zip(given, shapes, kinds):
        if not isinstance(o, torch.Tensor) or tuple(o.shape) != shape or o.dtype != kind:
            raise ArgumentError(f"out: expected a tensor of shape {shape} and dtype {kind}")
        if o.device != device or not o.is_contiguous():
            raise ArgumentError(f"out: the output must be a contiguous tensor on {device}")
    return given


def run_cuda(
    plan: ReductionPlan,
    tensors: Sequence[torch.Tensor],
    backend: str = "auto",
    ranges: tuple[np.ndarray, ...] | None = None,
    out: Any = None,
    device_id: int = -1,
    device: Any = None,
    block: int = 0,
) -> tuple[torch.Tensor, ...]:
    """Run ``plan`` on tensors of one CUDA device (or, with ``device``, on that device's
    memory), without autograd; returns the output tensors. ``block``: threads per block
    (0: the default).

    float16 tensors are read and written as half (float arithmetic, float accumulator).

    Raises:
        BackendError: inputs on different devices, a CPU backend name.
        ArgumentError, ShapeError, DtypeError: invalid inputs (see :mod:`lazykernels.core.bind`).
        CompatibilityError: no driver or GPU.
        FormulaError: a plan the CUDA kernel does not print yet.
    """
    tdev = tensors_device(tensors, plan) if tensors else torch.device("cpu")
    _check_backend(backend, tdev)
    check_device_id(tdev, device_id)
    shapes = [tuple(t.shape) for t in tensors]
    dtypes = [
        np.dtype(_NUMPY.get(t.dtype, np.float64)) if t.is_floating_point() else np.dtype(np.int64)
        for t in tensors
    ]
    layout = layout_of(plan, shapes, dtypes)
    dtype = tensors[0].dtype if tensors else torch.float64
    call_ranges = None
    n_out, n_red = (layout.ni, layout.nj) if plan.output_cat is Cat.I else (layout.nj, layout.ni)
    if ranges is not None:
        call_ranges = orient_ranges(ranges, plan.output_cat, n_out, n_red)
    elif layout.k_too_large:
        raise ArgumentError(
            f"{plan.reduction}: K = {plan.k} is larger than the number of reduction "
            f"indices ({n_red})"
        )
    _check_nan(plan, tensors)
    outputs = _outputs(plan, layout, dtype, tdev, out)
    if n_out == 0 or math.prod(layout.batch_shape) == 0:
        return tuple(outputs)
    if device is None:
        device = default_device(
            tdev.index if tdev.index is not None else torch.cuda.current_device()
        )
    inputs = [t.detach().contiguous() for t in tensors]
    scheme = scheme_for(canonical_backend(backend), math.prod(layout.batch_shape) * n_out, n_red)
    ks = kernel_source(plan, _NUMPY[dtype], block or BLOCK, scheme)
    keep: list[torch.Tensor] = []

    def upload(table: np.ndarray) -> int:
        keep.append(torch.from_numpy(table).to(tdev))
        return keep[-1].data_ptr()

    stream = torch.cuda.current_stream(tdev).cuda_stream if tdev.type == "cuda" else 0
    launch_reduction(
        device,
        ks,
        [tuple(t.shape) for t in inputs],
        layout.batch_shape,
        n_out,
        n_red,
        [t.data_ptr() for t in inputs],
        [o.data_ptr() for o in outputs],
        call_ranges,
        upload,
        stream,
    )
    return tuple(outputs)


def gpu_arguments(
    args: Sequence[Any], backend: str, device_id: int
) -> tuple[list[Any], torch.device | None]:
    """``Genred``'s ``device_id`` and GPU backends for torch inputs (KeOps's rules).

    CUDA inputs stay where they are (an explicit ``device_id`` must be theirs); CPU inputs
    with a GPU backend are moved to ``cuda:<device_id>`` (-1: ``default_device_id``) by
    torch (so autograd flows back through the copy), and the results come back to the CPU.

    Returns:
        The arguments to reduce over, and the device to move the results back to (or None).

    Raises:
        ArgumentError: ``device_id`` is not the CUDA inputs' device.
    """
    on_gpu = [a for a in args if isinstance(a, torch.Tensor) and a.is_cuda]
    if on_gpu:
        check_device_id(on_gpu[0].device, device_id)
        return list(args), None
    if not isinstance(backend, str) or canonical_backend(backend) not in GPU_NAMES:
        return list(args), None
    target = torch.device("cuda", default_device_id() if device_id < 0 else device_id)
    if not torch.cuda.is_available():
        default_device(target.index)  # raises CompatibilityError: no driver or no GPU
        raise BackendError(
            f"backend {backend!r} with CPU tensors: this torch build has no CUDA support to "
            "move them to the GPU; pass CUDA tensors or NumPy arrays"
        )
    moved = [a.to(target) if isinstance(a, torch.Tensor) else a for a in args]
    return moved, torch.device("cpu")
