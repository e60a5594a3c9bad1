"""Accumulators of the NumPy reference backend, and the summation schemes they share.

An accumulator holds the running state of one reduction for ``n`` output rows. The reference
backend (:mod:`lazykernels.reductions.reference`) creates one per batch entry (*init*),
folds blocks of formula values into row slices of it (*update*: reduce the block, then
merge the block's partial state into the running one), and reads the final outputs
(*finalize*). Each reduction family subclasses :class:`Accumulator` in its own module.

Partial states computed elsewhere combine with the same rule: :meth:`Accumulator.merge`
folds another accumulator's state into row slices of this one (the distributed front end,
:mod:`lazykernels.dask`, merges per-block states with it), and
:meth:`Accumulator.load_raw` sets a state from the outputs of the family's *raw* reduction
(the one that returns the state itself: Sum, ``Max_SumShiftExp(Weight)``, ``Min_ArgMin`` /
``Max_ArgMax``, ``KMin_ArgKMin``), which any backend can compute on a block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .spec import ReductionSpec

# Index sentinel while accumulating: larger than any real index, so that "smallest
# (value, index) pair" comparisons prefer real candidates; finalize turns it into -1.
NO_INDEX = np.iinfo(np.int64).max


class Accumulator:
    """Running state of a reduction over blocks of formula values (NumPy reference).

    Args:
        spec: the reduction card.
        n: number of output rows.
        dim, weight_dim, k: formula dimension D, weight dimension Dg (0 if none), K (0 if
            none).
        dtype: the computation dtype of formula values.
        acc_dtype: the accumulator dtype of sums (``dtype`` unless ``dtype_acc`` asked more).
        scheme: the sum scheme (``"direct_sum"``, ``"block_sum"``, ``"kahan_scheme"``).
        period: block-sum flush period, in reduction indices.
    """

    def __init__(
        self,
        spec: ReductionSpec,
        n: int,
        dim: int,
        weight_dim: int,
        k: int,
        dtype: np.dtype,
        acc_dtype: np.dtype,
        scheme: str,
        period: int,
    ):
        self.spec = spec
        self.n = n
        self.dim = dim
        self.weight_dim = weight_dim
        self.k = k
        self.dtype = np.dtype(dtype)
        self.acc_dtype = np.dtype(acc_dtype)
        self.scheme = scheme
        self.period = max(1, int(period))

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        """Fold a block into ``rows``.

        Args:
            rows: the output rows of the block.
            values: ``F`` on the block, shape ``(rows, cols, D)``; column ``c`` is reduction
                index ``start + c``.
            weights: ``G`` on the block, ``(rows, cols, Dg)``, for weighted reductions.
            start: reduction index of column 0.
        """
        raise NotImplementedError

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        """Fold the state of ``other`` (same reduction, ``len(rows)`` rows) into ``rows``.

        ``other``'s reduction indices must be disjoint from the ones already folded here
        (blocks of the reduced axis); the order of merges does not change index choices.
        """
        raise NotImplementedError

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        """Set the state from the outputs of the raw reduction over one block.

        Args:
            raw: the outputs of the family's raw reduction (see the module docstring) on
                reduction indices ``start, start + 1, ...``, each of shape ``(n,) + tail``.
            start: the global reduction index of the block's first column.
        """
        raise NotImplementedError

    def finalize(self) -> tuple[np.ndarray, ...]:
        """The user-level outputs, each of shape ``(n,) + tail`` (before any squeeze)."""
        raise NotImplementedError


class RunningSum:
    """Per-row running sums of vectors, with KeOps's three summation schemes.

    - ``direct_sum``: one accumulator, each term added in turn (in ``acc_dtype``).
    - ``block_sum``: terms are summed in turn into a temporary accumulator that is flushed
      into the total every ``period`` terms (KeOps's CPU scheme, period ~ sqrt(N)).
    - ``kahan_scheme``: compensated (Kahan) summation with one compensation per entry.

    Terms are added strictly sequentially (``np.add.accumulate``, never NumPy's pairwise
    ``sum``), so the schemes' different rounding errors are those of the compiled kernels.
    """

    def __init__(self, n: int, width: int, acc_dtype: np.dtype, scheme: str, period: int):
        self.total = np.zeros((n, width), dtype=acc_dtype)
        self.comp = np.zeros((n, width), dtype=acc_dtype) if scheme == "kahan_scheme" else None
        self.scheme = scheme
        self.period = period

    def scale(self, rows: slice, factor: np.ndarray) -> None:
        """Multiply the sums (and compensations) of ``rows`` by ``factor`` (rows, 1)."""
        factor = factor.astype(self.total.dtype, copy=False)
        self.total[rows] *= factor
        if self.comp is not None:
            self.comp[rows] *= factor

    def add(self, rows: slice, terms: np.ndarray) -> None:
        """Add ``terms[:, c]`` for c = 0, 1, ... to the sums of ``rows`` (terms: (r, c, w))."""
        terms = terms.astype(self.total.dtype, copy=False)
        if self.scheme == "kahan_scheme":
            self._add_kahan(rows, terms)
            return
        if self.scheme == "block_sum":
            r, c, w = terms.shape
            p = self.period
            pad = (-c) % p
            if pad:
                terms = np.concatenate([terms, np.zeros((r, pad, w), terms.dtype)], axis=1)
            chunks = terms.reshape(r, (c + pad) // p, p, w)
            terms = np.add.accumulate(chunks, axis=2)[:, :, -1]  # one temporary per period
        seq = np.concatenate([self.total[rows][:, None, :], terms], axis=1)
        self.total[rows] = np.add.accumulate(seq, axis=1)[:, -1]

    def _add_kahan(self, rows: slice, terms: np.ndarray) -> None:
        total = self.total[rows].copy()
        comp = self.comp[rows].copy()
        for c in range(terms.shape[1]):
            y = terms[:, c] - comp
            t = total + y
            comp = (t - total) - y
            total = t
        self.total[rows] = total
        self.comp[rows] = comp


def rows_of(rows: slice | None, n: int) -> slice:
    """``rows``, or every row of an accumulator of ``n`` rows when None."""
    return slice(0, n) if rows is None else rows


def raw_index(index: np.ndarray, start: int) -> np.ndarray:
    """Block-local indices of a raw Min/KMin output as global ones (``-1``: ``NO_INDEX``)."""
    return np.where(index < 0, NO_INDEX, index + start)


def min_keys(values: np.ndarray, largest: bool) -> np.ndarray:
    """Comparison keys such that the wanted extremum is the smallest key.

    NaN values never win (they become +inf, like KeOps's strict comparisons that a NaN
    always fails); ``largest`` negates the values, which is exact.
    """
    keys = -values if largest else values
    return np.where(np.isnan(keys), np.inf, keys)
