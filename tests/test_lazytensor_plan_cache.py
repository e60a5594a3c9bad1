"""The structural plan cache of LazyTensor reductions (lazytensor/reductions.py, issue 12.7).

A warm reduction finds its plan by a key built as the expression is; two expressions that
differ in anything that changes the plan must never share one, and every result, fresh or
warm, must equal a dense NumPy computation.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import DimensionError
from lazykernels.numpy import LazyTensor, Vi, Vj

RNG = np.random.default_rng(7)
M, N = 5, 4
X3, Y3 = RNG.standard_normal((M, 3)), RNG.standard_normal((N, 3))
X2, Y2 = RNG.standard_normal((M, 2)), RNG.standard_normal((N, 2))
B = RNG.standard_normal((N, 1))


def lt_i(x):
    return LazyTensor(x[:, None, :])


def lt_j(y):
    return LazyTensor(y[None, :, :])


def gauss(x, y):
    return (-((lt_i(x) - lt_j(y)) ** 2).sum(-1)).exp()


def dense_gauss(x, y):
    return np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))


def plan_of(K, **kwargs):
    """The plan a reduction of K builds (or finds), without calling it."""
    return K.sum(axis=kwargs.pop("axis", 1), call=False, **kwargs)._plan


def test_warm_call_reuses_the_plan_and_matches_dense():
    expected = dense_gauss(X3, Y3) @ B
    first = gauss(X3, Y3) @ B
    plans = {id(plan_of(gauss(X3, Y3) * lt_j(B))) for _ in range(3)}
    assert len(plans) == 1
    for _ in range(3):
        np.testing.assert_allclose(gauss(X3, Y3) @ B, expected, rtol=1e-12)
    np.testing.assert_allclose(first, expected, rtol=1e-12)
    # new arrays of the same shapes: same plan, their own result
    x, y, b = X3 + 1.0, Y3 * 2.0, B - 3.0
    np.testing.assert_allclose(gauss(x, y) @ b, dense_gauss(x, y) @ b, rtol=1e-12)


def test_vector_dimension_gives_another_plan():
    assert plan_of(gauss(X3, Y3)) is not plan_of(gauss(X2, Y2))
    np.testing.assert_allclose(gauss(X2, Y2).sum(axis=1), dense_gauss(X2, Y2).sum(1)[:, None])
    np.testing.assert_allclose(gauss(X3, Y3).sum(axis=1), dense_gauss(X3, Y3).sum(1)[:, None])


def test_shared_leaf_vs_two_leaves():
    """x_i * x_i and x_i * z_i have the same ops and dimensions, not the same formula."""
    x_i = lt_i(X3)
    same = (x_i * x_i).sum(-1)
    two = (lt_i(X3) * lt_i(Y3[:1].repeat(M, 0))).sum(-1)
    assert plan_of(same) is not plan_of(two)
    np.testing.assert_allclose(same.sum(axis=1), N * (X3 * X3).sum(-1, keepdims=True) / N)
    np.testing.assert_allclose(two.sum(axis=1), (X3 * Y3[:1]).sum(-1, keepdims=True), rtol=1e-12)


def test_which_operands_share_a_leaf_is_part_of_the_key():
    """Same ops, dimensions and categories; only which sub-expressions share a variable
    differs: each must get its own plan and its own (dense) value, warm or fresh."""
    a, b, c = (RNG.standard_normal((M, 3)) for _ in range(3))

    def cases():
        x, y, z = lt_i(a), lt_i(b), lt_i(c)
        return {
            "(x-y)*(x-z)": ((x - y) * (x - z), (a - b) * (a - c)),
            "(x-y)*(z-x)": ((x - y) * (z - x), (a - b) * (c - a)),
            "(x-y)*(y-x)": ((x - y) * (y - x), (a - b) * (b - a)),
            "(x-y)*(z-y)": ((x - y) * (z - y), (a - b) * (c - b)),
            "(x-y)*(x-y)": ((x - y) * (x - y), (a - b) * (a - b)),
        }

    plans = {name: plan_of(lazy.sum(-1)) for name, (lazy, _) in cases().items()}
    assert len({id(p) for p in plans.values()}) == len(plans)
    for _ in range(2):  # fresh, then warm
        for lazy, dense in cases().values():
            got = (lazy.sum(-1) * lt_j(B)).sum(axis=1)
            want = dense.sum(-1, keepdims=True) * B.sum()
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_i_vs_j_category():
    a = (lt_i(X3) - lt_j(Y3)).sum(-1)
    b = (lt_j(Y3) - lt_i(X3)).sum(-1)
    assert plan_of(a) is not plan_of(b)
    d = (X3[:, None, :] - Y3[None, :, :]).sum(-1)
    np.testing.assert_allclose(a.sum(axis=1), d.sum(1)[:, None], rtol=1e-12)
    np.testing.assert_allclose(b.sum(axis=1), -d.sum(1)[:, None], rtol=1e-12)


def test_integer_constants_vs_parameters():
    """Integers are constants of the formula (their value is in the key); floats are Pm
    parameters passed at the call (same plan, each call its own value)."""
    K = gauss(X3, Y3)
    D = dense_gauss(X3, Y3)
    assert plan_of(K * 2) is not plan_of(gauss(X3, Y3) * 3)
    assert plan_of(K * 2) is not plan_of(gauss(X3, Y3) * 2.0)
    assert plan_of(K * 2.0) is plan_of(gauss(X3, Y3) * 3.0)
    for c in (2, 3, 2.0, 3.5):
        np.testing.assert_allclose(
            (gauss(X3, Y3) * c).sum(axis=1), c * D.sum(1)[:, None], rtol=1e-12
        )
    for p in (2, 3):  # an integer power is a constant of the formula
        got = (((lt_i(X3) - lt_j(Y3)) ** p).sum(-1)).sum(axis=1)
        expected = ((X3[:, None] - Y3[None]) ** p).sum(-1).sum(1)[:, None]
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_axis_reduction_and_options():
    K = gauss(X3, Y3)
    D = dense_gauss(X3, Y3)
    plans = [
        plan_of(K, axis=1),
        plan_of(K, axis=0),
        plan_of(K, axis=1, dtype_acc="float64"),
        plan_of(K, axis=1, sum_scheme="direct_sum"),
        K.logsumexp(axis=1, call=False)._plan,
        K.Kmin(2, axis=1, call=False)._plan,
        K.Kmin(3, axis=1, call=False)._plan,
    ]
    assert len({id(p) for p in plans}) == len(plans)
    np.testing.assert_allclose(gauss(X3, Y3).sum(axis=0), D.sum(0)[:, None], rtol=1e-12)
    np.testing.assert_allclose(gauss(X3, Y3).sum(axis=1), D.sum(1)[:, None], rtol=1e-12)
    np.testing.assert_allclose(
        gauss(X3, Y3).logsumexp(axis=1), np.log(np.exp(D).sum(1))[:, None], rtol=1e-12
    )
    np.testing.assert_allclose(gauss(X3, Y3).Kmin(2, axis=1), np.sort(D, axis=1)[:, :2], rtol=1e-12)
    np.testing.assert_allclose(gauss(X3, Y3).Kmin(3, axis=1), np.sort(D, axis=1)[:, :3], rtol=1e-12)


def test_weight_of_the_weighted_log_sum_exp():
    F = -(((lt_i(X3) - lt_j(Y3)) ** 2).sum(-1))
    D = -((X3[:, None] - Y3[None]) ** 2).sum(-1)
    for wv in (np.exp(B), np.exp(np.concatenate([B, 2 * B], axis=1))):
        w = lt_j(wv)
        got = F.logsumexp(axis=1, weight=w)
        warm = (-(((lt_i(X3) - lt_j(Y3)) ** 2).sum(-1))).logsumexp(axis=1, weight=lt_j(wv))
        expected = np.log((np.exp(D)[:, :, None] * wv[None, :, :]).sum(1))
        np.testing.assert_allclose(got, expected, rtol=1e-10)
        np.testing.assert_allclose(warm, expected, rtol=1e-10)


def test_dtypes_and_batch_dims_are_call_time():
    """dtype and batch dimensions are read at the call: every result is its own."""
    for dtype in (np.float32, np.float64):
        x, y, b = X3.astype(dtype), Y3.astype(dtype), B.astype(dtype)
        got = gauss(x, y) @ b
        assert got.dtype == dtype
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, dense_gauss(X3, Y3) @ B, rtol=tol)
    xb, yb = RNG.standard_normal((2, M, 1, 3)), RNG.standard_normal((2, 1, N, 3))
    for _ in range(2):
        got = (-((LazyTensor(xb) - LazyTensor(yb)) ** 2).sum(-1)).exp().sum(axis=2)
        expected = np.exp(-((xb - yb) ** 2).sum(-1)).sum(2)[..., None]
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_ranges_are_call_time():
    ranges = (
        np.array([[0, 2], [2, 5]]),
        np.array([1, 2]),
        np.array([[0, 2], [2, 4]]),
        np.array([[0, 2], [2, 4]]),
        np.array([1, 2]),
        np.array([[0, 2], [2, 5]]),
    )
    mask = np.zeros((M, N), dtype=bool)
    mask[:2, :2] = mask[2:, 2:] = True
    D = dense_gauss(X3, Y3)
    plain = gauss(X3, Y3).sum(axis=1)
    ranged = gauss(X3, Y3).sum(axis=1, ranges=ranges)
    np.testing.assert_allclose(plain, D.sum(1)[:, None], rtol=1e-12)
    np.testing.assert_allclose(ranged, np.where(mask, D, 0).sum(1)[:, None], rtol=1e-12)


def test_symbolic_variables_keep_their_index():
    a = ((Vi(0, 3) - Vj(1, 3)) ** 2).sum(-1).sum(axis=1)
    b = ((Vi(1, 3) - Vj(0, 3)) ** 2).sum(-1).sum(axis=1)
    assert a._plan is not b._plan
    expected = ((X3[:, None] - Y3[None]) ** 2).sum(-1).sum(1)[:, None]
    np.testing.assert_allclose(a(X3, Y3), expected, rtol=1e-12)
    np.testing.assert_allclose(b(Y3, X3), expected, rtol=1e-12)
    assert b.symbolic_variables == ((0, 3, 1), (1, 3, 0))
    # mixed with a bound array: the symbolic variable comes first in the call
    c = (Vi(0, 3) * lt_j(Y3)).sum(-1).sum(axis=1)
    for _ in range(2):
        np.testing.assert_allclose(c(X3), (X3 @ Y3.T).sum(1)[:, None], rtol=1e-12)


def test_dimension_errors_are_still_raised_when_the_op_is_written():
    with pytest.raises(DimensionError):
        lt_i(X3) * lt_j(Y2)
    with pytest.raises(DimensionError):
        lt_i(X3) - lt_j(Y2)


def test_deep_expression_builds_without_recursion_limit():
    K = lt_i(X3[:, :1])
    for _ in range(3000):
        K = K + lt_j(Y3[:, :1])
    expected = (X3[:, :1] + 3000 * Y3[:, 0][None, :]).sum(1)[:, None]
    assert K.node.dim == 1  # built iteratively
    np.testing.assert_allclose(K.sum(axis=1), expected, rtol=1e-10)


def test_structure_ids_survive_the_tables_being_cleared(monkeypatch):
    """The id tables are bounded: a clearing while expressions are built only costs misses
    (ids are never reused), never a wrong plan."""
    from lazykernels.lazytensor import plan_cache

    monkeypatch.setattr(plan_cache, "MAX_SIDS", 3)
    plan_cache.SIDS.clear()
    expected = dense_gauss(X3, Y3) @ B
    K = gauss(X3, Y3)  # built across clearings
    for _ in range(3):
        np.testing.assert_allclose(gauss(X3, Y3) @ B, expected, rtol=1e-12)
        np.testing.assert_allclose(K @ B, expected, rtol=1e-12)
        np.testing.assert_allclose(gauss(X2, Y2) @ B, dense_gauss(X2, Y2) @ B, rtol=1e-12)
    assert len(plan_cache.SIDS) <= 3


def test_torch_warm_calls_match_dense():
    torch = pytest.importorskip("torch")
    from lazykernels.torch import LazyTensor as TorchLazyTensor

    x, y, b = (torch.from_numpy(a) for a in (X3, Y3, B))
    expected = torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b
    for scale in (1.0, 2.0, 1.0):
        x_i, y_j = TorchLazyTensor(x[:, None, :]), TorchLazyTensor(y[None, :, :])
        got = (-((x_i - y_j) ** 2).sum(-1)).exp() @ (scale * b)
        torch.testing.assert_close(got, scale * expected, rtol=1e-12, atol=1e-12)
    x32 = x.float().requires_grad_()
    x_i, y_j = TorchLazyTensor(x32[:, None, :]), TorchLazyTensor(y.float()[None, :, :])
    got = (-((x_i - y_j) ** 2).sum(-1)).exp() @ b.float()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    (g,) = torch.autograd.grad(got.sum(), x32)
    xd = x.clone().requires_grad_()
    (torch.exp(-((xd[:, None] - y[None]) ** 2).sum(-1)) @ b).sum().backward()
    torch.testing.assert_close(g, xd.grad.float(), rtol=1e-4, atol=1e-5)


def test_parameters_of_ops_are_told_apart_by_type():
    """Op parameters are in the key (typed as make interns them: 1, 1.0 and True differ)."""
    x_i = lt_i(X3)
    assert plan_of(x_i.elem(1)) is not plan_of(lt_i(X3).elem(2))
    np.testing.assert_allclose(lt_i(X3).elem(1).sum(axis=1), X3[:, 1:2], rtol=1e-12)
    np.testing.assert_allclose(lt_i(X3).elem(2).sum(axis=1), X3[:, 2:3], rtol=1e-12)
