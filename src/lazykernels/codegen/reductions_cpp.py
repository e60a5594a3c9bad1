"""Per-reduction C++ fragments of the CPU kernel: state, tile update, merge, finalize.

The skeleton (:mod:`lazykernels.codegen.cpp`) is the same for every reduction; a
:class:`CppReduction` says

* ``fields``: the accumulator state of one output row (named arrays of ``A``, ``T`` or
  ``int64_t`` scalars with their initial values: the *empty-reduction* result);
* ``tile``: how one row consumes a tile of reduction indices ``[j0, j1)``. It calls
  ``tc.eval_loop`` (the vectorised loop that evaluates the formula) with a function
  ``stmts(mask)`` giving the statements that fold each value in: a fused ``omp simd``
  reduction (Sum, Min, Max), or stores into tile buffers followed by a second pass (the
  arg- and K-min families, log-sum-exp). ``mask`` is None, or a C condition that is false
  on the lanes of the tile's last vector that must be left out (see ``cpp.eval_loop``);
* ``merge``: folds the state of a later part of the reduction range into an earlier one
  (used when the reduction range is split across threads);
* ``finalize``: writes the user-level outputs of one row (see ``core/plan.py``).

State and outputs are reached through accessor callables ``acc(field, index) -> lvalue``
so that the same fragments serve the per-thread block state and the split buffers.

The maths is the card's: a fragment prints the pieces of the card's program
(:mod:`lazykernels.reductions.program`: initial values, keys, comparisons, the K-list
insertion, merge and finalize) through the CPU dialect; what is written here is the
execution model around them (SIMD lanes and masks, the ``omp`` pragmas, tile buffers, the
scans and filters over a tile).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..reductions import SPECS
from ..reductions.program import Shape
from .buffer import IndentedBuffer
from .dialect_cpu import CpuDialect, c_literal
from .emit import CTYPES, Emitter, index_text, lvalue
from .fastmath import KAHAN_LANES
from .kir import Expr, Names, Sym

Access = Callable[[str, str], str]  # (field or output name, index expression) -> C lvalue
Stmts = Callable[[str | None], list[str]]  # lane mask (None: every lane) -> statements

FILTER_LANES = 16  # K-min: values compared with the threshold per vectorised test


def masked_store(mask: str | None, stmt: str) -> str:
    """``stmt`` on the kept lanes only (a masked store)."""
    return stmt if mask is None else f"if ({mask}) {stmt}"


@dataclass(frozen=True)
class Field:
    """One array of the accumulator state of a row."""

    name: str
    ctype: str  # "A", "T" or "int64_t"
    length: int
    init: str


@dataclass(frozen=True)
class Output:
    """One user-level output: ``width`` scalars per row, of type ``ctype`` (T or int64_t)."""

    width: int
    ctype: str


@dataclass(frozen=True)
class LaneSums:
    """A fused sum's whole vectors as per-lane partials (printed by
    :func:`.schedule_cpp.lane_sums`): chunks of ``terms`` vectors are summed per lane from
    zero, the chunk partials added lane by lane into the tile's lane totals, which go to
    ``totals`` (one per component) at the end; ``values``: the summed atoms (type A)."""

    terms: int
    totals: tuple[str, ...]
    values: tuple[str, ...]


class TileCtx:
    """What the skeleton gives a reduction's ``tile`` fragment (for output row ``k``).

    Attributes:
        f, g: atoms of the formula and weight values inside the evaluation loop.
        st: accessor of the row's state.
        acc_cast: C spelling converting a T atom to the accumulator type.
        lane_terms: terms per SIMD lane of the first-level partials of a fused sum
            (:class:`LaneSums`); 0: one partial per lane for the tile.
    """

    def __init__(
        self,
        f: list[str],
        g: list[str],
        st: Access,
        eval_loop: Callable[..., None],
        same_acc: bool,
        lane_terms: int = 0,
    ) -> None:
        self.f, self.g, self.st = f, g, st
        self._eval_loop = eval_loop
        self._same = same_acc
        self.lane_terms = lane_terms

    def with_state(self, st: Access) -> TileCtx:
        """The same context with another state accessor."""
        return TileCtx(self.f, self.g, st, self._eval_loop, self._same, self.lane_terms)

    def eval_loop(
        self, b: IndentedBuffer, clause: str, stmts: Stmts, lanes: LaneSums | None = None
    ) -> None:
        """The ``omp simd`` loops over ``j`` in ``[j0, j1)`` evaluating the formula, then
        ``stmts(mask)`` (buffers are indexed by ``j - j0``); ``clause``: e.g.
        ``reduction(+:s0)``. With ``lanes``, the whole vectors are summed as
        :class:`LaneSums` instead (``stmts`` then only serve the rest)."""
        if lanes is None:
            self._eval_loop(b, clause, stmts)
        else:
            self._eval_loop(b, clause, stmts, lanes)

    def acc(self, atom: str) -> str:
        return atom if self._same else f"(A){atom}"


class CppReduction:
    """Base of the C++ fragments of one reduction (see the module docstring).

    By default the state, the outputs, ``merge`` and ``finalize`` are the card's own
    (its program's fields and statements, printed by the CPU dialect); a family's
    fragments print its ``tile``.
    """

    helpers: frozenset[str] = frozenset()
    fused = False  # True: the tile is one fused simd reduction, no tile buffers

    def __init__(
        self, name: str, d: int, dg: int, k: int, scheme: str, dtype: np.dtype | str = "float64"
    ) -> None:
        self.name, self.d, self.dg, self.k, self.scheme = name, d, dg, k, scheme
        self.card = SPECS[name]
        self.program = self.card.program
        self.sh = Shape(d, dg, k, scheme)
        self.dialect = CpuDialect(dtype)
        self.names = Names()  # one kernel: every fragment's locals get distinct names

    # --- printing the card's pieces ----------------------------------------------------

    def emitter(self, same_acc: bool = True) -> Emitter:
        """An emitter for the card's statements (locals named in this kernel's scope)."""
        return Emitter(self.dialect, same_acc, self.names)

    def text(self, x: Expr) -> str:
        """A card's expression as C++."""
        return self.dialect.expr(x)

    @staticmethod
    def access(acc: Access):
        """A skeleton accessor (field, index text) as a program's (field, index) -> lvalue."""
        return lambda name, index: lvalue(acc(name, index_text(index)))

    # --- the fragments -----------------------------------------------------------------

    def fields(self) -> list[Field]:
        return [
            Field(f.name, CTYPES[f.kind], f.length, init_text(f.init, CTYPES[f.kind]))
            for f in self.program.fields(self.sh)
        ]

    def outputs(self) -> list[Output]:
        tails = self.card.output_tails(self.d, self.dg, self.k)
        return [
            Output(int(np.prod(t)), "int64_t" if o.index else "T")
            for t, o in zip(tails, self.card.outputs)
        ]

    def n_buffers(self) -> int:
        """Number of tile buffers (``tb*``: TJ scalars of type T) the tile fragment uses."""
        return 0

    def n_acc_buffers(self) -> int:
        """Number of tile buffers of the accumulator type (``kb*``)."""
        return 0

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        raise NotImplementedError

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        e = self.emitter()
        self.program.merge(e, self.sh, self.access(dst), self.access(src))
        b.lines(e.lines())

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        e = self.emitter(same_acc=False)  # outputs in T: explicit conversions (no-ops if A is T)

        def output(o: int, index) -> Sym:
            return lvalue(out[o]("", index_text(index)))

        self.program.finalize(e, self.sh, self.access(st), output)
        b.lines(e.lines())


def init_text(value: float, ctype: str) -> str:
    """The C++ initial value of a state entry (integers as such, infinities of ``ctype``)."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return c_literal(value, "float64", ctype)


def _partials(names: list[str], init: list[str]) -> str:
    return "A " + ", ".join(f"{n} = {v}" for n, v in zip(names, init)) + ";"


class SumRed(CppReduction):
    """Sum: ``acc += F`` per component, with block, direct or Kahan summation.

    block_sum: per tile, a simd reduction into fresh partial sums, added to the total
    (float32: the tile's whole vectors as :class:`LaneSums`, two levels per lane);
    direct_sum: the simd reduction starts from the total; kahan_scheme: the tile's values
    go to a buffer, then into ``KAHAN_LANES`` compensated sums per component (``lk_kahan``).
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.kahan = self.scheme == "kahan_scheme"
        self.fused = not self.kahan
        if self.kahan:
            self.helpers = frozenset({"lk_kahan"})

    def fields(self) -> list[Field]:
        if self.kahan:
            n = self.d * KAHAN_LANES
            return [Field("acc", "A", n, "0"), Field("comp", "A", n, "0")]
        return [Field("acc", "A", self.d, "0")]

    def outputs(self) -> list[Output]:
        return [Output(self.d, "T")]

    def n_acc_buffers(self) -> int:
        return self.d if self.kahan else 0

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        if self.kahan:
            tc.eval_loop(
                b,
                "",
                lambda mask: [
                    masked_store(mask, f"kb{c}[j - j0] = {tc.acc(f)};") for c, f in enumerate(tc.f)
                ],
            )
            for c in range(self.d):
                o = str(c * KAHAN_LANES)
                b.line(f"lk_kahan_tile(kb{c}, j1 - j0, &{tc.st('acc', o)}, &{tc.st('comp', o)});")
            return
        ps = [f"ps{c}" for c in range(self.d)]
        direct = self.scheme == "direct_sum"
        b.line(_partials(ps, [tc.st("acc", str(c)) if direct else "0" for c in range(self.d)]))

        def stmts(mask: str | None) -> list[str]:
            if mask is None:
                return [f"{p} += {tc.acc(f)};" for p, f in zip(ps, tc.f)]
            return [f"{p} += {mask} ? {tc.acc(f)} : (A)0;" for p, f in zip(ps, tc.f)]

        lanes = None
        if tc.lane_terms and not direct:
            lanes = LaneSums(tc.lane_terms, tuple(ps), tuple(tc.acc(f) for f in tc.f))
        tc.eval_loop(b, f"reduction(+:{','.join(ps)})", stmts, lanes)
        for c, p in enumerate(ps):
            op = "=" if direct else "+="
            b.line(f"{tc.st('acc', str(c))} {op} {p};")

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        if self.kahan:
            _merge_kahan_lanes(b, dst, src, "acc", self.d * KAHAN_LANES)
            return
        for c in map(str, range(self.d)):
            b.line(f"{dst('acc', c)} += {src('acc', c)};")

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        for c in range(self.d):
            if self.kahan:
                o = str(c * KAHAN_LANES)
                value = f"lk_kahan_total(&{st('acc', o)}, &{st('comp', o)})"
            else:
                value = st("acc", str(c))
            b.line(f"{out[0]('', str(c))} = (T){value};")


def _merge_kahan_lanes(
    b: IndentedBuffer, dst: Access, src: Access, name: str, n: int, scale: str = ""
) -> None:
    """Add the compensated lanes of ``src`` (times ``scale``) to those of ``dst``."""
    with b.block(f"for (int64_t l = 0; l < {n}; ++l)"):
        value = f"({src(name, 'l')} - {src('comp', 'l')})"
        if scale:
            value = f"{scale} * {value}"
        b.line(f"lk_kahan_add({dst(name, 'l')}, {dst('comp', 'l')}, (A)({value}));")


class MinMaxRed(CppReduction):
    """Min / Max per component: a fused ``omp simd reduction(min|max)`` whose lanes keep
    the better value (the card's ``keep_better``); NaN never wins."""

    fused = True

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        ms = [f"m{c}" for c in range(self.d)]
        b.line("T " + ", ".join(f"{m} = {tc.st('val', str(c))}" for c, m in enumerate(ms)) + ";")
        p = self.program

        def stmts(mask: str | None) -> list[str]:
            e, guard = self.emitter(), None if mask is None else lvalue(mask)
            for m, f in zip(ms, tc.f):
                e.set(lvalue(m), p.keep_better(e, lvalue(f), lvalue(m), guard))
            return e.lines()

        tc.eval_loop(b, f"reduction({p.order}:{','.join(ms)})", stmts)
        for c, m in enumerate(ms):
            b.line(f"{tc.st('val', str(c))} = {m};")


class ArgMinMaxRed(CppReduction):
    """ArgMin / ArgMax / Min_ArgMin / Max_ArgMax: value and first index of the extremum.

    A tile's keys are evaluated into buffers with a simd min (max); only when the tile's
    best beats the current entry is the tile scanned for the first position of that key.
    """

    def n_buffers(self) -> int:
        return self.d

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        ms = [f"m{c}" for c in range(self.d)]
        b.line("T " + ", ".join(f"{m} = {tc.st('val', str(c))}" for c, m in enumerate(ms)) + ";")
        p = self.program

        # NaN is stored as the worst value, which it ties with (it never wins).
        def stmts(mask: str | None) -> list[str]:
            e, guard = self.emitter(), None if mask is None else lvalue(mask)
            keys = [e.let("value", p.key(e, lvalue(f))) for f in tc.f]
            out = e.lines()
            out += [masked_store(mask, f"tb{c}[j - j0] = {v.name};") for c, v in enumerate(keys)]
            for m, v in zip(ms, keys):
                e.set(lvalue(m), p.keep_better(e, v, lvalue(m), guard))
            return out + e.lines()

        tc.eval_loop(b, f"reduction({p.order}:{','.join(ms)})", stmts)
        st = self.access(tc.st)
        for c, m in enumerate(ms):
            e = self.emitter()
            beats = self.text(p.beats(e, st, c, lvalue(m)))
            p.take(e, st, c, lvalue(m), lvalue("j0 + t"))
            with (
                b.block(f"if ({beats})"),
                b.block("for (int64_t t = 0; t < j1 - j0; ++t)"),
                b.block(f"if (tb{c}[t] == {m})"),
            ):
                b.lines([*e.lines(), "break;"])


class KMinRed(CppReduction):
    """KMin / ArgKMin / KMin_ArgKMin: the K smallest values per component, ascending.

    A tile's keys are evaluated into buffers (vectorised); then they are compared with the
    current K-th best ``FILTER_LANES`` at a time (one vectorised test), and only the groups
    holding a key that may enter are scanned; the rare winners are inserted (the card's
    insertion).
    """

    def n_buffers(self) -> int:
        return self.d

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        k, p = self.k, self.program

        def stmts(mask: str | None) -> list[str]:
            e = self.emitter()
            return [
                masked_store(mask, f"tb{c}[j - j0] = {self.text(p.key(e, lvalue(f)))};")
                for c, f in enumerate(tc.f)
            ]

        tc.eval_loop(b, "", stmts)
        for c in range(self.d):
            with b.block():
                b.line(f"T* kv = &{tc.st('kval', str(c * k))};")
                b.line(f"int64_t* ki = &{tc.st('kind', str(c * k))};")
                kmin_filter(b, self, f"tb{c}", f"tb{c}[t]")


def kmin_filter(
    b: IndentedBuffer, red: CppReduction, buf: str, value: str, exact: list[str] = ()
) -> None:
    """Fold the keys ``buf[0 .. j1 - j0)`` into the sorted K-list ``(kv, ki)`` of a row.

    ``FILTER_LANES`` keys at a time are tested against the K-th best ``thr`` in one
    vectorised test (the card's ``excluded``; keys past the end may be stale: the scan
    stops at the end); only a group with a key that may enter is scanned. ``exact`` are
    statements run per scanned candidate ``t`` before its ``value`` is read (the
    squared-distance path recomputes the exact value there, ``buf`` holding lower bounds);
    a candidate is inserted by the card's ``insert`` (``red``: the KMin fragments).
    """
    lanes, k, p = FILTER_LANES, red.k, red.program
    e = red.emitter()
    thr = lvalue("thr")
    b.line(f"T thr = kv[{k - 1}];")
    with b.block(f"for (int64_t t0 = 0; t0 < j1 - j0; t0 += {lanes})"):
        b.line("int hit = 0;")
        b.pragma("omp simd reduction(|:hit)")
        with b.block(f"for (int u = 0; u < {lanes}; ++u)"):
            b.line(f"hit |= {red.text(p.excluded(e, lvalue(f'{buf}[t0 + u]'), thr))} ? 0 : 1;")
        b.line("if (!hit) continue;")
        b.line(f"const int64_t te = lk_min(j1 - j0, t0 + {lanes});")
        with b.block("for (int64_t t = t0; t < te; ++t)"):
            b.line(f"if ({red.text(p.excluded(e, lvalue(f'{buf}[t]'), thr))}) continue;")
            if exact:  # the exact value: filtered again (the lower bound may pass, it not)
                b.lines(list(exact))
                b.line(f"if ({red.text(p.excluded(e, lvalue(value), thr))}) continue;")

            def row(name: str, index) -> Sym:
                return lvalue(f"{'kv' if name == 'kval' else 'ki'}[{index_text(index)}]")

            # the tile's columns come in ascending order after every one held: ties stay
            p.insert(e, Shape(1, k=k), row, 0, lvalue(value), lvalue("j0 + t"), True, thr, True)
            b.lines(e.lines())
            b.line(f"thr = kv[{k - 1}];")
