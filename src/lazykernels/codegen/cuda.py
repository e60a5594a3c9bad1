"""The CUDA kernels: the 1D scheme and the two passes of the 2D scheme.

``render_cuda(plan, dtype, block, scheme)`` lowers the plan's formula with the
:class:`.CudaDialect` (the same kernel IR and lowering as the CPU kernel of :mod:`.cpp`) and
prints ``extern "C" __global__ void lk_cuda_kernel(...)``:

* a block of ``block`` threads handles up to ``block`` consecutive output rows (a thread
  per row) of one batch entry; each thread evaluates its row's output-index-only values
  once, in registers;
* the reduction range runs in tiles of ``block`` indices: thread ``t`` of the block
  evaluates the reduction-index-only frontier of index ``j0 + t`` (the inner section, e.g.
  ``y_j`` and ``b_j``, vectors of looped dimension included) into shared memory, the block
  synchronises, and every thread runs over the tile reading it from there (the mixed
  section and the reduction);
* threads past the block's last row still load tiles (every thread reaches every
  ``__syncthreads``) and compute on that last row, but store nothing.

Batch dimensions and block-sparse ranges are runtime arguments of the same kernel (as on
the CPU): block ``blockIdx.x`` is row block ``t = blockIdx.x % n_tab`` of batch entry
``b = blockIdx.x / n_tab``. Without ranges (``tab == NULL``) row block ``t`` is rows
``[t * block, (t + 1) * block)`` reducing over ``[0, n_red)``; with ranges, ``tab`` holds
``(r0, r1, s0, s1)`` per row block: rows ``[r0, r1)`` (at most ``block``) reduce over the
intervals ``redranges[s]`` for ``s`` in ``[s0, s1)``, in that order (none: the row gets the
empty reduction's value). Every thread of a block follows the same intervals, so the
barriers are uniform. Input ``p`` of batch entry ``b`` starts ``offsets[p * n_batch + b]``
elements after its pointer (``offsets == NULL``: 0); output ``o`` of entry ``b`` at
``b * n_out * width``.

The 1D kernel's arguments, all 64-bit (:attr:`CudaSource.params` lists their C types)::

    (n_out, n_red, n_batch, n_tab, out0, ..., g0, ..., g{n-1}, offsets, tab, redranges)

the outputs (``n_batch x n_out x width`` row-major, of the types in
:attr:`CudaSource.outputs`), then the inputs as contiguous device arrays (one per argument
slot, in slot order; an argument the formula does not read is passed and unused). The
grid is ``n_batch * n_tab`` blocks of ``block`` threads, ``n_out`` must be positive.

**The 2D scheme** (``scheme="2D"``) splits each row block's reduction into column blocks
of ``n_chunk`` indices (whole tiles): block ``blockIdx.x`` is column block
``cs = blockIdx.x % n_split`` of row block ``blockIdx.x / n_split`` (decoded as above).
Its intervals (all of them concatenated, in order) are cut at positions
``[cs * n_chunk, (cs + 1) * n_chunk)``; a column block past the end folds nothing. Instead
of the outputs it stores each row's partial accumulator state (the reduction card's
fields, :meth:`.ThreadReduction.layout`) to scratch arrays, field ``f`` of length ``L``
of flat row ``R = b * n_out + row`` and column block ``cs`` at
``p_f[(cs * n_rows + R) * L, ... + L)`` (``n_rows = n_batch * n_out``)::

    (n_out, n_red, n_batch, n_tab, n_split, n_chunk, p0, ..., g0, ..., offsets, tab, redranges)

on ``n_batch * n_tab * n_split`` blocks. The second pass, :attr:`CudaSource.merge`
(``lk_cuda_merge``), is printed from the same card: one thread per flat row merges the
row's ``n_split`` partial states in column order (the card's merge, a later part into an
earlier one) and finalizes into the outputs::

    (n_rows, n_split, out0, ..., p0, ...)

on ``ceil(n_rows / block)`` blocks.

float16 data (``dtype="float16"``) is stored as IEEE binary16 (``lk_half``): inputs are
converted to float as they are loaded (:class:`.CudaHalfDialect`), the formula runs in
float, the accumulator is float (double with ``dtype_acc="float64"``), and the values are
rounded to half as they are stored. The reductions are the per-thread fragments of
:mod:`.reductions_cuda`, printed from every reduction card (weights included).

Formulas of looped dimension (above the unrolling threshold, :data:`.lower.UNROLL_MAX`)
print the kernel IR's loops (plain C loops, no pragma): an input vector is read in place,
a computed reduction-side vector is staged in shared memory dimension-major
(``ys[c * n_rs + jt]``, ``n_rs = LK_BLOCK``, ``jt`` the index in the tile), and a looped
root formula runs the card's dim-1 program once per component. Staging must fit
:attr:`.CudaTarget.shared_budget`: the runner shrinks the tile down to
:attr:`.CudaTarget.min_tile` indices; when even that does not fit, the kernel is printed
with the vectors *not staged* (recomputed per pair from the inputs in global memory), and
says so in its first line (:attr:`CudaSource.staged`).

The op cards' helper functions (``lk_rsqrt``, ``lk_powi``...: :mod:`.helpers`, written
once in a neutral spelling) are printed by the dialect as ``__device__`` templates after the
kernel's typedefs, only those the formula calls, as on the CPU; their defined values at
singular points (``Rsqrt(0) = 0``, ``SinXDivX(0) = 1``, ``XLogX(0) = 0``) are the CPU's.
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
from .target_cuda import CUDA, CudaTarget

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
KERNEL_NAME = "lk_cuda_kernel"
MERGE_NAME = "lk_cuda_merge"
BLOCK = CUDA.block
"""Default threads per block (rows per block, reduction indices per tile)."""
SCHEMES = ("1D", "2D")

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
# the clamps of the looped-dimension rules (loops.py); the emulation header has its own
_MINMAX = [
    "template <typename U> __device__ __forceinline__ U lk_min(U a, U b) { return a < b ? a : b; }",
    "template <typename U> __device__ __forceinline__ U lk_max(U a, U b) { return a > b ? a : b; }",
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
        scheme: ``"1D"``, ``"2D"`` (the first pass: partial states), or ``"merge"`` (the
            2D scheme's second pass).
        state: (C type, length per row, bytes per entry) of each scratch array of the 2D
            scheme (the card's state fields), empty for the 1D scheme.
        merge: the 2D scheme's second pass (None otherwise).
        staged: reduction-side vectors of looped dimension are staged in shared memory
            (False: recomputed per pair from global memory, they did not fit).
    """

    source: str
    name: str
    block: int
    n_slots: int
    outputs: tuple[tuple[int, str], ...]
    shared_bytes: int
    dtype: str = "float32"
    params: tuple[str, ...] = ()
    scheme: str = "1D"
    state: tuple[tuple[str, int, int], ...] = ()
    merge: CudaSource | None = None
    staged: bool = True


@dataclass
class _Kernel:
    """What every printer of one plan shares: the lowered program, the reduction's
    fragments, the types."""

    plan: ReductionPlan
    dtype: np.dtype
    compute: np.dtype
    acc: np.dtype
    prog: ScalarProgram
    red: ThreadReduction
    outputs: list[tuple[int, str]]
    staged: bool
    helpers: list[str]  # the definitions of the helper functions the formula calls

    @property
    def half(self) -> bool:
        return self.dtype == np.float16

    @property
    def n_shared(self) -> int:
        """Values staged per reduction index (a vector counts its components)."""
        return sum(v.width for v in self.prog.inner_values)


def _check(plan: ReductionPlan, prog: ScalarProgram) -> None:
    if prog.slots and max(prog.slots) >= len(plan.slots):
        raise FormulaError(
            f"the formula reads input #{max(prog.slots)}, beyond the {len(plan.slots)} arguments"
        )


def _kernel(plan: ReductionPlan, dtype: np.dtype, block: int, target: CudaTarget) -> _Kernel:
    """Lower ``plan``; vectors are staged unless they do not fit at the smallest tile."""
    half = dtype == np.float16
    compute = np.dtype(np.float32) if half else dtype
    acc_dtype = np.dtype(plan.dtype_acc) if plan.dtype_acc else compute
    dialect = CudaHalfDialect() if half else CudaDialect(dtype)
    roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])

    def program(stage: bool) -> ScalarProgram:
        return lower(
            roots, compute, plan.output_cat, dialect, vec_row="jt", precompute_vectors=stage
        )

    prog, staged = program(True), True
    per_index = sum(v.width for v in prog.inner_values) * compute.itemsize
    if per_index * min(block, target.min_tile) > target.shared_budget:
        prog, staged = program(False), False  # recompute per pair from global memory
    _check(plan, prog)
    vec = prog.vec_roots.get(0)
    dg = plan.weight.dim if plan.weight is not None else 0
    red = thread_reduction(
        plan.reduction,
        plan.formula.dim,
        dg,
        plan.k,
        plan.sum_scheme,
        dialect,
        acc_dtype == compute,
        looped=vec is not None,
    )
    outputs = [(w, "S" if ctype == "T" else ctype) for w, ctype in red.outputs()]
    helpers = [dialect.helper(name) for name in sorted(prog.helpers)]
    return _Kernel(plan, dtype, compute, acc_dtype, prog, red, outputs, staged, helpers)


def _load(pointer: str, index: str, half: bool) -> str:
    return f"lk_h2f({pointer}[{index}])" if half else f"{pointer}[{index}]"


def _offsets(prog: ScalarProgram) -> list[int]:
    """The shared-memory row (in units of ``LK_BLOCK``) where each inner value starts."""
    out, m = [], 0
    for v in prog.inner_values:
        out.append(m)
        m += v.width
    return out


def _intervals(b: IndentedBuffer, two_d: bool):
    """The loop over this block's reduction intervals, ``[ja, jb)`` each; in the 2D scheme
    clipped to the column block's positions ``[q0, q1)`` of their concatenation."""
    b.line("const int64_t ja0 = redranges ? redranges[2 * s] : 0;")
    b.line("const int64_t jb0 = redranges ? redranges[2 * s + 1] : n_red;")
    if not two_d:
        b.line("const int64_t ja = ja0, jb = jb0;")
        return
    b.line("const int64_t qa = q, qb = q + (jb0 - ja0);  // its positions")
    b.line("q = qb;")
    b.line("const int64_t lo = qa > q0 ? qa : q0, hi = qb < q1 ? qb : q1;")
    b.line("if (lo >= hi) continue;  // uniform: every thread of the block skips it")
    b.line("const int64_t ja = ja0 + (lo - qa), jb = ja0 + (hi - qa);")


def _tiles(b: IndentedBuffer, k: _Kernel, two_d: bool) -> None:
    """The loops over the reduction intervals and their tiles: stage the inner frontier in
    shared memory, then every thread folds its row's values over the tile."""
    prog, red, half = k.prog, k.red, k.half
    n_sh = k.n_shared
    offsets = _offsets(prog)
    if two_d:
        b.line("const int64_t q0 = cs * n_chunk, q1 = q0 + n_chunk;")
        b.line("int64_t q = 0;  // position of interval s in the concatenated intervals")
    with b.block("for (int64_t s = s_lo; s < s_hi; ++s)"):
        _intervals(b, two_d)
        with b.block("for (int64_t j0 = ja; j0 < jb; j0 += LK_BLOCK)"):
            if n_sh:
                with b.block("if (j0 + tid < jb)"):
                    b.line("const int64_t j = j0 + tid, jt = tid;")
                    b.line("(void)j; (void)jt;")
                    b.lines(prog.inner)
                    for m, v in zip(offsets, prog.inner_values):
                        if v.width > 1:
                            b.lines(v.stores)  # its rows of lk_sh, through its pointer
                            continue
                        value = v.source if v.source is not None else _load(v.pointer, "j", half)
                        b.line(f"lk_sh[{m} * LK_BLOCK + tid] = {value};")
                b.line("__syncthreads();")
            b.line("const int64_t jn = jb - j0 < LK_BLOCK ? jb - j0 : LK_BLOCK;")
            b.lines(red.tile_begin())
            with b.block("for (int64_t jj = 0; jj < jn; ++jj)"):
                b.line("const int64_t j = j0 + jj, jt = jj;")
                b.line("(void)j; (void)jt;  // read by index-dependent formulas, arg-reductions")
                for m, v in zip(offsets, prog.inner_values):
                    if v.width == 1:
                        b.line(f"const T {v.load} = lk_sh[{m} * LK_BLOCK + jj];")
                b.lines(prog.mixed)
                weights = prog.roots[1] if len(prog.roots) > 1 else []
                vec = prog.vec_roots.get(0)
                if vec is None:
                    b.lines(red.pair(prog.roots[0], weights))
                else:  # component cc of a looped formula, inside the card's loop
                    b.lines(red.pair([vec.value], weights, vec.body))
            b.lines(red.tile_end())
            if n_sh:
                b.line("__syncthreads();")


def _row_values(b: IndentedBuffer, prog: ScalarProgram) -> None:
    """The row's output-index-only values (rows past the block's end compute on its last)."""
    b.line("const int64_t i = row < r1 ? row : r1 - 1;")
    b.line("(void)i;")
    if prog.outer_store:
        b.line("const int64_t k = 0;")
        b.line("T " + ", ".join(f"{a}[1]" for a, _ in prog.outer_store) + ";")
        b.lines(prog.outer)
        for array, value in prog.outer_store:
            b.line(f"{array}[k] = {value};")
        for local, array in prog.row_loads:
            b.line(f"const T {local} = {array}[k];")


def _block_setup(b: IndentedBuffer, k: _Kernel, two_d: bool) -> None:
    """This block's batch entry, rows and reduction intervals; the entry's pointers (of
    the inputs the formula reads, of the outputs in the 1D scheme)."""
    b.line("const int tid = threadIdx.x;")
    if two_d:
        b.line("const int64_t cs = (int64_t)blockIdx.x % n_split;  // column block")
        b.line("const int64_t tb = (int64_t)blockIdx.x / n_split;")
    else:
        b.line("const int64_t tb = (int64_t)blockIdx.x;")
    b.line("const int64_t t = tb % n_tab, bt = tb / n_tab;")
    b.line("int64_t r0 = t * LK_BLOCK, r1 = r0 + LK_BLOCK < n_out ? r0 + LK_BLOCK : n_out;")
    b.line("int64_t s_lo = 0, s_hi = 1;  // without ranges: one interval, [0, n_red)")
    with b.block("if (tab)"):
        b.line("r0 = tab[4 * t]; r1 = tab[4 * t + 1];")
        b.line("s_lo = tab[4 * t + 2]; s_hi = tab[4 * t + 3];")
    for p in sorted(k.prog.slots):
        b.line(f"const S* __restrict__ a{p} = g{p} + (offsets ? offsets[{p} * n_batch + bt] : 0);")
    if not two_d:
        for o, (width, ctype) in enumerate(k.outputs):
            b.line(f"{ctype}* __restrict__ out{o} = o{o} + bt * n_out * {width};")
    b.line("const int64_t row = r0 + tid;")
    if any(v.width > 1 for v in k.prog.inner_values):
        b.line("const int64_t n_rs = LK_BLOCK;  // the stride of the staged vectors")
        for m, v in zip(_offsets(k.prog), k.prog.inner_values):
            if v.width > 1:
                b.line(f"T* const {v.pointer} = lk_sh + {m} * LK_BLOCK;")


def _prelude(k: _Kernel, block: int, scheme: str) -> list[str]:
    plan, dtype = k.plan, k.dtype
    staging = "" if k.staged else " Looped vectors recomputed from global memory (no room)."
    return [
        f"// lazykernels CUDA kernel ({scheme} scheme): {plan.reduction} reduction, output "
        f"indexed by {plan.output_cat.name}, {dtype.name} data, {_CTYPES[k.acc]} accumulator, "
        f"{plan.sum_scheme}.{staging}",
        "// Generated code: a deterministic function of the reduction plan.",
        "#ifndef LK_HOST_EMULATION",
        "typedef long long int64_t;",
        *(_HALF_PRELUDE if k.half else []),
        *_MINMAX,
        "#endif",
        f"typedef {'float' if k.half else _CTYPES[dtype]} T;  // arithmetic",
        f"typedef {_CTYPES[k.acc]} A;  // accumulator",
        f"typedef {'lk_half' if k.half else 'T'} S;  // storage",
        f"#define LK_BLOCK {block}",
        "",
    ]


def _signature(b: IndentedBuffer, name: str, params: list[str], names: list[str]) -> None:
    args = [
        f"{c} {n}" if c == "int64_t" else f"{c} __restrict__ {n}" for c, n in zip(params, names)
    ]
    b.line(f'extern "C" __global__ void {name}(')
    b.line("    " + ",\n    ".join(args) + ")")


def _finalize(b: IndentedBuffer, k: _Kernel) -> None:
    """The row's outputs from its state ``lk_*``, stored at ``out{o}[row * width + c]``
    (half: through float locals, rounded as they are stored)."""
    outputs, half = k.outputs, k.half

    def out(o: int, c: int | str) -> str:
        if half and outputs[o][1] == "S":
            return f"lk_r{o}[{c}]"  # a float local, rounded to half as it is stored
        width = outputs[o][0]
        return f"out{o}[row]" if width == 1 else f"out{o}[row * {width} + {c}]"

    for o, (width, ctype) in enumerate(outputs):
        if half and ctype == "S":
            b.line(f"T lk_r{o}[{width}];")
    b.lines(k.red.finalize(out))
    for o, (width, ctype) in enumerate(outputs):
        if half and ctype == "S":
            store = f"out{o}[row * {width} + c] = lk_f2h(lk_r{o}[c]);"
            b.line(f"for (int c = 0; c < {width}; ++c) {store}")


def _state(k: _Kernel) -> list[tuple[str, str, int, int]]:
    """(field, C type, length, bytes per entry) of each array of the state that the merge
    or the finalization reads (a tile-local field, e.g. a block sum's partial sum, is
    spent by the end of each tile: it is neither stored nor merged)."""
    sizes = {"T": k.compute.itemsize, "A": k.acc.itemsize, "int64_t": 8}
    text = "\n".join(
        k.red.merge(lambda f, i: f"lk_{f}[{i}]", lambda f, i: f"lk_{f}[{i}]")
        + k.red.finalize(lambda o, c: f"out{o}[{c}]")
    )
    return [(n, c, length, sizes[c]) for n, c, length in k.red.layout() if f"lk_{n}[" in text]


def _partial_kernel(k: _Kernel, block: int, scheme: str) -> tuple[str, list[str]]:
    """The source and parameter types of the 1D kernel, or of the 2D scheme's first pass."""
    two_d = scheme == "2D"
    n_slots = len(k.plan.slots)
    b = IndentedBuffer()
    b.lines(_prelude(k, block, scheme))
    for text in k.helpers:
        b.lines([*text.splitlines(), ""])
    params = ["int64_t"] * 4
    names = ["n_out", "n_red", "n_batch", "n_tab"]
    if two_d:
        state = _state(k)
        params += ["int64_t"] * 2 + [f"{c}*" for _, c, _, _ in state]
        names += ["n_split", "n_chunk"] + [f"p_{n}" for n, _, _, _ in state]
    else:
        params += [f"{c}*" for _, c in k.outputs]
        names += [f"o{o}" for o in range(len(k.outputs))]
    params += ["const S*"] * n_slots + ["const int64_t*"] * 3
    names += [f"g{p}" for p in range(n_slots)] + ["offsets", "tab", "redranges"]
    _signature(b, KERNEL_NAME, params, names)
    with b.block(""):
        if k.n_shared:
            b.line(f"__shared__ T lk_sh[{k.n_shared} * LK_BLOCK];")
        _block_setup(b, k, two_d)
        b.lines(k.prog.param)
        _row_values(b, k.prog)
        b.lines(k.red.state())
        _tiles(b, k, two_d)
        with b.block("if (row < r1)"):
            if not two_d:
                _finalize(b, k)
            else:  # the partial state of (column block cs, flat row bt * n_out + row)
                b.line("const int64_t lk_p = cs * (n_batch * n_out) + bt * n_out + row;")
                for name, _, length, _ in _state(k):
                    store = f"p_{name}[lk_p * {length} + c] = lk_{name}[c];"
                    b.line(f"for (int c = 0; c < {length}; ++c) {store}")
    return b.getvalue(), params


def _merge_kernel(k: _Kernel, block: int) -> tuple[str, list[str]]:
    """The 2D scheme's second pass: merge each row's partial states, then finalize."""
    state = _state(k)
    b = IndentedBuffer()
    b.lines(_prelude(k, block, "2D merge"))
    params = ["int64_t"] * 2 + [f"{c}*" for _, c in k.outputs]
    params += [f"const {c}*" for _, c, _, _ in state]
    names = ["n_rows", "n_split", *(f"out{o}" for o in range(len(k.outputs)))]
    names += [f"p_{n}" for n, _, _, _ in state]
    _signature(b, MERGE_NAME, params, names)
    lengths = {n: length for n, _, length, _ in state}
    with b.block(""):
        b.line("const int64_t row = (int64_t)blockIdx.x * LK_BLOCK + threadIdx.x;")
        with b.block("if (row < n_rows)"):  # no barrier in this kernel
            for name, ctype, length, _ in state:
                b.line(f"{ctype} lk_{name}[{length}];")
                load = f"lk_{name}[c] = p_{name}[row * {length} + c];"
                b.line(f"for (int c = 0; c < {length}; ++c) {load}")
            with b.block("for (int64_t cs = 1; cs < n_split; ++cs)"):
                b.line("const int64_t lk_q = cs * n_rows + row;")
                b.lines(
                    k.red.merge(
                        lambda f, i: f"lk_{f}[{i}]",
                        lambda f, i: f"p_{f}[lk_q * {lengths[f]} + ({i})]",
                    )
                )
            _finalize(b, k)
    return b.getvalue(), params


def render_cuda(
    plan: ReductionPlan,
    dtype: np.dtype | str,
    block: int = BLOCK,
    scheme: str = "1D",
    target: CudaTarget = CUDA,
) -> CudaSource:
    """The CUDA source of ``plan`` for ``dtype`` (float16, float32 or float64) in the 1D or
    2D ``scheme`` (the 2D one with its second pass in :attr:`CudaSource.merge`).

    Raises:
        FormulaError: the plan needs something the CUDA kernel does not print (see the
            module docstring), or the formula cannot be lowered.
    """
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise FormulaError(
            f"CUDA kernels are generated for float16, float32 or float64, not {dtype}"
        )
    if block < 1 or block > 1024:
        raise FormulaError(f"a CUDA block has 1 to 1024 threads, not {block}")
    if scheme not in SCHEMES:
        raise FormulaError(f"the CUDA schemes are {SCHEMES}, not {scheme!r}")
    k = _kernel(plan, dtype, block, target)
    n_slots = len(plan.slots)
    shared = k.n_shared * block * k.compute.itemsize
    source, params = _partial_kernel(k, block, scheme)
    merge = None
    state: tuple[tuple[str, int, int], ...] = ()
    if scheme == "2D":
        state = tuple((c, length, size) for _, c, length, size in _state(k))
        text, merge_params = _merge_kernel(k, block)
        merge = CudaSource(
            text,
            MERGE_NAME,
            block,
            n_slots,
            tuple(k.outputs),
            0,
            dtype.name,
            tuple(merge_params),
            "merge",
            state,
            None,
            k.staged,
        )
    return CudaSource(
        source,
        KERNEL_NAME,
        block,
        n_slots,
        tuple(k.outputs),
        shared,
        dtype.name,
        tuple(params),
        scheme,
        state,
        merge,
        k.staged,
    )
