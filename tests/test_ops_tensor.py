"""Tensor cards (MatVecMult, VecMatMult, TensorProd, TensorDot, Kron, SymSqNorm)."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import DimensionError
from lazykernels.formula import OPS, Cat, evaluate, make, var
from lazykernels.formula.ops import tensor

from .lowercheck import RecordingCtx, run_lowering
from .opcheck import check_grad, family_tests, per_row


def _tensordot(a, b, dimsfa, dimsfb, contfa, contfb, permute=None):
    plain = np.tensordot(a.reshape(dimsfa), b.reshape(dimsfb), axes=(list(contfa), list(contfb)))
    if permute is not None:  # permute[r]: where axis r of the plain result goes
        plain = np.transpose(plain, np.argsort(permute))
    return plain.ravel()


REFERENCE = {
    "MatVecMult": per_row(lambda a, b: a.reshape(-1, len(b)) @ b),
    "VecMatMult": per_row(lambda b, a: b @ a.reshape(len(b), -1)),
    "TensorProd": per_row(lambda f, g: np.outer(f, g).ravel()),
    "TensorDot": per_row(_tensordot),
    "Kron": per_row(lambda a, b, da, db: np.kron(a.reshape(da), b.reshape(db)).ravel()),
    "SymSqNorm": per_row(lambda a, x: x @ a.reshape(len(x), len(x)) @ x),
}

# (arg dims, params): no contraction, full contraction to a scalar, two contractions paired
# in swapped order, a permutation of three free axes, a rank-0 tensor
TENSORDOT_CASES = [
    ((6, 4), ((2, 3), (4,), (), ())),
    ((6, 6), ((2, 3), (3, 2), (0, 1), (1, 0))),
    ((24, 12), ((2, 3, 4), (4, 3), (1, 2), (1, 0))),
    ((24, 20), ((2, 3, 4), (4, 5), (2,), (0,), (1, 2, 0))),
    ((6, 10), ((2, 3), (5, 2), (0,), (1,), (1, 0))),
    ((1, 3), ((), (3,), (), ())),
]


(
    test_forward_matches_numpy,
    test_gradient_matches_finite_differences,
    test_lowering_matches_numpy_evaluation,
    test_every_card_of_the_family_has_a_reference,
) = family_tests(tensor.CARDS, REFERENCE)


@pytest.mark.parametrize("dims, params", TENSORDOT_CASES)
def test_tensordot_cases_forward_lowering_and_derivatives(dims, params):
    a, b = var(0, dims[0], Cat.I), var(1, dims[1], Cat.J)
    node = make("TensorDot", (a, b), params)
    rng = np.random.default_rng(len(params) + dims[0])
    values = [rng.standard_normal((5, d)) for d in dims]
    want = REFERENCE["TensorDot"](*values, *params)
    got = evaluate(node, {a: values[0], b: values[1]}, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    lowered, _ = run_lowering(OPS["TensorDot"], values, params)
    np.testing.assert_allclose(lowered, want, rtol=1e-12, atol=1e-12)
    check_grad(node, [a, b], values)


def test_kron_is_an_interleaved_tensordot():
    a, b = var(0, 6, Cat.I), var(1, 4, Cat.J)
    node = make("Kron", (a, b), ((2, 3), (2, 2)))
    assert node is make("TensorDot", (a, b), ((2, 3), (2, 2), (), (), (0, 2, 1, 3)))
    three = make("Kron", (var(0, 8, Cat.I), var(1, 8, Cat.J)), ((2, 2, 2), (2, 2, 2)))
    assert three.params[4] == (0, 2, 4, 1, 3, 5)
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    got = evaluate(three, {three.args[0]: av, three.args[1]: bv}, np.float64)
    want = [np.kron(x.reshape(2, 2, 2), y.reshape(2, 2, 2)).ravel() for x, y in zip(av, bv)]
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_sugar_is_its_expansion():
    a, x = var(0, 9, Cat.PARAM), var(1, 3, Cat.I)
    assert make("SymSqNorm", (a, x)) is make("Sum", (a * make("TensorProd", (x, x)),))


def test_matrix_products_lower_to_row_major_sums():
    lowered = OPS["MatVecMult"].lower(
        RecordingCtx(), [["A0", "A1", "A2", "A3", "A4", "A5"], ["b0", "b1"]], ()
    )
    assert lowered == ["(A0 * b0 + A1 * b1)", "(A2 * b0 + A3 * b1)", "(A4 * b0 + A5 * b1)"]
    lowered = OPS["VecMatMult"].lower(
        RecordingCtx(), [["b0", "b1"], ["A0", "A1", "A2", "A3", "A4", "A5"]], ()
    )
    assert lowered == ["(A0 * b0 + A3 * b1)", "(A1 * b0 + A4 * b1)", "(A2 * b0 + A5 * b1)"]


@pytest.mark.parametrize(
    "dims, name, params, message",
    [
        ((7, 3), "MatVecMult", (), "MatVecMult: the matrix dimension 7 is not a multiple of"),
        ((3, 7), "VecMatMult", (), "VecMatMult: the matrix dimension 7 is not a multiple of"),
        (
            (6, 6),
            "TensorDot",
            ((2, 3), (2, 3), (1,), (1,)),
            None,
        ),
        (
            (6, 6),
            "TensorDot",
            ((2, 3), (2, 3), (0,), (1,)),
            "TensorDot: contracted axes have different sizes: axis 0 of fa has size 2, axis 1",
        ),
        ((6, 6), "TensorDot", ((2, 3), (2, 3), (0,), ()), "contfa .* same length"),
        ((6, 6), "TensorDot", ((2, 3), (2, 3), (2,), (0,)), r"contfa \(2,\) must be distinct"),
        ((6, 5), "TensorDot", ((2, 3), (2, 3), (), ()), "fb has dimension 5, which is not"),
        ((6, 6), "TensorDot", ((2, 3), (6,), (), (), (0, 0, 1)), "permute .* permutation"),
        ((6, 6), "Kron", ((2, 3), (6,)), "Kron: dimsfa .* same number of axes"),
        ((8, 3), "SymSqNorm", (), r"SymSqNorm: the matrix A must have dimension 3\^2 = 9"),
    ],
)
def test_dimension_errors_name_the_problem(dims, name, params, message):
    args = (var(0, dims[0], Cat.I), var(1, dims[1], Cat.J))
    if message is None:  # a valid contraction, for contrast with the cases around it
        assert make(name, args, params).dim == 4
        return
    with pytest.raises(DimensionError, match=message):
        make(name, args, params)
