"""The log-sum-exp family's vectorised C++ fragments (see :mod:`.reductions_cpp`).

The maths is the card's (:class:`lazykernels.reductions.logsumexp.ShiftExpProgram`): the
running maximum and the rescaling of the sums (``raise_max``), the shifted exponential and
the weighted terms, the additions under each sum scheme, merge and finalize. Here: the
SIMD lanes (a ``max`` reduction of the tile, then a ``+`` reduction of its terms), the tile
buffers and their padding, and the ``KAHAN_LANES`` compensated lanes of ``kahan_scheme``.
"""

from __future__ import annotations

from ..errors import DimensionError, FormulaError
from ..reductions.program import INF, select
from .buffer import IndentedBuffer
from .emit import CTYPES, Emitter, lvalue
from .fastmath import KAHAN_LANES
from .kir import Names, Sym
from .reductions_cpp import (
    Access,
    CppReduction,
    Field,
    Output,
    TileCtx,
    _merge_kahan_lanes,
    _partials,
    init_text,
    masked_store,
)


class ShiftExpRed(CppReduction):
    """The log-sum-exp family: state ``(m, s[ns])`` with ``sum_j e^(F_j - m) w_j = s``.

    Weights ``w``: LogSumExp and Max_SumShiftExp: [1]; LogSumExpWeight and
    Max_SumShiftExpWeight: G; SumSoftMaxWeight: [1, G]. Each tile: evaluate F (and G) into
    buffers with a simd max, raise the running max (rescaling ``s``), then a simd sum of
    the terms ``e^(F - m) w`` (with kahan_scheme: the terms go to buffers, then to
    compensated lanes). Rows whose values are all ``-inf`` keep ``m = -inf, s = 0``.
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        p = self.program
        if self.d != 1:
            raise DimensionError(f"{self.name}: the formula must be scalar, got dimension {self.d}")
        if p.weighted and self.dg < 1:
            raise FormulaError(f"{self.name} needs a weight formula (formula2)")
        self.unit = p.unit
        self.ns = p.n_sums(self.sh)
        self.kahan = self.scheme == "kahan_scheme"
        self.lanes = KAHAN_LANES if self.kahan else 1
        e = Emitter(self.dialect, True, Names())  # the helpers of the card's maths
        p.shifted(e, Sym("v"), Sym("m"))
        p.factor(e, Sym("m"), Sym("v"))
        self.helpers = frozenset(e.helpers | ({"lk_kahan"} if self.kahan else set()))

    def fields(self) -> list[Field]:
        # the card's state; a sum has `lanes` entries (compensated lanes under Kahan), and
        # the tile partial of block sums is the simd loop's lane partials (locals)
        out = []
        for f in self.program.fields(self.sh):
            if f.name not in self.program.totals(self.sh) and f.name != "m":
                continue
            n = f.length * (self.lanes if f.name != "m" else 1)
            out.append(Field(f.name, CTYPES[f.kind], n, init_text(f.init, CTYPES[f.kind])))
        return out

    def outputs(self) -> list[Output]:
        (tail,) = self.card.output_tails(self.d, self.dg, self.k)
        return [Output(tail[0], "T")]

    def n_buffers(self) -> int:
        return 1 + self.ns - int(self.unit)

    def n_acc_buffers(self) -> int:
        return self.ns if self.kahan else 0

    def _each(self, e, body) -> None:
        """Every entry of the sums (``lanes`` per sum), in a loop."""
        with e.loop(self.ns * self.lanes) as c:
            body([c])

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        p, sh = self.program, self.sh
        f0, tm = lvalue(tc.f[0]), lvalue("tm")
        # weight c: None (the unit weight) or (atom in the loop, its tile buffer)
        weights: list[tuple[str, str] | None] = [None] if self.unit else []
        weights += [(w, f"tb{1 + c}") for c, w in enumerate(tc.g)]

        def stmts(mask: str | None) -> list[str]:
            out = [masked_store(mask, f"tb0[j - j0] = {tc.f[0]};")]
            out += [
                masked_store(mask, f"{w[1]}[j - j0] = {w[0]};") for w in weights if w is not None
            ]
            e, guard = self.emitter(), None if mask is None else lvalue(mask)
            e.set(tm, select(e, p.grows(e, f0, tm), f0, tm, guard))
            return out + e.lines()

        b.line(f"T tm = (T){tc.st('m', '0')};")
        tc.eval_loop(b, f"reduction({p.order}:tm)", stmts)
        st = self.access(tc.st)
        e = self.emitter(tc._same)
        p.raise_max(e, sh, st, e.acc(tm), p.totals(sh), self._each)
        b.lines(e.lines())
        m = tc.st("m", "0")
        with b.block(f"if ({self.text(p.adds(e, lvalue(m)))})"):
            b.line(f"const A mm = {m};")
            # whole vectors: the lanes past the tile hold -inf (adding nothing) and weight 0
            b.line("const int64_t nv = (j1 - j0 + VW - 1) / VW * VW;")
            with b.block("for (int64_t t = j1 - j0; t < nv; ++t)"):
                b.line(f"tb0[t] = {self.dialect.literal(-INF)};")
                for w in weights:
                    if w is not None:
                        b.line(f"{w[1]}[t] = 0;")
            ex = e.let("acc", p.shifted(e, e.acc(lvalue("tb0[t]")), lvalue("mm")))
            g = [lvalue(f"{w[1]}[t]") for w in weights if w is not None]
            terms = p.terms(e, ex, g)
            if self.kahan:
                for c, term in enumerate(terms):
                    e.set(lvalue(f"kb{c}[t]"), term)
                b.pragma("omp simd")
                with b.block("for (int64_t t = 0; t < nv; ++t)"):
                    b.lines(e.lines())
                for c in range(self.ns):
                    o = str(c * KAHAN_LANES)
                    b.line(f"lk_kahan_tile(kb{c}, nv, &{tc.st('s', o)}, &{tc.st('comp', o)});")
                return
            # the lane partials stand for the sums (direct_sum) or the tile partial (block)
            ps = [f"ps{c}" for c in range(self.ns)]
            direct = self.scheme == "direct_sum"
            b.line(_partials(ps, [tc.st("s", str(c)) if direct else "0" for c in range(self.ns)]))

            def lanes(name: str, index) -> Sym:
                return lvalue(f"ps{index}") if name in ("s", "part") else st(name, index)

            for c, term in enumerate(terms):
                p.add(e, sh, lanes, c, term)
            b.pragma(f"omp simd reduction(+:{','.join(ps)})")
            with b.block("for (int64_t t = 0; t < nv; ++t)"):
                b.lines(e.lines())
            if direct:
                b.lines([f"{tc.st('s', str(c))} = {q};" for c, q in enumerate(ps)])
                return

            def flush(name: str, index) -> Sym:
                return lvalue(f"ps{index}") if name == "part" else st(name, index)

            p.tile_end(e, sh, flush)
            b.lines(e.lines())

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        if not self.kahan:
            e = self.emitter()
            self.program.merge(e, self.sh, self.access(dst), self.access(src), self._each)
            b.lines(e.lines())
            return
        # the card's merge, the sums added lane by lane by the exact-FP Kahan helper
        p, e, n = self.program, self.emitter(), self.ns * self.lanes
        dm, sm = lvalue(dst("m", "0")), lvalue(src("m", "0"))
        with b.block(f"if ({self.text(p.grows(e, sm, dm))})"):
            sc = e.let("acc", p.factor(e, dm, sm))
            self._each(
                e, lambda entries: p.rescale(e, self.access(dst), sc, p.totals(self.sh), entries)
            )
            b.lines(e.lines())
            _merge_kahan_lanes(b, dst, src, "s", n)
            b.line(f"{dm.name} = {sm.name};")
        with b.block(f"else if ({self.text(p.adds(e, sm))})"):
            sc = e.let("acc", p.factor(e, sm, dm))
            b.lines(e.lines())
            _merge_kahan_lanes(b, dst, src, "s", n, scale=sc.name)

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        # the card's finalize of the sums' totals, read first (Kahan: the compensated sum
        # of each sum's lanes)
        for c in range(self.ns):
            if self.kahan:
                o = str(c * KAHAN_LANES)
                b.line(f"const A s{c} = lk_kahan_total(&{st('s', o)}, &{st('comp', o)});")
            else:
                b.line(f"const A s{c} = {st('s', str(c))};")

        def totals(name: str, index: str) -> str:
            return f"s{index}" if name == "s" else st(name, index)

        super().finalize(b, totals, out)
