"""The GPU runner: from a validated call to a kernel launch on a :class:`~.device.Device`.

Array-library neutral: :func:`launch_reduction` takes the device addresses of contiguous
inputs and outputs and decides everything else — the kernel (printed once per plan and
dtype by :func:`lazykernels.codegen.cuda.render_cuda`), the grid (``n_batch x n_tab``
blocks), the per-batch-entry input offsets, the block table of the ranges — and launches
through the device interface. Two callers:

* :func:`run` behind ``backend="GPU"`` for NumPy arrays (a
  :class:`~lazykernels.core.plan.BoundCall`): inputs copied to the device, outputs copied
  back into the call's arrays;
* the torch adapter (:mod:`lazykernels.torch.cuda`) for CUDA tensors, used in place.

Both run unchanged on the host emulation (:class:`~.emulation.EmulatedDevice`), which is
how the CPU-only CI tests this module.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..codegen.cuda import BLOCK, CudaSource, render_cuda
from ..core.plan import BoundCall, Ranges, ReductionPlan
from ..errors import ArgumentError, BackendError
from .device import MAX_GRID, Device

Upload = Callable[[np.ndarray], int]  # a host int64 table -> its device address (kept alive)

MAX_STATIC_SHARED = 48 * 1024
"""The most static shared memory a CUDA block may declare."""
_SOURCES: dict[tuple[ReductionPlan, str, int], CudaSource] = {}
_SOURCES_LOCK = threading.Lock()


def kernel_source(plan: ReductionPlan, dtype: np.dtype | str, block: int = BLOCK) -> CudaSource:
    """The CUDA kernel of ``plan`` for ``dtype`` (printed once per process).

    Raises:
        FormulaError: the CUDA kernel cannot print this plan yet.
    """
    key = (plan, np.dtype(dtype).name, block)
    hit = _SOURCES.get(key)
    if hit is None:
        hit = render_cuda(plan, dtype, block)
        if hit.shared_bytes > MAX_STATIC_SHARED:  # many staged values: fewer per tile
            per_index = hit.shared_bytes // hit.block
            hit = render_cuda(plan, dtype, max(32, MAX_STATIC_SHARED // per_index // 32 * 32))
        with _SOURCES_LOCK:
            if len(_SOURCES) > 1024:
                _SOURCES.clear()
            _SOURCES[key] = hit
    return hit


def block_table(ranges: Ranges, n_out: int, block: int) -> np.ndarray:
    """The ranges as row blocks: ``(r0, r1, s0, s1)`` per block of at most ``block`` rows
    (see :mod:`lazykernels.codegen.cuda`); rows outside every range get blocks without
    intervals (the empty reduction's value).

    Raises:
        ArgumentError: two output ranges overlap (each row must be written by one block).
    """
    starts = ranges.ranges_out[:, 0]
    order = np.argsort(starts, kind="stable")
    rows: list[tuple[int, int, int, int]] = []
    done = 0

    def cover(a: int, e: int, s0: int, s1: int) -> None:
        rows.extend((r, min(e, r + block), s0, s1) for r in range(a, e, block))

    for c in order.tolist():
        a, e = (int(v) for v in ranges.ranges_out[c])
        if a == e:
            continue
        if a < done:
            raise ArgumentError(
                "ranges: the GPU backend needs disjoint output ranges; range "
                f"[{a}, {e}) overlaps an earlier one (ending at {done})"
            )
        cover(done, a, 0, 0)
        s0 = int(ranges.slices[c - 1]) if c > 0 else 0
        cover(a, e, s0, int(ranges.slices[c]))
        done = e
    cover(done, n_out, 0, 0)
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def batch_offsets(shapes: Sequence[tuple[int, ...]], batch_shape: tuple[int, ...]) -> np.ndarray:
    """``offsets[p * n_batch + b]``: the element offset of batch entry ``b`` of the
    C-contiguous input ``p`` of shape ``shapes[p]`` (0 along its broadcast dimensions)."""
    n_batch = math.prod(batch_shape)
    parts = []
    for shape in shapes:
        off = np.zeros(batch_shape, dtype=np.int64)
        step = math.prod(shape[len(batch_shape) :])
        for k in reversed(range(len(batch_shape))):
            if shape[k] != 1:
                index = [1] * len(batch_shape)
                index[k] = batch_shape[k]
                off += (np.arange(batch_shape[k], dtype=np.int64) * step).reshape(index)
            step *= shape[k]
        parts.append(off.reshape(n_batch))
    return np.concatenate(parts) if parts else np.zeros(1, dtype=np.int64)


def launch_reduction(
    device: Device,
    ks: CudaSource,
    shapes: Sequence[tuple[int, ...]],
    batch_shape: tuple[int, ...],
    n_out: int,
    n_red: int,
    inputs: Sequence[int],
    outputs: Sequence[int],
    ranges: Ranges | None,
    upload: Upload,
    stream: int = 0,
) -> None:
    """Launch the kernel ``ks`` on ``device``.

    Args:
        device: where to run.
        ks: the kernel (:func:`kernel_source`).
        shapes: the inputs' shapes (C-contiguous, batch dimensions spelled out).
        batch_shape: the broadcast batch shape.
        n_out, n_red: the sizes of the output and reduction axes.
        inputs, outputs: device addresses of the inputs and of the outputs
            (``batch_shape + (n_out, width)``, C-contiguous).
        ranges: the call's ranges, oriented for the reduction.
        upload: copies a small int64 table to the device and returns its address (the
            caller keeps it alive until the launch has run).
        stream: the stream to launch on.

    Raises:
        ArgumentError: overlapping output ranges; BackendError: a grid too large.
    """
    n_batch = math.prod(batch_shape)
    if n_out == 0 or n_batch == 0:
        return
    offsets = 0
    if n_batch > 1:
        offsets = upload(batch_offsets(shapes, batch_shape))
    tab = redranges = 0
    if ranges is None:
        n_tab = -(-n_out // ks.block)
    else:
        table = block_table(ranges, n_out, ks.block)
        n_tab = len(table)
        tab = upload(table)
        if len(ranges.redranges):
            redranges = upload(np.ascontiguousarray(ranges.redranges, dtype=np.int64))
        else:
            redranges = upload(np.zeros((1, 2), dtype=np.int64))
    grid = n_batch * n_tab
    if grid > MAX_GRID:
        raise BackendError(
            f"the GPU launch needs {grid} blocks, more than a CUDA grid holds ({MAX_GRID})"
        )
    params = [n_out, n_red, n_batch, n_tab, *outputs, *inputs, offsets, tab, redranges]
    device.launch(device.function(ks), grid, ks, params, stream)


def default_device(device_id: int) -> Device:
    """The GPU ``device_id`` (-1: ``lazykernels.default_device_id``), through the driver.

    Raises:
        CompatibilityError: no driver, no GPU, or no GPU of that index.
    """
    from .driver import device  # the driver loads on first use

    return device(default_device_id() if device_id < 0 else device_id)


def default_device_id() -> int:
    """KeOps's ``default_device_id`` as set on the package (``lazykernels.default_device_id
    = 1``, as ``pykeops.default_device_id``); read by name, the package being above here."""
    return int(getattr(sys.modules.get("lazykernels"), "default_device_id", 0))


def run(call: BoundCall, device: Device | None = None, block: int = BLOCK) -> None:
    """``backend="GPU"`` for host arrays: copy the inputs to the device, launch, copy the
    outputs back into ``call.outputs``. ``device``: the GPU of ``call.device_id`` by
    default; ``block``: threads per block.

    Raises:
        CompatibilityError: no driver or GPU; FormulaError: a plan the CUDA kernel does
            not print yet; ArgumentError: overlapping output ranges.
    """
    if device is None:
        device = default_device(getattr(call, "device_id", -1))
    ks = kernel_source(call.plan, call.dtype, block)
    arrays = [np.ascontiguousarray(a, dtype=call.dtype) for a in call.arrays]
    keep: list[Any] = [device.upload(a, 0) for a in arrays]
    inputs = [b.ptr for b in keep]
    targets = [device.alloc(o.nbytes) for o in call.outputs]

    def upload(table: np.ndarray) -> int:
        buffer = device.upload(table, 0)
        keep.append(buffer)
        return buffer.ptr

    launch_reduction(
        device,
        ks,
        [a.shape for a in arrays],
        call.batch_shape,
        call.n_out,
        call.n_red,
        inputs,
        [t.ptr for t in targets],
        call.ranges,
        upload,
    )
    for target, out in zip(targets, call.outputs):
        device.download(target, out, 0)
