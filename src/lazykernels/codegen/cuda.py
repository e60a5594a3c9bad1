"""The CUDA kernel, 1D scheme: one thread per output row, reduction tiles in shared memory.

``render_cuda(plan, dtype)`` lowers the plan's formula with the :class:`.CudaDialect` (the
same kernel IR and lowering as the CPU kernel of :mod:`.cpp`) and prints
``extern "C" __global__ void lk_cuda_kernel(...)``:

* a block of ``block`` threads handles ``block`` consecutive output rows (a thread per row);
  each thread evaluates its row's output-index-only values once, in registers;
* the reduction range runs in tiles of ``block`` indices: thread ``t`` of the block
  evaluates the reduction-index-only frontier of index ``j0 + t`` (the inner section, e.g.
  ``y_j`` and ``b_j``) into shared memory, the block synchronises, and every thread runs
  over the tile reading it from there (the mixed section and the reduction);
* threads past the last row still load tiles (every thread reaches every
  ``__syncthreads``) and compute on the last row, but store nothing.

The launch: a grid of ``ceil(n_out / block)`` blocks of ``block`` threads; arguments
``(n_out, n_red, out0, ..., a0, ..., a{n-1})``: the outputs (``n_out x width`` row-major,
of the types in :attr:`CudaSource.outputs`), then the inputs as contiguous device arrays
(one per argument slot, in slot order; an argument the formula does not read is passed and
unused). ``n_out`` must be positive. The reductions are the per-thread fragments of
:mod:`.reductions_cuda`, printed from every reduction card (weights included).

Not yet here (issue #11): helper functions of the op cards, formulas of looped dimension
(above the unrolling threshold), the 2D scheme, float16, batches and ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormulaError
from ..reductions.plan import ReductionPlan
from .buffer import IndentedBuffer
from .dialect_cuda import CudaDialect
from .lower import ScalarProgram, lower
from .reductions_cuda import ThreadReduction, thread_reduction

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
KERNEL_NAME = "lk_cuda_kernel"
BLOCK = 128
"""Default threads per block (rows per block, reduction indices per tile)."""


@dataclass(frozen=True)
class CudaSource:
    """A printed CUDA kernel and how to launch it (see the module docstring)."""

    source: str
    name: str
    block: int
    n_slots: int
    outputs: tuple[tuple[int, str], ...]  # (width, C type) of each output
    shared_bytes: int


def _check(plan: ReductionPlan, prog: ScalarProgram) -> None:
    if prog.vec_roots or any(v.width > 1 for v in prog.inner_values):
        raise FormulaError("the CUDA kernel does not loop over large dimensions yet")
    if prog.helpers:
        raise FormulaError(f"the CUDA kernel has no source for the helpers {sorted(prog.helpers)}")
    if prog.slots and max(prog.slots) >= len(plan.slots):
        raise FormulaError(
            f"the formula reads input #{max(prog.slots)}, beyond the {len(plan.slots)} arguments"
        )


def _tiles(b: IndentedBuffer, prog: ScalarProgram, red: ThreadReduction) -> None:
    """The loop over reduction tiles: stage the inner frontier in shared memory, then every
    thread folds its row's values over the tile."""
    n_sh = len(prog.inner_values)
    with b.block("for (int64_t j0 = 0; j0 < n_red; j0 += LK_BLOCK)"):
        if n_sh:
            with b.block("if (j0 + tid < n_red)"):
                b.line("const int64_t j = j0 + tid;")
                b.lines(prog.inner)
                for m, v in enumerate(prog.inner_values):
                    value = v.source if v.source is not None else f"{v.pointer}[j]"
                    b.line(f"lk_sh[{m} * LK_BLOCK + tid] = {value};")
            b.line("__syncthreads();")
        b.line("const int64_t jn = n_red - j0 < LK_BLOCK ? n_red - j0 : LK_BLOCK;")
        b.lines(red.tile_begin())
        with b.block("for (int64_t jj = 0; jj < jn; ++jj)"):
            b.line("const int64_t j = j0 + jj;")
            b.line("(void)j;  // read by index-dependent formulas and arg-reductions only")
            for m, v in enumerate(prog.inner_values):
                b.line(f"const T {v.load} = lk_sh[{m} * LK_BLOCK + jj];")
            b.lines(prog.mixed)
            b.lines(red.pair(prog.roots[0], prog.roots[1] if len(prog.roots) > 1 else []))
        b.lines(red.tile_end())
        if n_sh:
            b.line("__syncthreads();")


def _row_values(b: IndentedBuffer, prog: ScalarProgram) -> None:
    """The row's output-index-only values (rows past the end compute on the last row)."""
    b.line("const int64_t i = row < n_out ? row : n_out - 1;")
    if prog.outer_store:
        b.line("const int64_t k = 0;")
        b.line("T " + ", ".join(f"{a}[1]" for a, _ in prog.outer_store) + ";")
        b.lines(prog.outer)
        for array, value in prog.outer_store:
            b.line(f"{array}[k] = {value};")
        for local, array in prog.row_loads:
            b.line(f"const T {local} = {array}[k];")


def render_cuda(plan: ReductionPlan, dtype: np.dtype | str, block: int = BLOCK) -> CudaSource:
    """The CUDA source of ``plan`` for ``dtype`` (float32 or float64), 1D scheme.

    Raises:
        FormulaError: the plan needs something the CUDA kernel does not print yet (see the
            module docstring), or the formula cannot be lowered.
    """
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        raise FormulaError(f"CUDA kernels are generated for float32 or float64, not {dtype}")
    if block < 1 or block > 1024:
        raise FormulaError(f"a CUDA block has 1 to 1024 threads, not {block}")
    acc_dtype = np.dtype(plan.dtype_acc) if plan.dtype_acc else dtype
    dialect = CudaDialect(dtype)
    d = plan.formula.dim
    dg = plan.weight.dim if plan.weight is not None else 0
    same = acc_dtype == dtype
    red = thread_reduction(plan.reduction, d, dg, plan.k, plan.sum_scheme, dialect, same)
    roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])
    prog = lower(roots, dtype, plan.output_cat, dialect)
    _check(plan, prog)
    n_sh = len(prog.inner_values)
    outputs = red.outputs()
    b = IndentedBuffer()
    b.lines(
        [
            f"// lazykernels CUDA kernel (1D scheme): {plan.reduction} reduction, output indexed "
            f"by {plan.output_cat.name}, {dtype.name} data, {_CTYPES[acc_dtype]} accumulator, "
            f"{plan.sum_scheme}.",
            "// Generated code: a deterministic function of the reduction plan.",
            "#ifndef LK_HOST_EMULATION",
            "typedef long long int64_t;",
            "#endif",
            f"typedef {_CTYPES[dtype]} T;",
            f"typedef {_CTYPES[acc_dtype]} A;",
            f"#define LK_BLOCK {block}",
            "",
        ]
    )
    args = ["int64_t n_out", "int64_t n_red"]
    args += [f"{ctype}* __restrict__ out{o}" for o, (_, ctype) in enumerate(outputs)]
    args += [f"const T* __restrict__ a{p}" for p in range(len(plan.slots))]
    b.line(f'extern "C" __global__ void {KERNEL_NAME}({", ".join(args)})')

    def out(o: int, c: int) -> str:
        width = outputs[o][0]
        return f"out{o}[row]" if width == 1 else f"out{o}[row * {width} + {c}]"

    with b.block(""):
        if n_sh:
            b.line(f"__shared__ T lk_sh[{n_sh} * LK_BLOCK];")
        b.line("const int tid = threadIdx.x;")
        b.line("const int64_t row = (int64_t)blockIdx.x * LK_BLOCK + tid;")
        b.lines(prog.param)
        _row_values(b, prog)
        b.lines(red.state())
        _tiles(b, prog, red)
        with b.block("if (row < n_out)"):
            b.lines(red.finalize(out))
    item = dtype.itemsize
    return CudaSource(
        b.getvalue(), KERNEL_NAME, block, len(plan.slots), tuple(outputs), n_sh * block * item
    )
