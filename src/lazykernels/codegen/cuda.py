"""The CUDA kernel, 1D scheme: one thread per output row, reduction tiles in shared memory.

``render_cuda(plan, dtype)`` lowers the plan's formula with the :class:`.CudaDialect` (the
same kernel IR and lowering as the CPU kernel of :mod:`.cpp`) and prints
``extern "C" __global__ void lk_cuda_kernel(...)``:

* a block of ``block`` threads handles up to ``block`` consecutive output rows (a thread
  per row) of one batch entry; each thread evaluates its row's output-index-only values
  once, in registers;
* the reduction range runs in tiles of ``block`` indices: thread ``t`` of the block
  evaluates the reduction-index-only frontier of index ``j0 + t`` (the inner section, e.g.
  ``y_j`` and ``b_j``) into shared memory, the block synchronises, and every thread runs
  over the tile reading it from there (the mixed section and the reduction);
* threads past the block's last row still load tiles (every thread reaches every
  ``__syncthreads``) and compute on that last row, but store nothing.

Batch dimensions and block-sparse ranges are runtime arguments of the same kernel (as on
the CPU): block ``blockIdx.x`` is row block ``t = blockIdx.x % n_tab`` of batch entry
``b = blockIdx.x / n_tab``. Without ranges (``tab == NULL``) row block ``t`` is rows
``[t * block, (t + 1) * block)`` reducing over ``[0, n_red)``; with ranges, ``tab`` holds
``(r0, r1, s0, s1)`` per row block: rows ``[r0, r1)`` (at most ``block``) reduce over the
intervals ``redranges[s]`` for ``s`` in ``[s0, s1)`` (none: the row gets the empty
reduction's value). Every thread of a block follows the same intervals, so the barriers
are uniform. Input ``p`` of batch entry ``b`` starts ``offsets[p * n_batch + b]`` elements
after its pointer (``offsets == NULL``: 0); output ``o`` of entry ``b`` at
``b * n_out * width``.

The arguments, all 64-bit (:attr:`CudaSource.params` lists their C types)::

    (n_out, n_red, n_batch, n_tab, out0, ..., g0, ..., g{n-1}, offsets, tab, redranges)

the outputs (``n_batch x n_out x width`` row-major, of the types in
:attr:`CudaSource.outputs`), then the inputs as contiguous device arrays (one per argument
slot, in slot order; an argument the formula does not read is passed and unused). The
grid is ``n_batch * n_tab`` blocks of ``block`` threads, ``n_out`` must be positive.

float16 data (``dtype="float16"``) is stored as IEEE binary16 (``lk_half``): inputs are
converted to float as they are loaded (:class:`.CudaHalfDialect`), the formula runs in
float, the accumulator is float (double with ``dtype_acc="float64"``), and the values are
rounded to half as they are stored. The reductions are the per-thread fragments of
:mod:`.reductions_cuda`, printed from every reduction card (weights included).

Not yet here (issue #11): helper functions of the op cards, formulas of looped dimension
(above the unrolling threshold) and the 2D scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormulaError
from ..reductions.plan import ReductionPlan
from .buffer import IndentedBuffer
from .dialect_cuda import CudaDialect, CudaHalfDialect
from .lower import ScalarProgram, lower
from .reductions_cuda import ThreadReduction, thread_reduction

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
KERNEL_NAME = "lk_cuda_kernel"
BLOCK = 128
"""Default threads per block (rows per block, reduction indices per tile)."""

# binary16 <-> float by the PTX conversions (no cuda_fp16.h needed); the host emulation's
# header defines the same names with _Float16
_HALF_PRELUDE = [
    "typedef unsigned short lk_half;  // IEEE binary16 bits",
    "__device__ __forceinline__ float lk_h2f(lk_half h) {",
    '  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f;',
    "}",
    "__device__ __forceinline__ lk_half lk_f2h(float f) {",
    '  lk_half h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h;',
    "}",
]


@dataclass(frozen=True)
class CudaSource:
    """A printed CUDA kernel and how to launch it (see the module docstring).

    Attributes:
        source: the CUDA C++ text.
        name: the kernel's entry point.
        block: threads per block.
        n_slots: number of inputs.
        outputs: (width, C type) of each output: ``"S"`` (the storage type of the data)
            or ``"int64_t"``.
        shared_bytes: static shared memory per block.
        dtype: the storage dtype's name (``"float16"``, ``"float32"``, ``"float64"``).
        params: the C type of each kernel argument, in order (all 64-bit).
    """

    source: str
    name: str
    block: int
    n_slots: int
    outputs: tuple[tuple[int, str], ...]
    shared_bytes: int
    dtype: str = "float32"
    params: tuple[str, ...] = ()


def _check(plan: ReductionPlan, prog: ScalarProgram) -> None:
    if prog.vec_roots or any(v.width > 1 for v in prog.inner_values):
        raise FormulaError("the CUDA kernel does not loop over large dimensions yet")
    if prog.helpers:
        raise FormulaError(f"the CUDA kernel has no source for the helpers {sorted(prog.helpers)}")
    if prog.slots and max(prog.slots) >= len(plan.slots):
        raise FormulaError(
            f"the formula reads input #{max(prog.slots)}, beyond the {len(plan.slots)} arguments"
        )


def _load(pointer: str, index: str, half: bool) -> str:
    return f"lk_h2f({pointer}[{index}])" if half else f"{pointer}[{index}]"


def _tiles(b: IndentedBuffer, prog: ScalarProgram, red: ThreadReduction, half: bool) -> None:
    """The loops over the reduction intervals and their tiles: stage the inner frontier in
    shared memory, then every thread folds its row's values over the tile."""
    n_sh = len(prog.inner_values)
    with b.block("for (int64_t s = s0; s < s1; ++s)"):
        b.line("const int64_t ja = redranges ? redranges[2 * s] : 0;")
        b.line("const int64_t jb = redranges ? redranges[2 * s + 1] : n_red;")
        with b.block("for (int64_t j0 = ja; j0 < jb; j0 += LK_BLOCK)"):
            if n_sh:
                with b.block("if (j0 + tid < jb)"):
                    b.line("const int64_t j = j0 + tid;")
                    b.lines(prog.inner)
                    for m, v in enumerate(prog.inner_values):
                        value = v.source if v.source is not None else _load(v.pointer, "j", half)
                        b.line(f"lk_sh[{m} * LK_BLOCK + tid] = {value};")
                b.line("__syncthreads();")
            b.line("const int64_t jn = jb - j0 < LK_BLOCK ? jb - j0 : LK_BLOCK;")
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
    """The row's output-index-only values (rows past the block's end compute on its last)."""
    b.line("const int64_t i = row < r1 ? row : r1 - 1;")
    if prog.outer_store:
        b.line("const int64_t k = 0;")
        b.line("T " + ", ".join(f"{a}[1]" for a, _ in prog.outer_store) + ";")
        b.lines(prog.outer)
        for array, value in prog.outer_store:
            b.line(f"{array}[k] = {value};")
        for local, array in prog.row_loads:
            b.line(f"const T {local} = {array}[k];")


def _block_setup(b: IndentedBuffer, read: list[int], outputs: list[tuple[int, str]]) -> None:
    """This block's batch entry, rows and reduction intervals; the entry's pointers (of
    the inputs the formula reads)."""
    b.line("const int tid = threadIdx.x;")
    b.line("const int64_t t = (int64_t)blockIdx.x % n_tab, bt = (int64_t)blockIdx.x / n_tab;")
    b.line("int64_t r0 = t * LK_BLOCK, r1 = r0 + LK_BLOCK < n_out ? r0 + LK_BLOCK : n_out;")
    b.line("int64_t s0 = 0, s1 = 1;  // without ranges: one interval, [0, n_red)")
    with b.block("if (tab)"):
        b.line("r0 = tab[4 * t]; r1 = tab[4 * t + 1]; s0 = tab[4 * t + 2]; s1 = tab[4 * t + 3];")
    for p in read:
        b.line(f"const S* __restrict__ a{p} = g{p} + (offsets ? offsets[{p} * n_batch + bt] : 0);")
    for o, (width, ctype) in enumerate(outputs):
        b.line(f"{ctype}* __restrict__ out{o} = o{o} + bt * n_out * {width};")
    b.line("const int64_t row = r0 + tid;")


def _prelude(plan: ReductionPlan, dtype: np.dtype, acc: str, block: int) -> list[str]:
    half = dtype == np.float16
    return [
        f"// lazykernels CUDA kernel (1D scheme): {plan.reduction} reduction, output indexed "
        f"by {plan.output_cat.name}, {dtype.name} data, {acc} accumulator, "
        f"{plan.sum_scheme}.",
        "// Generated code: a deterministic function of the reduction plan.",
        "#ifndef LK_HOST_EMULATION",
        "typedef long long int64_t;",
        *(_HALF_PRELUDE if half else []),
        "#endif",
        f"typedef {'float' if half else _CTYPES[dtype]} T;  // arithmetic",
        f"typedef {acc} A;  // accumulator",
        f"typedef {'lk_half' if half else 'T'} S;  // storage",
        f"#define LK_BLOCK {block}",
        "",
    ]


def render_cuda(plan: ReductionPlan, dtype: np.dtype | str, block: int = BLOCK) -> CudaSource:
    """The CUDA source of ``plan`` for ``dtype`` (float16, float32 or float64), 1D scheme.

    Raises:
        FormulaError: the plan needs something the CUDA kernel does not print yet (see the
            module docstring), or the formula cannot be lowered.
    """
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise FormulaError(
            f"CUDA kernels are generated for float16, float32 or float64, not {dtype}"
        )
    if block < 1 or block > 1024:
        raise FormulaError(f"a CUDA block has 1 to 1024 threads, not {block}")
    half = dtype == np.float16
    compute = np.dtype(np.float32) if half else dtype
    acc_dtype = np.dtype(plan.dtype_acc) if plan.dtype_acc else compute
    dialect = CudaHalfDialect() if half else CudaDialect(dtype)
    dg = plan.weight.dim if plan.weight is not None else 0
    same = acc_dtype == compute
    red = thread_reduction(
        plan.reduction, plan.formula.dim, dg, plan.k, plan.sum_scheme, dialect, same
    )
    roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])
    prog = lower(roots, compute, plan.output_cat, dialect)
    _check(plan, prog)
    n_sh = len(prog.inner_values)
    outputs = [(w, "S" if ctype == "T" else ctype) for w, ctype in red.outputs()]
    n_slots = len(plan.slots)
    b = IndentedBuffer()
    b.lines(_prelude(plan, dtype, _CTYPES[acc_dtype], block))
    params = ["int64_t"] * 4 + [f"{c}*" for _, c in outputs] + ["const S*"] * n_slots
    params += ["const int64_t*"] * 3
    names = ["n_out", "n_red", "n_batch", "n_tab", *(f"o{o}" for o in range(len(outputs)))]
    names += [f"g{p}" for p in range(n_slots)] + ["offsets", "tab", "redranges"]
    args = [
        f"{c} {n}" if c == "int64_t" else f"{c} __restrict__ {n}" for c, n in zip(params, names)
    ]
    b.line(f'extern "C" __global__ void {KERNEL_NAME}(')
    b.line("    " + ",\n    ".join(args) + ")")

    def out(o: int, c: int | str) -> str:
        if half and outputs[o][1] == "S":
            return f"lk_r{o}[{c}]"  # a float local, rounded to half as it is stored
        width = outputs[o][0]
        return f"out{o}[row]" if width == 1 else f"out{o}[row * {width} + {c}]"

    with b.block(""):
        if n_sh:
            b.line(f"__shared__ T lk_sh[{n_sh} * LK_BLOCK];")
        _block_setup(b, sorted(prog.slots), outputs)
        b.lines(prog.param)
        _row_values(b, prog)
        b.lines(red.state())
        _tiles(b, prog, red, half)
        with b.block("if (row < r1)"):
            for o, (width, ctype) in enumerate(outputs):
                if half and ctype == "S":
                    b.line(f"T lk_r{o}[{width}];")
            b.lines(red.finalize(out))
            for o, (width, ctype) in enumerate(outputs):
                if half and ctype == "S":
                    store = f"out{o}[row * {width} + c] = lk_f2h(lk_r{o}[c]);"
                    b.line(f"for (int c = 0; c < {width}; ++c) {store}")
    return CudaSource(
        b.getvalue(),
        KERNEL_NAME,
        block,
        n_slots,
        tuple(outputs),
        n_sh * block * compute.itemsize,
        dtype.name,
        tuple(params),
    )
