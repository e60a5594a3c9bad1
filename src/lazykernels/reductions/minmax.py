"""Min, Max, ArgMin, ArgMax, Min_ArgMin, Max_ArgMax: component-wise extrema and their index.

Ties keep the first (lowest) reduction index. NaN values of the formula are skipped (KeOps's
strict comparisons always fail on NaN); a row with only NaN values gets ``+inf`` (Min) or
``-inf`` (Max) and the first index.
"""

from __future__ import annotations

import numpy as np

from .accumulators import NO_INDEX, Accumulator, min_keys, raw_index, rows_of
from .program import INF, Field, Program, Shape, select
from .spec import Derivative, OutputSpec, ReductionSpec


class ExtremumAccumulator(Accumulator):
    """Running (key, index) minimum per row and component; Max works on negated keys."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.largest = self.spec.selects == "max"
        self.key = np.full((self.n, self.dim), np.inf, dtype=self.dtype)
        self.index = np.full((self.n, self.dim), NO_INDEX, dtype=np.int64)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        keys = min_keys(values, self.largest)
        best = np.argmin(keys, axis=1)  # first occurrence: the lowest index of the block
        block_key = np.take_along_axis(keys, best[:, None, :], axis=1)[:, 0]
        self._keep_best(rows, block_key, best + start)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        self._keep_best(rows_of(rows, self.n), other.key, other.index)

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        values, index = raw  # the raw reduction is Min_ArgMin / Max_ArgMax
        values = values.reshape(self.n, self.dim)
        self.key[...] = -values if self.largest else values
        self.index[...] = raw_index(index.reshape(self.n, self.dim), start)

    def _keep_best(self, rows: slice, key: np.ndarray, index: np.ndarray) -> None:
        """The smaller (key, index) pair of the running one and the given one, per entry."""
        old_key, old_index = self.key[rows], self.index[rows]
        better = (key < old_key) | ((key == old_key) & (index < old_index))
        self.key[rows] = np.where(better, key, old_key)
        self.index[rows] = np.where(better, index, old_index)

    def finalize(self) -> tuple[np.ndarray, ...]:
        values = -self.key if self.largest else self.key
        index = np.where(self.index == NO_INDEX, -1, self.index)
        out = (values,) if self.spec.has_values else ()
        return out + ((index,) if self.spec.has_index else ())


class ExtremumProgram(Program):
    """The running extremum ``val`` per component (and its first index ``ind``).

    Its pieces (the CPU's vectorised tiles print them: a SIMD min / max of the tile's keys,
    then a scan for the first index of the tile's best): :meth:`better`, :meth:`key`,
    :meth:`keep_better`, :meth:`beats`, :meth:`take`.

    Attributes:
        lt: ``"<"`` (Min) or ``">"`` (Max): "better than".
        order: ``"min"`` or ``"max"``: the associative operation that keeps the better of
            two keys (a SIMD reduction of a tile's keys).
        worst: the value every candidate beats or ties (the initial value).
        values, index: which outputs the reduction returns.
    """

    def __init__(self, largest: bool, values: bool, index: bool) -> None:
        self.lt = ">" if largest else "<"
        self.order = "max" if largest else "min"
        self.worst = -INF if largest else INF
        self.values, self.index = values, index

    def fields(self, sh: Shape) -> list[Field]:
        out = [Field("val", "value", sh.d, self.worst)]
        return out + ([Field("ind", "index", sh.d, -1)] if self.index else [])

    def better(self, e, a, b):
        """``a`` strictly better than ``b`` (a NaN is never better)."""
        return e.fmt(f"({{0}} {self.lt} {{1}})", a, b)

    def key(self, e, v):
        """The key of a value with an index: ``v``, or the worst value where ``v`` is NaN
        (which the first pair takes: an index is always found)."""
        return e.fmt("({0} != {0} ? {1} : {0})", v, e.lit(self.worst))

    def keep_better(self, e, v, cur, guard=None):
        """Branch-free: ``v`` where it is better than ``cur`` (and ``guard`` holds), else
        ``cur``."""
        return select(e, self.better(e, v, cur), v, cur, guard)

    def beats(self, e, st, c: int, w):
        """The key ``w`` of a later index replaces component ``c``'s entry (the first one
        always does)."""
        return e.fmt("({0} || {1} < 0)", self.better(e, w, st("val", c)), st("ind", c))

    def take(self, e, st, c: int, w, j) -> None:
        """Component ``c``'s entry becomes ``(w, j)``."""
        e.set(st("val", c), w)
        e.set(st("ind", c), j)

    def update(self, e, sh, st, f, g, j) -> None:
        for c, v in enumerate(f):
            val = st("val", c)
            if not self.index:  # a NaN compares false: it never wins
                e.set(val, self.keep_better(e, v, val))
                continue
            w = e.let("value", self.key(e, v))
            with e.if_(self.beats(e, st, c, w)):
                self.take(e, st, c, w, j)

    def merge(self, e, sh, dst, src) -> None:
        for c in range(sh.d):
            sv, dv = src("val", c), dst("val", c)
            if not self.index:
                with e.if_(self.better(e, sv, dv)):
                    e.set(dv, sv)
                continue
            si = src("ind", c)
            with e.if_(e.fmt("({0} >= 0 && {1})", si, self.beats(e, dst, c, sv))):
                self.take(e, dst, c, sv, si)

    def finalize(self, e, sh, st, out) -> None:
        for c in range(sh.d):
            if self.values:
                e.set(out(0, c), st("val", c))
            if self.index:
                e.set(out(int(self.values), c), st("ind", c))


def _values(neutral: float) -> OutputSpec:
    return OutputSpec(lambda d, dg, k: (d,), neutral=neutral)


_INDEX = OutputSpec(lambda d, dg, k: (d,), index=True, neutral=-1)


def _spec(name: str, largest: bool, values: bool, index: bool, doc: str) -> ReductionSpec:
    outputs = ((_values(-np.inf if largest else np.inf),) if values else ()) + (
        (_INDEX,) if index else ()
    )
    both = "Max_ArgMax" if largest else "Min_ArgMin"
    return ReductionSpec(
        name,
        outputs=outputs,
        accumulator=ExtremumAccumulator,
        program=ExtremumProgram(largest, values, index),
        raw=both,
        derivative=Derivative.SELECTION if values else Derivative.INDEX,
        with_index=both if values else None,
        selects="max" if largest else "min",
        doc=doc,
    )


CARDS = (
    _spec("Min", False, True, False, "component-wise minimum, (n, D)"),
    _spec("Max", True, True, False, "component-wise maximum, (n, D)"),
    _spec("ArgMin", False, False, True, "index of the minimum, (n, D) int64"),
    _spec("ArgMax", True, False, True, "index of the maximum, (n, D) int64"),
    _spec("Min_ArgMin", False, True, True, "(minimum, its index)"),
    _spec("Max_ArgMax", True, True, True, "(maximum, its index)"),
)
