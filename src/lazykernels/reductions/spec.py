"""The reduction card: what one canonical reduction outputs and which options it takes.

A :class:`ReductionSpec` is to reductions what an ``OpSpec`` is to formula operations: the
binding reads it to allocate outputs and validate options, the reference backend reads its
``accumulator`` to compute, and compiled backends read ``outputs`` and the neutral values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .accumulators import Accumulator

# The sizes an output shape depends on: formula dim D, weight dim Dg, K.
TailRule = Callable[[int, int, int], tuple[int, ...]]


@dataclass(frozen=True)
class OutputSpec:
    """One output array of a reduction, per output row.

    Attributes:
        tail: the shape after ``batch + (n,)``, from (D, Dg, K).
        index: True for int64 index outputs, False for values in the data dtype.
        neutral: value of every entry of a row whose reduction set is empty.
        neutral_first: value of column 0 of such a row when it differs from ``neutral``
            (the running max ``m`` of the Max_SumShiftExp family).
    """

    tail: TailRule
    index: bool = False
    neutral: float = 0.0
    neutral_first: float | None = None


@dataclass(frozen=True)
class ReductionSpec:
    """A canonical user-level reduction (``ReductionPlan.reduction``).

    Attributes:
        name: canonical name (``"Sum"``, ``"KMin_ArgKMin"``...).
        outputs: the arrays ``Genred`` returns (one, or a tuple of two).
        accumulator: the NumPy reference accumulator class of the reduction's family.
        sum_type: True when ``dtype_acc`` / ``use_double_acc`` / ``sum_scheme`` apply.
        needs_k: takes ``opt_arg = K``.
        needs_weight: takes ``formula2``.
        scalar_formula: the formula must have dimension 1 (log-sum-exp family).
        doc: one line for messages and docs.
    """

    name: str
    outputs: tuple[OutputSpec, ...]
    accumulator: type[Accumulator]
    sum_type: bool = False
    needs_k: bool = False
    needs_weight: bool = False
    scalar_formula: bool = False
    doc: str = ""

    def __reduce__(self):
        # pickled by name (the output rules are lambdas): a card sent to another process,
        # e.g. inside an accumulator, is that process's registered card
        return (_registered, (self.name,))

    def output_tails(
        self, dim: int, weight_dim: int = 0, k: int = 0
    ) -> tuple[tuple[int, ...], ...]:
        """Shape after ``batch + (n,)`` of each output."""
        return tuple(o.tail(dim, weight_dim, k) for o in self.outputs)


def _registered(name: str) -> ReductionSpec:
    """The registered card named ``name`` (the unpickling side of ``ReductionSpec``)."""
    from . import SPECS  # the table (this package's __init__) imports this module

    return SPECS[name]
