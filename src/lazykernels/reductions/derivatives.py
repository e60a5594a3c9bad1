"""How reductions differentiate: backward (and forward-mode) reductions built as IR.

This module is the driver: it checks the request and calls the rule of the reduction's card
(``ReductionSpec.vjp`` / ``jvp``, written next to the reduction in its family module with the
pieces of :mod:`.derived`), or builds the selection plan of a Min/Max/K-min card.

Array-library neutral: given a :class:`~lazykernels.core.plan.ReductionPlan` and the input
slot(s) to differentiate, the rules below return new plans whose formulas are built with
``Grad`` / ``Diff`` (:mod:`lazykernels.formula.ops.calculus`). The new inputs of a derived
plan (the incoming gradient G, a tangent, the saved forward output, an auxiliary
log-sum-exp) become new ``Var`` slots after the original ones; :class:`Extra` says what
feeds each of them. An adapter (torch, later JAX) runs the derived plans with the same
machinery as the forward one, so derivatives of derivatives come for free.

Notation: O is the output category, R the reduced one, F the formula (scalar for the
log-sum-exp family), g the weight, o the forward output, G the gradient of o.

- ``Sum`` (o = sum_R F, :mod:`.sums`): ``dv = Sum_R Grad(F, v, G)`` for v of category O; for v of
  category R the same formula is summed over the other index (output R); parameters take
  the O-indexed reduction summed over its rows.
- ``LogSumExp`` / ``LogSumExpWeight`` (:mod:`.logsumexp`; o = log sum_R exp(F) g,
  component-wise in g): for v of category O and parameters (no weight, or one of dimension
  E <= ``logsumexp.NORMALISED_MAX_DIM``), ``dv = sum_c G_c * SumSoftMaxWeight
  (F, Grad(F, v, g_c) + Grad(g_c, v, 1)) / SumSoftMaxWeight(F, g_c)``, one reduction (the
  weight ``[g, h_1, ..., h_E]`` concatenated, the divisions done by the adapter); otherwise
  ``dv = Sum Grad(Sum(G * Exp(F - o) * g), v, 1)``, with o a constant input, reduced as for
  Sum; with a weight, ``Exp(F - o) * g`` is ``Exp(F - m) * g / s`` from the raw state
  ``[m, s]`` (an auxiliary ``Max_SumShiftExpWeight``; see "accuracy" below). Forward mode:
  ``do = SumSoftMaxWeight(F, g dF + dg) / SumSoftMaxWeight(F, g)``.
- ``SumSoftMaxWeight`` (o = sum_R w g, w = softmax_R F): with
  ``h = Grad(F, v, Sum(G * (g - o))) + Grad(g, v, G)``, v of category O gets the
  ``SumSoftMaxWeight`` reduction of (F, h); v of category R first needs
  ``L = LogSumExp_R F`` (an auxiliary reduction) and gets ``Sum_O Exp(F - L) * h``.
- ``Min``, ``Max``, ``KMin`` and their ``*_Arg*`` forms: the values equal F at the selected
  pairs. :func:`selection_plan` turns F into a formula of category O only (every R-variable
  becomes an O-variable that the adapter fills with the rows gathered at the selected
  indices), to be evaluated by a Sum over a dummy reduced axis of size 1; the gradient
  flows through the selected entries (on ties, through the index the reduction returned).
- ``Max_SumShiftExp*`` (raw [m, s] pairs): KeOps's pseudo-derivative, exact only for
  functions of ``m + log s``: m is held constant, ``ds = Sum exp(F - m) (g dF + dg)``.
- ``ArgMin``, ``ArgMax``, ``ArgKMin`` return integers: no gradient.

Accuracy (float32). The saved output o of a log-sum-exp carries a rounding error of about
``|o| eps``, and ``Exp(F - o)`` turns it into the same *relative* error in every softmax
weight: their sum is no longer 1. Where |o| is large (points far from the other cloud, wide
kernels) the tangent ``do`` then misses its centre by ``|o| eps |dF|``, and the Hessian, whose
terms ``w (dF - do) dF`` cancel, lost a factor 4-7 against dense torch (which normalises its
softmax in the pass). The rules above never divide by ``exp(o)``: the softmax is normalised
inside the reduction (max-shifted, as SumSoftMaxWeight does), so the weights sum to 1 up to
the rounding of the sum itself. Reduced-category gradients (and weights wider than
``NORMALISED_MAX_DIM``) still use ``Exp(F - o)``: their sum runs over the other index, where
no single normaliser exists. There F is evaluated as in the forward kernel (``Fence``), so
that its rounding cancels against o's; with a weight, o = m + log s adds the rounding of
``log s ~ log g`` (not 0 where one term dominates a row), so those rules read the raw state
instead: ``Exp(F - m) * g / s`` is 1 at the dominant term up to the rounding of s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from ..errors import ArgumentError
from ..formula.ir import Cat, substitute
from ..formula.simplify import simplify
from . import SPECS
from .derived import DerivedPlan, Extra, Feed, slot_var
from .plan import ArgSlot, ReductionPlan
from .spec import Derivative, ReductionSpec

__all__ = [
    "DerivedPlan",
    "Derivative",
    "Extra",
    "Feed",
    "derivative",
    "jvp_rule",
    "selection_plan",
    "vjp_group_rule",
    "vjp_groups",
    "vjp_rule",
    "with_index",
]


def derivative(plan: ReductionPlan) -> Derivative:
    """How ``plan``'s reduction differentiates (its card's ``derivative``)."""
    return SPECS[plan.reduction].derivative


def _check_position(plan: ReductionPlan, position: int) -> ArgSlot:
    if not 0 <= position < len(plan.slots):
        raise ArgumentError(
            f"cannot differentiate with respect to input {position}: the reduction has "
            f"{len(plan.slots)} inputs"
        )
    return plan.slots[position]


_HINTS = {
    Derivative.SELECTION: "use selection_plan()",
    Derivative.INDEX: "its output is an integer index",
}


def _smooth_card(plan: ReductionPlan) -> ReductionSpec:
    card = SPECS[plan.reduction]
    if card.derivative is not Derivative.SMOOTH:
        hint = _HINTS[card.derivative]
        raise NotImplementedError(f"{plan.reduction} has no derived-reduction derivative ({hint})")
    return card


def vjp_rule(plan: ReductionPlan, position: int) -> DerivedPlan:
    """The reduction that gives the gradient of ``plan``'s output w.r.t. input ``position``.

    Its inputs are the original ones, then the feeds (``GRADIENT``, then ``OUTPUT`` for the
    log-sum-exp family, then ``AUXILIARY`` for SumSoftMaxWeight w.r.t. a reduced-category
    variable). Its output has the input's rows (summed when ``sum_rows``), batch dimensions
    not yet summed back to a broadcast input's shape.

    Raises:
        NotImplementedError: ``plan``'s reduction is not differentiated this way.
        ArgumentError: no such input.

    Example:
        >>> from lazykernels.core.genred import build_plan
        >>> plan = build_plan("Exp(x*y)", ["x = Vi(1)", "y = Vj(1)"], axis=1)
        >>> rule = vjp_rule(plan, 1)
        >>> rule.plan.reduction, rule.plan.output_cat, [f.kind.value for f in rule.feeds]
        ('Sum', <Cat.J: 1>, ['gradient'])
    """
    return vjp_group_rule(plan, (position,))


def vjp_groups(plan: ReductionPlan, positions: Sequence[int]) -> list[tuple[int, ...]]:
    """``positions`` grouped so that each group's gradients come from one reduction: the
    inputs of one category (i or j variables), and the parameters apart (their gradients
    are summed over the rows). In order of first appearance."""
    groups: dict[tuple[Cat, bool], list[int]] = {}
    for position in positions:
        cat = _check_position(plan, position).cat
        key = (plan.output_cat if cat is Cat.PARAM else cat, cat is Cat.PARAM)
        groups.setdefault(key, []).append(position)
    return [tuple(group) for group in groups.values()]


@lru_cache(maxsize=512)
def vjp_group_rule(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """One reduction for the gradients w.r.t. several inputs of one group (:func:`vjp_groups`).

    The gradients are concatenated along the output's last axis, in the order of
    ``DerivedPlan.parts`` (the positions whose gradient is not identically zero); one pass
    over the pairs evaluates the shared parts of the formula once for all of them.

    Raises:
        NotImplementedError: ``plan``'s reduction is not differentiated this way.
        ArgumentError: no such input, or inputs of different groups.
    """
    card = _smooth_card(plan)
    slots = [_check_position(plan, position) for position in positions]
    if not slots or len(vjp_groups(plan, positions)) != 1:
        raise ArgumentError(f"vjp_group_rule: positions {positions} are not one group")
    return card.vjp(plan, positions, slots)


@lru_cache(maxsize=512)
def jvp_rule(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """The reduction that gives the forward-mode derivative (tangent) of ``plan``'s output.

    ``positions`` are the inputs that carry a tangent; their tangents feed the new slots
    (``TANGENT`` feeds, in the order of ``positions``), then the saved output for the
    log-sum-exp family. The output has the forward output's shape.

    Raises:
        NotImplementedError: ``plan``'s reduction is not differentiated this way.
    """
    card = _smooth_card(plan)
    for position in positions:
        _check_position(plan, position)
    return card.jvp(plan, positions)


@lru_cache(maxsize=512)
def selection_plan(plan: ReductionPlan) -> ReductionPlan:
    """F as a formula of the output category only, reduced by a Sum over a dummy axis.

    Every input of the reduced category keeps its position and dimension but becomes an
    input of the output category: the adapter passes the rows of that input gathered at
    the selected indices (one gathered row per output row, per K and per component). The
    Sum then runs over a reduced axis of size 1 and returns F at the selected pairs.

    Raises:
        NotImplementedError: ``plan`` is not a Min/Max/KMin-type reduction.

    Example:
        >>> from lazykernels.core.genred import build_plan
        >>> plan = build_plan("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], "Min", axis=1)
        >>> [s.cat.name for s in selection_plan(plan).slots]
        ['I', 'I']
    """
    if SPECS[plan.reduction].derivative is not Derivative.SELECTION:
        raise NotImplementedError(f"{plan.reduction} does not select pairs")
    out_cat, red_cat = plan.output_cat, plan.reduced_cat
    slots = tuple(replace(s, cat=out_cat) if s.cat is red_cat else s for s in plan.slots)
    mapping = {
        slot_var(old): slot_var(new) for old, new in zip(plan.slots, slots) if old is not new
    }
    return ReductionPlan(
        formula=simplify(substitute(plan.formula, mapping)),
        reduction="Sum",
        output_cat=out_cat,
        slots=slots,
        sum_scheme="direct_sum",
    )


def with_index(plan: ReductionPlan) -> ReductionPlan:
    """``plan`` with its reduction replaced by the one returning values and indices."""
    both = SPECS[plan.reduction].with_index
    if both is None:
        raise NotImplementedError(f"{plan.reduction} does not select pairs")
    return replace(plan, reduction=both)
