"""The reduction card: everything about one canonical reduction, in one place.

A :class:`ReductionSpec` is to reductions what an ``OpSpec`` is to formula operations. It
holds the reduction's outputs and options (the binding allocates and validates with them),
its syntax in ``<Name>_Reduction(...)`` strings, its NumPy reference ``accumulator``, its
accumulator *program* (state, init / update / merge / finalize as neutral statements that
each dialect prints, :mod:`.program`), its partial-state (``raw``) reduction and its
derivative rule. Nothing outside the card tests a reduction's name: code reads the card.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..formula.syntax import ReductionSyntax

if TYPE_CHECKING:
    from .accumulators import Accumulator
    from .program import Program

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


class Derivative(enum.Enum):
    """How a reduction differentiates (:mod:`.derivatives`)."""

    SMOOTH = "smooth"  # by derived reductions: the card's ``vjp`` / ``jvp`` rules
    SELECTION = "selection"  # the values are F at selected pairs (``selection_plan``)
    INDEX = "index"  # integer outputs only: nothing to differentiate


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
        formula_rounding: how compiled kernels may round the formula: ``"fast"``,
            ``"no-contraction"`` (no FMA fused across its operations) or ``"as-written"``
            (nor reassociated), for the reductions whose outputs derived kernels subtract
            from the recomputed formula (:mod:`lazykernels.codegen.exact`).
        program: the accumulator statements every compiled target prints.
        raw: the reduction whose outputs are this one's partial state on a block of the
            reduced axis (None: itself), see :mod:`.partial`.
        unit_sum: the state's shifted sums hold the sum of the unit weight first (the
            softmax denominator); a weighted such reduction gets its raw plan's weight
            ``Concat(1, G)``.
        derivative: how it differentiates; ``vjp`` / ``jvp`` are its rules when SMOOTH
            (``vjp(plan, positions, slots) -> DerivedPlan``, ``jvp(plan, positions)``).
        with_index: SELECTION: the reduction returning both values and indices.
        selects: ``"min"`` / ``"max"``: the reduction keeps the smallest (largest) values.
        linear: the outputs are linear in F (Sum): defined for complex formulas too.
        formula2: the second formula in ``<Name>_Reduction`` strings (``"none"``,
            ``"optional"``, ``"required"``; default from ``needs_weight``).
        doc: one line for messages and docs.
    """

    name: str
    outputs: tuple[OutputSpec, ...]
    accumulator: type[Accumulator]
    program: Program
    derivative: Derivative
    sum_type: bool = False
    needs_k: bool = False
    needs_weight: bool = False
    scalar_formula: bool = False
    formula_rounding: str = "fast"
    raw: str | None = None
    unit_sum: bool = False
    vjp: Callable[..., Any] | None = None
    jvp: Callable[..., Any] | None = None
    with_index: str | None = None
    selects: str | None = None
    linear: bool = False
    formula2: str | None = None
    doc: str = ""

    @property
    def raw_name(self) -> str:
        """The reduction computing this one's partial state."""
        return self.raw or self.name

    @property
    def syntax(self) -> ReductionSyntax:
        """The arguments of ``<name>_Reduction(formula[, K], tagI[, formula2])``."""
        formula2 = self.formula2 or ("required" if self.needs_weight else "none")
        return ReductionSyntax(takes_k=self.needs_k, formula2=formula2)

    @property
    def has_index(self) -> bool:
        """Some output holds int64 indices."""
        return any(o.index for o in self.outputs)

    @property
    def has_values(self) -> bool:
        """Some output holds values of the data type."""
        return any(not o.index for o in self.outputs)

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
