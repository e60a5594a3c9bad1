"""Min, Max, ArgMin, ArgMax, Min_ArgMin, Max_ArgMax: component-wise extrema and their index.

Ties keep the first (lowest) reduction index. NaN values of the formula are skipped (KeOps's
strict comparisons always fail on NaN); a row with only NaN values gets ``+inf`` (Min) or
``-inf`` (Max) and the first index.
"""

from __future__ import annotations

import numpy as np

from .accumulators import NO_INDEX, Accumulator, min_keys, raw_index, rows_of
from .spec import OutputSpec, ReductionSpec


class ExtremumAccumulator(Accumulator):
    """Running (key, index) minimum per row and component; Max works on negated keys."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.largest = self.spec.name.startswith(("Max", "ArgMax"))
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
        name = self.spec.name
        if name in ("Min", "Max"):
            return (values,)
        if name in ("ArgMin", "ArgMax"):
            return (index,)
        return (values, index)


def _values(neutral: float) -> OutputSpec:
    return OutputSpec(lambda d, dg, k: (d,), neutral=neutral)


_INDEX = OutputSpec(lambda d, dg, k: (d,), index=True, neutral=-1)


def _spec(name: str, outputs: tuple[OutputSpec, ...], doc: str) -> ReductionSpec:
    return ReductionSpec(name, outputs=outputs, accumulator=ExtremumAccumulator, doc=doc)


CARDS = (
    _spec("Min", (_values(np.inf),), "component-wise minimum, (n, D)"),
    _spec("Max", (_values(-np.inf),), "component-wise maximum, (n, D)"),
    _spec("ArgMin", (_INDEX,), "index of the minimum, (n, D) int64"),
    _spec("ArgMax", (_INDEX,), "index of the maximum, (n, D) int64"),
    _spec("Min_ArgMin", (_values(np.inf), _INDEX), "(minimum, its index)"),
    _spec("Max_ArgMax", (_values(-np.inf), _INDEX), "(maximum, its index)"),
)
