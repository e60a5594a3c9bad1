"""KMin, ArgKMin, KMin_ArgKMin: the K smallest values per component, sorted ascending.

Outputs are (n, K, D), squeezed to (n, K) when D == 1. Ties keep the lower index first;
NaN values count as +inf. Slots left unfilled (fewer than K candidates, possible only with
ranges) hold ``+inf`` and index ``-1``.
"""

from __future__ import annotations

import numpy as np

from .accumulators import NO_INDEX, Accumulator, min_keys, raw_index, rows_of
from .spec import OutputSpec, ReductionSpec


class KMinAccumulator(Accumulator):
    """Sorted lists of the K smallest (value, index) pairs per row and component."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = np.full((self.n, self.k, self.dim), np.inf, dtype=self.dtype)
        self.index = np.full((self.n, self.k, self.dim), NO_INDEX, dtype=np.int64)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        keys = min_keys(values, largest=False)
        r, c, d = keys.shape
        indices = np.broadcast_to(
            np.arange(start, start + c, dtype=np.int64)[None, :, None], (r, c, d)
        )
        self._keep_smallest(rows, keys, indices)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        self._keep_smallest(rows_of(rows, self.n), other.key, other.index)

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        values, index = raw  # the raw reduction is KMin_ArgKMin with the same K
        shape = (self.n, self.k, self.dim)
        self.key[...] = values.reshape(shape)
        self.index[...] = raw_index(index.reshape(shape), start)

    def _keep_smallest(self, rows: slice, keys: np.ndarray, indices: np.ndarray) -> None:
        """The K smallest of (running list + candidates), ordered by (value, index)."""
        all_keys = np.concatenate([self.key[rows], keys], axis=1)
        all_indices = np.concatenate([self.index[rows], indices], axis=1)
        order = np.lexsort((all_indices, all_keys), axis=1)[:, : self.k]
        self.key[rows] = np.take_along_axis(all_keys, order, axis=1)
        self.index[rows] = np.take_along_axis(all_indices, order, axis=1)

    def finalize(self) -> tuple[np.ndarray, ...]:
        index = np.where(self.index == NO_INDEX, -1, self.index)
        name = self.spec.name
        if name == "KMin":
            return (self.key,)
        if name == "ArgKMin":
            return (index,)
        return (self.key, index)


def _tail(d: int, dg: int, k: int) -> tuple[int, ...]:
    return (k,) if d == 1 else (k, d)


_VALUES = OutputSpec(_tail, neutral=np.inf)
_INDEX = OutputSpec(_tail, index=True, neutral=-1)


def _spec(name: str, outputs: tuple[OutputSpec, ...], doc: str) -> ReductionSpec:
    return ReductionSpec(name, outputs=outputs, accumulator=KMinAccumulator, needs_k=True, doc=doc)


CARDS = (
    _spec("KMin", (_VALUES,), "the K smallest values, (n, K[, D])"),
    _spec("ArgKMin", (_INDEX,), "indices of the K smallest values, (n, K[, D]) int64"),
    _spec("KMin_ArgKMin", (_VALUES, _INDEX), "(K smallest values, their indices)"),
)
