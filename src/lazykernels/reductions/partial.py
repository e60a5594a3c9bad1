"""Partial states of a reduction over blocks of the reduced axis, and how they combine.

A reduction cut along its reduced axis (blocks of j for a reduction over j) is the merge of
one partial state per block. This module builds those states without choosing a backend
or a scheduler (the distributed front end :mod:`lazykernels.dask` uses it):

- :func:`raw_plan`: the reduction that returns a block's *state* rather than its final
  outputs (the card's ``raw``), computed by any backend: Sum for Sum,
  ``Max_SumShiftExp`` ([m, s]) for LogSumExp, ``Max_SumShiftExpWeight`` for the weighted
  log-sum-exp family (with the weight
  ``Concat(1, G)`` for SumSoftMaxWeight, so that the denominator comes along),
  ``Min_ArgMin`` / ``Max_ArgMax`` for the extrema, ``KMin_ArgKMin`` for the K-min family;
- :func:`block_state`: those outputs loaded into the family's accumulator
  (:meth:`~lazykernels.reductions.accumulators.Accumulator.load_raw`), indices made global;
- :func:`merge_states`: the accumulators' own ``merge`` (the rule the NumPy reference
  applies between blocks), into a fresh accumulator: the inputs are never modified;
- :func:`finalize`: the user-level outputs, shaped as ``Genred`` returns them.

Example:
    >>> import numpy as np
    >>> from lazykernels.core.genred import build_plan, run_plan
    >>> plan = build_plan("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], "ArgMin", axis=1)
    >>> x, y = np.array([[0.0], [5.0]]), np.arange(8.0)[:, None]
    >>> raw = raw_plan(plan)
    >>> parts = [block_state(plan, run_plan(raw, [x, y[a:a + 4]], "reference"), a)
    ...          for a in (0, 4)]
    >>> finalize(plan, merge_states(plan, parts))[0].ravel().tolist()
    [0, 5]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..formula.ir import const, make
from ..formula.simplify import simplify
from . import SPECS
from .accumulators import Accumulator
from .plan import ReductionPlan


def raw_plan(plan: ReductionPlan) -> ReductionPlan:
    """The plan whose outputs, on a block of the reduced axis, are ``plan``'s partial state."""
    card = SPECS[plan.reduction]
    weight = plan.weight
    if card.unit_sum and weight is not None:  # the state's sums start with the unit weight
        weight = simplify(make("Concat", (const(1), weight)))
    return replace(plan, reduction=card.raw_name, weight=weight)


def accumulator(plan: ReductionPlan, n: int, dtype: np.dtype, period: int = 1) -> Accumulator:
    """An empty accumulator of ``plan``'s reduction for ``n`` output rows.

    Args:
        plan: the reduction plan (its accumulation options are used).
        n: number of output rows.
        dtype: the computation dtype of formula values.
        period: block-sum flush period, in reduction indices.
    """
    spec = SPECS[plan.reduction]
    dtype = np.dtype(dtype)
    acc_dtype = np.dtype(plan.dtype_acc) if spec.sum_type and plan.dtype_acc else dtype
    scheme = plan.sum_scheme if spec.sum_type else "direct_sum"
    weight_dim = plan.weight.dim if plan.weight is not None else 0
    return spec.accumulator(
        spec, n, plan.formula.dim, weight_dim, plan.k or 0, dtype, acc_dtype, scheme, period
    )


def block_state(plan: ReductionPlan, raw: Sequence[np.ndarray], start: int) -> Accumulator:
    """The partial state of ``plan`` from the outputs of :func:`raw_plan` on one block.

    Args:
        plan: the user's reduction plan.
        raw: the outputs of ``raw_plan(plan)`` on the block (one or two arrays, ``(n, ...)``).
        start: global reduction index of the block's first column.
    """
    acc = accumulator(plan, raw[0].shape[0], raw[0].dtype)
    acc.load_raw(tuple(raw), start)
    return acc


def merge_states(plan: ReductionPlan, states: Sequence[Accumulator]) -> Accumulator:
    """One state holding every block of ``states`` (each of the same rows), merged in turn."""
    if not states:
        raise ValueError("merge_states needs at least one state")
    merged = accumulator(plan, states[0].n, states[0].dtype)
    for state in states:
        merged.merge(state)
    return merged


def finalize(plan: ReductionPlan, state: Accumulator) -> tuple[np.ndarray, ...]:
    """The user-level outputs of a merged state, shaped ``(n,) + tail`` as ``Genred``'s."""
    spec = SPECS[plan.reduction]
    weight_dim = plan.weight.dim if plan.weight is not None else 0
    tails = spec.output_tails(plan.formula.dim, weight_dim, plan.k or 0)
    return tuple(
        np.ascontiguousarray(out.reshape((state.n, *tail)))
        for out, tail in zip(state.finalize(), tails)
    )


__all__ = ["accumulator", "block_state", "finalize", "merge_states", "raw_plan"]
