"""Arrays in GPU memory, used in place: ``backend="GPU"`` for a call whose arrays live on
a CUDA device (torch CUDA tensors today; any library whose array adapter reports a CUDA
device, :mod:`lazykernels.core.arrays`).

The inputs stay where they are: their device pointers are passed to the kernel (a
non-contiguous input is made contiguous by its library, on its device), the outputs were
allocated by the binding on the inputs' device, and the kernel runs on the call's stream
(``call.device.stream``, the library's current one), so it is ordered with the surrounding
work. Only small tables (batch offsets, the ranges' block table) are copied to the device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..codegen.cuda import BLOCK
from ..core.arrays import NUMPY
from ..core.plan import BoundCall
from .device import Device
from .runner import call_scheme, default_device, kernel_source, launch_reduction


def run(
    call: BoundCall,
    device: Device | None = None,
    block: int = 0,
    scheme: str = "auto",
    chunk: int | None = None,
) -> None:
    """Fill ``call.outputs`` (in GPU memory, like ``call.arrays``) on the GPU.

    ``device``: the GPU of the call's arrays by default (tests pass the host emulation
    with arrays in host memory); ``block``: threads per block (0: the default);
    ``scheme``: ``"1D"``, ``"2D"`` or ``"auto"`` (:func:`~.codegen.target_cuda.choose_scheme`);
    ``chunk``: see :func:`~.runner.launch_reduction`.

    Raises:
        CompatibilityError: no driver or GPU; FormulaError: a plan the CUDA kernel does
            not print yet; ArgumentError: overlapping output ranges.
    """
    if call.n_out == 0 or math.prod(call.batch_shape) == 0:
        return
    adapter = call.adapter or NUMPY
    where = call.device
    if device is None:
        device = default_device(where.index)
    inputs = [adapter.contiguous_copy(a) for a in call.arrays]
    ks = kernel_source(call.plan, call.dtype, block or BLOCK, call_scheme(call, scheme))
    keep: list[Any] = []

    def upload(table: np.ndarray) -> int:
        keep.append(adapter.from_host(table, where))
        return adapter.pointers(keep[-1:])[0]

    launch_reduction(
        device,
        ks,
        [tuple(adapter.shape(a)) for a in inputs],
        call.batch_shape,
        call.n_out,
        call.n_red,
        adapter.pointers(inputs),
        adapter.pointers(call.outputs),
        call.ranges,
        upload,
        where.stream,
        chunk,
    )
