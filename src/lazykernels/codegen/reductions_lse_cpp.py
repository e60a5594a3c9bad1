"""The log-sum-exp family's vectorised C++ fragments (see :mod:`.reductions_cpp`)."""

from __future__ import annotations

from ..errors import DimensionError, FormulaError
from .buffer import IndentedBuffer
from .fastmath import KAHAN_LANES
from .reductions_cpp import (
    INF,
    INF_A,
    Access,
    CppReduction,
    Field,
    Output,
    TileCtx,
    _keep,
    _merge_kahan_lanes,
    _partials,
    masked_store,
)


class ShiftExpRed(CppReduction):
    """The log-sum-exp family: state ``(m, s[ns])`` with ``sum_j e^(F_j - m) w_j = s``.

    Weights ``w``: LogSumExp and Max_SumShiftExp: [1]; LogSumExpWeight and
    Max_SumShiftExpWeight: G; SumSoftMaxWeight: [1, G]. Each tile: evaluate F (and G) into
    buffers with a simd max, rescale ``s`` if the running max grows, then a simd sum of
    ``exp(F - m) w`` (with kahan_scheme: the terms go to buffers, then to compensated
    lanes). Rows whose values are all ``-inf`` keep ``m = -inf, s = 0``.
    """

    helpers = frozenset({"lk_exp"})

    def __init__(self, *args) -> None:
        super().__init__(*args)
        if self.d != 1:
            raise DimensionError(f"{self.name}: the formula must be scalar, got dimension {self.d}")
        weighted = self.program.weighted
        if weighted and self.dg < 1:
            raise FormulaError(f"{self.name} needs a weight formula (formula2)")
        self.unit = self.program.unit
        self.ns = int(self.unit) + (self.dg if weighted else 0)
        self.kahan = self.scheme == "kahan_scheme"
        self.lanes = KAHAN_LANES if self.kahan else 1
        if self.kahan:
            self.helpers = self.helpers | {"lk_kahan"}

    def fields(self) -> list[Field]:
        n = self.ns * self.lanes
        out = [Field("m", "A", 1, f"(-{INF_A})"), Field("s", "A", n, "0")]
        if self.kahan:
            out.append(Field("comp", "A", n, "0"))
        return out

    def outputs(self) -> list[Output]:
        (tail,) = self.card.output_tails(self.d, self.dg, self.k)
        return [Output(tail[0], "T")]

    def n_buffers(self) -> int:
        return 1 + self.ns - int(self.unit)

    def n_acc_buffers(self) -> int:
        return self.ns if self.kahan else 0

    def _rescale(self, b: IndentedBuffer, st: Access, sc: str) -> None:
        with b.block(f"for (int64_t c = 0; c < {self.ns * self.lanes}; ++c)"):
            b.line(f"{st('s', 'c')} *= {sc};")
            if self.kahan:
                b.line(f"{st('comp', 'c')} *= {sc};")

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        # weight c: None (the unit weight) or (atom in the loop, its tile buffer)
        weights: list[tuple[str, str] | None] = [None] if self.unit else []
        weights += [(w, f"tb{1 + c}") for c, w in enumerate(tc.g)]

        def stmts(mask: str | None) -> list[str]:
            out = [masked_store(mask, f"tb0[j - j0] = {tc.f[0]};")]
            out += [
                masked_store(mask, f"{w[1]}[j - j0] = {w[0]};") for w in weights if w is not None
            ]
            out.append(f"tm = {_keep(mask, f'{tc.f[0]} > tm')} ? {tc.f[0]} : tm;")
            return out

        b.line(f"T tm = (T){tc.st('m', '0')};")
        tc.eval_loop(b, "reduction(max:tm)", stmts)
        m = tc.st("m", "0")
        with b.block(f"if ({tc.acc('tm')} > {m})"):
            b.line(f"const A sc = lk_exp({m} - {tc.acc('tm')});")
            self._rescale(b, tc.st, "sc")
            b.line(f"{m} = {tc.acc('tm')};")
        with b.block(f"if ({m} > (-{INF_A}))"):
            b.line(f"const A mm = {m};")
            # whole vectors: the lanes past the tile hold -inf (exp gives 0) and weight 0
            b.line("const int64_t nv = (j1 - j0 + VW - 1) / VW * VW;")
            with b.block("for (int64_t t = j1 - j0; t < nv; ++t)"):
                b.line(f"tb0[t] = -{INF};")
                for w in weights:
                    if w is not None:
                        b.line(f"{w[1]}[t] = 0;")
            terms = [
                "e" if w is None else f"e * {tc.acc(w[1] + '[t]')}" for c, w in enumerate(weights)
            ]
            if self.kahan:
                b.pragma("omp simd")
                with b.block("for (int64_t t = 0; t < nv; ++t)"):
                    b.line(f"const A e = lk_exp({tc.acc('tb0[t]')} - mm);")
                    b.lines([f"kb{c}[t] = {term};" for c, term in enumerate(terms)])
                for c in range(self.ns):
                    o = str(c * KAHAN_LANES)
                    b.line(f"lk_kahan_tile(kb{c}, nv, &{tc.st('s', o)}, &{tc.st('comp', o)});")
                return
            ps = [f"ps{c}" for c in range(self.ns)]
            direct = self.scheme == "direct_sum"
            b.line(_partials(ps, [tc.st("s", str(c)) if direct else "0" for c in range(self.ns)]))
            b.pragma(f"omp simd reduction(+:{','.join(ps)})")
            with b.block("for (int64_t t = 0; t < nv; ++t)"):
                b.line(f"const A e = lk_exp({tc.acc('tb0[t]')} - mm);")
                b.lines([f"{p} += {term};" for p, term in zip(ps, terms)])
            for c, p in enumerate(ps):
                b.line(f"{tc.st('s', str(c))} {'=' if direct else '+='} {p};")

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        dm, sm = dst("m", "0"), src("m", "0")
        n = self.ns * self.lanes
        with b.block(f"if ({sm} > {dm})"):
            b.line(f"const A sc = lk_exp({dm} - {sm});")
            self._rescale(b, dst, "sc")
            if self.kahan:
                _merge_kahan_lanes(b, dst, src, "s", n)
            else:
                with b.block(f"for (int64_t c = 0; c < {n}; ++c)"):
                    b.line(f"{dst('s', 'c')} += {src('s', 'c')};")
            b.line(f"{dm} = {sm};")
        with b.block(f"else if ({sm} > (-{INF_A}))"):
            b.line(f"const A sc = lk_exp({sm} - {dm});")
            if self.kahan:
                _merge_kahan_lanes(b, dst, src, "s", n, scale="sc")
            else:
                with b.block(f"for (int64_t c = 0; c < {n}; ++c)"):
                    b.line(f"{dst('s', 'c')} += sc * {src('s', 'c')};")

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        m = st("m", "0")
        sums = []
        for c in range(self.ns):
            if self.kahan:
                o = str(c * KAHAN_LANES)
                b.line(f"const A s{c} = lk_kahan_total(&{st('s', o)}, &{st('comp', o)});")
            else:
                b.line(f"const A s{c} = {st('s', str(c))};")
            sums.append(f"s{c}")
        o = out[0]
        if self.program.finish == "raw":
            b.line(f"{o('', '0')} = (T){m};")
            for c, v in enumerate(sums):
                b.line(f"{o('', str(c + 1))} = (T){v};")
        elif self.program.finish == "log":
            for c, v in enumerate(sums):
                b.line(f"{o('', str(c))} = (T)({m} + std::log({v}));")
        else:  # SumSoftMaxWeight: s0 is the sum of the softmax weights
            for c in range(self.dg):
                b.line(f"{o('', str(c))} = (T)(s0 > 0 ? s{c + 1} / s0 : 0);")
