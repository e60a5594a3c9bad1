"""Which kernels must evaluate their formula as written: where two kernels round it alike.

A log-sum-exp's derivative rules w.r.t. reduced-category inputs recompute its formula F next
to the saved output o and take ``Exp(Fence(F) - o)`` (with a weight, ``Exp(Fence(F) - m)``
and the raw state's maximum m: :mod:`lazykernels.reductions.logsumexp`). o (m) carries F's
rounding error, which cancels only if the derived kernel rounds F exactly as the forward
kernel did. Under ``-ffp-contract=fast -fassociative-math`` the
compiler fuses a product of F into an add, or reorders F's sum, in one kernel and not in the
other (which it does depends on the surrounding code): float32 gradients w.r.t. y lost up
to 3.7x against dense torch, whose autograd stores F once, and 300-2000x for points far
apart, where one term dominates each row (issue 12 item 5; tests/test_exact_formula.py).
``Fence`` keeps F apart from what surrounds it; :func:`formula_rounding` selects the kernels
on both sides, which a target builds without contraction and reassociation, so that F is
evaluated as written (the CPU: a GCC pragma, :func:`.prelude.rounding_lines`).

The forward side is the log-sum-exps and their raw block states, as written, and
SumSoftMaxWeight, without contraction only (``ReductionSpec.formula_rounding``; its rules
w.r.t. y recompute its weights, and as written its kernels, which also run the
x-derivatives of the family, lost accuracy); the derived side, every kernel whose formula
holds a ``Fence``, as written. CUDA builds them as its other kernels for now (NVRTC would
need ``--fmad=false`` per kernel).
"""

from __future__ import annotations

from ..formula.ir import topological_order
from ..reductions import SPECS
from ..reductions.plan import ReductionPlan


def formula_rounding(plan: ReductionPlan) -> str:
    """How the kernel of ``plan`` may round its formula: ``"fast"`` (contraction and
    reassociation allowed), ``"no-contraction"`` or ``"as-written"`` (neither; every
    kernel whose formula holds a ``Fence``)."""
    roots = [plan.formula] if plan.weight is None else [plan.formula, plan.weight]
    if any(n.op.name == "Fence" for root in roots for n in topological_order(root)):
        return "as-written"
    return SPECS[plan.reduction].formula_rounding
