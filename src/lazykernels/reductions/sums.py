"""The Sum reduction: ``out[i] = sum_j F(i, j)``, component-wise."""

from __future__ import annotations

import numpy as np

from .accumulators import Accumulator, RunningSum, rows_of
from .spec import OutputSpec, ReductionSpec


class SumAccumulator(Accumulator):
    """Running sums in ``acc_dtype`` with the requested summation scheme."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sums = RunningSum(self.n, self.dim, self.acc_dtype, self.scheme, self.period)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        self.sums.add(rows, values)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        # another block's total is one more term of the running sums
        self.sums.add(rows_of(rows, self.n), other.sums.total[:, None, :])

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        (sums,) = raw  # the raw reduction of Sum is Sum
        self.sums.total[...] = sums.reshape(self.n, self.dim)

    def finalize(self) -> tuple[np.ndarray, ...]:
        return (self.sums.total.astype(self.dtype),)


SUM = ReductionSpec(
    "Sum",
    outputs=(OutputSpec(lambda d, dg, k: (d,), neutral=0.0),),
    accumulator=SumAccumulator,
    sum_type=True,
    doc="sum over the reduction index, (n, D)",
)

CARDS = (SUM,)
