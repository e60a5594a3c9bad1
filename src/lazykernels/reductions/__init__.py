"""Reductions: the reduction cards, the reduction plan and the NumPy reference backend.

Pipeline position: above the formula IR, below code generation and the core. Each family
module (:mod:`.sums`, :mod:`.logsumexp`, :mod:`.minmax`, :mod:`.kmin`) holds its cards
(:class:`~.spec.ReductionSpec`: outputs, options, syntax, NumPy accumulator, neutral
accumulator program, partial state, derivative rule); :data:`SPECS` registers them.
``Genred`` turns a user's ``reduction_op`` into a canonical name of this table
(:func:`canonical_name`), the binding (:mod:`lazykernels.core.bind`) allocates the
outputs this table describes, and every backend fills them with exactly the values below;
:mod:`lazykernels.reductions.reference` is the NumPy oracle they are tested against.

Semantics (n output rows, D = formula dim, Dg = weight dim, K = ``opt_arg``; batch
dimensions in front; the reduction runs over the other index):

==========================  ==========================================  ====================
reduction                   output                                      empty reduction set
==========================  ==========================================  ====================
Sum                         (n, D) sum_j F                              0
LogSumExp                   (n, 1) log sum_j exp F (F scalar)           -inf
LogSumExpWeight             (n, Dg) m + log sum_j exp(F - m) G          -inf
SumSoftMaxWeight            (n, Dg) sum_j exp(F) G / sum_j exp(F)       0
Max_SumShiftExp             (n, 2) raw [m, s], s = sum_j exp(F - m)     [-inf, 0]
Max_SumShiftExpWeight       (n, 1 + Dg) raw [m, s_1 .. s_Dg]            [-inf, 0, ..., 0]
Min / Max                   (n, D) component-wise                       +inf / -inf
ArgMin / ArgMax             (n, D) int64, first index wins on ties      -1
Min_ArgMin / Max_ArgMax     tuple of the two above                      (+-inf, -1)
KMin                        (n, K, D), (n, K) when D == 1, ascending    +inf
ArgKMin                     same shape, int64, ties: lower index first  -1
KMin_ArgKMin                tuple of the two above                      (+inf, -1)
==========================  ==========================================  ====================

A row's reduction set is empty when the reduced axis has size 0 or when no range covers the
row; with ranges, KMin slots beyond the number of candidates also hold ``+inf`` / ``-1``.
Vector-valued formulas are reduced component-wise, except by the log-sum-exp family, which
needs a scalar F. NaN formula values never win a Min/Max/KMin comparison (as in KeOps).
The raw ``[m, s]`` states differentiate as in KeOps, m held constant: exact only for
functions of ``m + log s`` (a log-sum-exp or a softmax computed from them).

Options: ``dtype_acc`` and ``sum_scheme`` apply only to the sum-type reductions (Sum and the
log-sum-exp family; ``ReductionSpec.sum_type``); ``"auto"`` resolves to ``block_sum`` for
them and ``direct_sum`` for the others. Unlike KeOps, ``kahan_scheme`` also works for the
log-sum-exp family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from ..errors import ArgumentError
from ..formula import parse
from ..formula.aliases import Alias
from ..formula.syntax import ReductionSyntax
from . import kmin, logsumexp, minmax, sums
from .spec import Derivative, OutputSpec, ReductionSpec


def _build(families: tuple[tuple[ReductionSpec, ...], ...]) -> MappingProxyType[str, ReductionSpec]:
    table: dict[str, ReductionSpec] = {}
    for family in families:
        for card in family:
            if card.name in table:
                raise RuntimeError(f"reduction {card.name!r} is registered twice")
            table[card.name] = card
    for card in table.values():
        for other in (card.raw, card.with_index):
            if other is not None and other not in table:
                raise RuntimeError(f"reduction {card.name!r} refers to the unknown {other!r}")
    return MappingProxyType(table)


SPECS: MappingProxyType[str, ReductionSpec] = _build(
    (sums.CARDS, logsumexp.CARDS, minmax.CARDS, kmin.CARDS)
)
"""Every canonical reduction, by name: the registry of reduction cards."""

SYNTAX: Mapping[str, ReductionSyntax] = MappingProxyType(
    {**{name: card.syntax for name, card in SPECS.items()}, "Zero": ReductionSyntax()}
)
"""The ``<Name>_Reduction`` names of formula strings, by ``Name``: every card's syntax, and
KeOps's ``Zero_Reduction(dim, tagI)`` (its first argument is a dimension)."""


def parse_reduction(
    text: str, aliases: Sequence[str] | Sequence[Alias] = ()
) -> parse.ParsedReduction:
    """Parse ``<Name>_Reduction(formula[, K], tagI[, formula2])`` with the cards' syntax
    (:func:`lazykernels.formula.parse.parse_reduction`).

    Example:
        >>> r = parse_reduction("KMin_Reduction(SqDist(x, y), 5, 0)", ["x=Vi(3)", "y=Vj(3)"])
        >>> r.name, r.k, r.output_cat
        ('KMin', 5, <Cat.I: 0>)
    """
    return parse.parse_reduction(text, aliases, SYNTAX)


# KeOps spellings that its post-processing mentions but that never worked (SPEC §8.6).
_HINTS = {"MinArgMin": "Min_ArgMin", "MaxArgMax": "Max_ArgMax", "KMinArgKMin": "KMin_ArgKMin"}


def canonical_name(reduction_op: str, has_weight: bool) -> str:
    """The canonical reduction for a user's ``reduction_op``.

    ``"SoftMax"`` is the old name of ``"SumSoftMaxWeight"``; ``"LogSumExp"`` with a weight
    (``formula2``) is ``"LogSumExpWeight"``.

    Raises:
        ArgumentError: unknown name.

    Example:
        >>> canonical_name("LogSumExp", has_weight=True)
        'LogSumExpWeight'
    """
    if not isinstance(reduction_op, str):
        raise ArgumentError(f"reduction_op must be a string, got {type(reduction_op).__name__}")
    if reduction_op == "SoftMax":
        return "SumSoftMaxWeight"
    if reduction_op == "LogSumExp" and has_weight:
        return "LogSumExpWeight"
    if reduction_op in SPECS:
        return reduction_op
    hint = f" (did you mean {_HINTS[reduction_op]!r}?)" if reduction_op in _HINTS else ""
    raise ArgumentError(
        f"unknown reduction_op {reduction_op!r}{hint}; expected one of "
        f"{', '.join(SPECS)} or 'SoftMax'"
    )


__all__ = [
    "SPECS",
    "SYNTAX",
    "Derivative",
    "OutputSpec",
    "ReductionSpec",
    "canonical_name",
    "parse_reduction",
]
