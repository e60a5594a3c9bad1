"""The log-sum-exp family: LogSumExp, LogSumExpWeight, SumSoftMaxWeight, Max_SumShiftExp*.

All of them accumulate a running maximum ``m`` of the scalar formula F and the shifted sums
``s = sum_j exp(F_j - m) G_j`` (``G = 1`` without a weight); when ``m`` grows, ``s`` is
rescaled by ``exp(m_old - m_new)``. Only the final step differs:

- LogSumExp: ``m + log(s)``, (n, 1); LogSumExpWeight: ``m + log(s)``, (n, Dg);
- SumSoftMaxWeight: ``sum_j exp(F_j - m) G_j / sum_j exp(F_j - m)``, (n, Dg);
- Max_SumShiftExp: the raw ``[m, s]``, (n, 2); Max_SumShiftExpWeight: ``[m, s_1..s_Dg]``.
"""

from __future__ import annotations

import numpy as np

from .accumulators import Accumulator, RunningSum, rows_of
from .spec import OutputSpec, ReductionSpec


class ShiftExpAccumulator(Accumulator):
    """Running max ``m`` (data dtype) and shifted sums ``s`` (accumulator dtype)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        name = self.spec.name
        self.softmax = name == "SumSoftMaxWeight"
        if name in ("LogSumExp", "Max_SumShiftExp"):
            width = 1
        else:
            width = self.weight_dim + (1 if self.softmax else 0)
        self.m = np.full((self.n, 1), -np.inf, dtype=self.dtype)
        self.s = RunningSum(self.n, width, self.acc_dtype, self.scheme, self.period)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        if weights is not None and self.softmax:
            weights = np.concatenate([np.ones_like(weights[..., :1]), weights], axis=-1)
        self._fold(rows, values, weights)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        # a partial state (m', s') is one more term: value m', weight s'
        self._fold(rows_of(rows, self.n), other.m[:, None, :], other.s.total[:, None, :])

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        # the raw reduction is Max_SumShiftExp(Weight): [m, s] (SumSoftMaxWeight: its
        # weight is Concat(1, G), so s holds the denominator first)
        pairs = raw[0].reshape(self.n, -1)
        self.m[...] = pairs[:, :1]
        self.s.total[...] = pairs[:, 1:]

    def _fold(self, rows: slice, values: np.ndarray, weights: np.ndarray | None) -> None:
        """Add ``exp(values) * weights`` (columns in turn) to the shifted sums of ``rows``."""
        with np.errstate(all="ignore"):
            m_old = self.m[rows]
            m_new = np.maximum(m_old, values.max(axis=1))
            # equal maxima (both -inf or both +inf included) mean no rescaling
            factor = np.where(m_old == m_new, 1.0, np.exp(m_old - m_new)).astype(self.dtype)
            shifted = np.where(values == m_new[:, None, :], 1.0, np.exp(values - m_new[:, None, :]))
            shifted = np.where(np.isneginf(values), 0.0, shifted).astype(self.dtype)
            if weights is not None:
                shifted = shifted * weights
        self.m[rows] = m_new
        self.s.scale(rows, factor)  # merge: bring the running sums to the new maximum
        self.s.add(rows, shifted)

    def finalize(self) -> tuple[np.ndarray, ...]:
        s = self.s.total
        name = self.spec.name
        with np.errstate(all="ignore"):
            if name in ("LogSumExp", "LogSumExpWeight"):
                out = self.m + np.log(s)
            elif self.softmax:
                den = s[:, :1]
                out = np.where(den == 0, 0.0, s[:, 1:] / np.where(den == 0, 1.0, den))
            else:
                out = np.concatenate([self.m.astype(s.dtype), s], axis=1)
        return (out.astype(self.dtype),)


def _spec(name: str, tail, weighted: bool, neutral: float, first: float | None, doc: str):
    return ReductionSpec(
        name,
        outputs=(OutputSpec(tail, neutral=neutral, neutral_first=first),),
        accumulator=ShiftExpAccumulator,
        sum_type=True,
        needs_weight=weighted,
        scalar_formula=True,
        doc=doc,
    )


CARDS = (
    _spec("LogSumExp", lambda d, dg, k: (1,), False, -np.inf, None, "log sum_j exp F, (n, 1)"),
    _spec(
        "LogSumExpWeight",
        lambda d, dg, k: (dg,),
        True,
        -np.inf,
        None,
        "log sum_j exp(F) G, (n, Dg)",
    ),
    _spec(
        "SumSoftMaxWeight",
        lambda d, dg, k: (dg,),
        True,
        0.0,
        None,
        "sum_j exp(F) G / sum_j exp(F), (n, Dg)",
    ),
    _spec(
        "Max_SumShiftExp",
        lambda d, dg, k: (2,),
        False,
        0.0,
        -np.inf,
        "raw [m, sum_j exp(F - m)], (n, 2)",
    ),
    _spec(
        "Max_SumShiftExpWeight",
        lambda d, dg, k: (1 + dg,),
        True,
        0.0,
        -np.inf,
        "raw [m, sum_j exp(F - m) G], (n, 1 + Dg)",
    ),
)
