"""Vector cards (Elem, Extract, Concat, OneHot, Scalprod, inner Min/Max, norm sugar)."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import DimensionError
from lazykernels.formula import OPS, Cat, evaluate, grad, make, var
from lazykernels.formula.ops import vector

from .lowercheck import run_lowering
from .opcheck import check_grad, family_tests, per_row


def _elemt(a, n, m):
    out = np.zeros(n)
    out[m] = a[0]
    return out


def _onehot(a, d):
    index = int(a[0] + 0.5)  # C's (int) cast truncates toward zero
    return np.array([1.0 if k == index else 0.0 for k in range(d)])


REFERENCE = {
    "Elem": per_row(lambda a, m: a[m]),
    "ElemT": per_row(_elemt),
    "Extract": per_row(lambda a, start, d: a[start : start + d]),
    "ExtractT": per_row(
        lambda a, start, d: np.r_[np.zeros(start), a, np.zeros(d - start - len(a))]
    ),
    "Concat": per_row(lambda a, b: np.r_[a, b]),
    "OneHot": per_row(_onehot),
    "Scalprod": per_row(lambda a, b: np.dot(a, b)),
    "Min": per_row(lambda a: sorted(a)[0]),
    "Max": per_row(lambda a: sorted(a)[-1]),
    "ArgMin": per_row(lambda a: float(list(a).index(min(a)))),
    "ArgMax": per_row(lambda a: float(list(a).index(max(a)))),
    "SqDist": per_row(lambda a, b: np.linalg.norm(a - b) ** 2),
    "SqNorm2": per_row(lambda a: np.linalg.norm(a) ** 2),
    "Norm2": per_row(lambda a: np.linalg.norm(a)),
    "Normalize": per_row(lambda a: a / np.linalg.norm(a)),
    "SqNormDiag": per_row(lambda s, a: np.dot(s, a * a)),
    "SqNormIso": per_row(lambda s, a: s[0] * np.dot(a, a)),
    "WeightedSqNorm": per_row(lambda m, x: x @ m.reshape(len(x), len(x)) @ x),
    "WeightedSqDist": per_row(lambda s, f, g: np.dot(s, (f - g) ** 2)),
}

(
    test_forward_matches_numpy,
    test_gradient_matches_finite_differences,
    test_lowering_matches_numpy_evaluation,
    test_every_card_of_the_family_has_a_reference,
) = family_tests(vector.CARDS, REFERENCE)


# --- cases the generic spec does not reach ------------------------------------------------


def test_min_max_argmin_argmax_first_extremum_wins_on_ties():
    x = var(0, 4, Cat.I)
    values = np.array([[1.0, -2.0, 3.0, -2.0], [5.0, 5.0, 0.0, 5.0]])
    for name, want in (("ArgMin", [1.0, 2.0]), ("ArgMax", [2.0, 0.0])):
        got = evaluate(make(name, (x,)), {x: values}, np.float64)
        np.testing.assert_array_equal(got[:, 0], want)
        lowered, _ = run_lowering(OPS[name], [values], ())
        np.testing.assert_array_equal(lowered[:, 0], want)
    # the derivative of Min goes to the first minimum only
    e = var(1, 1, Cat.I)
    g = grad(make("Min", (x,)), x, e)
    got = evaluate(g, {x: values, e: np.array([[2.0], [3.0]])}, np.float64)
    np.testing.assert_array_equal(got, [[0, 2, 0, 0], [0, 0, 3, 0]])


def test_onehot_truncates_like_a_c_cast_and_ignores_out_of_range():
    x = var(0, 1, Cat.I)
    values = np.array([[-1.2], [-0.7], [0.49], [0.5], [2.6], [3.5], [7.0]])
    got = evaluate(make("OneHot", (x,), (4,)), {x: values}, np.float64)
    want = [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0] * 4, [0] * 4]
    np.testing.assert_array_equal(got, want)
    lowered, _ = run_lowering(OPS["OneHot"], [values], (4,))
    np.testing.assert_array_equal(lowered, want)


def test_scalprod_broadcasts_a_scalar_argument_like_keops():
    a, b = var(0, 1, Cat.I), var(1, 3, Cat.J)
    rng = np.random.default_rng(0)
    av, bv = rng.standard_normal((5, 1)), rng.standard_normal((5, 3))
    node = make("Scalprod", (a, b))
    got = evaluate(node, {a: av, b: bv}, np.float64)
    np.testing.assert_allclose(got, av * bv.sum(1, keepdims=True), rtol=1e-14)
    lowered, _ = run_lowering(OPS["Scalprod"], [av, bv], ())
    np.testing.assert_allclose(lowered, got, rtol=1e-14)
    check_grad(node, [a, b], [av, bv])
    assert (a | b) is node  # the | operator of the surface


@pytest.mark.parametrize("a_dim, kind", [(1, "SqNormIso"), (3, "SqNormDiag"), (9, "SymSqNorm")])
def test_weighted_sqnorm_dispatches_on_the_weight_dimension(a_dim, kind):
    a, x = var(0, a_dim, Cat.PARAM), var(1, 3, Cat.I)
    assert make("WeightedSqNorm", (a, x)) is make(kind, (a, x))
    rng = np.random.default_rng(a_dim)
    av, xv = rng.uniform(0.5, 2.0, (4, a_dim)), rng.standard_normal((4, 3))
    matrix = {1: lambda w: w[0] * np.eye(3), 3: np.diag, 9: lambda w: w.reshape(3, 3)}[a_dim]
    want = [[x_ @ matrix(w) @ x_] for w, x_ in zip(av, xv)]
    got = evaluate(make("WeightedSqNorm", (a, x)), {a: av, x: xv}, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_sugar_is_its_expansion():
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    s1, s3 = var(2, 1, Cat.PARAM), var(3, 3, Cat.PARAM)
    sqnorm = make("Sum", (make("Square", (x,)),))
    assert make("SqNorm2", (x,)) is sqnorm
    assert make("SqDist", (x, y)) is make("Sum", (make("Square", (x - y,)),))
    assert make("Norm2", (x,)) is make("Sqrt", (sqnorm,))
    assert make("Normalize", (x,)) is make("Rsqrt", (sqnorm,)) * x
    assert make("SqNormDiag", (s3, x)) is make("Sum", (s3 * make("Square", (x,)),))
    assert make("SqNormIso", (s1, x)) is s1 * sqnorm
    assert make("WeightedSqDist", (s3, x, y)) is make("SqNormDiag", (s3, x - y))


def test_structural_lowerings_only_reindex_atoms():
    names = [["u0", "u1", "u2", "u3"], ["v0", "v1"]]
    ctx_free = {"Elem": ((names[0],), (2,), ["u2"]), "Extract": ((names[0],), (1, 2), ["u1", "u2"])}
    for name, (args, params, want) in ctx_free.items():
        assert OPS[name].lower(None, list(args), params) == want
    assert OPS["Concat"].lower(None, names, ()) == ["u0", "u1", "u2", "u3", "v0", "v1"]


def test_norm2_derivatives():
    x = var(0, 3, Cat.I)
    values = [np.random.default_rng(5).uniform(0.5, 2.0, (6, 3))]
    check_grad(make("Norm2", (x,)), [x], values)
    check_grad(make("Normalize", (x,)), [x], values)


# --- dimension errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "build_bad, message",
    [
        (lambda x4, s: make("Elem", (x4,), (4,)), "Elem: index m=4 is out of range"),
        (lambda x4, s: make("Elem", (x4,), (-1,)), "Elem: the index m must be >= 0"),
        (lambda x4, s: make("ElemT", (x4,), (5, 0)), "ElemT: the argument must have dimension 1"),
        (lambda x4, s: make("ElemT", (s,), (3, 3)), "ElemT: index m=3 is out of range"),
        (lambda x4, s: make("Extract", (x4,), (2, 3)), r"Extract: components \[2, 5\) are out"),
        (lambda x4, s: make("Extract", (x4,), (0, 0)), "Extract: dim must be >= 1"),
        (lambda x4, s: make("ExtractT", (x4,), (1, 4)), "ExtractT: an argument of dimension 4"),
        (lambda x4, s: make("OneHot", (x4,), (3,)), "OneHot: the argument must have dimension 1"),
        (lambda x4, s: make("OneHot", (s,), (0,)), "OneHot: the dimension D must be >= 1"),
        (
            lambda x4, s: make("Scalprod", (x4, var(1, 3, Cat.J))),
            "Scalprod: the arguments must have the same dimension, got 4 and 3",
        ),
        (lambda x4, s: make("SqNormIso", (x4, x4)), "SqNormIso: the weight S must have dim"),
        (lambda x4, s: make("SqNormDiag", (var(1, 3, Cat.J), x4)), "SqNormDiag: the weights S"),
        (
            lambda x4, s: make("WeightedSqNorm", (var(1, 5, Cat.PARAM), x4)),
            "WeightedSqNorm: the weights must have dimension 1, 4 or 16",
        ),
    ],
)
def test_dimension_errors_name_the_problem(build_bad, message):
    with pytest.raises(DimensionError, match=message):
        build_bad(var(0, 4, Cat.I), var(2, 1, Cat.I))


def test_operator_surface_builds_these_cards():
    x, y, s = var(0, 4, Cat.I), var(1, 4, Cat.J), var(2, 1, Cat.PARAM)
    assert x.elem(1) is make("Elem", (x,), (1,))
    assert x.extract(1, 2) is make("Extract", (x,), (1, 2))
    assert x.concat(y) is make("Concat", (x, y))
    assert s.one_hot(3) is make("OneHot", (s,), (3,))
    assert x.sqdist(y) is make("SqDist", (x, y))
    assert x.norm2() is make("Norm2", (x,))
    assert x.normalize() is make("Normalize", (x,))
    assert x.weightedsqnorm(s) is make("WeightedSqNorm", (s, x))
    assert x.weightedsqdist(y, s) is make("WeightedSqDist", (s, x, y))


def test_structural_ops_broadcast_constant_arguments():
    x = var(0, 3, Cat.I)
    values = np.arange(6.0).reshape(2, 3)
    got = evaluate(make("Concat", (x, make("Zero", (), (2,)))), {x: values}, np.float64)
    np.testing.assert_array_equal(got, [[0, 1, 2, 0, 0], [3, 4, 5, 0, 0]])
    got = evaluate(make("Scalprod", (x, make("IntCst", (), (2,)))), {x: values}, np.float64)
    np.testing.assert_array_equal(got, [[6.0], [24.0]])
