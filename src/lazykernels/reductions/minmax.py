"""Min, Max, ArgMin, ArgMax, Min_ArgMin, Max_ArgMax: component-wise extrema and their index.

Ties keep the first (lowest) reduction index. NaN values of the formula are skipped (KeOps's
strict comparisons always fail on NaN); a row with only NaN values gets ``+inf`` (Min) or
``-inf`` (Max) and the first index.
"""

from __future__ import annotations

import numpy as np

from .accumulators import NO_INDEX, Accumulator, min_keys, raw_index, rows_of
from .program import INF, Field, Program, Shape, no_nan
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

    Attributes:
        lt: ``"<"`` (Min) or ``">"`` (Max): "better than".
        values, index: which outputs the reduction returns.
    """

    def __init__(self, largest: bool, values: bool, index: bool) -> None:
        self.lt = ">" if largest else "<"
        self.worst = -INF if largest else INF
        self.values, self.index = values, index

    def fields(self, sh: Shape) -> list[Field]:
        out = [Field("val", "value", sh.d, self.worst)]
        return out + ([Field("ind", "index", sh.d, -1)] if self.index else [])

    def update(self, e, sh, st, f, g, j) -> None:
        for c, v in enumerate(f):
            val = st("val", c)
            if not self.index:  # a NaN compares false: it never wins
                e.set(val, e.fmt(f"({{0}} {self.lt} {{1}} ? {{0}} : {{1}})", v, val))
                continue
            w = no_nan(e, v, self.worst)  # NaN: the worst value, which the first pair takes
            ind = st("ind", c)
            with e.if_(e.fmt(f"({{0}} {self.lt} {{1}} || {{2}} < 0)", w, val, ind)):
                e.set(val, w)
                e.set(ind, j)

    def merge(self, e, sh, dst, src) -> None:
        for c in range(sh.d):
            sv, dv = src("val", c), dst("val", c)
            if not self.index:
                with e.if_(e.fmt(f"({{0}} {self.lt} {{1}})", sv, dv)):
                    e.set(dv, sv)
                continue
            si, di = src("ind", c), dst("ind", c)
            with e.if_(
                e.fmt(f"({{0}} >= 0 && ({{1}} {self.lt} {{2}} || {{3}} < 0))", si, sv, dv, di)
            ):
                e.set(dv, sv)
                e.set(di, si)

    def finalize(self, e, sh, st, out) -> None:
        o = 0
        if self.values:
            for c in range(sh.d):
                e.set(out(0, c), st("val", c))
            o = 1
        if self.index:
            for c in range(sh.d):
                e.set(out(o, c), st("ind", c))


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
