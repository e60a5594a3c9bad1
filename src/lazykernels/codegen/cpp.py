"""The CPU kernel: one map-reduce skeleton for every reduction, printed as C++.

``render_cpu(plan, dtype)`` lowers the plan's formula(s) (:mod:`.lower`), takes the
reduction's fragments (:mod:`.reductions_cpp`) and prints ``extern "C" int lk_kernel(...)``:

* the reduction-index-only part of the formula is precomputed once per batch entry into
  dimension-major arrays (``ys*``: contiguous lanes for the inner loop), padded by ``PAD``
  zeros;
* output rows go in blocks of ``BI`` (a row list of the requested ranges), their
  output-index-only values held in small arrays; a *work item* is a group of ``G``
  consecutive blocks times one of ``q`` parts of the reduction range: ``G`` grows when the
  reduction range is short (a tall M x 100 problem: fewer, bigger items), ``q`` when there
  are too few blocks to feed every thread (the parts' states are merged afterwards);
* the reduction index runs in tiles of ``TJ``; per row and tile the reduction's ``tile``
  fragment runs an ``omp simd`` loop over ``__restrict`` pointers. The loop covers whole
  vectors of ``VW`` indices (the target's vector width: 32 bytes, 64 under AVX-512); the
  rest is *one* vector ending at the tile's end whose lanes before the rest are masked out
  (no scalar epilogue: it cost 15-20% at N = 100);
* squared distances of dimension >= 16 feeding a min-type reduction take the blocked
  ``|u|^2 + |v|^2 + 2 u.v`` path of :mod:`.sqdist_cpp` instead; with ``dotprod=True``,
  formulas of high-dimensional inner products take the dot-product path of
  :mod:`.dotprod_cpp` (tiles of inner products, the rest of the formula on the tile);
* batch entries are processed in chunks (bounded precompute memory); block-sparse ranges
  only change the row list and the reduction intervals of each block.

Threads: the kernel runs a ``body(slot)`` on the caller and on the workers of the thread
pool of :mod:`.runtime` (passed as the ``pool`` argument; NULL: one thread). Every
participant claims work from one atomic counter: first the precompute chunks, then the work
items (an item waits, yielding, only for precompute chunks claimed by others and still
running). No barrier waits for a thread that has not started, and nothing spins. With
``n_threads = 0`` the thread count is ``omp_get_max_threads()`` capped so that each thread
gets at least ``PAIRS_PER_THREAD`` pairs; an explicit ``n_threads`` is used as given.

The calling convention (all sizes int64, pointers to contiguous data)::

    int lk_kernel(n_out, n_red, n_batch, args[n_slots], offsets[n_slots * n_batch],
                  outs[n_outputs], n_ranges (-1: none), ranges_out, slices, redranges,
                  n_threads (0: automatic), pool (lk_pool_run, or NULL))

``offsets[p * n_batch + b]`` is the element offset of batch entry ``b`` of input ``p`` (0
for broadcast entries); output ``o`` of batch entry ``b`` starts at ``b * n_out * width``.
It returns 0, or 1 when memory ran out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormulaError
from ..reductions import SPECS
from ..reductions.plan import SUM_SCHEMES, ReductionPlan
from . import schedule_cpp as schedule
from .buffer import IndentedBuffer
from .cpu_reductions import PerComponent, cpp_reduction
from .dotgrad_cpp import DotGrad, match_dotgrad
from .dotprod_cpp import DotGemm, match_dotprod
from .exact import formula_rounding
from .lower import ScalarProgram, lower
from .prelude import SKELETON_HELPERS, THREAD_HEADERS, helper_sources, includes, rounding_lines
from .reductions_cpp import Access, Output, SumRed, TileCtx, masked_store
from .runtime import POOL_SIGNATURE
from .sqdist_cpp import SqDistGemm, match_sqdist
from .sqdist_cpp import usable as sqdist_usable
from .target_cpu import CPU, CpuTarget

_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


@dataclass(frozen=True)
class KernelSource:
    """A printed kernel and what its caller needs to know.

    Attributes:
        source: the C++ text (a deterministic function of the plan and dtype).
        outputs: width (scalars per row) and C type of each output.
        n_slots: number of input pointers the kernel takes.
        path: "tiled" (the per-row vectorised loops), "sqdist-gemm" (the blocked
            squared-distance path of :mod:`.sqdist_cpp`) or "dot-gemm" (the dot-product
            path of :mod:`.dotprod_cpp`).
    """

    source: str
    outputs: tuple[Output, ...]
    n_slots: int
    path: str = "tiled"


class _Printer:
    """Prints the skeleton around one scalar program and one reduction."""

    def __init__(
        self,
        plan: ReductionPlan,
        dtype: np.dtype,
        sqdist_gemm: bool,
        target: CpuTarget,
        dotprod: bool = False,
    ) -> None:
        if plan.reduction not in SPECS:
            raise FormulaError(f"unknown reduction {plan.reduction!r}")
        if plan.sum_scheme not in SUM_SCHEMES:
            raise FormulaError(f"unknown sum scheme {plan.sum_scheme!r}")
        self.plan, self.dtype, self.t = plan, dtype, target
        self.acc_dtype = np.dtype(plan.dtype_acc) if plan.dtype_acc else dtype
        if self.acc_dtype not in _CTYPES:
            raise FormulaError(f"accumulators are float32 or float64, not {plan.dtype_acc!r}")
        dg = plan.weight.dim if plan.weight is not None else 0
        vec = target.vectorised_reductions
        self.red = cpp_reduction(
            plan.reduction, plan.formula.dim, dg, plan.k, plan.sum_scheme, dtype, vec
        )
        sqdist_gemm = sqdist_gemm and target.vectorised_reductions
        match = match_sqdist(plan, target.gemm_min_dim) if sqdist_gemm else None
        self.gemm: SqDistGemm | None = None
        n_max = target.unroll_max
        if match is not None:
            both = frozenset({0, 1})
            prog = lower([match.outer, match.inner], dtype, plan.output_cat, None, n_max, both)
            if sqdist_usable(prog, match):
                self.prog: ScalarProgram = prog
                self.gemm = SqDistGemm(match, prog, self.red, dtype, target)
                self.bi, self.tj = self.gemm.rows, self.gemm.cols
                self.n_pre = match.dim + 1  # + the squared norms
        self.vec = None
        self.dot: DotGemm | None = None
        dot = match_dotprod(plan, target.gemm_min_dim) if dotprod and self.gemm is None else None
        grad = None
        if dotprod and self.gemm is None and dot is None:
            grad = match_dotgrad(plan, target.gemm_min_dim)
            dot = None if grad is None else grad.scalar
        self.grad = None if grad is None else DotGrad(grad)
        if self.gemm is None:
            roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])
            if dot is not None:
                roots = list(dot.roots)
            pairs = dot is not None
            self.prog = lower(roots, dtype, plan.output_cat, None, n_max, pairs=pairs)
            self.vec = self.prog.vec_roots.get(0)
            n_buf = 0
            if self.vec is not None:  # one pass per component of a looped formula
                red1 = cpp_reduction(plan.reduction, 1, dg, plan.k, plan.sum_scheme, dtype, vec)
                self.red = PerComponent(red1, self.vec.dim)
                n_buf = len(self.vec.buffered)
            self.bi = target.block_rows
            self.tj = schedule.tile_len(self.red, dtype, self.acc_dtype, target, n_buf)
            self.n_pre = self.prog.n_precomputed
            if dot is not None:
                self.dot = DotGemm(dot, target, self.n_pre)
                self.bi, self.tj = self.dot.rows, max(self.tj, self.dot.cols)
                self.n_pre += self.dot.n_pre
        self.pair_slots = self.dot.pair_slots() if self.dot else set()
        self.fields = self.red.fields()
        self.outputs = self.red.outputs()
        self.pre = self.prog.precomputed
        red = self.red
        self.short_sums = self.gemm is None and isinstance(red, SumRed) and not red.kahan
        self.short_sums = self.short_sums and not self.prog.row_index and self.dot is None
        tiled = self.gemm is None and self.grad is None
        self.lane_terms = schedule.lane_terms(red, dtype, self.acc_dtype, target) if tiled else 0
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

    def params(self) -> None:
        read = set(self.prog.slots) - self.pair_slots
        if self.dot is not None:
            read |= self.dot.input_slots()
        for p in sorted(read):
            self.b.line(
                f"const T* __restrict a{p} = (const T*)args[{p}] + offsets[{p} * n_batch + b];"
            )
        self.b.lines(self.prog.param)

    def pre_pointers(self, const: bool, stores: bool = False) -> None:
        """Pointers to the precomputed arrays of batch entry ``b``: one per array, or, on
        the squared-distance path, ``yv`` (the first of the D consecutive ones) and ``yn``
        (the norms), unless the precompute stores them one by one (``stores``)."""
        q = "const T*" if const else "T*"
        named, m = [], 0
        for v in self.pre:
            named.append((v.pointer, m))
            m += v.width
        if self.gemm is not None:
            named = (named if stores else [("yv", 0)]) + [("yn", self.n_pre - 1)]
        if self.dot is not None:
            named += self.dot.pointers()
        for name, m in named:
            self.b.line(f"{q} __restrict {name} = pre.data() + ((b - b0) * NPRE + {m}) * n_rs;")

    def out_pointers(self) -> None:
        for o, spec in enumerate(self.outputs):
            t = spec.ctype
            self.b.line(f"{t}* __restrict out{o} = ({t}*)outs[{o}] + b * n_out * {spec.width};")

    def state_arrays(self, rows: str) -> None:
        for f in self.fields:
            self.b.line(f"lk_buf<{f.ctype}> st_{f.name}_v({rows} * {f.length});")
            self.b.line(f"{f.ctype}* __restrict st_{f.name} = st_{f.name}_v.data();")

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

    def _loads(self, b: IndentedBuffer) -> None:
        for v in self.prog.inner_values:
            if v.width == 1:
                b.line(f"const T {v.load} = {v.pointer}[j];")

    def _loop_body(self, b: IndentedBuffer, stmts: list[str]) -> None:
        self._loads(b)
        b.lines(self.prog.mixed)
        b.lines(stmts)

    def _component_loop(self, b: IndentedBuffer, clause: str, stmts, lanes=None) -> None:
        """Component ``cc`` of a looped formula over ``[j0, j1)`` (one simd loop, or a sum's
        :class:`.LaneSums` then the rest): the pair-loop scalars it reads come from the
        tile buffers of the first pass."""
        vec = self.vec

        def body(b: IndentedBuffer, stmts: list[str]) -> None:
            self._loads(b)
            for n, name in enumerate(vec.buffered):
                b.line(f"const T {name} = tm{n}[j - j0];")
            b.lines(vec.body)
            b.lines(stmts)

        if lanes is not None:  # the whole vectors, then the rest
            b.line("const int64_t jm = j0 + (j1 - j0) / VW * VW;")
            schedule.lane_sums(b, lanes, "j0", "jm", body)
        b.pragma(f"omp simd {clause}".rstrip())
        with b.block(f"for (int64_t j = {'j0' if lanes is None else 'jm'}; j < j1; ++j)"):
            body(b, stmts(None))

    def vec_tile(self, b: IndentedBuffer) -> None:
        """A tile of a looped formula: the pair-loop scalars its components read are
        evaluated once per pair into tile buffers, then each component runs one pass of
        the reduction's scalar fragment (:class:`.PerComponent`)."""
        vec = self.vec
        if vec.buffered:
            self.eval_loop(
                b,
                "",
                lambda mask: [
                    masked_store(mask, f"tm{n}[j - j0] = {name};")
                    for n, name in enumerate(vec.buffered)
                ],
            )
        same = self.acc_dtype == self.dtype
        tc = TileCtx([vec.value], [], self.st, self._component_loop, same, self.lane_terms)
        self.red.tile(b, tc)

    def eval_loop(self, b: IndentedBuffer, clause: str, stmts, lanes=None) -> None:
        """Whole vectors of ``[j0, j1)`` (one simd loop, or a sum's :class:`.LaneSums`),
        then the rest as one masked vector ending at j1 (its lanes before ``jm`` are
        computed from valid indices and masked out), or a plain loop when the range starts
        too close to 0 for that vector."""
        pragma = f"omp simd {clause}".rstrip()
        b.line("const int64_t jm = j0 + (j1 - j0) / VW * VW;")
        schedule.whole_vectors(b, pragma, stmts, lanes, self._loop_body)
        with b.block("if (jm < j1 && j1 >= VW)"):
            b.line("const int64_t jt = j1 - VW;")
            b.line("const int u_first = (int)(jm - jt);")
            b.pragma(pragma)
            with b.block("for (int u = 0; u < VW; ++u)"):
                b.line("const int64_t j = jt + u;")
                self._loop_body(b, stmts("u >= u_first"))
        with b.block("else"), b.block("for (int64_t j = jm; j < j1; ++j)"):
            self._loop_body(b, stmts(None))

    # --- the kernel --------------------------------------------------------------------

    def render(self) -> KernelSource:
        b, plan = self.b, self.plan
        acc = _CTYPES[self.acc_dtype]
        b.lines(["#if defined(__AVX512F__)", "#define LK_VBYTES 64", "#else"])
        b.lines(["#define LK_VBYTES 32", "#endif", ""])
        b.lines([f"typedef {_CTYPES[self.dtype]} T;", f"typedef {acc} A;"])
        b.line(f"typedef {POOL_SIGNATURE.replace('(*)', '(*lk_pool_fn)', 1)};")
        b.line("template <typename F> static void lk_invoke(void* f, int slot) {")
        b.line("  (*static_cast<F*>(f))(slot);")
        b.line("}")
        b.line()
        helpers = set(self.prog.helpers) | set(self.red.helpers)
        if self.gemm:
            helpers |= self.gemm.helpers
        if self.dot:
            helpers |= self.dot.helpers
        if self.lane_terms:
            helpers |= {"lk_vec", "lk_lanes"}
        for text in [SKELETON_HELPERS, *helper_sources(helpers, self.dtype)]:
            b.line(text.strip("\n"))
            b.line()
        b.line('extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,')
        b.line("                         const void* const* args, const int64_t* offsets,")
        b.line("                         void* const* outs, int64_t n_ranges,")
        b.line("                         const int64_t* ranges_out,")
        b.line("                         const int64_t* slices, const int64_t* redranges,")
        with b.block("                         int64_t n_threads, void* pool)"):
            schedule.prologue(self.b, self.t, self.bi, self.tj, self.n_pre)
            with b.block("try"):
                schedule.allocations(self.b, self.t, self.fields)
                if self.fields:
                    self.neutral_rows()
                with b.block("for (int64_t b0 = 0; b0 < n_batch; b0 += bc)"):
                    self.chunk()
            with b.block("catch (...)"):
                b.line("return 1;")
            b.line("return 0;")
        n_slots = len(plan.slots)
        read = set(self.prog.slots) - self.pair_slots
        if read and max(read) >= n_slots:
            raise FormulaError(
                f"the formula reads input #{max(read)}, beyond the {n_slots} arguments"
            )
        path = "sqdist-gemm" if self.gemm else "dot-gemm" if self.dot else "tiled"
        path = "dot-grad" if self.grad else path
        body = b.getvalue()
        head = [
            f"// lazykernels CPU kernel: {plan.reduction} reduction, output indexed by "
            f"{plan.output_cat.name}, {self.dtype.name} data, {acc} accumulator, {plan.sum_scheme}"
            + (", blocked squared distances" if self.gemm else "")
            + (", blocked inner products" if self.dot else "")
            + ".",
            "// Generated code: a deterministic function of the reduction plan.",
            *rounding_lines(formula_rounding(plan)),
            *includes(body),
            *THREAD_HEADERS,
        ]
        source = "\n".join(head) + "\n" + body
        return KernelSource(source, tuple(self.outputs), n_slots, path)

    def neutral_rows(self) -> None:
        b = self.b
        with b.block("if (n_ranges >= 0)"):
            b.line("// rows outside every range get the empty-reduction value")
            self.state_arrays("1")
            with b.block("for (int64_t b = 0; b < n_batch; ++b)"):
                self.out_pointers()
                with b.block("for (int64_t i = 0, k = 0; i < n_out; ++i)"):
                    self.init_row()
                    self.finalize_row()

    def chunk(self) -> None:
        b = self.b
        b.line("const int64_t b1 = lk_min(n_batch, b0 + bc);")
        chunk = self.t.pre_chunk
        b.line(f"const int64_t npc = (n_red + {chunk - 1}) / {chunk};")
        b.line("const int64_t n_pi = NPRE > 0 ? (b1 - b0) * npc : 0;")
        b.line("const int64_t n_items = n_pi + (b1 - b0) * n_grp * q;")
        b.line("// shared counters, accessed only by __atomic builtins (no <atomic>)")
        b.line("int64_t next = 0, pre_done = 0, finished = 0;")
        b.line("int failed = 0;")
        with b.block("auto body = [&](int)", close="};"):
            with b.block("try"):
                self.participant()
            with b.block("catch (...)"):
                b.line("__atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);")
        b.line("if (nt > 1) ((lk_pool_fn)pool)(nt, &lk_invoke<decltype(body)>, &body);")
        b.line("else body(0);")
        b.line("if (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) != n_items) return 1;")
        with b.block("if (q > 1)"):
            self.merge_parts()

    def participant(self) -> None:
        b = self.b
        self.state_arrays("BI")
        nbuf = self.red.n_buffers()
        if self.gemm:
            self.gemm.buffers(b)
        if self.dot:
            self.dot.buffers(b)
        if self.grad:
            self.grad.buffers(b)
        if nbuf and not self.gemm:
            b.line(f"lk_buf<T> tb_v(TJ * {nbuf});")
            for c in range(nbuf):
                b.line(f"T* __restrict tb{c} = tb_v.data() + {c} * TJ;")
        if self.vec is not None and self.vec.buffered:
            nb = len(self.vec.buffered)
            b.line(f"lk_buf<T> tm_v(TJ * {nb});")
            for c in range(nb):
                b.line(f"T* __restrict tm{c} = tm_v.data() + {c} * TJ;")
        nacc = self.red.n_acc_buffers()
        if nacc and not self.gemm:
            b.line(f"lk_buf<A> kb_v(TJ * {nacc});")
            for c in range(nacc):
                b.line(f"A* __restrict kb{c} = kb_v.data() + {c} * TJ;")
        with b.block("for (;;)"):
            b.line("const int64_t w = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);")
            b.line("if (w >= n_items) break;")
            if self.n_pre:
                with b.block("if (w < n_pi)"):
                    self.precompute()
                    b.line("__atomic_fetch_add(&pre_done, 1, __ATOMIC_RELEASE);")
                    b.line("__atomic_fetch_add(&finished, 1, __ATOMIC_RELAXED);")
                    b.line("continue;")
                b.line("while (__atomic_load_n(&pre_done, __ATOMIC_ACQUIRE) < n_pi) {")
                b.line("  if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) return;")
                b.line("  sched_yield();")
                b.line("}")
            self.work_item()
            b.line("__atomic_fetch_add(&finished, 1, __ATOMIC_RELAXED);")

    def precompute(self) -> None:
        b = self.b
        b.line("// reduction-index-only values, dimension-major, then PAD zeros")
        chunk = self.t.pre_chunk
        b.line(f"const int64_t b = b0 + w / npc, jc0 = (w % npc) * {chunk};")
        b.line(f"const int64_t jc1 = lk_min(n_red, jc0 + {chunk});")
        self.params()
        if self.gemm is not None and self.gemm.compact:
            self.pre_pointers(const=False)
            self.gemm.precompute_compact(b)
        else:
            self.pre_pointers(const=False, stores=True)
            with b.block("for (int64_t j = jc0; j < jc1; ++j)"):
                b.lines(self.prog.inner)
                for v in self.pre:
                    if v.width == 1:
                        b.line(f"{v.pointer}[j] = {v.source};")
                    else:
                        b.lines(v.stores)
                if self.gemm:
                    self.gemm.norm_store(b)
            if self.dot:
                self.dot.precompute(b)
        with (
            b.block("if (jc1 == n_red)"),
            b.block("for (int64_t m = 0; m < NPRE; ++m)"),
        ):
            b.line("T* __restrict z = pre.data() + ((b - b0) * NPRE + m) * n_rs;")
            b.line("for (int64_t j = n_red; j < n_rs; ++j) z[j] = (T)0;")

    def work_item(self) -> None:
        b = self.b
        b.line("const int64_t v = w - n_pi;")
        b.line("const int64_t b = b0 + v / (n_grp * q), ig = (v / q) % n_grp, iq = v % q;")
        self.params()
        self.pre_pointers(const=True)
        b.line("const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;")
        with b.block("for (int64_t ib = ig * G; ib < lk_min(n_blk, (ig + 1) * G); ++ib)"):
            self.block()

    def block(self) -> None:
        b, prog = self.b, self.prog
        b.line("const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0, rg = blk[3 * ib + 2];")
        if self.gemm:
            self.gemm.panel(b)
        elif prog.outer_store:
            b.line("T " + ", ".join(f"{a}[{self.bi}]" for a, _ in prog.outer_store) + ";")
            with b.block("for (int64_t k = 0; k < BI; ++k)"):
                b.line("const int64_t i = i0 + (k < bi ? k : 0);")
                b.lines(prog.outer)
                for array, value in prog.outer_store:
                    b.line(f"{array}[k] = {value};")
        if self.dot:
            self.dot.panel(b)
        if self.grad:
            self.grad.block_start(b)
        with b.block("for (int64_t k = 0; k < bi; ++k)"):
            self.init_row()
        b.line("const int64_t s0 = rg <= 0 ? 0 : slices[rg - 1], s1 = rg < 0 ? 1 : slices[rg];")
        with b.block("for (int64_t s = s0; s < s1; ++s)"):
            b.line("const int64_t ja = lk_max(jlo, rg < 0 ? (int64_t)0 : redranges[2 * s]);")
            b.line("const int64_t jb = lk_min(jhi, rg < 0 ? n_red : redranges[2 * s + 1]);")
            if self.short_sums:
                with b.block(f"if (jb - ja <= {self.t.short_red})"):
                    same = self.acc_dtype == self.dtype
                    acc = lambda c: self.st("acc", str(c))  # noqa: E731
                    schedule.short_sum(self.b, self.prog, self.bi, same, acc)
            with b.block("for (int64_t j0 = ja; j0 < jb; j0 += TJ)"):
                b.line("const int64_t j1 = lk_min(jb, j0 + TJ);")
                if self.gemm:
                    self.gemm.tile(b, self.st)
                else:
                    if self.dot:
                        self.dot.tile(b)
                    with b.block("for (int64_t k = 0; k < bi; ++k)"):
                        self.row_tile(b)
                    if self.grad:
                        self.grad.product(b)
        if self.grad:
            self.grad.block_end(b, self.st)
        with b.block("if (q == 1)"):
            self.out_pointers()
            with b.block("for (int64_t k = 0; k < bi; ++k)"):
                b.line("const int64_t i = i0 + k;")
                self.finalize_row()
        with b.block("else"), b.block("for (int64_t k = 0; k < bi; ++k)"):
            b.line("const int64_t pr = (((b - b0) * n_blk + ib) * q + iq) * BI + k;")
            self.copy_row(to_part=True)

    def row_tile(self, b: IndentedBuffer) -> None:
        """Row ``k`` of the block against the tile ``[j0, j1)``."""
        prog = self.prog
        if self.dot:
            self.dot.row_pointers(b)
        for local, array in prog.row_loads:
            b.line(f"const T {local} = {array}[k];")
        if prog.row_index:
            b.line("const int64_t i = i0 + k;")
        if self.grad:
            self.grad.row(b, self.eval_loop, prog.roots[0][0])
        elif self.vec is not None:
            self.vec_tile(b)
        else:
            g = prog.roots[1] if len(prog.roots) > 1 else []
            same = self.acc_dtype == self.dtype
            tc = TileCtx(prog.roots[0], g, self.st, self.eval_loop, same, self.lane_terms)
            self.red.tile(b, tc)

    def merge_parts(self) -> None:
        """Serial (on the caller): O(rows x parts) state merges, after every part is done."""
        b = self.b
        self.state_arrays("BI")
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


def render_cpu(
    plan: ReductionPlan,
    dtype: np.dtype | str,
    sqdist_gemm: bool = True,
    target: CpuTarget = CPU,
    dotprod: bool = False,
) -> KernelSource:
    """Print the C++ kernel of ``plan`` for data of type ``dtype`` (float32 or float64).

    Args:
        plan: the reduction plan.
        dtype: float32 or float64.
        sqdist_gemm: allow the blocked squared-distance path of :mod:`.sqdist_cpp` where it
            applies (its results equal the exact path's: it only filters candidates);
            False always prints the per-pair path.
        target: the tiling constants (:mod:`.target_cpu`).
        dotprod: print the dot-product path of :mod:`.dotprod_cpp` where it applies (its
            squared distances are expanded: :mod:`lazykernels.core.gemm` decides when).

    Raises:
        FormulaError: an op cannot be lowered, or the plan is inconsistent.
        DimensionError: e.g. a log-sum-exp reduction of a vector formula.
    """
    dtype = np.dtype(dtype)
    if dtype not in _CTYPES:
        raise FormulaError(f"CPU kernels exist for float32 and float64, not {dtype}")
    return _Printer(plan, dtype, sqdist_gemm, target, dotprod).render()
