"""Calculus names (Grad, Diff, Laplacian, Divergence, GradMatrix, linear operators,
factorization) against dense NumPy and finite-difference computations, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import DimensionError, FormulaError
from lazykernels.formula import OPS, Cat, Node, const, evaluate, make, var
from lazykernels.formula.ir import is_zero
from lazykernels.formula.ops import calculus

# The family's names (SPEC §1.7-1.9); tests/test_registry.py exempts them from NumPy references.
CALCULUS_NAMES = {
    "Grad",
    "Diff",
    "Laplacian",
    "Divergence",
    "GradMatrix",
    "TraceOperator",
    "AdjointOperator",
    "SumLinOperator",
    "Factorize",
    "AutoFactorize",
}
N = 6  # evaluation points
H = 1e-6  # finite-difference step (first order)

x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
b = var(2, 2, Cat.J)
p = var(3, 1, Cat.PARAM)
A = var(4, 9, Cat.PARAM)  # a 3x3 matrix, row-major
u3, u2 = var(5, 3, Cat.I), var(6, 2, Cat.I)


def values(seed: int = 0) -> dict[Node, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        x: rng.uniform(-1, 1, (N, 3)),
        y: rng.uniform(-1, 1, (N, 3)),
        b: rng.uniform(-1, 1, (N, 2)),
        p: rng.uniform(0.5, 2, (N, 1)),
        A: rng.standard_normal((N, 9)),
        u3: rng.standard_normal((N, 3)),
        u2: rng.standard_normal((N, 2)),
    }


def ev(node: Node, env: dict[Node, np.ndarray]) -> np.ndarray:
    assert_no_temp(node)
    return np.broadcast_to(evaluate(node, env, np.float64), (N, node.dim))


def assert_no_temp(node: Node) -> None:
    temps = [n for n in node.walk() if n.op.name == "Var" and n.params[2] is Cat.TEMP]
    assert not temps, f"placeholder left in {node}"


def shifted(env: dict, v: Node, delta: np.ndarray) -> dict:
    return env | {v: env[v] + delta}


def fd_jacobian(f: Node, v: Node, env: dict, h: float = H) -> np.ndarray:
    """(N, f.dim, v.dim) central finite differences."""
    cols = []
    for j in range(v.dim):
        step = np.zeros(v.dim)
        step[j] = h
        cols.append((ev(f, shifted(env, v, step)) - ev(f, shifted(env, v, -step))) / (2 * h))
    return np.stack(cols, axis=-1)


def gaussian() -> Node:
    return make("Exp", (-make("SqDist", (x, y)),))


def matvec(M: Node, v: Node) -> Node:
    """A v for a row-major 3x3 matrix, built from vector ops (linear in v)."""
    rows = [make("Sum", (make("Extract", (M,), (3 * i, 3)) * v,)) for i in range(3)]
    return make("Concat", (make("Concat", (rows[0], rows[1])), rows[2]))


def nonlinear_field() -> Node:
    """A dim-3 field of x, nonlinear and mixing components."""
    return make("Sin", (x * y,)) * make("SqNorm2", (x,)) + make("Exp", (make("Sum", (x,)),)) * y


def test_the_family_is_registered_and_is_all_sugar():
    assert {card.name for card in calculus.CARDS} == CALCULUS_NAMES
    assert all(OPS[card.name] is card and card.expand is not None for card in calculus.CARDS)


# --- Grad -------------------------------------------------------------------------------------


def test_grad_of_a_gaussian_kernel_matches_finite_differences():
    env = values()
    f = gaussian() * b
    g = make("Grad", (f, x, u2))
    want = np.einsum("nkj,nk->nj", fd_jacobian(f, x, env), env[u2])
    np.testing.assert_allclose(ev(g, env), want, rtol=1e-7, atol=1e-9)


def test_second_order_grad_of_a_gaussian_kernel_matches_finite_differences():
    env = values(1)
    f = gaussian() * b
    g1 = make("Grad", (f, x, u2))  # dim 3
    g2 = make("Grad", (g1, x, u3))
    want = np.einsum("nkj,nk->nj", fd_jacobian(g1, x, env), env[u3])
    np.testing.assert_allclose(ev(g2, env), want, rtol=1e-6, atol=1e-8)
    # and w.r.t. the other variable: the mixed derivative d/dy of d/dx
    g_mixed = make("Grad", (g1, y, u3))
    want = np.einsum("nkj,nk->nj", fd_jacobian(g1, y, env), env[u3])
    np.testing.assert_allclose(ev(g_mixed, env), want, rtol=1e-6, atol=1e-8)


def test_grad_of_a_gaussian_has_the_closed_form():
    env = values(2)
    g = make("Grad", (gaussian(), x, p))
    d = env[x] - env[y]
    want = -2 * d * np.exp(-(d**2).sum(-1, keepdims=True)) * env[p]
    np.testing.assert_allclose(ev(g, env), want, rtol=1e-12)


def test_grad_with_respect_to_a_non_variable_raises():
    with pytest.raises(FormulaError, match="Grad"):
        make("Grad", (gaussian(), x + y, p))


def test_grad_with_a_wrong_gradient_input_dimension_raises():
    with pytest.raises(DimensionError, match="Grad"):
        make("Grad", (gaussian() * b, x, u3))


def test_second_derivative_of_a_linear_formula_simplifies_to_zero():
    e, e2 = var(7, 3, Cat.I), var(8, 3, Cat.I)
    first = make("Grad", (x + y, x, e))
    result = make("Grad", (first, x, e2))
    assert is_zero(result) and result.dim == 3


# --- Diff -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gaussian", "field"])
def test_diff_matches_a_directional_finite_difference(which):
    env = values(3)
    f = gaussian() * b if which == "gaussian" else nonlinear_field()
    d = make("Diff", (f, x, u3))
    assert d.dim == f.dim
    step = H * env[u3]
    want = (ev(f, shifted(env, x, step)) - ev(f, shifted(env, x, -step))) / (2 * H)
    np.testing.assert_allclose(ev(d, env), want, rtol=1e-6, atol=1e-8)


def test_nested_diff_is_the_second_directional_derivative():
    env = values(4)
    f = gaussian()
    d2 = make("Diff", (make("Diff", (f, x, u3)), x, u3))
    h = 1e-4
    step = h * env[u3]
    plus, minus = ev(f, shifted(env, x, step)), ev(f, shifted(env, x, -step))
    want = (plus - 2 * ev(f, env) + minus) / h**2
    np.testing.assert_allclose(ev(d2, env), want, rtol=1e-5, atol=1e-6)


def test_diff_of_an_independent_formula_is_zero():
    assert is_zero(make("Diff", (make("Exp", (y,)), x, u3)))


def test_placeholders_avoid_the_inputs_temporary_variables():
    taken = var(calculus.PLACEHOLDER_BASE, 3, Cat.TEMP)
    env = values(5) | {taken: np.random.default_rng(9).standard_normal((N, 3))}
    f = make("Exp", (x * taken,))
    d = make("Diff", (f, x, u3))
    want = np.exp(env[x] * env[taken]) * env[taken] * env[u3]
    np.testing.assert_allclose(evaluate(d, env, np.float64), want, rtol=1e-12)


def test_diff_direction_must_have_the_variable_dimension():
    with pytest.raises(DimensionError, match="Diff"):
        make("Diff", (gaussian(), x, u2))


# --- Laplacian, Divergence, GradMatrix ----------------------------------------------------------


def test_laplacian_of_a_gaussian_has_the_closed_form():
    # f = exp(-r2), r2 = |x - y|^2: grad f = -2 (x - y) f, lap f = (-2 D + 4 r2) f
    env = values(6)
    lap = make("Laplacian", (gaussian(), x))
    assert lap.dim == 1
    r2 = ((env[x] - env[y]) ** 2).sum(-1, keepdims=True)
    np.testing.assert_allclose(ev(lap, env), (-6 + 4 * r2) * np.exp(-r2), rtol=1e-11)


def test_laplacian_matches_the_trace_of_a_finite_difference_hessian():
    env = values(7)
    f = make("Sin", (make("Sum", (x * y,)),)) * make("SqNorm2", (x,))
    h = 1e-4
    center = ev(f, env)
    want = np.zeros((N, 1))
    for j in range(3):
        step = np.zeros(3)
        step[j] = h
        plus, minus = ev(f, shifted(env, x, step)), ev(f, shifted(env, x, -step))
        want += (plus - 2 * center + minus) / h**2
    np.testing.assert_allclose(ev(make("Laplacian", (f, x)), env), want, rtol=1e-5, atol=1e-5)


def test_divergence_of_x_times_a_scalar_is_three_times_the_scalar():
    env = values(8)
    div = make("Divergence", (x * p, x))
    np.testing.assert_allclose(ev(div, env), 3 * env[p], rtol=1e-13)


def test_divergence_of_a_nonlinear_field_is_the_trace_of_the_jacobian():
    env = values(9)
    f = nonlinear_field()
    want = np.trace(fd_jacobian(f, x, env), axis1=1, axis2=2)[:, None]
    np.testing.assert_allclose(ev(make("Divergence", (f, x)), env), want, rtol=1e-6)


def test_divergence_needs_a_field_of_the_variable_dimension():
    with pytest.raises(DimensionError, match="Divergence"):
        make("Divergence", (gaussian() * b, x))


def test_laplacian_needs_a_scalar_formula():
    with pytest.raises(DimensionError, match="Laplacian"):
        make("Laplacian", (x * y, x))


def test_grad_matrix_is_the_row_major_jacobian():
    env = values(10)
    f = make("Exp", (-make("SqDist", (x, y)),)) * b + make("Sum", (x * x * y,))  # dim 2
    gm = make("GradMatrix", (f, x))
    assert gm.dim == 6
    jac = fd_jacobian(f, x, env)  # (N, 2, 3): jac[n, k, j] = df_k / dx_j
    np.testing.assert_allclose(ev(gm, env), jac.reshape(N, 6), rtol=1e-7, atol=1e-9)


def test_grad_matrix_of_a_scalar_is_the_gradient():
    env = values(11)
    gm = make("GradMatrix", (gaussian(), x))
    np.testing.assert_allclose(ev(gm, env), ev(make("Grad", (gaussian(), x, const(1))), env))


# --- linear operators ---------------------------------------------------------------------------


def test_adjoint_operator_of_a_matrix_is_its_transpose():
    env = values(12)
    adj = make("AdjointOperator", (matvec(A, y), y, u3))
    assert adj.dim == 3
    mats = env[A].reshape(N, 3, 3)
    np.testing.assert_allclose(ev(adj, env), np.einsum("nij,ni->nj", mats, env[u3]), rtol=1e-12)


def test_trace_operator_of_a_matrix_is_its_trace():
    env = values(13)
    tr = make("TraceOperator", (matvec(A, y), y))
    want = np.trace(env[A].reshape(N, 3, 3), axis1=1, axis2=2)[:, None]
    np.testing.assert_allclose(ev(tr, env), want, rtol=1e-12)


def test_sum_lin_operator_sums_the_matrix_entries():
    env = values(14)
    total = make("SumLinOperator", (matvec(A, y), y))
    np.testing.assert_allclose(ev(total, env), env[A].sum(-1, keepdims=True), rtol=1e-12)


def test_trace_operator_of_a_scalar_map_sums_its_derivatives():
    env = values(15)
    tr = make("TraceOperator", (make("Sum", (x * y,)), y))  # v -> <x, v>, broadcast
    np.testing.assert_allclose(ev(tr, env), env[x].sum(-1, keepdims=True), rtol=1e-12)


def test_weighted_trace_operator():
    env = values(18)
    mats = env[A].reshape(N, 3, 3)
    diagonal = np.einsum("nkk->nk", mats)
    tr = make("TraceOperator", (matvec(A, y), y, u3))
    np.testing.assert_allclose(ev(tr, env)[:, 0], (diagonal * env[u3]).sum(-1), rtol=1e-12)
    scaled = make("TraceOperator", (matvec(A, y), y, p))  # one weight for the whole diagonal
    np.testing.assert_allclose(ev(scaled, env)[:, 0], env[p][:, 0] * diagonal.sum(-1), rtol=1e-12)
    scalar = make("TraceOperator", (make("Sum", (x * y,)), y, u3))  # broadcast scalar map
    np.testing.assert_allclose(ev(scalar, env)[:, 0], (env[x] * env[u3]).sum(-1), rtol=1e-12)
    with pytest.raises(DimensionError, match="TraceOperator: the weights w must have dimension 3"):
        make("TraceOperator", (matvec(A, y), y, u2))


def test_weighted_sum_lin_operator():
    env = values(19)
    mats = env[A].reshape(N, 3, 3)
    f = matvec(A, y)
    both = make("SumLinOperator", (f, y, u3, x))
    want = np.einsum("ni,nij,nj->n", env[u3], mats, env[x])
    np.testing.assert_allclose(ev(both, env)[:, 0], want, rtol=1e-12)
    left = make("SumLinOperator", (f, y, u3))
    np.testing.assert_allclose(ev(left, env)[:, 0], np.einsum("ni,nij->n", env[u3], mats))
    right = make("SumLinOperator", (f, y, const(1), x))
    np.testing.assert_allclose(ev(right, env)[:, 0], np.einsum("nij,nj->n", mats, env[x]))
    with pytest.raises(DimensionError, match="SumLinOperator: the right weights wr"):
        make("SumLinOperator", (f, y, u3, u2))
    with pytest.raises(FormulaError, match="takes 2 to 4 formula argument"):
        make("SumLinOperator", (f, y, u3, x, x))


def test_weighted_operators_parse_from_strings():
    from lazykernels.formula.parse import parse_formula as parse

    tr = parse("TraceOperator(x * y, y, z)", ["x = Vi(3)", "y = Vj(3)", "z = Vi(3)"])
    env = values(20)
    xs, ys, zs = env[x], env[y], env[u3]
    got = evaluate(
        tr, {var(0, 3, Cat.I): xs, var(1, 3, Cat.J): ys, var(2, 3, Cat.I): zs}, np.float64
    )
    np.testing.assert_allclose(np.broadcast_to(got, (N, 1))[:, 0], (xs * zs).sum(-1), rtol=1e-12)
    with pytest.raises(FormulaError, match="TraceOperator expects 2 to 3 formula arguments"):
        parse("TraceOperator(x, y, x, y)", ["x = Vi(3)", "y = Vj(3)"])


def test_diff_with_tuples_sums_the_differentials():
    env = values(21)
    f = gaussian() * b
    d = f.diff((x, y), (u3, u3 * 2))
    want = make("Diff", (f, x, u3)) + make("Diff", (f, y, u3 * 2))
    np.testing.assert_allclose(ev(d, env), ev(want, env), rtol=1e-12)
    step = H * env[u3]
    moved = shifted(shifted(env, x, step), y, 2 * step)
    back = shifted(shifted(env, x, -step), y, -2 * step)
    np.testing.assert_allclose(ev(d, env), (ev(f, moved) - ev(f, back)) / (2 * H), rtol=1e-6)
    with pytest.raises(FormulaError, match="one direction per variable"):
        f.diff((x, y), (u3,))
    with pytest.raises(FormulaError, match="one direction per variable"):
        f.diff((x,), u3)


@pytest.mark.skipif("MatVecMult" not in OPS, reason="MatVecMult is not registered yet")
def test_linear_operators_on_matvecmult():
    env = values(16)
    f = make("MatVecMult", (A, y))
    mats = env[A].reshape(N, 3, 3)
    adj = make("AdjointOperator", (f, y, u3))
    np.testing.assert_allclose(ev(adj, env), np.einsum("nij,ni->nj", mats, env[u3]), rtol=1e-12)
    tr = make("TraceOperator", (f, y))
    np.testing.assert_allclose(ev(tr, env)[:, 0], np.trace(mats, axis1=1, axis2=2), rtol=1e-12)


@pytest.mark.parametrize("name", ["TraceOperator", "AdjointOperator", "SumLinOperator"])
def test_linear_operators_reject_a_nonlinear_formula(name):
    f = make("Exp", (y,)) * x
    args = (f, y, u3) if name == "AdjointOperator" else (f, y)
    with pytest.raises(FormulaError, match=f"{name}: the formula must be linear"):
        make(name, args)


def test_linear_operators_accept_a_map_linear_through_a_product():
    env = values(17)
    f = x * y * p  # linear in y (x, p are coefficients)
    tr = make("TraceOperator", (f, y))
    np.testing.assert_allclose(ev(tr, env), (env[x] * env[p]).sum(-1, keepdims=True), rtol=1e-12)


# --- factorization ------------------------------------------------------------------------------


def test_factorize_and_auto_factorize_return_the_formula():
    f = gaussian() * b + gaussian()
    assert make("Factorize", (f, gaussian())) is f
    assert make("AutoFactorize", (f,)) is f


def test_divergence_of_a_linear_field_simplifies_to_the_compact_form():
    # SPEC §1.7: Divergence(x*p, x) -> 3*p (KeOps prints exactly this)
    x, p = var(0, 3, Cat.I), var(1, 1, Cat.PARAM)
    assert make("Divergence", (x * p, x)) is 3 * p
