"""The compiled CPU backend: ``run(call)`` behind ``Genred(backend="CPU")``.

Pipeline position: :func:`run` receives a validated :class:`~lazykernels.core.plan.BoundCall`,
prints the plan's kernel with :func:`lazykernels.codegen.cpp.render_cpu` after a readable
header (:mod:`.header`: the formula, reduction and dtype), compiles and loads it with
:func:`lazykernels.jit.build` (cached on disk by source hash), keeps the loaded function
in memory by (plan, dtype) (batch dimensions and ranges are runtime arguments of the same
kernel, not new kernels), and calls it through ctypes (which releases the GIL)
with pointers, sizes and per-batch-entry offsets. The call's arrays are read through its
array adapter (:mod:`lazykernels.core.arrays`): their pointers, shapes and strides, so NumPy
arrays and torch CPU tensors alike are passed by address. Inputs whose trailing (rows, dim)
block is contiguous are passed as they are, others are copied (through NumPy views of
their memory); outputs are written in place.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from array import array as _words
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..codegen.cpp import KernelSource, render_cpu
from ..codegen.target_cpu import CPU
from ..core.arrays import NUMPY
from ..core.bind import check_nan, nan_error
from ..core.plan import BoundCall, ReductionPlan
from ..errors import CompileError, LazyKernelsError, ShapeError
from ..formula.ir import Cat, topological_order
from .gemm import decide
from .header import source_header

__all__ = [
    "available",
    "kernel_source",
    "prepare",
    "prepare_call",
    "prepare_many",
    "run",
    "unavailable_reason",
]

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
    ctypes.c_void_p,  # pool: lk_pool_run of the runtime library (codegen/runtime.py)
]


@dataclass(frozen=True)
class _Kernel:
    source: KernelSource
    function: ctypes._CFuncPtr  # type: ignore[name-defined]
    cores: tuple[int, ...]  # per input: 1 (parameter: (..., D)) or 2 (variable: (..., n, D))
    outputs: tuple[tuple[int, np.dtype], ...]  # per output: values per row, dtype


def _loaded(plan: ReductionPlan, dtype: np.dtype, source: KernelSource, function) -> _Kernel:
    cores = tuple(1 if slot.cat is Cat.PARAM else 2 for slot in plan.slots)
    outputs = tuple(
        (spec.width, np.dtype(np.int64) if spec.ctype == "int64_t" else dtype)
        for spec in source.outputs
    )
    return _Kernel(source, function, cores, outputs)


_KERNELS: dict[tuple[ReductionPlan, str], _Kernel] = {}
_BY_ID: dict[tuple[int, np.dtype], tuple[ReductionPlan, _Kernel]] = {}
_MAX_BY_ID = 4096
_BUILD_LOCKS: dict[tuple[ReductionPlan, str], threading.Lock] = {}
_TABLE_LOCK = threading.Lock()
_LOCK = threading.Lock()
_POOL: list[int] = []  # address of lk_pool_run, once built
_FIRST_NAN: list[ctypes._CFuncPtr] = []  # type: ignore[name-defined]  # lk_first_nan, likewise
_CHECKED_RUN: list[ctypes._CFuncPtr] = []  # type: ignore[name-defined]  # lk_checked_run


def _pool() -> int:
    """The address of ``lk_pool_run``: the process's one thread pool for every kernel
    (passive waits, no spinning; see :mod:`lazykernels.codegen.runtime`). Its library also
    holds ``lk_first_nan``, the NaN check of :func:`run`, and ``lk_checked_run``, the NaN
    check and kernel call of a prepared call."""
    if _POOL:
        return _POOL[0]
    from ..codegen.runtime import POOL_SOURCE  # at the first build
    from ..jit import build  # at the first build

    with _LOCK:
        if not _POOL:
            library = build(POOL_SOURCE, "cpu_pool")
            first_nan = library.lk_first_nan
            first_nan.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            first_nan.restype = ctypes.c_int64
            _FIRST_NAN.append(first_nan)
            checked_run = library.lk_checked_run
            checked_run.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
            checked_run.argtypes += [ctypes.c_void_p, *[ctypes.c_int64] * 4]
            checked_run.argtypes += [ctypes.c_void_p] * 3
            checked_run.restype = ctypes.c_int64
            _CHECKED_RUN.append(checked_run)
            _POOL.append(ctypes.cast(library.lk_pool_run, ctypes.c_void_p).value or 0)
    return _POOL[0]


def unavailable_reason() -> str | None:
    """Why the backend cannot compile (no working C++ compiler), or None when it can."""
    from ..jit import compiler_info  # at the first build

    try:
        compiler_info()
    except CompileError as exc:
        return str(exc)
    return None


def available() -> bool:
    """True when a C++ compiler is usable, so that :func:`run` can build kernels."""
    return unavailable_reason() is None


def kernel_source(plan: ReductionPlan, dtype: np.dtype | str) -> KernelSource:
    """The C++ kernel of ``plan`` for ``dtype``, as compiled: the readable header
    (:mod:`.header`), then the generated code (for inspection and benchmarks)."""
    dtype = np.dtype(dtype)
    printed = render_cpu(plan, dtype, dotprod=plan.gemm == "on")
    return replace(printed, source=source_header(plan, dtype) + printed.source)


def _kernel(plan: ReductionPlan, dtype: np.dtype) -> _Kernel:
    # warm path: by the plan's identity (hashing a plan hashes all its fields); the entry
    # holds the plan, so its id cannot be reused by another plan meanwhile
    hit = _BY_ID.get((id(plan), dtype))
    if hit is not None and hit[0] is plan:
        return hit[1]
    key = (plan, dtype.str)
    kernel = _KERNELS.get(key)
    if kernel is None or not _POOL:
        kernel = _build_kernel(plan, dtype, key)
    if len(_BY_ID) >= _MAX_BY_ID:
        _BY_ID.clear()
    _BY_ID[(id(plan), dtype)] = (plan, kernel)
    return kernel


def _build_kernel(plan: ReductionPlan, dtype: np.dtype, key: tuple[ReductionPlan, str]) -> _Kernel:
    """Compile and load the kernel of ``key``: one build per key, different keys in parallel.

    The process's first kernel also needs the thread pool's library: both compile at once.
    """
    from ..jit import build  # at the first build

    with _TABLE_LOCK:
        lock = _BUILD_LOCKS.setdefault(key, threading.Lock())
    pool = None
    if not _POOL:
        pool = ThreadPoolExecutor(max_workers=1)
        pool_built = pool.submit(_pool)
    try:
        with lock:
            kernel = _KERNELS.get(key)
            if kernel is None:
                source = kernel_source(plan, dtype)
                library = build(source.source, f"cpu_{plan.reduction}", describe(plan))
                function = library.lk_kernel
                function.argtypes = _ARGTYPES
                function.restype = ctypes.c_int
                kernel = _loaded(plan, dtype, source, function)
                _KERNELS[key] = kernel
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if pool is not None:
        pool_built.result()  # re-raises a failed build of the pool
    return kernel


def describe(plan: ReductionPlan) -> str:
    """The size of ``plan``'s formula, for messages about its kernel (e.g. the size budget)."""
    roots = [plan.formula] if plan.weight is None else [plan.formula, plan.weight]
    nodes = {node for root in roots for node in topological_order(root)}
    widest = max(node.dim for node in nodes)
    return (
        f"{plan.reduction} of a formula of {len(nodes)} nodes, output dimension "
        f"{plan.formula.dim}, widest node dimension {widest}"
    )


def _usable(array: np.ndarray, core: int) -> bool:
    """Whether the kernel can read ``array`` in place: a contiguous trailing block."""
    item = array.itemsize
    shape, strides = array.shape, array.strides
    if shape[-1] > 1 and strides[-1] != item:
        return False
    if core == 2 and shape[-2] > 1 and strides[-2] != shape[-1] * item:
        return False
    return all(s % item == 0 for s in strides[:-core])


def _offsets(
    shape: tuple[int, ...], strides: tuple[int, ...], batch_shape: tuple[int, ...]
) -> np.ndarray:
    """Element offset of every batch entry (row-major over ``batch_shape``; 0 if broadcast)
    of an array of ``shape`` and element ``strides``."""
    off = np.zeros(batch_shape, dtype=np.int64)
    for k, size in enumerate(batch_shape):
        if shape[k] == 1:
            continue
        index = [1] * len(batch_shape)
        index[k] = size
        off += (np.arange(size, dtype=np.int64) * strides[k]).reshape(index)
    return off.reshape(-1)


# n -> (table, its address): the offset tables of calls without batch entries (n zeros)
_ZERO_OFFSETS: dict[int, tuple[np.ndarray, int]] = {}


def _zero_offsets(n: int) -> int:
    """The address of a read-only table of ``n`` zeros (at least one), kept for good."""
    entry = _ZERO_OFFSETS.get(n)
    if entry is None:
        table = np.zeros(max(1, n), dtype=np.int64)
        table.flags.writeable = False
        entry = _ZERO_OFFSETS.setdefault(n, (table, table.ctypes.data))
    return entry[1]


_WORD = ctypes.sizeof(ctypes.c_void_p)
_CELL = next(code for code in "QLI" if _words(code).itemsize == _WORD)  # unsigned, pointer-wide


def _offset_table(
    adapter: Any, inputs: Sequence[Any], batch_shape: tuple[int, ...]
) -> tuple[int, np.ndarray | None]:
    """The address of the per-batch-entry offsets of ``inputs``, and the table (None: the
    shared table of zeros, one batch entry), which the caller keeps alive."""
    if math.prod(batch_shape) == 1:
        return _zero_offsets(len(inputs)), None
    parts = [_offsets(adapter.shape(a), adapter.strides(a), batch_shape) for a in inputs]
    table = np.concatenate(parts) if parts else np.zeros(1, dtype=np.int64)
    return table.ctypes.data, table


def prepare(plan: ReductionPlan, dtype: np.dtype | str) -> None:
    """Compile (or fetch) the kernel of ``plan`` for ``dtype`` ahead of the first call."""
    _kernel(plan, np.dtype(dtype))


def prepare_many(plans: Sequence[ReductionPlan], dtype: np.dtype | str) -> None:
    """Compile the kernels of ``plans`` for ``dtype``, the missing ones concurrently.

    A backward pass needs one kernel per input (and the next order as many again): one
    compiler process each, run side by side. The sources are printed in this thread (the
    formula IR's interning is not meant for concurrent use); only the compilers run in
    parallel, then each kernel is loaded as by :func:`prepare`.

    Raises:
        CompileError: a kernel does not compile.
    """
    dtype = np.dtype(dtype)
    todo: dict[tuple[ReductionPlan, str], ReductionPlan] = {}
    for plan in plans:
        hit = _BY_ID.get((id(plan), dtype))
        if hit is not None and hit[0] is plan:
            continue
        key = (plan, dtype.str)
        if key not in _KERNELS:
            todo.setdefault(key, plan)
    if len(todo) > 1:
        from ..jit import build  # at the first build

        sources = [(p, kernel_source(p, dtype).source) for p in todo.values()]
        workers = min(len(sources) + 1, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=max(2, workers)) as executor:
            jobs = [
                executor.submit(build, text, f"cpu_{p.reduction}", describe(p))
                for p, text in sources
            ]
            if not _POOL:
                jobs.append(executor.submit(_pool))
            for job in jobs:
                job.result()
    for plan in todo.values():
        _kernel(plan, dtype)


def run(call: BoundCall, n_threads: int = 0) -> None:
    """Fill ``call.outputs`` with the reduction of ``call.plan`` (compiled C++).

    The inputs are checked for NaN values here, in one foreign call (``lk_first_nan``) on
    the arrays the kernel reads, rather than by :func:`lazykernels.core.bind.bind_call`.

    Args:
        call: the validated call.
        n_threads: OpenMP threads (0: the OpenMP default, e.g. ``OMP_NUM_THREADS``).

    Raises:
        ArgumentError: an input holds NaN values.
        CompileError: the kernel does not compile (the message holds the compiler log).
        ShapeError: an output buffer has the wrong size or dtype.
    """
    plan, dtype = call.plan, call.dtype
    inputs, adapter = call.arrays, call.adapter or NUMPY
    if plan.gemm != "off" and _wide(plan):  # the dot-product path? (see .gemm)
        decision = decide(call)
        if decision.arrays is not inputs:  # centred: NumPy copies
            inputs, adapter = decision.arrays, NUMPY
        plan = decision.plan
    kernel = _kernel(plan, dtype)
    n_batch = math.prod(call.batch_shape)
    if call.n_out == 0 or n_batch == 0:
        check_nan(plan.slots, inputs, adapter)
        return
    # arrays read in place: C-contiguous (NaN-checked in C), or with only their trailing
    # (rows, dim) block contiguous (strided batch entries: checked by NumPy); others copied
    flat = adapter.contiguous(inputs)
    if all(flat):
        sizes = adapter.sizes(inputs)
    else:  # on host views (the binding gave every input the dtype)
        if adapter is not NUMPY:
            inputs, adapter = [adapter.to_host(a) for a in inputs], NUMPY
        inputs = [
            a if ok else _readable(a, core, dtype)
            for a, ok, core in zip(inputs, flat, kernel.cores)
        ]
        flat = [a.flags.c_contiguous for a in inputs]
        strided = [(s, a) for s, a, ok in zip(plan.slots, inputs, flat) if not ok]
        check_nan([s for s, _ in strided], [a for _, a in strided])
        sizes = [a.size if ok else 0 for a, ok in zip(inputs, flat)]  # 0: no NaN check in C
    outputs = call.outputs
    if call.adapter is None:  # NumPy outputs: a given out= may be non-contiguous
        targets = _output_buffers(call, kernel, n_batch)
    else:  # the binding allocated them, or checked a given out= (contiguous, right size)
        targets = outputs
    n_in = len(inputs)
    # one table of machine words: input addresses, output addresses, input sizes
    if adapter is (call.adapter or NUMPY):
        addresses = adapter.pointers([*inputs, *targets])
    else:
        addresses = adapter.pointers(inputs) + (call.adapter or NUMPY).pointers(targets)
    cells = _words(_CELL, [*addresses, *sizes])
    base = cells.buffer_info()[0]
    bad = _FIRST_NAN[0](n_in, base, base + _WORD * (n_in + len(targets)), dtype.itemsize)
    if bad >= 0:
        raise nan_error(plan.slots[bad])
    offset_address, _table = _offset_table(adapter, inputs, call.batch_shape)
    n_ranges, pointers = -1, [None, None, None]
    if call.ranges is not None:
        r = call.ranges
        range_arrays = [
            np.ascontiguousarray(a, dtype=np.int64) for a in (r.ranges_out, r.slices, r.redranges)
        ]
        n_ranges = len(range_arrays[0])
        pointers = [a.ctypes.data for a in range_arrays]
    status = kernel.function(
        call.n_out,
        call.n_red,
        n_batch,
        base,
        offset_address,
        base + _WORD * n_in,
        n_ranges,
        *pointers,
        int(n_threads),
        _POOL[0],
    )
    if status != 0:
        raise LazyKernelsError(f"the CPU kernel of {plan.reduction} failed (out of memory?)")
    for target, out in zip(targets, outputs):
        if target is not out:
            out[...] = target.reshape(out.shape)


def prepare_call(call: BoundCall):
    """A callable ``f(arrays) -> outputs`` that runs ``call.plan`` as :func:`run` ran
    ``call``, for arrays of the exact layout of ``call.arrays`` (same adapter, shapes,
    dtypes and strides: the caller's key, :mod:`lazykernels.core.prepared`); None when
    the call is not of the simple kind a prepared call serves (ranges, the dot-product
    path, arrays the kernel cannot read in place, a cast, empty inputs or outputs).

    Each call of ``f`` allocates the outputs from the remembered shapes, checks the inputs
    for NaN in C (raising as :func:`run`) and calls the kernel, with the remembered sizes
    and offset table.
    """
    plan, dtype = call.plan, call.dtype
    adapter = call.adapter or NUMPY
    inputs = call.arrays
    if call.ranges is not None or (plan.gemm != "off" and _wide(plan)):
        return None
    if not call.device.is_host or call.device_id != -1:
        return None
    if any(adapter.dtype(a) != dtype for a in inputs) or not all(adapter.contiguous(inputs)):
        return None
    sizes = adapter.sizes(inputs)
    kinds = tuple((adapter.shape(o), adapter.dtype(o)) for o in call.outputs)
    n_batch = math.prod(call.batch_shape)
    if not all(sizes) or call.n_out == 0 or call.n_red == 0 or n_batch == 0:
        return None
    if not all(math.prod(s) for s, _ in kinds):
        return None
    kernel = _kernel(plan, dtype)
    if len(kinds) != len(kernel.outputs) or any(
        k != want for (_, k), (_, want) in zip(kinds, kernel.outputs)
    ):
        return None
    n_in, n_outputs = len(inputs), len(kinds)
    offset_address, offset_table = _offset_table(adapter, inputs, call.batch_shape)
    # (the NaN check and the call as in run, in one foreign call: this closure is the warm
    # path, and each ctypes call costs ~1 us)
    checked_run, pool = _CHECKED_RUN[0], _POOL[0]
    kernel_address = ctypes.cast(kernel.function, ctypes.c_void_p).value
    pointers, empty, device, slots = adapter.pointers, adapter.empty, call.device, plan.slots
    n_out, n_red, itemsize = call.n_out, call.n_red, dtype.itemsize
    outputs_at, sizes_at = _WORD * n_in, _WORD * (n_in + n_outputs)

    def prepared(arrays):
        outputs = [empty(shape, kind, device) for shape, kind in kinds]
        cells = _words(_CELL, [*pointers([*arrays, *outputs]), *sizes])
        base = cells.buffer_info()[0]
        status = checked_run(
            kernel_address, n_in, base, base + sizes_at, itemsize, n_out, n_red, n_batch,
            offset_address, base + outputs_at, pool,
        )  # fmt: skip
        if status != 0:
            if status <= -2:
                raise nan_error(slots[-2 - status])
            raise LazyKernelsError(f"the CPU kernel of {plan.reduction} failed (out of memory?)")
        return tuple(outputs)

    prepared.offset_table = offset_table  # (kept alive with the callable, as the kernel's
    prepared.kernel = kernel  # library, which the callable reaches by address)
    return prepared


_WIDE: dict[int, tuple[ReductionPlan, bool]] = {}


def _wide(plan: ReductionPlan) -> bool:
    """Whether ``plan`` reads a variable of dimension >= the dot-product path's minimum
    (remembered by the plan's identity, as :func:`_kernel`'s warm path: plans without one
    never reach :func:`.gemm.decide`)."""
    hit = _WIDE.get(id(plan))
    if hit is None or hit[0] is not plan:
        if len(_WIDE) >= _MAX_BY_ID:
            _WIDE.clear()
        hit = _WIDE[id(plan)] = (plan, any(s.dim >= CPU.gemm_min_dim for s in plan.slots))
    return hit[1]


def _readable(array: np.ndarray, core: int, dtype: np.dtype) -> np.ndarray:
    """``array`` if the kernel can read it in place, else a C-contiguous copy in ``dtype``."""
    if array.dtype == dtype and _usable(array, core):
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def _output_buffers(call: BoundCall, kernel: _Kernel, n_batch: int) -> list[np.ndarray]:
    """The arrays the kernel writes: the outputs themselves when C-contiguous."""
    if len(call.outputs) != len(kernel.outputs):
        raise ShapeError(
            f"{call.plan.reduction} has {len(kernel.outputs)} output(s), got {len(call.outputs)}"
        )
    targets = []
    rows = n_batch * call.n_out
    for out, (width, want) in zip(call.outputs, kernel.outputs):
        if out.dtype != want or out.size != rows * width:
            raise ShapeError(
                f"{call.plan.reduction}: an output buffer must hold {rows * width} values of "
                f"{want}, got shape {out.shape} and dtype {out.dtype}"
            )
        targets.append(out if out.flags.c_contiguous else np.empty(rows * width, dtype=want))
    return targets
