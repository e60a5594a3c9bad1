"""The compiled CPU backend: ``run(call)`` behind ``Genred(backend="CPU")``.

Pipeline position: :func:`run` receives a validated :class:`~lazykernels.core.plan.BoundCall`,
prints the plan's kernel with :func:`lazykernels.codegen.cpp.render_cpu`, compiles and loads
it with :func:`lazykernels.jit.build` (cached on disk by source hash), keeps the loaded
function in memory by (plan, dtype) (batch dimensions and ranges are runtime arguments of
the same kernel, not new kernels), and calls it through ctypes (which releases the GIL)
with pointers, sizes and per-batch-entry offsets. Inputs whose trailing (rows, dim) block is
contiguous are passed as they are, others are copied; outputs are written in place.
"""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..codegen.cpp import KernelSource, render_cpu
from ..core.plan import BoundCall, ReductionPlan
from ..errors import CompileError, LazyKernelsError, ShapeError
from ..formula.ir import Cat

__all__ = ["available", "kernel_source", "prepare", "run", "unavailable_reason"]

_ARGTYPES = [
    ctypes.c_int64,  # n_out
    ctypes.c_int64,  # n_red
    ctypes.c_int64,  # n_batch
    ctypes.c_void_p,  # args
    ctypes.c_void_p,  # offsets
    ctypes.c_void_p,  # outs
    ctypes.c_int64,  # n_ranges
    ctypes.c_void_p,  # ranges_out
    ctypes.c_void_p,  # slices
    ctypes.c_void_p,  # redranges
    ctypes.c_int64,  # n_threads
]


@dataclass(frozen=True)
class _Kernel:
    source: KernelSource
    function: ctypes._CFuncPtr  # type: ignore[name-defined]


_KERNELS: dict[tuple[ReductionPlan, str], _Kernel] = {}
_LOCK = threading.Lock()


def unavailable_reason() -> str | None:
    """Why the backend cannot compile (no working C++ compiler), or None when it can."""
    from ..jit import compiler_info

    try:
        compiler_info()
    except CompileError as exc:
        return str(exc)
    return None


def available() -> bool:
    """True when a C++ compiler is usable, so that :func:`run` can build kernels."""
    return unavailable_reason() is None


def kernel_source(plan: ReductionPlan, dtype: np.dtype | str) -> KernelSource:
    """The generated C++ kernel of ``plan`` for ``dtype`` (for inspection and benchmarks)."""
    return render_cpu(plan, np.dtype(dtype))


def _kernel(plan: ReductionPlan, dtype: np.dtype) -> _Kernel:
    key = (plan, dtype.str)
    kernel = _KERNELS.get(key)
    if kernel is not None:
        return kernel
    from ..jit import build

    with _LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            source = render_cpu(plan, dtype)
            library = build(source.source, f"cpu_{plan.reduction}")
            function = library.lk_kernel
            function.argtypes = _ARGTYPES
            function.restype = ctypes.c_int
            kernel = _Kernel(source, function)
            _KERNELS[key] = kernel
    return kernel


def _usable(array: np.ndarray, core: int) -> bool:
    """Whether the kernel can read ``array`` in place: a contiguous trailing block."""
    item = array.itemsize
    shape, strides = array.shape, array.strides
    if shape[-1] > 1 and strides[-1] != item:
        return False
    if core == 2 and shape[-2] > 1 and strides[-2] != shape[-1] * item:
        return False
    return all(s % item == 0 for s in strides[:-core])


def _offsets(array: np.ndarray, core: int, batch_shape: tuple[int, ...]) -> np.ndarray:
    """Element offset of every batch entry (row-major over ``batch_shape``; 0 if broadcast)."""
    off = np.zeros(batch_shape, dtype=np.int64)
    for k, size in enumerate(batch_shape):
        if array.shape[k] == 1:
            continue
        step = array.strides[k] // array.itemsize
        shape = [1] * len(batch_shape)
        shape[k] = size
        off += (np.arange(size, dtype=np.int64) * step).reshape(shape)
    return off.reshape(-1)


def prepare(plan: ReductionPlan, dtype: np.dtype | str) -> None:
    """Compile (or fetch) the kernel of ``plan`` for ``dtype`` ahead of the first call."""
    _kernel(plan, np.dtype(dtype))


def run(call: BoundCall, n_threads: int = 0) -> None:
    """Fill ``call.outputs`` with the reduction of ``call.plan`` (compiled C++).

    Args:
        call: the validated call.
        n_threads: OpenMP threads (0: the OpenMP default, e.g. ``OMP_NUM_THREADS``).

    Raises:
        CompileError: the kernel does not compile (the message holds the compiler log).
        ShapeError: an output buffer has the wrong size or dtype.
    """
    plan, dtype = call.plan, np.dtype(call.dtype)
    kernel = _kernel(plan, dtype)
    n_batch = math.prod(call.batch_shape)
    if call.n_out == 0 or n_batch == 0:
        return
    inputs, offsets = [], []
    for slot, array in zip(plan.slots, call.arrays):
        core = 1 if slot.cat is Cat.PARAM else 2
        if array.dtype != dtype or not _usable(array, core):
            array = np.ascontiguousarray(array, dtype=dtype)
        inputs.append(array)
        offsets.append(_offsets(array, core, call.batch_shape))
    offset_table = np.ascontiguousarray(np.concatenate(offsets) if offsets else np.zeros(1))
    offset_table = offset_table.astype(np.int64, copy=False)
    targets = _output_buffers(call, kernel.source, dtype, n_batch)
    args = (ctypes.c_void_p * max(1, len(inputs)))(*[a.ctypes.data for a in inputs])
    outs = (ctypes.c_void_p * len(targets))(*[t.ctypes.data for t in targets])
    n_ranges, range_arrays = -1, [None, None, None]
    if call.ranges is not None:
        r = call.ranges
        range_arrays = [
            np.ascontiguousarray(a, dtype=np.int64) for a in (r.ranges_out, r.slices, r.redranges)
        ]
        n_ranges = len(range_arrays[0])
    pointers = [None if a is None else a.ctypes.data for a in range_arrays]
    status = kernel.function(
        call.n_out,
        call.n_red,
        n_batch,
        ctypes.addressof(args),
        offset_table.ctypes.data,
        ctypes.addressof(outs),
        n_ranges,
        *pointers,
        int(n_threads),
    )
    if status != 0:
        raise LazyKernelsError(f"the CPU kernel of {plan.reduction} failed (out of memory?)")
    for target, out in zip(targets, call.outputs):
        if target is not out:
            out[...] = target.reshape(out.shape)


def _output_buffers(
    call: BoundCall, source: KernelSource, dtype: np.dtype, n_batch: int
) -> list[np.ndarray]:
    """The arrays the kernel writes: the outputs themselves when C-contiguous."""
    if len(call.outputs) != len(source.outputs):
        raise ShapeError(
            f"{call.plan.reduction} has {len(source.outputs)} output(s), got {len(call.outputs)}"
        )
    targets = []
    for out, spec in zip(call.outputs, source.outputs):
        want = np.dtype(np.int64) if spec.ctype == "int64_t" else dtype
        size = n_batch * call.n_out * spec.width
        if out.dtype != want or out.size != size:
            raise ShapeError(
                f"{call.plan.reduction}: an output buffer must hold {size} values of {want}, "
                f"got shape {out.shape} and dtype {out.dtype}"
            )
        targets.append(out if out.flags.c_contiguous else np.empty(size, dtype=want))
    return targets
