"""How reductions differentiate: backward (and forward-mode) reductions built as IR.

Array-library neutral: given a :class:`~lazykernels.core.plan.ReductionPlan` and the input
slot(s) to differentiate, the rules below return new plans whose formulas are built with
``Grad`` / ``Diff`` (:mod:`lazykernels.formula.ops.calculus`). The new inputs of a derived
plan (the incoming gradient G, a tangent, the saved forward output, an auxiliary
log-sum-exp) become new ``Var`` slots after the original ones; :class:`Extra` says what
feeds each of them. An adapter (torch, later JAX) runs the derived plans with the same
machinery as the forward one, so derivatives of derivatives come for free.

Notation: O is the output category, R the reduced one, F the formula (scalar for the
log-sum-exp family), g the weight, o the forward output, G the gradient of o.

- ``Sum`` (o = sum_R F): ``dv = Sum_R Grad(F, v, G)`` for v of category O; for v of
  category R the same formula is summed over the other index (output R); parameters take
  the O-indexed reduction summed over its rows.
- ``LogSumExp`` / ``LogSumExpWeight`` (o = log sum_R exp(F) g, component-wise in g): for v
  of category O and parameters (weight of dimension 1 or none), ``dv = G * SumSoftMaxWeight
  (F, [Grad(F, v, g) + Grad(g, v, 1)]) / SumSoftMaxWeight(F, g)``, one reduction (the weight
  ``[g, ...]`` concatenated, the division done by the adapter); otherwise
  ``dv = Sum Grad(Sum(G * Exp(F - o) * g), v, 1)``, with o a constant input, reduced as for
  Sum. Forward mode: ``do = SumSoftMaxWeight(F, g dF + dg) / SumSoftMaxWeight(F, g)``.
- ``SumSoftMaxWeight`` (o = sum_R w g, w = softmax_R F): with
  ``h = Grad(F, v, Sum(G * (g - o))) + Grad(g, v, G)``, v of category O gets the
  ``SumSoftMaxWeight`` reduction of (F, h); v of category R first needs
  ``L = LogSumExp_R F`` (an auxiliary reduction) and gets ``Sum_O Exp(F - L) * h``.
- ``Min``, ``Max``, ``KMin`` and their ``*_Arg*`` forms: the values equal F at the selected
  pairs. :func:`selection_plan` turns F into a formula of category O only (every R-variable
  becomes an O-variable that the adapter fills with the rows gathered at the selected
  indices), to be evaluated by a Sum over a dummy reduced axis of size 1; the gradient
  flows through the selected entries (on ties, through the index the reduction returned).
- ``ArgMin``, ``ArgMax``, ``ArgKMin`` return integers: no gradient.

Accuracy (float32). The saved output o of a log-sum-exp carries a rounding error of about
``|o| eps``, and ``Exp(F - o)`` turns it into the same *relative* error in every softmax
weight: their sum is no longer 1. Where |o| is large (points far from the other cloud, wide
kernels) the tangent ``do`` then misses its centre by ``|o| eps |dF|``, and the Hessian, whose
terms ``w (dF - do) dF`` cancel, lost a factor 4-7 against dense torch (which normalises its
softmax in the pass). The rules above never divide by ``exp(o)``: the softmax is normalised
inside the reduction (max-shifted, as SumSoftMaxWeight does), so the weights sum to 1 up to
the rounding of the sum itself. Reduced-category gradients still use ``Exp(F - o)``: their
sum runs over the other index, where no single normaliser exists.
- ``Max_SumShiftExp*`` (raw [m, s] pairs) are not differentiable here: differentiate
  LogSumExp or SumSoftMaxWeight instead.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, reduce

from ..core.plan import ArgSlot, ReductionPlan
from ..errors import ArgumentError
from ..formula.ir import Cat, Node, const, make, substitute, var, zero
from ..formula.simplify import simplify

SMOOTH = frozenset({"Sum", "LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight"})
"""Reductions differentiated by derived reductions (:func:`vjp_rule`, :func:`jvp_rule`)."""

SELECTION = frozenset({"Min", "Max", "KMin", "Min_ArgMin", "Max_ArgMax", "KMin_ArgKMin"})
"""Reductions whose values are F at selected pairs (:func:`selection_plan`)."""

INDEX_ONLY = frozenset({"ArgMin", "ArgMax", "ArgKMin"})
"""Reductions with integer outputs only: nothing to differentiate."""

WITH_INDEX = {
    "Min": "Min_ArgMin",
    "Max": "Max_ArgMax",
    "KMin": "KMin_ArgKMin",
    "Min_ArgMin": "Min_ArgMin",
    "Max_ArgMax": "Max_ArgMax",
    "KMin_ArgKMin": "KMin_ArgKMin",
}
"""The reduction that returns both the selected values and their indices."""


class Extra(enum.Enum):
    """What feeds an input slot that a derived plan adds after the original ones."""

    GRADIENT = "gradient"  # the incoming gradient G of the forward output (category O)
    OUTPUT = "output"  # the saved forward output o (category O)
    TANGENT = "tangent"  # the tangent of an original input (same shape as that input)
    AUXILIARY = "auxiliary"  # the output of ``DerivedPlan.auxiliary`` on the original inputs


@dataclass(frozen=True)
class Feed:
    """One extra input of a derived plan: its kind and, for tangents, the input position."""

    kind: Extra
    position: int | None = None


@dataclass(frozen=True)
class DerivedPlan:
    """A reduction that computes a derivative.

    Attributes:
        plan: the reduction to run; its first slots are the original inputs.
        feeds: what feeds each further slot, in position order.
        sum_rows: sum the output over its row axis (gradients of parameters).
        auxiliary: a reduction of the original inputs whose output feeds the
            ``Extra.AUXILIARY`` slot (the log-sum-exp of SumSoftMaxWeight), or None.
        zero: the derivative is identically zero (F does not depend on the input): an
            adapter may skip running ``plan``.
        parts: for gradients (:func:`vjp_group_rule`), the input positions whose gradients
            the output holds, concatenated along its last axis in this order; the inputs of
            the group left out have a zero gradient.
        denominator: when not 0, the derivative is the output (along its last axis) less
            its first ``denominator`` columns, divided by them (one column: broadcast).
        times_gradient: the derivative is that times the incoming gradient G.
    """

    plan: ReductionPlan
    feeds: tuple[Feed, ...]
    sum_rows: bool = False
    auxiliary: ReductionPlan | None = None
    zero: bool = False
    parts: tuple[int, ...] = ()
    denominator: int = 0
    times_gradient: bool = False


def _derived(
    base: ReductionPlan,
    formula: Node,
    reduction: str,
    output_cat: Cat,
    extra_slots: tuple[ArgSlot, ...],
    weight: Node | None = None,
) -> ReductionPlan:
    """A plan over ``base``'s inputs plus ``extra_slots``, with ``base``'s accumulation."""
    sum_type = base.reduction in SMOOTH
    return ReductionPlan(
        formula=simplify(formula),
        reduction=reduction,
        output_cat=output_cat,
        slots=base.slots + extra_slots,
        weight=None if weight is None else simplify(weight),
        dtype_acc=base.dtype_acc if sum_type else None,
        sum_scheme=base.sum_scheme if sum_type else "block_sum",
    )


def _slot_var(slot: ArgSlot) -> Node:
    return var(slot.position, slot.dim, slot.cat)


def _new_var(plan: ReductionPlan, extra: list[ArgSlot], dim: int, cat: Cat, name: str) -> Node:
    """A fresh input after the original ones (and after ``extra``), recorded in ``extra``."""
    slot = ArgSlot(len(plan.slots) + len(extra), dim, cat, name)
    extra.append(slot)
    return _slot_var(slot)


def _output_dim(plan: ReductionPlan) -> int:
    if plan.reduction == "LogSumExp":
        return 1
    if plan.reduction in ("LogSumExpWeight", "SumSoftMaxWeight"):
        return plan.weight.dim  # type: ignore[union-attr]
    return plan.formula.dim


def _check_position(plan: ReductionPlan, position: int) -> ArgSlot:
    if not 0 <= position < len(plan.slots):
        raise ArgumentError(
            f"cannot differentiate with respect to input {position}: the reduction has "
            f"{len(plan.slots)} inputs"
        )
    return plan.slots[position]


def _check_smooth(plan: ReductionPlan) -> None:
    if plan.reduction in SMOOTH:
        return
    if plan.reduction in SELECTION:
        hint = "use selection_plan()"
    elif plan.reduction in INDEX_ONLY:
        hint = "its output is an integer index"
    else:
        hint = "differentiate LogSumExp or SumSoftMaxWeight instead of the raw [m, s] pairs"
    raise NotImplementedError(f"{plan.reduction} has no derived-reduction derivative ({hint})")


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
    _check_smooth(plan)
    slots = [_check_position(plan, position) for position in positions]
    if not slots or len(vjp_groups(plan, positions)) != 1:
        raise ArgumentError(f"vjp_group_rule: positions {positions} are not one group")
    out_cat = plan.output_cat
    target = slots[0].cat if slots[0].cat is not Cat.PARAM else out_cat
    lse = plan.reduction in ("LogSumExp", "LogSumExpWeight")
    if lse and target is out_cat and (plan.weight is None or plan.weight.dim == 1):
        return _normalised_lse_vjp(plan, positions, slots)
    extra: list[ArgSlot] = []
    feeds = [Feed(Extra.GRADIENT)]
    g_in = _new_var(plan, extra, _output_dim(plan), out_cat, "G")
    f = plan.formula
    auxiliary = None
    reduction = "Sum"
    if plan.reduction == "Sum":
        parts = {p: make("Grad", (f, _slot_var(s), g_in)) for p, s in zip(positions, slots)}
    elif plan.reduction in ("LogSumExp", "LogSumExpWeight"):
        feeds.append(Feed(Extra.OUTPUT))
        o = _new_var(plan, extra, _output_dim(plan), out_cat, "out")
        g = plan.weight if plan.weight is not None else const(1)
        # d o_c = sum exp(F - o_c) (g_c dF + dg_c), o held constant
        summed = make("Sum", (g_in * (f - o).exp() * g,))
        parts = {
            p: make("Grad", (summed, _slot_var(s), const(1))) for p, s in zip(positions, slots)
        }
    else:  # SumSoftMaxWeight: d o = sum w (dg + (g - o) dF), w = softmax F
        feeds.append(Feed(Extra.OUTPUT))
        o = _new_var(plan, extra, _output_dim(plan), out_cat, "out")
        g = plan.weight
        spread = make("Sum", (g_in * (g - o),))
        parts = {
            p: make("Grad", (f, _slot_var(s), spread)) + make("Grad", (g, _slot_var(s), g_in))
            for p, s in zip(positions, slots)
        }
    kept = {p: simplify(h) for p, h in parts.items()}
    kept = {p: h for p, h in kept.items() if h.op.name != "Zero"}
    sum_rows = slots[0].cat is Cat.PARAM
    if not kept:  # F does not depend on these inputs: nothing to run
        nothing = _derived(plan, zero(sum(s.dim for s in slots)), "Sum", target, tuple(extra))
        return DerivedPlan(plan=nothing, feeds=tuple(feeds), sum_rows=sum_rows, zero=True)
    joined = reduce(lambda a, b: make("Concat", (a, b)), kept.values())
    weight = None
    if plan.reduction == "SumSoftMaxWeight":
        if target is out_cat:
            body, weight, reduction = f, joined, "SumSoftMaxWeight"
        else:
            feeds.append(Feed(Extra.AUXILIARY))
            lse = _new_var(plan, extra, 1, out_cat, "lse")
            auxiliary = _derived(plan, f, "LogSumExp", out_cat, ())
            body = (f - lse).exp() * joined
    else:
        body = joined
    return DerivedPlan(
        plan=_derived(plan, body, reduction, target, tuple(extra), weight),
        feeds=tuple(feeds),
        sum_rows=sum_rows,
        auxiliary=auxiliary,
        parts=tuple(kept),
    )


def _normalised_lse_vjp(
    plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]
) -> DerivedPlan:
    """The gradient of a log-sum-exp (weight of dimension 1) w.r.t. output-category inputs
    and parameters, as a softmax-weighted sum normalised in the pass.

    ``dv = G sum_R w (g dF + dg) / sum_R w g`` with ``w = e^F`` (g = 1 without a weight):
    a ``SumSoftMaxWeight`` of F with the weight ``[g, Grad(F, v, g) + Grad(g, v, 1)]``
    (``[Grad(F, v, 1)]`` without a weight) whose output the adapter divides by its first
    column and multiplies by G (``DerivedPlan.denominator``, ``times_gradient``).
    """
    f, g = plan.formula, plan.weight
    parts: dict[int, Node] = {}
    for p, s in zip(positions, slots):
        v = _slot_var(s)
        h = make("Grad", (f, v, const(1) if g is None else g))
        if g is not None:
            h = h + make("Grad", (g, v, const(1)))
        parts[p] = h
    kept = {p: simplify(h) for p, h in parts.items()}
    kept = {p: h for p, h in kept.items() if h.op.name != "Zero"}
    sum_rows = slots[0].cat is Cat.PARAM
    if not kept:
        nothing = _derived(plan, zero(sum(s.dim for s in slots)), "Sum", plan.output_cat, ())
        return DerivedPlan(plan=nothing, feeds=(), sum_rows=sum_rows, zero=True)
    joined = reduce(lambda a, b: make("Concat", (a, b)), kept.values())
    if g is not None:
        joined = make("Concat", (g, joined))
    derived = _derived(plan, f, "SumSoftMaxWeight", plan.output_cat, (), joined)
    return DerivedPlan(
        plan=derived,
        feeds=(),
        sum_rows=sum_rows,
        parts=tuple(kept),
        denominator=0 if g is None else 1,
        times_gradient=True,
    )


@lru_cache(maxsize=512)
def jvp_rule(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """The reduction that gives the forward-mode derivative (tangent) of ``plan``'s output.

    ``positions`` are the inputs that carry a tangent; their tangents feed the new slots
    (``TANGENT`` feeds, in the order of ``positions``), then the saved output for the
    log-sum-exp family. The output has the forward output's shape.

    Raises:
        NotImplementedError: ``plan``'s reduction is not differentiated this way.
    """
    _check_smooth(plan)
    out_cat = plan.output_cat
    extra: list[ArgSlot] = []
    feeds: list[Feed] = []
    df: Node | None = None  # the differential of F along the tangents
    dg: Node | None = None  # the differential of the weight
    for position in positions:
        slot = _check_position(plan, position)
        v = _slot_var(slot)
        u = _new_var(plan, extra, slot.dim, slot.cat, f"tangent{position}")
        feeds.append(Feed(Extra.TANGENT, position))
        term = make("Diff", (plan.formula, v, u))
        df = term if df is None else df + term
        if plan.weight is not None:
            wterm = make("Diff", (plan.weight, v, u))
            dg = wterm if dg is None else dg + wterm
    f = plan.formula
    df = df if df is not None else make("Zero", (), (f.dim,))
    weight = None
    reduction = "Sum"
    denominator = 0
    if plan.reduction == "Sum":
        body = df
    elif plan.reduction == "LogSumExp":
        # d o = sum softmax(F) dF, normalised in the pass (not exp(F - o) with o saved):
        # see the module docstring, "accuracy"
        body, weight, reduction = f, df, "SumSoftMaxWeight"
    elif plan.reduction == "LogSumExpWeight":
        g = plan.weight
        dg = dg if dg is not None else make("Zero", (), (g.dim,))
        numerator = simplify(g * df + dg)
        if numerator.op.name != "Zero":  # [sum w g, sum w (g dF + dg)] / sum w, w = e^F
            numerator, denominator = make("Concat", (g, numerator)), g.dim
        body, weight, reduction = f, numerator, "SumSoftMaxWeight"
    else:
        feeds.append(Feed(Extra.OUTPUT))
        o = _new_var(plan, extra, _output_dim(plan), out_cat, "out")
        g = plan.weight
        dg = dg if dg is not None else make("Zero", (), (g.dim,))
        body, weight, reduction = f, dg + (g - o) * df, "SumSoftMaxWeight"
    derived = _derived(plan, body, reduction, out_cat, tuple(extra), weight)
    zero_node = derived.weight if reduction == "SumSoftMaxWeight" else derived.formula
    return DerivedPlan(
        plan=derived,
        feeds=tuple(feeds),
        zero=zero_node.op.name == "Zero",  # type: ignore[union-attr]
        denominator=denominator,
    )


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
    if plan.reduction not in SELECTION:
        raise NotImplementedError(f"{plan.reduction} does not select pairs")
    out_cat, red_cat = plan.output_cat, plan.reduced_cat
    slots = tuple(replace(s, cat=out_cat) if s.cat is red_cat else s for s in plan.slots)
    mapping = {
        _slot_var(old): _slot_var(new) for old, new in zip(plan.slots, slots) if old is not new
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
    if plan.reduction not in WITH_INDEX:
        raise NotImplementedError(f"{plan.reduction} does not select pairs")
    return replace(plan, reduction=WITH_INDEX[plan.reduction])
