"""The comment that opens every generated CPU kernel: which kernel is this?

A user looking into the kernel cache (``lazykernels cache``, ``LAZYKERNELS_CACHE``) sees
sources named by hashes; this header says, in the first lines of each, what the kernel
computes: the reduction and its axis, the formula (and weight) as
:mod:`lazykernels.formula.printer` writes it, with ``Var(position, dim, cat)`` names, the
inputs, and the dtypes. It is a pure function of the plan and the dtype, so the source
(and the cache key, its hash) stays deterministic. No user text reaches it: alias names are
left out, and the printer writes only registry op names and numbers; any character that
could end a C++ ``//`` comment early or continue it (a newline, a backslash) is replaced.

Example:
    >>> from lazykernels.core.genred import build_plan
    >>> plan = build_plan("Exp(-SqDist(x, y))", ["x = Vi(3)", "y = Vj(3)"], axis=1)
    >>> print(source_header(plan, "float32"))
    // lazykernels CPU kernel
    // reduction: Sum over j (output indexed by i)
    // formula:   Exp(-Sum((Var(0,3,0) - Var(1,3,1))**2))
    // inputs:    Var(0,3,0) Vi, Var(1,3,1) Vj
    // dtype:     float32 (accumulator float32, sum scheme block_sum)
    <BLANKLINE>
"""

from __future__ import annotations

import numpy as np

from ..core.plan import ReductionPlan
from ..formula.ir import Cat
from ..reductions import SPECS

_KINDS = {Cat.I: "Vi", Cat.J: "Vj", Cat.PARAM: "Pm"}
_INDEX = {Cat.I: "i", Cat.J: "j"}
_WIDTH = 96  # characters of formula text per comment line


def _safe(text: str) -> str:
    """``text`` with every character outside printable ASCII, and backslashes, as ``?``."""
    return "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text)


def _wrapped(label: str, text: str) -> list[str]:
    text = _safe(text)
    chunks = [text[k : k + _WIDTH] for k in range(0, len(text), _WIDTH)] or [""]
    pad = " " * len(label)
    return [f"// {label if n == 0 else pad}{chunk}" for n, chunk in enumerate(chunks)]


def source_header(plan: ReductionPlan, dtype: np.dtype | str) -> str:
    """The ``//`` comment lines that open the kernel of ``plan`` for ``dtype``."""
    dtype = np.dtype(dtype)
    reduced, out = plan.reduced_cat, plan.output_cat
    reduction = f"{plan.reduction} over {_INDEX[reduced]} (output indexed by {_INDEX[out]})"
    if plan.k is not None:
        reduction += f", K={plan.k}"
    lines = ["// lazykernels CPU kernel", *_wrapped("reduction: ", reduction)]
    lines += _wrapped("formula:   ", str(plan.formula))
    if plan.weight is not None:
        lines += _wrapped("weight:    ", str(plan.weight))
    inputs = ", ".join(
        f"Var({s.position},{s.dim},{s.cat.value}) {_KINDS[s.cat]}" for s in plan.slots
    )
    lines += _wrapped("inputs:    ", inputs or "none")
    if SPECS[plan.reduction].sum_type:
        accumulator = plan.dtype_acc or dtype.name
        detail = f" (accumulator {accumulator}, sum scheme {plan.sum_scheme})"
    else:
        detail = ""
    lines.append(f"// dtype:     {dtype.name}{detail}")
    return "\n".join(lines) + "\n"


__all__ = ["source_header"]
