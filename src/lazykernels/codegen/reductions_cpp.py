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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..reductions import SPECS
from .buffer import IndentedBuffer
from .fastmath import KAHAN_LANES

Access = Callable[[str, str], str]  # (field or output name, index expression) -> C lvalue
Stmts = Callable[[str | None], list[str]]  # lane mask (None: every lane) -> statements

INF = "std::numeric_limits<T>::infinity()"
INF_A = "std::numeric_limits<A>::infinity()"
FILTER_LANES = 16  # K-min: values compared with the threshold per vectorised test


def masked_store(mask: str | None, stmt: str) -> str:
    """``stmt`` on the kept lanes only (a masked store)."""
    return stmt if mask is None else f"if ({mask}) {stmt}"


def _keep(mask: str | None, cond: str) -> str:
    return cond if mask is None else f"({mask}) && {cond}"


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


class TileCtx:
    """What the skeleton gives a reduction's ``tile`` fragment (for output row ``k``).

    Attributes:
        f, g: atoms of the formula and weight values inside the evaluation loop.
        st: accessor of the row's state.
        acc_cast: C spelling converting a T atom to the accumulator type.
    """

    def __init__(
        self,
        f: list[str],
        g: list[str],
        st: Access,
        eval_loop: Callable[[IndentedBuffer, str, Stmts], None],
        same_acc: bool,
    ) -> None:
        self.f, self.g, self.st = f, g, st
        self._eval_loop = eval_loop
        self._same = same_acc

    def eval_loop(self, b: IndentedBuffer, clause: str, stmts: Stmts) -> None:
        """The ``omp simd`` loops over ``j`` in ``[j0, j1)`` evaluating the formula, then
        ``stmts(mask)`` (buffers are indexed by ``j - j0``); ``clause``: e.g.
        ``reduction(+:s0)``."""
        self._eval_loop(b, clause, stmts)

    def acc(self, atom: str) -> str:
        return atom if self._same else f"(A){atom}"


class CppReduction:
    """Base of the C++ fragments of one reduction (see the module docstring)."""

    helpers: frozenset[str] = frozenset()
    fused = False  # True: the tile is one fused simd reduction, no tile buffers

    def __init__(self, name: str, d: int, dg: int, k: int, scheme: str) -> None:
        self.name, self.d, self.dg, self.k, self.scheme = name, d, dg, k, scheme
        self.card = SPECS[name]
        self.program = self.card.program

    def fields(self) -> list[Field]:
        raise NotImplementedError

    def outputs(self) -> list[Output]:
        raise NotImplementedError

    def n_buffers(self) -> int:
        """Number of tile buffers (``tb*``: TJ scalars of type T) the tile fragment uses."""
        return 0

    def n_acc_buffers(self) -> int:
        """Number of tile buffers of the accumulator type (``kb*``)."""
        return 0

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        raise NotImplementedError

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        raise NotImplementedError

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        raise NotImplementedError


def _partials(names: list[str], init: list[str]) -> str:
    return "A " + ", ".join(f"{n} = {v}" for n, v in zip(names, init)) + ";"


class SumRed(CppReduction):
    """Sum: ``acc += F`` per component, with block, direct or Kahan summation.

    block_sum: per tile, a simd reduction into fresh partial sums, added to the total;
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

        tc.eval_loop(b, f"reduction(+:{','.join(ps)})", stmts)
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
    """Min / Max per component: a fused ``omp simd reduction(min|max)``; NaN never wins."""

    fused = True

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.lt = self.program.lt
        self.init = INF if self.lt == "<" else f"(-{INF})"

    def fields(self) -> list[Field]:
        return [Field("val", "T", self.d, self.init)]

    def outputs(self) -> list[Output]:
        return [Output(self.d, "T")]

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        ms = [f"m{c}" for c in range(self.d)]
        b.line("T " + ", ".join(f"{m} = {tc.st('val', str(c))}" for c, m in enumerate(ms)) + ";")
        op = "min" if self.lt == "<" else "max"

        def stmts(mask: str | None) -> list[str]:
            return [
                f"{m} = {_keep(mask, f'{f} {self.lt} {m}')} ? {f} : {m};" for m, f in zip(ms, tc.f)
            ]

        tc.eval_loop(b, f"reduction({op}:{','.join(ms)})", stmts)
        for c, m in enumerate(ms):
            b.line(f"{tc.st('val', str(c))} = {m};")

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        for c in map(str, range(self.d)):
            b.line(
                f"if ({src('val', c)} {self.lt} {dst('val', c)}) {dst('val', c)} = {src('val', c)};"
            )

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        for c in map(str, range(self.d)):
            b.line(f"{out[0]('', c)} = {st('val', c)};")


class ArgMinMaxRed(CppReduction):
    """ArgMin / ArgMax / Min_ArgMin / Max_ArgMax: value and first index of the extremum.

    A tile is evaluated into buffers with a simd min (max); only when it beats the current
    best is the tile scanned for the first position of that value.
    """

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.lt = self.program.lt
        self.is_min = self.lt == "<"
        self.init = INF if self.is_min else f"(-{INF})"

    def fields(self) -> list[Field]:
        return [Field("val", "T", self.d, self.init), Field("ind", "int64_t", self.d, "-1")]

    def outputs(self) -> list[Output]:
        if not self.card.has_values:
            return [Output(self.d, "int64_t")]
        return [Output(self.d, "T"), Output(self.d, "int64_t")]

    def n_buffers(self) -> int:
        return self.d

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        ms = [f"m{c}" for c in range(self.d)]
        b.line("T " + ", ".join(f"{m} = {tc.st('val', str(c))}" for c, m in enumerate(ms)) + ";")
        op = "min" if self.is_min else "max"

        # NaN is stored as the worst value, which it ties with (it never wins).
        def stmts(mask: str | None) -> list[str]:
            out = [f"const T v{c} = {f} != {f} ? {self.init} : {f};" for c, f in enumerate(tc.f)]
            out += [masked_store(mask, f"tb{c}[j - j0] = v{c};") for c in range(self.d)]
            out += [
                f"{m} = {_keep(mask, f'v{c} {self.lt} {m}')} ? v{c} : {m};"
                for c, m in enumerate(ms)
            ]
            return out

        tc.eval_loop(b, f"reduction({op}:{','.join(ms)})", stmts)
        for c, m in enumerate(ms):
            val, ind = tc.st("val", str(c)), tc.st("ind", str(c))
            with (
                b.block(f"if ({m} {self.lt} {val} || {ind} < 0)"),
                b.block("for (int64_t t = 0; t < j1 - j0; ++t)"),
                b.block(f"if (tb{c}[t] == {m})"),
            ):
                b.lines([f"{val} = {m};", f"{ind} = j0 + t;", "break;"])

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        for c in map(str, range(self.d)):
            sv, si, dv, di = src("val", c), src("ind", c), dst("val", c), dst("ind", c)
            with b.block(f"if ({si} >= 0 && ({sv} {self.lt} {dv} || {di} < 0))"):
                b.lines([f"{dv} = {sv};", f"{di} = {si};"])

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        for c in map(str, range(self.d)):
            if not self.card.has_values:
                b.line(f"{out[0]('', c)} = {st('ind', c)};")
            else:
                b.line(f"{out[0]('', c)} = {st('val', c)};")
                b.line(f"{out[1]('', c)} = {st('ind', c)};")


class KMinRed(CppReduction):
    """KMin / ArgKMin / KMin_ArgKMin: the K smallest values per component, ascending.

    A tile is evaluated into buffers (vectorised); then the values are compared with the
    current K-th best ``FILTER_LANES`` at a time (one vectorised test), and only the groups
    holding a value that may beat it are scanned; the rare winners are inserted.
    """

    helpers = frozenset({"lk_kmin_insert", "lk_kmin_merge"})

    def fields(self) -> list[Field]:
        n = self.k * self.d  # component-major: [c][r]
        return [Field("kval", "T", n, INF), Field("kind", "int64_t", n, "-1")]

    def outputs(self) -> list[Output]:
        n = self.k * self.d
        return [Output(n, "int64_t" if o.index else "T") for o in self.card.outputs]

    def n_buffers(self) -> int:
        return self.d

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        k = self.k
        # NaN counts as +inf; +inf values are candidates too (after every finite value).
        tc.eval_loop(
            b,
            "",
            lambda mask: [
                masked_store(mask, f"tb{c}[j - j0] = {f} != {f} ? {INF} : {f};")
                for c, f in enumerate(tc.f)
            ],
        )
        for c in range(self.d):
            with b.block():
                b.line(f"T* kv = &{tc.st('kval', str(c * k))};")
                b.line(f"int64_t* ki = &{tc.st('kind', str(c * k))};")
                kmin_filter(b, f"tb{c}", k, f"tb{c}[t]")

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        for c in range(self.d):
            o = str(c * self.k)
            b.line(
                f"lk_kmin_merge(&{dst('kval', o)}, &{dst('kind', o)}, &{src('kval', o)}, "
                f"&{src('kind', o)}, (int64_t){self.k});"
            )

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        d, k = self.d, self.k
        with b.block(f"for (int64_t r = 0; r < {k}; ++r)"):
            for c in range(d):
                src = f"{c * k} + r"
                dst = f"r * {d} + {c}" if d > 1 else "r"
                fields = ["kval"] * self.card.has_values + ["kind"] * self.card.has_index
                for o, name in enumerate(fields):
                    b.line(f"{out[o]('', dst)} = {st(name, src)};")


def kmin_filter(b: IndentedBuffer, buf: str, k: int, value: str, exact: list[str] = ()) -> None:
    """Fold ``buf[0 .. j1 - j0)`` into the sorted K-list ``(kv, ki)`` of a row.

    ``FILTER_LANES`` values at a time are tested against the K-th best ``thr`` in one
    vectorised comparison (values past the end may be stale: the scan stops at the end);
    a group passes when one of its values is not above ``thr`` (NaN passes), and only then
    is it scanned. ``exact`` are statements run per scanned candidate ``t`` before its
    ``value`` is read (the squared-distance path recomputes the exact value there, ``buf``
    holding lower bounds).
    """
    lanes = FILTER_LANES
    b.line(f"T thr = kv[{k - 1}];")
    with b.block(f"for (int64_t t0 = 0; t0 < j1 - j0; t0 += {lanes})"):
        b.line("int hit = 0;")
        b.pragma("omp simd reduction(|:hit)")
        with b.block(f"for (int u = 0; u < {lanes}; ++u)"):
            b.line(f"hit |= {buf}[t0 + u] > thr ? 0 : 1;")
        b.line("if (!hit) continue;")
        b.line(f"const int64_t te = lk_min(j1 - j0, t0 + {lanes});")
        with b.block("for (int64_t t = t0; t < te; ++t)"):
            b.line(f"if ({buf}[t] > thr) continue;")
            b.lines(list(exact))
            with b.block(f"if ({value} <= thr && ({value} < thr || ki[{k - 1}] < 0))"):
                b.line(f"lk_kmin_insert(kv, ki, (int64_t){k}, {value}, j0 + t);")
                b.line(f"thr = kv[{k - 1}];")
