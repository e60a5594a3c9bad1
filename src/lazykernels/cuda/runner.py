"""The GPU runner: from a validated call to a kernel launch on a :class:`~.device.Device`.

Array-library neutral: :func:`launch_reduction` takes the device addresses of contiguous
inputs and outputs and decides everything else — the kernel (printed once per plan,
dtype and scheme by :func:`lazykernels.codegen.cuda.render_cuda`), the grid (``n_batch x
n_tab`` blocks; the 2D scheme: ``x n_split`` column blocks, then its merge pass), the
per-batch-entry input offsets, the block table of the ranges (overlapping output ranges
included), the 2D scheme's scratch arrays — and launches through the device interface. Two callers:

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
from ..codegen.target_cuda import CUDA, choose_scheme, column_chunk
from ..core.plan import BoundCall, Ranges, ReductionPlan
from ..errors import ArgumentError, BackendError
from .device import MAX_GRID, Device

Upload = Callable[[np.ndarray], int]  # a host int64 table -> its device address (kept alive)

MAX_STATIC_SHARED = CUDA.shared_budget
"""The most static shared memory a CUDA block may declare."""
_SOURCES: dict[tuple[ReductionPlan, str, int, str], CudaSource] = {}
_SOURCES_LOCK = threading.Lock()


def kernel_source(
    plan: ReductionPlan, dtype: np.dtype | str, block: int = BLOCK, scheme: str = "1D"
) -> CudaSource:
    """The CUDA kernel of ``plan`` for ``dtype`` in ``scheme`` (printed once per process).

    When the values staged per tile do not fit :attr:`~.CudaTarget.shared_budget`, the
    tile (the block) shrinks, down to :attr:`~.CudaTarget.min_tile`; below that the kernel
    reads the looped vectors from global memory (:func:`~.codegen.cuda.render_cuda`).

    Raises:
        FormulaError: the CUDA kernel cannot print this plan.
    """
    key = (plan, np.dtype(dtype).name, block, scheme)
    hit = _SOURCES.get(key)
    if hit is None:
        hit = render_cuda(plan, dtype, block, scheme)
        if hit.shared_bytes > CUDA.shared_budget:  # many staged values: fewer per tile
            per_index = hit.shared_bytes // hit.block
            fit = max(CUDA.min_tile, CUDA.shared_budget // per_index // 32 * 32)
            hit = render_cuda(plan, dtype, fit, scheme)
        with _SOURCES_LOCK:
            if len(_SOURCES) > 1024:
                _SOURCES.clear()
            _SOURCES[key] = hit
    return hit


def scheme_for(backend: str, n_rows: int, n_red: int) -> str:
    """The CUDA scheme of a call: ``"GPU_1D*"`` -> 1D, ``"GPU_2D*"`` -> 2D, ``"GPU"`` (and
    ``"auto"`` for CUDA tensors) -> :func:`~.codegen.target_cuda.choose_scheme` of its
    ``n_rows`` output rows (all batch entries) and ``n_red`` reduction indices."""
    name = backend.upper()
    if name.startswith("GPU_1D"):
        return "1D"
    if name.startswith("GPU_2D"):
        return "2D"
    return choose_scheme(n_rows, n_red)


def call_scheme(call: BoundCall, scheme: str) -> str:
    """``scheme`` (``"1D"``, ``"2D"``), or for ``"auto"`` the one
    :func:`~.codegen.target_cuda.choose_scheme` picks for the call's output rows (all batch
    entries) and reduction indices."""
    if scheme != "auto":
        return scheme
    return choose_scheme(math.prod(call.batch_shape) * call.n_out, call.n_red)


def block_table(ranges: Ranges, n_out: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The ranges as row blocks: ``(r0, r1, s0, s1)`` per block of at most ``block`` rows
    (see :mod:`lazykernels.codegen.cuda`) and the reduction intervals they index; rows
    outside every range get blocks without intervals (the empty reduction's value).

    Disjoint output ranges keep the call's intervals. Overlapping ones are cut at every
    range boundary: a piece of rows covered by several ranges reduces over all their
    intervals, concatenated in the order of the ranges, which is what the reference
    backend accumulates (each row is still written by one block).
    """
    spans = [
        (int(a), int(e), int(ranges.slices[c - 1]) if c > 0 else 0, int(ranges.slices[c]))
        for c, (a, e) in enumerate(ranges.ranges_out.tolist())
        if a < e
    ]
    redranges = np.ascontiguousarray(ranges.redranges, dtype=np.int64).reshape(-1, 2)
    rows: list[tuple[int, int, int, int]] = []

    def cover(a: int, e: int, s0: int, s1: int) -> None:
        rows.extend((r, min(e, r + block), s0, s1) for r in range(a, e, block))

    ordered = sorted(spans)
    if all(x[1] <= y[0] for x, y in zip(ordered, ordered[1:])):  # disjoint
        done = 0
        for a, e, s0, s1 in ordered:
            cover(done, a, 0, 0)
            cover(a, e, s0, s1)
            done = e
        cover(done, n_out, 0, 0)
        return np.array(rows, dtype=np.int64).reshape(-1, 4), redranges
    cuts = sorted({0, n_out, *(a for a, *_ in spans), *(e for _, e, *_ in spans)})
    pieces: list[np.ndarray] = []
    known: dict[tuple[int, ...], tuple[int, int]] = {}
    n_pieces = 0
    for u, v in zip(cuts, cuts[1:]):
        covering = tuple(c for c, (a, e, _, _) in enumerate(spans) if a <= u and v <= e)
        hit = known.get(covering)
        if hit is None:
            parts = [redranges[spans[c][2] : spans[c][3]] for c in covering]
            piece = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
            hit = known[covering] = (n_pieces, n_pieces + len(piece))
            pieces.append(piece)
            n_pieces += len(piece)
        cover(u, v, *hit)
    merged = np.concatenate(pieces).astype(np.int64) if pieces else redranges[:0]
    return np.array(rows, dtype=np.int64).reshape(-1, 4), merged


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


def _interval_lengths(table: np.ndarray, redranges: np.ndarray) -> np.ndarray:
    """The number of reduction indices of each row block of ``table``."""
    if not len(redranges):
        return np.zeros(len(table), dtype=np.int64)
    sizes = np.concatenate([[0], np.cumsum(redranges[:, 1] - redranges[:, 0])])
    return sizes[table[:, 3]] - sizes[table[:, 2]]


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
    chunk: int | None = None,
) -> None:
    """Launch the kernel ``ks`` on ``device`` (the 2D scheme: both passes).

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
        chunk: the 2D scheme's reduction indices per column block (a multiple of
            ``ks.block``; None: :func:`~.codegen.target_cuda.column_chunk`).

    Raises:
        BackendError: a grid too large; ArgumentError: a bad ``chunk``.
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
        longest = n_red
    else:
        table, intervals = block_table(ranges, n_out, ks.block)
        n_tab = len(table)
        tab = upload(table)
        redranges = upload(intervals if len(intervals) else np.zeros((1, 2), dtype=np.int64))
        longest = int(_interval_lengths(table, intervals).max(initial=0))
    if ks.scheme != "2D":
        _check_grid(n_batch * n_tab)
        params = [n_out, n_red, n_batch, n_tab, *outputs, *inputs, offsets, tab, redranges]
        device.launch(device.function(ks), n_batch * n_tab, ks, params, stream)
        return
    if chunk is None:
        chunk = column_chunk(n_batch * n_tab, longest, ks.block)
    if chunk < 1 or chunk % ks.block:
        raise ArgumentError(f"chunk={chunk}: a column block is whole tiles of {ks.block}")
    n_split = max(1, -(-longest // chunk))
    n_rows = n_batch * n_out
    _check_grid(n_batch * n_tab * n_split)
    # the partial states, dropped after the launches (released in stream order)
    scratch = [device.scratch(n_split * n_rows * n * size, stream) for _, n, size in ks.state]
    parts = [b.ptr for b in scratch]
    params = [n_out, n_red, n_batch, n_tab, n_split, chunk, *parts, *inputs]
    params += [offsets, tab, redranges]
    device.launch(device.function(ks), n_batch * n_tab * n_split, ks, params, stream)
    merge = ks.merge
    params = [n_rows, n_split, *outputs, *parts]
    device.launch(device.function(merge), -(-n_rows // merge.block), merge, params, stream)


def _check_grid(grid: int) -> None:
    if grid > MAX_GRID:
        raise BackendError(
            f"the GPU launch needs {grid} blocks, more than a CUDA grid holds ({MAX_GRID})"
        )


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


def run(
    call: BoundCall,
    device: Device | None = None,
    block: int = BLOCK,
    scheme: str = "auto",
    chunk: int | None = None,
) -> None:
    """``backend="GPU"`` for host arrays: copy the inputs to the device, launch, copy the
    outputs back into ``call.outputs``. ``device``: the GPU of ``call.device_id`` by
    default; ``block``: threads per block; ``scheme``: ``"1D"``, ``"2D"`` or ``"auto"``
    (:func:`~.codegen.target_cuda.choose_scheme`); ``chunk``: see
    :func:`launch_reduction`.

    Raises:
        CompatibilityError: no driver or GPU; FormulaError: a plan the CUDA kernel does
            not print.
    """
    if device is None:
        device = default_device(getattr(call, "device_id", -1))
    ks = kernel_source(call.plan, call.dtype, block, call_scheme(call, scheme))
    arrays = [np.ascontiguousarray(a, dtype=call.dtype) for a in call.host_arrays()]
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
        chunk=chunk,
    )
    for target, out in zip(targets, call.host_outputs()):
        device.download(target, out, 0)
