"""Partial states (lazykernels.reductions.partial): blocks of the reduced axis merged with
the accumulators' own merge equal the reduction over the whole axis."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.core.genred import build_plan, run_plan
from lazykernels.formula.ir import Cat
from lazykernels.reductions.partial import (
    accumulator,
    block_state,
    finalize,
    merge_states,
    raw_plan,
)

from .partial_cases import ALIASES, CASES, IDS, assert_same, data


def _split(plan, args, bounds):
    """The inputs restricted to reduced indices [a, e) for each (a, e) of ``bounds``."""
    for a, e in bounds:
        yield (
            a,
            [
                arr[a:e] if slot.cat is plan.reduced_cat else arr
                for slot, arr in zip(plan.slots, args)
            ],
        )


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_merged_blocks_equal_the_whole_reduction(case, axis):
    reduction, formula, k, formula2 = case
    plan = build_plan(formula, ALIASES, reduction, axis, k, formula2)
    args = data(9, 11, seed=1) if axis == 1 else data(11, 9, seed=0)  # 11 reduced indices
    whole = run_plan(plan, args, backend="reference")
    n_red = 11
    bounds = [(0, 3), (3, 7), (7, n_red)] if k else [(0, 1), (1, 5), (5, 5), (5, n_red)]
    raw = raw_plan(plan)
    states = [
        block_state(plan, run_plan(raw, part, backend="reference"), a)
        for a, part in _split(plan, args, bounds)
    ]
    # a tree: ((s0, s1), (s2, ...)), as the distributed plan merges
    merged = merge_states(plan, [merge_states(plan, states[:2]), merge_states(plan, states[2:])])
    got = finalize(plan, merged)
    assert_same(got if len(got) > 1 else got[0], whole if len(whole) > 1 else whole[0])


def test_merge_leaves_its_inputs_unchanged():
    plan = build_plan("SqDist(x,y)", ALIASES[:2], "KMin_ArgKMin", 1, 2)
    x, y = data(4, 6)[:2]
    raw = raw_plan(plan)
    parts = [block_state(plan, run_plan(raw, [x, y[a : a + 3]], "reference"), a) for a in (0, 3)]
    before = [(s.key.copy(), s.index.copy()) for s in parts]
    merge_states(plan, parts)
    for s, (key, index) in zip(parts, before):
        np.testing.assert_array_equal(s.key, key)
        np.testing.assert_array_equal(s.index, index)


def test_an_empty_state_finalizes_to_the_neutral_values():
    plan = build_plan("-SqDist(x,y)", ALIASES, "SumSoftMaxWeight", 1, None, "b")
    (out,) = finalize(plan, accumulator(plan, 3, np.float64))
    np.testing.assert_array_equal(out, np.zeros((3, 2)))
    plan = build_plan("SqDist(x,y)", ALIASES, "Min_ArgMin", 1)
    values, index = finalize(plan, accumulator(plan, 2, np.float64))
    assert np.isinf(values).all() and (index == -1).all()


def test_raw_plan_of_softmax_carries_the_denominator():
    plan = build_plan("-SqDist(x,y)", ALIASES, "SumSoftMaxWeight", 1, None, "b")
    raw = raw_plan(plan)
    assert raw.reduction == "Max_SumShiftExpWeight" and raw.weight.dim == 3
    assert raw.output_cat is Cat.I and raw.slots == plan.slots
