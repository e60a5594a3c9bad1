"""The pieces every derivative rule of a reduction card is built from.

A card's ``vjp`` / ``jvp`` rule (in its family module) returns a :class:`DerivedPlan`: a
reduction over the original inputs plus new slots, each fed by a :class:`Feed`. The driver
that picks the rule is :mod:`.derivatives`; the notation is explained there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce

from ..formula.ir import Cat, Node, make, var, zero
from ..formula.simplify import simplify
from .plan import ArgSlot, ReductionPlan


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
            its first ``denominator`` columns, divided by them (one column: broadcast;
            ``d`` columns with ``times_gradient``: the rest in ``d`` blocks, block c
            divided by column c and times G's column c, summed; see
            :func:`lazykernels.core.autodiff.normalise`).
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


def derived(
    base: ReductionPlan,
    formula: Node,
    reduction: str,
    output_cat: Cat,
    extra_slots: tuple[ArgSlot, ...],
    weight: Node | None = None,
) -> ReductionPlan:
    """A plan over ``base``'s inputs plus ``extra_slots``, with ``base``'s accumulation
    (every differentiable reduction is a sum-type one)."""
    return ReductionPlan(
        formula=simplify(formula),
        reduction=reduction,
        output_cat=output_cat,
        slots=base.slots + extra_slots,
        weight=None if weight is None else simplify(weight),
        dtype_acc=base.dtype_acc,
        sum_scheme=base.sum_scheme,
        gemm=base.gemm,
    )


def fenced(formula: Node) -> Node:
    """The formula F where a rule subtracts a saved output from it (``Exp(Fence(F) - o)``):
    evaluated as written, F rounds as in the forward kernel, whose rounding error the
    output carries, and the two cancel (see ``Fence`` in :mod:`lazykernels.formula.ops.arith`).
    """
    return make("Fence", (formula,))


def slot_var(slot: ArgSlot) -> Node:
    return var(slot.position, slot.dim, slot.cat)


def new_var(plan: ReductionPlan, extra: list[ArgSlot], dim: int, cat: Cat, name: str) -> Node:
    """A fresh input after the original ones (and after ``extra``), recorded in ``extra``."""
    slot = ArgSlot(len(plan.slots) + len(extra), dim, cat, name)
    extra.append(slot)
    return slot_var(slot)


def nonzero(parts: Mapping[int, Node]) -> dict[int, Node]:
    """The simplified parts (input position -> formula) that are not identically zero."""
    kept = {p: simplify(h) for p, h in parts.items()}
    return {p: h for p, h in kept.items() if h.op.name != "Zero"}


def concat(parts: Mapping[int, Node]) -> Node:
    """The parts' formulas concatenated, in order."""
    return reduce(lambda a, b: make("Concat", (a, b)), parts.values())


def zero_gradient(
    plan: ReductionPlan,
    slots: list[ArgSlot],
    target: Cat,
    extra: list[ArgSlot],
    feeds: list[Feed],
) -> DerivedPlan:
    """The gradient w.r.t. inputs the formulas do not depend on: nothing to run."""
    nothing = derived(plan, zero(sum(s.dim for s in slots)), "Sum", target, tuple(extra))
    sum_rows = slots[0].cat is Cat.PARAM
    return DerivedPlan(plan=nothing, feeds=tuple(feeds), sum_rows=sum_rows, zero=True)


def gradient_target(plan: ReductionPlan, slots: list[ArgSlot]) -> Cat:
    """The output category of a gradient w.r.t. ``slots`` (parameters: the output's)."""
    return slots[0].cat if slots[0].cat is not Cat.PARAM else plan.output_cat


def tangents(
    plan: ReductionPlan, positions: tuple[int, ...]
) -> tuple[list[ArgSlot], list[Feed], Node, Node | None]:
    """The tangent inputs of a JVP: new slots (one per position, ``TANGENT`` feeds), the
    differential ``dF`` of the formula along them and ``dG`` of the weight (None without
    a weight; a Zero node where no tangent reaches it)."""
    extra: list[ArgSlot] = []
    feeds: list[Feed] = []
    df: Node | None = None
    dg: Node | None = None
    for position in positions:
        slot = plan.slots[position]
        v = slot_var(slot)
        u = new_var(plan, extra, slot.dim, slot.cat, f"tangent{position}")
        feeds.append(Feed(Extra.TANGENT, position))
        term = make("Diff", (plan.formula, v, u))
        df = term if df is None else df + term
        if plan.weight is not None:
            wterm = make("Diff", (plan.weight, v, u))
            dg = wterm if dg is None else dg + wterm
    if df is None:
        df = make("Zero", (), (plan.formula.dim,))
    if plan.weight is not None and dg is None:
        dg = make("Zero", (), (plan.weight.dim,))
    return extra, feeds, df, dg
