"""The CPU kernel: one map-reduce skeleton for every reduction, printed as C++.

``render_cpu(plan, dtype)`` lowers the plan's formula(s) (:mod:`.lower`), takes the
reduction's fragments (:mod:`.reductions_cpp`) and prints ``extern "C" int lk_kernel(...)``:

* the reduction-index-only part of the formula is precomputed once per batch entry into
  dimension-major arrays (``ys*``: contiguous lanes for the inner loop);
* output rows go in blocks of ``BI`` (a row list of the requested ranges), their
  output-index-only values held in small arrays; OpenMP threads take (block, part of the
  reduction range) work items; the range is split in ``q`` parts when there are too few
  blocks to feed every thread, and the parts' states are merged afterwards;
* the reduction index runs in tiles of ``TJ``; per row and tile the reduction's ``tile``
  fragment runs an ``omp simd`` loop over ``__restrict`` pointers;
* batch entries are processed in chunks (bounded precompute memory); block-sparse ranges
  only change the row list and the reduction intervals of each block.

The calling convention (all sizes int64, pointers to contiguous data)::

    int lk_kernel(n_out, n_red, n_batch, args[n_slots], offsets[n_slots * n_batch],
                  outs[n_outputs], n_ranges (-1: none), ranges_out, slices, redranges,
                  n_threads (0: OpenMP default))

``offsets[p * n_batch + b]`` is the element offset of batch entry ``b`` of input ``p`` (0
for broadcast entries); output ``o`` of batch entry ``b`` starts at ``b * n_out * width``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.plan import REDUCTIONS, SUM_SCHEMES, ReductionPlan
from ..errors import FormulaError
from . import helpers as op_helpers
from .buffer import IndentedBuffer
from .fastmath import CPU_HELPERS
from .lower import ScalarProgram, lower
from .reductions_cpp import Access, CppReduction, Output, TileCtx, cpp_reduction

BI = 8  # output rows per block
TJ_FUSED = 2048  # reduction indices per tile (fused simd reductions: no tile buffers)
TILE_BUFFER_BYTES = 16384  # budget of the tile buffers of the buffered reductions
MIN_SPLIT = 2048  # fewest reduction indices per part when the range is split
PRE_LIMIT = 1 << 24  # precomputed scalars per batch chunk (64 MiB in float32)
SERIAL_PAIRS = 1 << 17  # below this many pairs, one thread (fork/join costs more)

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_HEADERS = ("algorithm", "cmath", "cstdint", "cstring", "limits", "vector")


@dataclass(frozen=True)
class KernelSource:
    """A printed kernel and what its caller needs to know.

    Attributes:
        source: the C++ text (a deterministic function of the plan and dtype).
        outputs: width (scalars per row) and C type of each output.
        n_slots: number of input pointers the kernel takes.
    """

    source: str
    outputs: tuple[Output, ...]
    n_slots: int


def _tile_len(red: CppReduction, dtype: np.dtype, acc_dtype: np.dtype) -> int:
    row_bytes = red.n_buffers() * dtype.itemsize + red.n_acc_buffers() * acc_dtype.itemsize
    if row_bytes == 0:
        return TJ_FUSED
    tj = TILE_BUFFER_BYTES // row_bytes
    tj = 1 << (max(tj, 1).bit_length() - 1)
    return max(64, min(TJ_FUSED, tj))


def _helper_sources(names: set[str]) -> list[str]:
    out = []
    for name in sorted(names):
        if name in CPU_HELPERS:
            out.append(CPU_HELPERS[name])
        elif name in op_helpers.HELPERS:
            out.append(op_helpers.HELPERS[name])
        else:
            raise FormulaError(f"no C++ source for the helper {name!r}")
    return out


class _Printer:
    """Prints the skeleton around one scalar program and one reduction."""

    def __init__(self, plan: ReductionPlan, dtype: np.dtype) -> None:
        if plan.reduction not in REDUCTIONS:
            raise FormulaError(f"unknown reduction {plan.reduction!r}")
        if plan.sum_scheme not in SUM_SCHEMES:
            raise FormulaError(f"unknown sum scheme {plan.sum_scheme!r}")
        self.plan, self.dtype = plan, dtype
        self.acc_dtype = np.dtype(plan.dtype_acc) if plan.dtype_acc else dtype
        if self.acc_dtype not in _CTYPES:
            raise FormulaError(f"accumulators are float32 or float64, not {plan.dtype_acc!r}")
        roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])
        self.prog: ScalarProgram = lower(roots, dtype, plan.output_cat)
        dg = plan.weight.dim if plan.weight is not None else 0
        self.red = cpp_reduction(plan.reduction, plan.formula.dim, dg, plan.k, plan.sum_scheme)
        self.fields = self.red.fields()
        self.outputs = self.red.outputs()
        self.tj = _tile_len(self.red, dtype, self.acc_dtype)
        self.pre = self.prog.precomputed
        self.b = IndentedBuffer()

    # --- accessors ---------------------------------------------------------------------

    def _len(self, name: str) -> int:
        return next(f.length for f in self.fields if f.name == name)

    def st(self, name: str, idx: str) -> str:
        n = self._len(name)
        return f"st_{name}[k]" if n == 1 else f"st_{name}[k * {n} + {idx}]"

    def part(self, name: str, idx: str) -> str:
        return f"part_{name}[pr * {self._len(name)} + {idx}]"

    def out(self, o: int) -> Access:
        width = self.outputs[o].width

        def access(_: str, idx: str) -> str:
            return f"out{o}[i]" if width == 1 else f"out{o}[i * {width} + {idx}]"

        return access

    # --- pieces ------------------------------------------------------------------------

    def batch_pointers(self) -> None:
        for p in sorted(self.prog.slots):
            self.b.line(
                f"const T* __restrict a{p} = (const T*)args[{p}] + offsets[{p} * n_batch + b];"
            )

    def params(self) -> None:
        self.batch_pointers()
        self.b.lines(self.prog.param)

    def pre_pointers(self, const: bool) -> None:
        q = "const T*" if const else "T*"
        for m, v in enumerate(self.pre):
            at = f"((b - b0) * NPRE + {m}) * n_red"
            self.b.line(f"{q} __restrict {v.pointer} = pre.data() + {at};")

    def out_pointers(self) -> None:
        for o, spec in enumerate(self.outputs):
            t = spec.ctype
            self.b.line(f"{t}* __restrict out{o} = ({t}*)outs[{o}] + b * n_out * {spec.width};")

    def init_row(self) -> None:
        for f in self.fields:
            if f.length == 1:
                self.b.line(f"{self.st(f.name, '0')} = {f.init};")
            else:
                with self.b.block(f"for (int64_t c = 0; c < {f.length}; ++c)"):
                    self.b.line(f"{self.st(f.name, 'c')} = {f.init};")

    def copy_row(self, to_part: bool) -> None:
        for f in self.fields:
            dst, src = (self.part, self.st) if to_part else (self.st, self.part)
            if f.length == 1:
                self.b.line(f"{dst(f.name, '0')} = {src(f.name, '0')};")
            else:
                with self.b.block(f"for (int64_t c = 0; c < {f.length}; ++c)"):
                    self.b.line(f"{dst(f.name, 'c')} = {src(f.name, 'c')};")

    def finalize_row(self) -> None:
        self.red.finalize(self.b, self.st, [self.out(o) for o in range(len(self.outputs))])

    def eval_loop(self, b: IndentedBuffer, clause: str, stmts: list[str]) -> None:
        b.pragma(f"omp simd {clause}".rstrip())
        with b.block("for (int64_t j = j0; j < j1; ++j)"):
            for v in self.prog.inner_values:
                b.line(f"const T {v.load} = {v.pointer}[j];")
            b.lines(self.prog.mixed)
            b.lines(stmts)

    # --- the kernel --------------------------------------------------------------------

    def render(self) -> KernelSource:
        b, plan = self.b, self.plan
        acc = _CTYPES[self.acc_dtype]
        b.line(
            f"// lazykernels CPU kernel: {plan.reduction} reduction, output indexed by "
            f"{plan.output_cat.name}, {self.dtype.name} data, {acc} accumulator, {plan.sum_scheme}."
        )
        b.line("// Generated code: a deterministic function of the reduction plan.")
        for h in _HEADERS:
            b.line(f"#include <{h}>")
        b.lines(["#ifdef _OPENMP", "#include <omp.h>", "#endif", ""])
        b.lines([f"typedef {_CTYPES[self.dtype]} T;", f"typedef {acc} A;", ""])
        helpers = set(self.prog.helpers) | set(self.red.helpers)
        for text in _helper_sources(helpers):
            b.line(text.strip("\n"))
            b.line()
        b.line('extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,')
        b.line("                         const void* const* args, const int64_t* offsets,")
        b.line("                         void* const* outs, int64_t n_ranges,")
        b.line("                         const int64_t* ranges_out,")
        b.line("                         const int64_t* slices, const int64_t* redranges,")
        with b.block("                         int64_t n_threads)"):
            self.prologue()
            with b.block("try"):
                self.allocations()
                b.pragma("omp parallel num_threads(nt)")
                with b.block():
                    self.parallel_body()
            with b.block("catch (...)"):
                b.line("return 1;")
            b.line("return 0;")
        n_slots = len(plan.slots)
        if self.prog.slots and max(self.prog.slots) >= n_slots:
            raise FormulaError(
                f"the formula reads input #{max(self.prog.slots)}, beyond the {n_slots} arguments"
            )
        return KernelSource(b.getvalue(), tuple(self.outputs), n_slots)

    def prologue(self) -> None:
        b = self.b
        b.lines(
            [
                f"const int64_t BI = {BI}, TJ = {self.tj}, NPRE = {len(self.pre)};",
                "if (n_out <= 0 || n_batch <= 0) return 0;",
                "int nt = 1;",
                "#ifdef _OPENMP",
                "nt = n_threads > 0 ? (int)n_threads : omp_get_max_threads();",
                "#endif",
                "const double pairs = (double)n_batch * (double)n_out * (double)n_red;",
                f"if (pairs < {SERIAL_PAIRS}.0) nt = 1;",
            ]
        )

    def allocations(self) -> None:
        b = self.b
        b.line("// blocks of output rows: (first row, end row, range or -1)")
        b.line("std::vector<int64_t> blk;")
        with b.block("if (n_ranges < 0)"), b.block("for (int64_t lo = 0; lo < n_out; lo += BI)"):
            b.line("blk.insert(blk.end(), {lo, std::min(n_out, lo + BI), (int64_t)-1});")
        with b.block("else"), b.block("for (int64_t r = 0; r < n_ranges; ++r)"):
            b.line("const int64_t lo0 = std::max<int64_t>(0, ranges_out[2 * r]);")
            b.line("const int64_t hi0 = std::min(n_out, ranges_out[2 * r + 1]);")
            with b.block("for (int64_t lo = lo0; lo < hi0; lo += BI)"):
                b.line("blk.insert(blk.end(), {lo, std::min(hi0, lo + BI), r});")
        b.line("const int64_t n_blk = (int64_t)blk.size() / 3;")
        b.line("// batch entries per chunk: bounded memory for the precomputed inner values")
        b.line("int64_t bc = n_batch;")
        b.line(
            f"if (NPRE > 0 && n_red > 0) bc = std::max<int64_t>(1, std::min<int64_t>(n_batch, "
            f"{PRE_LIMIT} / (NPRE * n_red)));"
        )
        b.line("// split the reduction range when there are too few blocks to feed every thread")
        b.line("int64_t q = 1;")
        b.line("const int64_t items = bc * n_blk;")
        with b.block(f"if (nt > 1 && items > 0 && items < 4 * nt && n_red >= {2 * MIN_SPLIT})"):
            b.line("q = (8 * nt + items - 1) / items;")
            b.line(f"q = std::max<int64_t>(1, std::min<int64_t>(q, n_red / {MIN_SPLIT}));")
        b.line("std::vector<T> pre((size_t)(bc * NPRE * std::max<int64_t>(n_red, 0)));")
        b.line("const size_t n_part = q > 1 ? (size_t)(items * q * BI) : 0;")
        for f in self.fields:
            b.line(f"std::vector<{f.ctype}> part_{f.name}(n_part * {f.length});")

    def parallel_body(self) -> None:
        b = self.b
        for f in self.fields:
            b.line(f"std::vector<{f.ctype}> st_{f.name}_v(BI * {f.length});")
            b.line(f"{f.ctype}* __restrict st_{f.name} = st_{f.name}_v.data();")
        nbuf = self.red.n_buffers()
        if nbuf:
            b.line(f"std::vector<T> tb_v(TJ * {nbuf});")
            for c in range(nbuf):
                b.line(f"T* __restrict tb{c} = tb_v.data() + {c} * TJ;")
        nacc = self.red.n_acc_buffers()
        if nacc:
            b.line(f"std::vector<A> kb_v(TJ * {nacc});")
            for c in range(nacc):
                b.line(f"A* __restrict kb{c} = kb_v.data() + {c} * TJ;")
        with b.block("for (int64_t b0 = 0; b0 < n_batch; b0 += bc)"):
            b.line("const int64_t b1 = std::min(n_batch, b0 + bc);")
            if self.pre:
                self.precompute()
            with b.block("if (n_ranges >= 0)"):
                b.line("// rows outside every range get the empty-reduction value")
                b.pragma("omp for schedule(static) nowait")
                with b.block("for (int64_t w = 0; w < (b1 - b0) * n_out; ++w)"):
                    b.line("const int64_t b = b0 + w / n_out, i = w % n_out, k = 0;")
                    self.out_pointers()
                    self.init_row()
                    self.finalize_row()
            if self.pre:
                b.pragma("omp barrier")
            else:
                with b.block("if (n_ranges >= 0)"):
                    b.pragma("omp barrier")
            self.work_items()
            b.line(
                "// the merge reads every part; the next chunk overwrites the precomputed values"
            )
            with b.block("if (q > 1 || b1 < n_batch)"):
                b.pragma("omp barrier")
            with b.block("if (q > 1)"):
                self.merge_parts()

    def precompute(self) -> None:
        b = self.b
        b.line("// reduction-index-only values, dimension-major")
        with b.block("for (int64_t b = b0; b < b1; ++b)"):
            self.params()
            self.pre_pointers(const=False)
            b.pragma("omp for schedule(static) nowait")
            with b.block("for (int64_t j = 0; j < n_red; ++j)"):
                b.lines(self.prog.inner)
                for v in self.pre:
                    b.line(f"{v.pointer}[j] = {v.source};")

    def work_items(self) -> None:
        b, prog = self.b, self.prog
        b.pragma("omp for schedule(dynamic, 1) nowait")
        with b.block("for (int64_t w = 0; w < (b1 - b0) * n_blk * q; ++w)"):
            b.line("const int64_t b = b0 + w / (n_blk * q), ib = (w / q) % n_blk, iq = w % q;")
            self.params()
            self.pre_pointers(const=True)
            b.line(
                "const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0, rg = blk[3 * ib + 2];"
            )
            if prog.outer_store:
                b.line("T " + ", ".join(f"{a}[{BI}]" for a, _ in prog.outer_store) + ";")
                with b.block("for (int64_t k = 0; k < BI; ++k)"):
                    b.line("const int64_t i = i0 + (k < bi ? k : 0);")
                    b.lines(prog.outer)
                    for array, value in prog.outer_store:
                        b.line(f"{array}[k] = {value};")
            with b.block("for (int64_t k = 0; k < bi; ++k)"):
                self.init_row()
            b.line("const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;")
            b.line("const int64_t s0 = rg <= 0 ? 0 : slices[rg - 1], s1 = rg < 0 ? 1 : slices[rg];")
            with b.block("for (int64_t s = s0; s < s1; ++s)"):
                b.line("const int64_t ja = std::max(jlo, rg < 0 ? (int64_t)0 : redranges[2 * s]);")
                b.line("const int64_t jb = std::min(jhi, rg < 0 ? n_red : redranges[2 * s + 1]);")
                with b.block("for (int64_t j0 = ja; j0 < jb; j0 += TJ)"):
                    b.line("const int64_t j1 = std::min(jb, j0 + TJ);")
                    with b.block("for (int64_t k = 0; k < bi; ++k)"):
                        for local, array in prog.row_loads:
                            b.line(f"const T {local} = {array}[k];")
                        g = prog.roots[1] if len(prog.roots) > 1 else []
                        same = self.acc_dtype == self.dtype
                        tc = TileCtx(prog.roots[0], g, self.st, self.eval_loop, same)
                        self.red.tile(b, tc)
            with b.block("if (q == 1)"):
                self.out_pointers()
                with b.block("for (int64_t k = 0; k < bi; ++k)"):
                    b.line("const int64_t i = i0 + k;")
                    self.finalize_row()
            with b.block("else"), b.block("for (int64_t k = 0; k < bi; ++k)"):
                b.line("const int64_t pr = ((w / (n_blk * q) * n_blk + ib) * q + iq) * BI + k;")
                self.copy_row(to_part=True)

    def merge_parts(self) -> None:
        b = self.b
        b.pragma("omp for schedule(static)")
        with b.block("for (int64_t w = 0; w < (b1 - b0) * n_blk; ++w)"):
            b.line("const int64_t b = b0 + w / n_blk, ib = w % n_blk;")
            b.line("const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0;")
            self.out_pointers()
            with b.block("for (int64_t k = 0; k < bi; ++k)"):
                with b.block():
                    b.line("const int64_t pr = (w * q) * BI + k;")
                    self.copy_row(to_part=False)
                with b.block("for (int64_t iq = 1; iq < q; ++iq)"):
                    b.line("const int64_t pr = (w * q + iq) * BI + k;")
                    self.red.merge(b, self.st, self.part)
                b.line("const int64_t i = i0 + k;")
                self.finalize_row()


def render_cpu(plan: ReductionPlan, dtype: np.dtype | str) -> KernelSource:
    """Print the C++ kernel of ``plan`` for data of type ``dtype`` (float32 or float64).

    Raises:
        FormulaError: an op cannot be lowered, or the plan is inconsistent.
        DimensionError: e.g. a log-sum-exp reduction of a vector formula.
    """
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        raise FormulaError(f"CPU kernels exist for float32 and float64, not {dtype}")
    return _Printer(plan, dtype).render()
