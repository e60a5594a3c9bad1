"""CUDA tensors and GPU backends: the torch side of the GPU runner.

CUDA tensors go through the core like CPU tensors (the torch array adapter,
:mod:`lazykernels.torch.arrays`, reports their device and stream) and run in place
(:mod:`lazykernels.cuda.resident`). :func:`run_cuda` is that path with the device and
block size given: tests pass the host emulation
(:class:`~lazykernels.cuda.emulation.EmulatedDevice`) with CPU tensors, which runs
everything here but the stream. :func:`gpu_arguments` moves CPU tensors to the GPU for a
GPU backend, as KeOps does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.arrays import Device, check_device_id
from ..core.backends import GPU_NAMES, canonical_backend, dispatch
from ..core.bind import bind_call
from ..core.plan import ReductionPlan
from ..cuda import resident
from ..cuda.runner import default_device, default_device_id, scheme_for
from ..errors import BackendError
from .arrays import TORCH


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
    call, _ = bind_call(plan, tensors, ranges, out, True, TORCH, float16=True)
    # (host tensors here run on the given device's memory: checked as CUDA ones)
    dispatch(backend, call.device if not call.device.is_host else Device("cuda", 0))
    check_device_id(device_id, call.device)
    name = canonical_backend(backend)  # "GPU" and "auto": the scheme chosen for the sizes
    scheme = scheme_for(name, math.prod(call.batch_shape) * call.n_out, call.n_red)
    resident.run(call, device, block, scheme)
    return call.outputs


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
        check_device_id(device_id, TORCH.device(on_gpu[0]))
        return list(args), None
    if type(device_id) is not int or device_id != -1:
        device_id = check_device_id(device_id)
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
