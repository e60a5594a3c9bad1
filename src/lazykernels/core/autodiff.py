"""The array-library-neutral part of driving derived (derivative) reductions.

:mod:`lazykernels.reductions.derivatives` says *which* reductions compute a derivative and
what feeds each of their extra inputs (:class:`~lazykernels.reductions.derivatives.Feed`).
This module runs them, whatever the arrays are, given a front end's ``reduce`` (one plan on
a list of its arrays, the single output back):

- :func:`derived_inputs` assembles a derived plan's inputs from what a front end holds (the
  original inputs, the incoming gradient, the saved output, tangents);
- :func:`vjp_rules` / :func:`run_vjp`: the backward pass of a smooth reduction, one
  reduction per group of inputs (i variables, j variables, parameters), whose joined output
  is cut into one gradient per input;
- :func:`run_jvp`: the forward-mode derivative (tangent) of a smooth reduction, one
  reduction of ``Diff`` formulas.

The torch adapter (:mod:`lazykernels.torch.autograd`) and the dask one
(:mod:`lazykernels.dask.autodiff`) both call them; only slicing ``[..., a:b]`` and
``.sum(-2)`` are asked of the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..reductions.derivatives import DerivedPlan, Extra, jvp_rule, vjp_group_rule, vjp_groups
from .plan import ReductionPlan

Reduce = Callable[[ReductionPlan, Sequence[Any]], Any]
"""A front end's reduction: a plan and its input arrays to the plan's single output."""


def derived_inputs(
    rule: DerivedPlan,
    inputs: Sequence[Any],
    gradient: Any,
    output: Any,
    tangents: Sequence[Any],
    auxiliary: Callable[[ReductionPlan], Any],
) -> list[Any]:
    """The inputs of ``rule.plan``: the original inputs, then its feeds in slot order.

    Args:
        rule: the derived plan.
        inputs: the forward reduction's inputs.
        gradient: the incoming gradient of the forward output (``Extra.GRADIENT``).
        output: the forward output (``Extra.OUTPUT``).
        tangents: one tangent (or None) per input (``Extra.TANGENT``).
        auxiliary: runs ``rule.auxiliary`` on ``inputs`` and returns its output
            (``Extra.AUXILIARY``).
    """
    feeds = list(inputs)
    for feed in rule.feeds:
        if feed.kind is Extra.GRADIENT:
            feeds.append(gradient)
        elif feed.kind is Extra.OUTPUT:
            feeds.append(output)
        elif feed.kind is Extra.TANGENT:
            feeds.append(tangents[feed.position])  # type: ignore[index]
        else:
            feeds.append(auxiliary(rule.auxiliary))  # type: ignore[arg-type]
    return feeds


def vjp_rules(plan: ReductionPlan, wanted: Sequence[int]) -> list[DerivedPlan]:
    """The backward reductions of the inputs ``wanted`` of a smooth reduction.

    One per group of inputs of one category: the gradients of a group come out side by
    side from one pass over the pairs. Groups whose gradient is zero (F does not depend on
    them) are left out.
    """
    rules = [vjp_group_rule(plan, group) for group in vjp_groups(plan, wanted)]
    return [r for r in rules if not r.zero]


def normalise(rule: DerivedPlan, result: Any, gradient: Any) -> Any:
    """A derived reduction's output as the derivative (``rule.denominator`` d: divide by the
    leading d columns; ``rule.times_gradient``: times the incoming gradient; both, d > 1:
    the rest cut into d blocks, block c divided by column c and times G's column c, the
    blocks summed)."""
    d = rule.denominator
    if d and rule.times_gradient:
        den, num = result[..., :d], result[..., d:]
        w = (result.shape[-1] - d) // d
        blocks = [
            gradient[..., c : c + 1] * (num[..., c * w : (c + 1) * w] / den[..., c : c + 1])
            for c in range(d)
        ]
        return sum(blocks[1:], blocks[0])
    if d:
        result = result[..., d:] / result[..., :d]
    if rule.times_gradient:
        result = gradient * result
    return result


def run_vjp(
    plan: ReductionPlan,
    rules: Sequence[DerivedPlan],
    inputs: Sequence[Any],
    gradient: Any,
    output: Any,
    reduce: Reduce,
) -> dict[int, Any]:
    """Run the backward reductions ``rules`` (:func:`vjp_rules`); one gradient per input.

    Args:
        plan: the forward plan.
        rules: its backward reductions.
        inputs: the forward inputs; gradient: the incoming gradient of the output;
            output: the forward output.
        reduce: the front end's reduction.

    Returns:
        ``{position: gradient}`` for the inputs the rules cover, each of the input's
        vector width (batch dimensions as the derived reduction returns them: a front end
        sums broadcast ones).
    """
    grads: dict[int, Any] = {}
    for rule in rules:
        feeds = derived_inputs(rule, inputs, gradient, output, (), lambda aux: reduce(aux, inputs))
        joined = normalise(rule, reduce(rule.plan, feeds), gradient)
        if rule.sum_rows:  # parameters: the O-indexed reduction summed over its rows
            joined = joined.sum(-2)
        start = 0
        for k in rule.parts:
            width = plan.slots[k].dim
            grads[k] = joined[..., start : start + width]
            start += width
    return grads


def run_jvp(
    plan: ReductionPlan,
    inputs: Sequence[Any],
    tangents: Sequence[Any],
    output: Any,
    reduce: Reduce,
    zeros_like: Callable[[Any], Any] | None = None,
    normalised: Callable[[ReductionPlan, Sequence[Any], int], Any] | None = None,
) -> Any | None:
    """The tangent of ``plan``'s output along ``tangents`` (None: the tangent is zero).

    Args:
        plan: a smooth forward plan.
        inputs: its inputs; tangents: one per input, None where an input has none.
        output: the forward output (fed to the rules that read it).
        reduce: the front end's reduction.
        zeros_like: for a tracing front end (JAX): the denominator of a softmax-normalised
            tangent (``DerivedPlan.denominator``) is taken from the same reduction run at
            zero tangents, a value of the primals only, so that the division stays
            transposable; None: from the tangent reduction's own leading columns.
        normalised: a front end's reduction that divides its output by its own first
            ``d`` columns in one pass, as one operation linear in the tangents (JAX's
            ``normalised_p``); when given, a softmax-normalised tangent is that, one
            reduction (``zeros_like`` is not used).
    """
    positions = tuple(k for k, t in enumerate(tangents) if t is not None)
    rule = jvp_rule(plan, positions)
    if rule.zero:
        return None
    aux = lambda p: reduce(p, inputs)
    feeds = derived_inputs(rule, inputs, None, output, tangents, aux)
    if rule.denominator and normalised is not None:
        return normalised(rule.plan, feeds, rule.denominator)
    tangent = reduce(rule.plan, feeds)
    if not rule.denominator or zeros_like is None:
        return normalise(rule, tangent, None)
    zeros = [None if t is None else zeros_like(t) for t in tangents]
    known = reduce(rule.plan, derived_inputs(rule, inputs, None, output, zeros, aux))
    d = rule.denominator
    return tangent[..., d:] / known[..., :d]


__all__ = ["Reduce", "derived_inputs", "normalise", "run_jvp", "run_vjp", "vjp_rules"]
