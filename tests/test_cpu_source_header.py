"""The readable header of every cached kernel source (issue 12, item 8).

Each ``.cpp`` in the cache opens with the canonical formula (``Var(k,d,c)`` names, never the
user's alias names), the reduction and the dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazykernels.numpy as lkn
from lazykernels import cpu
from lazykernels.core.genred import build_plan
from lazykernels.cpu.header import _safe, source_header


def test_header_names_reduction_formula_inputs_and_dtypes():
    plan = build_plan(
        "Exp(-SqDist(x, y) * g) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "g = Pm(1)"], axis=0
    )
    text = source_header(plan, "float64")
    assert text.splitlines() == [
        "// lazykernels CPU kernel",
        "// reduction: Sum over i (output indexed by j)",
        f"// formula:   {plan.formula}",
        "// inputs:    Var(0,3,0) Vi, Var(1,3,1) Vj, Var(2,2,1) Vj, Var(3,1,2) Pm",
        "// dtype:     float64 (accumulator float64, sum scheme block_sum)",
    ]
    assert "Var(0,3,0)" in str(plan.formula) and "Var(3,1,2)" in str(plan.formula)
    assert source_header(plan, "float64") == text  # a pure function of the plan


def test_header_of_weighted_and_k_reductions():
    plan = build_plan("SqDist(x,y)", ["x=Vi(2)", "y=Vj(2)", "w=Vj(1)"], "LogSumExp", 1, None, "w")
    text = source_header(plan, "float32")
    assert "// reduction: LogSumExpWeight over j (output indexed by i)" in text
    assert "// weight:    Var(2,1,1)" in text
    plan = build_plan("SqDist(x,y)", ["x=Vi(2)", "y=Vj(2)"], "ArgKMin", 1, 4)
    text = source_header(plan, "float32")
    assert "// reduction: ArgKMin over j (output indexed by i), K=4" in text
    assert text.splitlines()[-1] == "// dtype:     float32"  # no sum scheme for a K-min


def test_long_formulas_wrap_and_nothing_can_end_the_comment():
    terms = " + ".join(f"Exp(-SqDist(x, y) * {k}.5)" for k in range(12))
    plan = build_plan(terms, ["x = Vi(3)", "y = Vj(3)"], axis=1)
    lines = source_header(plan, "float32").splitlines()
    assert all(line.startswith("// ") and len(line) <= 110 for line in lines)
    formula = "".join(line[len("// formula:   ") :] for line in lines if line[3:4] in "f ")
    assert len(str(plan.formula)) > 2 * 96 and formula == str(plan.formula)
    assert _safe("a\\\nb\u00e9*/") == "a??b?*/"


@pytest.mark.cpu
def test_cached_sources_start_with_the_header(empty_cache):
    secret = "user_alias_name"
    routine = lkn.Genred(
        f"Exp(-SqDist(x, y)) * {secret}", ["x = Vi(2)", "y = Vj(2)", f"{secret} = Vj(1)"], axis=1
    )
    x = np.random.default_rng(0).random((5, 2))
    routine(x, x, x[:, :1])
    sources = [p.read_text() for p in empty_cache.glob("*.cpp")]
    kernels = [s for s in sources if s.startswith("// lazykernels CPU kernel\n")]
    assert len(kernels) == 1, [s[:80] for s in sources]
    (source,) = kernels
    assert "// reduction: Sum over j (output indexed by i)" in source
    assert "Var(0,2,0)" in source.splitlines()[2] and "float64" in source.splitlines()[4]
    assert secret not in source and "user_alias" not in source
    plan = build_plan("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    assert source == cpu.kernel_source(plan, "float64").source
