"""The Sum reduction: ``out[i] = sum_j F(i, j)``, component-wise."""

from __future__ import annotations

import numpy as np

from ..formula.ir import Cat, make
from .accumulators import Accumulator, RunningSum, rows_of
from .derived import (
    DerivedPlan,
    Extra,
    Feed,
    concat,
    derived,
    gradient_target,
    new_var,
    nonzero,
    slot_var,
    tangents,
    zero_gradient,
)
from .plan import ArgSlot, ReductionPlan
from .program import Field, Program, Shape, kahan_add
from .spec import Derivative, OutputSpec, ReductionSpec


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


class SumProgram(Program):
    """``acc += F`` per component; block sums add each tile's partial ``part`` to the total,
    Kahan sums keep a compensation ``comp`` per component."""

    def fields(self, sh: Shape) -> list[Field]:
        out = [Field("acc", "acc", sh.d, 0.0)]
        if sh.scheme == "kahan_scheme":
            out.append(Field("comp", "acc", sh.d, 0.0))
        elif sh.scheme == "block_sum":
            out.append(Field("part", "acc", sh.d, 0.0))
        return out

    def tile_begin(self, e, sh, st) -> None:
        if sh.scheme == "block_sum":
            for c in range(sh.d):
                e.set(st("part", c), e.lit(0))

    def update(self, e, sh, st, f, g, j) -> None:
        for c, v in enumerate(f):
            if sh.scheme == "kahan_scheme":
                kahan_add(e, st("acc", c), st("comp", c), e.acc(v))
            else:
                e.add(st("part" if sh.scheme == "block_sum" else "acc", c), e.acc(v))

    def tile_end(self, e, sh, st) -> None:
        if sh.scheme == "block_sum":
            for c in range(sh.d):
                e.add(st("acc", c), st("part", c))

    def merge(self, e, sh, dst, src) -> None:
        for c in range(sh.d):
            if sh.scheme == "kahan_scheme":
                value = e.fmt("({0} - {1})", src("acc", c), src("comp", c))
                kahan_add(e, dst("acc", c), dst("comp", c), value)
            else:
                e.add(dst("acc", c), src("acc", c))

    def finalize(self, e, sh, st, out) -> None:
        for c in range(sh.d):
            e.set(out(0, c), e.val(st("acc", c)))


def vjp_sum(plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]) -> DerivedPlan:
    """``dv = Sum Grad(F, v, G)``, reduced over the other index for reduced-category v."""
    extra: list[ArgSlot] = []
    feeds = [Feed(Extra.GRADIENT)]
    g_in = new_var(plan, extra, plan.formula.dim, plan.output_cat, "G")
    parts = {p: make("Grad", (plan.formula, slot_var(s), g_in)) for p, s in zip(positions, slots)}
    kept = nonzero(parts)
    target = gradient_target(plan, slots)
    if not kept:
        return zero_gradient(plan, slots, target, extra, feeds)
    return DerivedPlan(
        plan=derived(plan, concat(kept), "Sum", target, tuple(extra)),
        feeds=tuple(feeds),
        sum_rows=slots[0].cat is Cat.PARAM,
        parts=tuple(kept),
    )


def jvp_sum(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """``do = Sum dF``."""
    extra, feeds, df, _ = tangents(plan, positions)
    rule = derived(plan, df, "Sum", plan.output_cat, tuple(extra))
    return DerivedPlan(plan=rule, feeds=tuple(feeds), zero=rule.formula.op.name == "Zero")


SUM = ReductionSpec(
    "Sum",
    outputs=(OutputSpec(lambda d, dg, k: (d,), neutral=0.0),),
    accumulator=SumAccumulator,
    program=SumProgram(),
    sum_type=True,
    linear=True,
    derivative=Derivative.SMOOTH,
    vjp=vjp_sum,
    jvp=jvp_sum,
    doc="sum over the reduction index, (n, D)",
)

CARDS = (SUM,)
