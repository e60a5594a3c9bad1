"""The registry as a whole: every card is complete and every op is tested against NumPy."""

from __future__ import annotations

import pytest

from lazykernels.formula import OPS

from . import (
    test_calculus,
    test_ops_complex,
    test_ops_elementwise,
    test_ops_special,
    test_ops_tensor,
    test_ops_vector,
)

REFERENCES = {
    **test_ops_elementwise.REFERENCE,
    **test_ops_vector.REFERENCE,
    **test_ops_tensor.REFERENCE,
    **test_ops_special.REFERENCE,
    **test_ops_complex.REFERENCE,
}
LEAVES = {"Var", "IntCst", "RatCst", "FloatCst", "Zero"}
# Symbolic transformations: they expand to ordinary IR and are checked against dense
# NumPy / finite differences in tests/test_calculus.py.
CALCULUS = test_calculus.CALCULUS_NAMES

# Internal derivative primitives, checked against finite differences of their reference
# gradient in their family's tests.
INTERNAL = {"HvpSoftDTW_SqDist"}

# Every formula name of SPEC §1.4-1.9 (KeOps 2.3), which the registry must hold.
KEOPS_NAMES = """
Abs Acos Add ArgMax ArgMin Asin Atan Atan2 BSpline Clamp ClampInt Concat Cos DiffClampInt
Divide Elem ElemT Equal Exp Extract ExtractT Floor GradMatrix IfElse IntInv Inv Kron
LessOrEqual LessThan Log MatVecMult Max Min Minus Mod Mult Norm2 Normalize NotEqual OneHot
Pow Powf ReLU Round Rsqrt Scalprod Sign Sin SinXDivX SoftDTW_SqDist SqDist SqNorm2
SqNormDiag SqNormIso Sqrt Square Step Subtract Sum SumT SymSqNorm TensorDot TensorProd
VecMatMult WeightedSqDist WeightedSqNorm XLogX
ComplexAbs ComplexAdd ComplexAngle ComplexDivide ComplexExp ComplexExp1j ComplexImag
ComplexMult ComplexReal ComplexRealScal ComplexSquareAbs ComplexSubtract ComplexSum
ComplexSumT Conj Imag2Complex Real2Complex
Var IntCst RatCst Zero
Grad Diff Laplacian Divergence TraceOperator AdjointOperator SumLinOperator
Factorize AutoFactorize
""".split()  # noqa: SIM905 (a word list reads best as text)


def test_the_registry_holds_every_keops_formula_name():
    assert len(set(KEOPS_NAMES)) == 67 + 17 + 4 + 5 + 3 + 2 - 1  # GradMatrix counted once
    missing = sorted(set(KEOPS_NAMES) - set(OPS))
    assert not missing, f"not registered: {missing}"


def test_every_op_has_an_independent_numpy_reference():
    untested = sorted(set(OPS) - set(REFERENCES) - LEAVES - CALCULUS - INTERNAL)
    assert not untested, f"no hand-written NumPy reference for: {untested}"


@pytest.mark.parametrize("card", list(OPS.values()), ids=lambda c: c.name)
def test_every_card_is_complete(card):
    assert card.doc, f"{card.name} has no doc line"
    if card.is_sugar:
        return
    assert card.dim is not None
    if card.name in LEAVES:
        return
    assert card.numpy is not None, f"{card.name} has no NumPy evaluation"
    assert (card.c is not None) != (card.lower is not None), (
        f"{card.name} needs exactly one of a C template (element-wise) or a lower rule"
    )
    assert card.elementwise == (card.c is not None)
