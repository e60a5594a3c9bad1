"""Special cards (BSpline, SoftDTW_SqDist and their internal derivative ops).

Also holds the one compiled check of every lowering of the vector, tensor and special
families (``@pytest.mark.cpu``): a single C++ program, compared with the NumPy evaluation.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from lazykernels.errors import DimensionError, FormulaError
from lazykernels.formula import OPS, Cat, const, evaluate, grad, make, var
from lazykernels.formula.ops import special, tensor, vector

from .lowercheck import cpp_program, parse_program_output, run_lowering
from .opcheck import build, check_forward, check_grad, check_lowering, draw, per_row
from .test_ops_tensor import REFERENCE as TENSOR_REFERENCE
from .test_ops_tensor import TENSORDOT_CASES

# --- independent references ---------------------------------------------------------------


def _bspline_ref(t, x, order, nder=0):
    """Cox–de Boor by plain recursion (KeOps's conventions), derivatives by the classical
    identity d/dx B_{i,k} = k B_{i,k-1} / (t_{i+k} - t_i) - k B_{i+1,k-1} / (t_{i+k+1} - t_{i+1}).
    """
    x = x[0]

    def value(i, k):
        if k == 0:
            return 1.0 if t[i] <= x < t[i + 1] else 0.0

        def w(j):
            return (x - t[j]) / (t[j + k] - t[j]) if t[j] < t[j + k] else 0.0

        return w(i) * value(i, k - 1) + (1.0 - w(i + 1)) * value(i + 1, k - 1)

    def deriv(i, k, n):
        if n == 0:
            return value(i, k)

        def c(j):
            return k / (t[j + k] - t[j]) if t[j] < t[j + k] else 0.0

        return c(i) * deriv(i, k - 1, n - 1) - c(i + 1) * deriv(i + 1, k - 1, n - 1)

    return np.array([deriv(i, order, nder) for i in range(len(t) - order - 1)])


def _softdtw_table(x, y, gamma):
    """Soft-DTW table R (padded with +inf borders, R[0, 0] = 0), textbook recursion."""
    n, m = len(x), len(y)
    r = np.full((n + 2, m + 2), np.inf)
    r[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
            low = prev.min()
            soft = low - gamma * np.log(np.sum(np.exp(-(prev - low) / gamma)))
            r[i, j] = (x[i - 1] - y[j - 1]) ** 2 + soft
    return r


def _softdtw_ref(x, y, gamma):
    return _softdtw_table(x, y, gamma[0])[len(x), len(y)]


def _softdtw_grad_ref(x, y, gamma):
    """Cuturi & Blondel's backward recursion on the padded table."""
    gamma = gamma[0]
    n, m = len(x), len(y)
    r = _softdtw_table(x, y, gamma)
    r[n + 1, :] = r[:, m + 1] = -np.inf
    r[n + 1, m + 1] = r[n, m]
    cost = np.zeros((n + 2, m + 2))
    cost[1 : n + 1, 1 : m + 1] = (x[:, None] - y[None, :]) ** 2
    e = np.zeros((n + 2, m + 2))
    e[n + 1, m + 1] = 1.0
    for j in range(m, 0, -1):
        for i in range(n, 0, -1):
            a = np.exp((r[i + 1, j] - r[i, j] - cost[i + 1, j]) / gamma)
            b = np.exp((r[i, j + 1] - r[i, j] - cost[i, j + 1]) / gamma)
            c = np.exp((r[i + 1, j + 1] - r[i, j] - cost[i + 1, j + 1]) / gamma)
            e[i, j] = e[i + 1, j] * a + e[i, j + 1] * b + e[i + 1, j + 1] * c
    weights = e[1 : n + 1, 1 : m + 1] * 2 * (x[:, None] - y[None, :])
    return np.r_[weights.sum(1), -weights.sum(0)]


REFERENCE = {
    "BSpline": per_row(_bspline_ref),
    "DiffBSpline": per_row(_bspline_ref),
    "SoftDTW_SqDist": per_row(_softdtw_ref),
    "GradSoftDTW_SqDist": per_row(_softdtw_grad_ref),
}
CARDS = [c for c in special.CARDS if c.test is not None]
FORWARD = [c for c in CARDS if c.name in REFERENCE]  # the Hessian product is checked below

KNOTS = np.array([0.0, 0.0, 0.5, 1.1, 1.5, 2.2, 3.0, 3.0, 3.4, 4.0])  # with repeated knots
X_AWAY_FROM_KNOTS = np.array([[-0.3], [0.2], [0.8], [1.3], [1.9], [2.5], [3.2], [3.7], [4.1]])


def _const_vector(values) -> object:
    """A constant vector formula (a Concat of FloatCst), so it is not a variable."""
    node = const(float(values[0]))
    for v in values[1:]:
        node = make("Concat", (node, const(float(v))))
    return node


@pytest.mark.parametrize("card", FORWARD, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy(card, dtype):
    check_forward(card, REFERENCE[card.name], dtype)


def test_every_card_of_the_family_has_a_check():
    assert {c.name for c in CARDS} == set(REFERENCE) | {"HvpSoftDTW_SqDist"}
    assert all(OPS[c.name] is c for c in special.CARDS)


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
def test_lowering_matches_numpy_evaluation(card):
    check_lowering(card, tol=1e-12)


# --- B-splines ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_bspline_on_sorted_knots_matches_the_recursion_and_sums_to_one(order):
    knots, x = var(0, len(KNOTS), Cat.PARAM), var(1, 1, Cat.I)
    node = make("BSpline", (knots, x), (order,))
    assert node.dim == len(KNOTS) - order - 1
    xs = np.linspace(-0.5, 4.5, 41)[:, None]
    env = {knots: KNOTS[None, :], x: xs}
    got = evaluate(node, env, np.float64)
    want = np.array([_bspline_ref(KNOTS, p, order) for p in xs])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    lowered, _ = run_lowering(OPS["BSpline"], [np.tile(KNOTS, (len(xs), 1)), xs], (order,))
    np.testing.assert_allclose(lowered, want, rtol=1e-13, atol=1e-14)
    # partition of unity where `order + 1` basis functions overlap, zero outside the knots
    inside = (xs[:, 0] >= KNOTS[order]) & (xs[:, 0] < KNOTS[-order - 1])
    np.testing.assert_allclose(got[inside].sum(1), 1.0, rtol=1e-13)
    assert np.all(got[(xs[:, 0] < 0) | (xs[:, 0] >= 4)] == 0)


def test_linear_bspline_is_the_hat_function():
    knots, x = var(0, 3, Cat.PARAM), var(1, 1, Cat.I)
    xs = np.array([[0.0], [0.25], [1.0], [1.5], [2.0]])
    got = evaluate(make("BSpline", (knots, x), (1,)), {knots: np.array([0.0, 1, 2]), x: xs}, float)
    np.testing.assert_allclose(got[:, 0], [0.0, 0.25, 1.0, 0.5, 0.0])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_bspline_derivatives_in_x_match_finite_differences(order):
    x = var(0, 1, Cat.I)
    node = make("BSpline", (_const_vector(KNOTS), x), (order,))
    check_grad(node, [x], [X_AWAY_FROM_KNOTS])  # first and second order


def test_bspline_has_no_derivative_in_the_knots():
    knots, x = var(0, 5, Cat.PARAM), var(1, 1, Cat.I)
    node = make("BSpline", (knots, x), (2,))
    with pytest.raises(FormulaError, match="BSpline: no derivative with respect to the knots"):
        grad(node, knots, var(2, node.dim, Cat.I))
    assert grad(node, x, var(2, node.dim, Cat.I)).dim == 1  # fine in x, knots untouched
    order0 = make("BSpline", (knots, x), (0,))
    assert grad(order0, x, var(2, 4, Cat.I)).op.name == "Zero"


@pytest.mark.parametrize(
    "dims, name, params, message",
    [
        ((4, 1), "BSpline", (3,), "BSpline: B-splines of order 3 need at least 5 knots, got 4"),
        ((6, 2), "BSpline", (1,), "BSpline: x must be a scalar"),
        ((6, 1), "BSpline", (-1,), "BSpline: the order must be >= 0"),
        ((6, 1), "DiffBSpline", (1, 2), "DiffBSpline: derivative order 2 exceeds the order 1"),
    ],
)
def test_bspline_dimension_errors(dims, name, params, message):
    with pytest.raises(DimensionError, match=message):
        make(name, (var(0, dims[0], Cat.PARAM), var(1, dims[1], Cat.I)), params)


# --- soft-DTW -----------------------------------------------------------------------------


def test_softdtw_tends_to_dtw_as_gamma_goes_to_zero():
    x, y = var(0, 4, Cat.I), var(1, 3, Cat.J)
    xs, ys = np.array([[0.0, 1.0, 1.0, 3.0]]), np.array([[0.0, 1.0, 3.0]])
    got = evaluate(make("SoftDTW_SqDist", (x, y, const(1e-3))), {x: xs, y: ys}, np.float64)
    assert abs(got[0, 0]) < 1e-2  # the optimal alignment has zero cost


def test_softdtw_derivatives_in_x_and_y_match_finite_differences():
    x, y = var(0, 4, Cat.I), var(1, 3, Cat.J)
    node = make("SoftDTW_SqDist", (x, y, const(0.7)))
    rng = np.random.default_rng(7)
    check_grad(node, [x, y], [rng.uniform(-1, 1, (5, 4)), rng.uniform(-1, 1, (5, 3))])


def test_softdtw_hessian_product_matches_differences_of_the_gradient():
    x, y, g, v = var(0, 4, Cat.I), var(1, 3, Cat.J), var(2, 1, Cat.PARAM), var(3, 7, Cat.I)
    rng = np.random.default_rng(8)
    xs, ys, vs = rng.uniform(-1, 1, (4, 4)), rng.uniform(-1, 1, (4, 3)), rng.normal(size=(4, 7))
    gamma, h = 0.4, 1e-5
    got = evaluate(
        make("HvpSoftDTW_SqDist", (x, y, g, v)), {x: xs, y: ys, g: np.array([gamma]), v: vs}, float
    )
    for p in range(len(xs)):
        plus = _softdtw_grad_ref(xs[p] + h * vs[p, :4], ys[p] + h * vs[p, 4:], [gamma])
        minus = _softdtw_grad_ref(xs[p] - h * vs[p, :4], ys[p] - h * vs[p, 4:], [gamma])
        np.testing.assert_allclose(got[p], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-7)


def test_softdtw_has_no_derivative_in_gamma_nor_third_derivatives():
    x, y, g = var(0, 3, Cat.I), var(1, 2, Cat.J), var(2, 1, Cat.PARAM)
    node = make("SoftDTW_SqDist", (x, y, g))
    with pytest.raises(FormulaError, match="SoftDTW_SqDist: no derivative with respect to gamma"):
        grad(node, g, var(3, 1, Cat.I))
    first = grad(node, x, var(3, 1, Cat.I))
    second = grad(first, y, var(4, 3, Cat.I))
    with pytest.raises(FormulaError, match="third derivatives of SoftDTW_SqDist"):
        grad(second, x, var(5, 2, Cat.J))


@pytest.mark.parametrize(
    "dims, name, message",
    [
        ((3, 2, 2), "SoftDTW_SqDist", "SoftDTW_SqDist: gamma must be a scalar"),
        ((3, 2, 2), "GradSoftDTW_SqDist", "GradSoftDTW_SqDist: gamma must be a scalar"),
        ((3, 2, 1, 4), "HvpSoftDTW_SqDist", "the direction must have dimension 5, got 4"),
    ],
)
def test_softdtw_dimension_errors(dims, name, message):
    with pytest.raises(DimensionError, match=message):
        make(name, tuple(var(k, d, Cat.I) for k, d in enumerate(dims)))


# --- every lowering, compiled once --------------------------------------------------------


def _compiled_cases():
    cases, wants = [], []
    for card in (*vector.CARDS, *tensor.CARDS, *special.CARDS):
        if card.lower is None or card.test is None:
            continue
        node, variables = build(card)
        values = draw(card, np.random.default_rng(11), n=3)
        cases.append((card, values, card.test.params))
        wants.append(evaluate(node, dict(zip(variables, values)), np.float64))
    rng = np.random.default_rng(12)
    for dims, params in TENSORDOT_CASES:
        values = [rng.standard_normal((2, d)) for d in dims]
        cases.append((OPS["TensorDot"], values, params))
        wants.append(TENSOR_REFERENCE["TensorDot"](*values, *params))
    for order in (0, 3):
        xs = X_AWAY_FROM_KNOTS
        cases.append((OPS["BSpline"], [np.tile(KNOTS, (len(xs), 1)), xs], (order,)))
        wants.append(np.array([_bspline_ref(KNOTS, p, order) for p in xs]))
    return cases, wants


@pytest.mark.cpu
def test_every_lowering_compiles_and_matches_numpy(tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no g++")
    cases, wants = _compiled_cases()
    source = tmp_path / "lowerings.cpp"
    source.write_text(cpp_program(cases))
    exe = tmp_path / "lowerings"
    build_log = subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-O1",
            "-Wall",
            "-Werror",
            "-Wno-unused-variable",
            "-o",
            str(exe),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert build_log.returncode == 0, build_log.stderr[-4000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    for (card, _, params), got, want in zip(
        cases, parse_program_output(run.stdout, len(cases)), wants
    ):
        np.testing.assert_allclose(
            got,
            np.broadcast_to(want, got.shape),
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"{card.name}{params}",
        )
