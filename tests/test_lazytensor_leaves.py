"""Lazy leaves and the lean warm path of LazyTensor reductions (issue 12, item 7).

A bound array's variable is a ``Leaf`` whose ``Var`` node is built only when a formula is;
a warm reduction found in the plan cache builds none. ``K @ v`` binds ``v`` without the
constructor when it can, operation dims are remembered, and one-operand operations share
their operand's state. Every result is checked against dense NumPy / torch.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import DimensionError, DtypeError
from lazykernels.lazytensor.construct import Leaf
from lazykernels.numpy import LazyTensor, Vi

RNG = np.random.default_rng(11)
M, N = 6, 5
X, Y = RNG.standard_normal((M, 3)), RNG.standard_normal((N, 3))
B = RNG.standard_normal((N, 2))


def gauss(x, y):
    x_i, y_j = LazyTensor(x[..., :, None, :]), LazyTensor(y[..., None, :, :])
    return (-((x_i - y_j) ** 2).sum(-1)).exp(), (x_i, y_j)


def dense_gauss(x, y):
    return np.exp(-((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1))


def test_a_warm_reduction_builds_no_leaf_node():
    K, _ = gauss(X, Y)
    np.testing.assert_allclose(K @ B, dense_gauss(X, Y) @ B, rtol=1e-12)  # cold: builds
    x, y, b = X * 0.5, Y + 1.0, B - 2.0  # new arrays, same structure
    K, leaves = gauss(x, y)
    np.testing.assert_allclose(K @ b, dense_gauss(x, y) @ b, rtol=1e-12)
    for lt in leaves:
        (leaf,) = lt._binds
        assert type(leaf) is Leaf and leaf._node is None  # no Var node was interned
    assert K._node is None  # nor the formula
    # reading the formula builds it, with the leaves' nodes
    assert {leaf.node for lt in leaves for leaf in lt._binds} == set(K.node.variables())


def test_transposing_twice_binds_one_variable():
    K, (x_i, _) = gauss(X, Y)
    (leaf,) = x_i._binds
    assert leaf.transposed() is leaf.transposed() and leaf.transposed().transposed() is leaf
    both = K.t() + K.t()
    assert len(both._binds) == 2  # x and y, once each
    want = 2 * dense_gauss(X, Y).T
    np.testing.assert_allclose(both.sum(axis=1), want.sum(1)[:, None], rtol=1e-12)
    np.testing.assert_allclose(K.t().t().sum(axis=1), dense_gauss(X, Y).sum(1)[:, None])


@pytest.mark.parametrize(
    "shape", [(N,), (N, 2), (3, N, 2), (1,), (1, 2)], ids=["N", "ND", "BND", "1", "1D"]
)
def test_matmul_binds_v_as_the_constructor_would(shape):
    n = shape[-2] if len(shape) > 1 else shape[0]
    x, y = RNG.standard_normal((M, 3)), RNG.standard_normal((n, 3))
    v = RNG.standard_normal(shape)
    K, _ = gauss(x, y)
    dense = dense_gauss(x, y)
    want = dense @ v if v.ndim < 3 else np.einsum("ij,bjd->bid", dense, v)
    np.testing.assert_allclose(K @ v, want, rtol=1e-12)
    f32 = np.float32
    K32, _ = gauss(x.astype(f32), y.astype(f32))
    np.testing.assert_allclose(K32 @ v.astype(f32), want, rtol=2e-5, atol=1e-6)


def test_matmul_checks_v():
    K, _ = gauss(X, Y)
    with pytest.raises(DtypeError):
        K @ np.ones((N, 1), dtype=np.int64)
    with pytest.raises(TypeError):
        K @ ([1.0] * N)
    v = RNG.standard_normal((N, 1)) + 1j * RNG.standard_normal((N, 1))
    np.testing.assert_allclose(K @ v, dense_gauss(X, Y) @ v, rtol=1e-12)  # complex v


def test_remembered_dims_still_raise_on_bad_operands():
    x_i = LazyTensor(X[:, None, :])
    z_j = LazyTensor(RNG.standard_normal((1, N, 2)))
    for _ in range(2):  # the second time too: only valid dims are remembered
        with pytest.raises(DimensionError):
            x_i + z_j
    assert (x_i + x_i).ndim == 3 and (x_i - x_i).ndim == 3


def test_one_operand_operations_keep_the_state():
    x = RNG.standard_normal((2, M, 1, 3))
    x_i = LazyTensor(x)
    e = (-x_i).exp().sum(-1)
    assert (e.batchdims, e.ni, e.nj, e._binds) == (x_i.batchdims, M, None, x_i._binds)
    y = RNG.standard_normal((2, 1, N, 3))
    K = (e * (-LazyTensor(y).sum(-1)).exp()).sum(axis=2)
    want = (np.exp(-x).sum(-1) * np.exp(-y.sum(-1))).sum(2)  # (2, M)
    np.testing.assert_allclose(K, want[..., None], rtol=1e-12)


def test_reduction_axes_of_numpy_ints_and_bad_axes():
    K, _ = gauss(X, Y)
    want = dense_gauss(X, Y).sum(1)[:, None]
    np.testing.assert_allclose(K.sum(axis=np.int64(1)), want, rtol=1e-12)
    with pytest.raises(Exception, match="axis must be an int"):
        K.sum(axis=True)
    with pytest.raises(Exception, match="not a reduction axis"):
        K.sum(axis=3)
    with pytest.raises(Exception, match="negative axes"):
        K.sum(axis=-2)


def test_symbolic_variables_with_bound_leaves():
    K = (-((Vi(0, 3) - LazyTensor(Y[None, :, :])) ** 2).sum(-1)).exp()
    for x in (X, X + 1.0):
        r = K.sum(axis=1)  # a reduced LazyTensor waiting for Vi(0, 3)
        np.testing.assert_allclose(r(x), dense_gauss(x, Y).sum(1)[:, None], rtol=1e-12)


def test_torch_warm_path_and_gradients():
    torch = pytest.importorskip("torch")
    from lazykernels.torch import LazyTensor as TorchLazyTensor

    x = torch.tensor(X, requires_grad=True)
    y, b = torch.tensor(Y), torch.tensor(B)
    for _ in range(2):  # cold, then warm
        x_i, y_j = TorchLazyTensor(x[:, None, :]), TorchLazyTensor(y[None, :, :])
        out = (-((x_i - y_j) ** 2).sum(-1)).exp() @ b
        d = torch.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
        torch.testing.assert_close(out, d @ b, rtol=1e-12, atol=1e-14)
        (g,) = torch.autograd.grad(out.sum(), x)
        (h,) = torch.autograd.grad((d @ b).sum(), x)
        torch.testing.assert_close(g, h, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # no grad: the arrays are read without detach()
        x_i = TorchLazyTensor(x[:, None, :])
        out = ((x_i - TorchLazyTensor(y[None, :, :])) ** 2).sum(-1) @ b
    want = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) @ b
    torch.testing.assert_close(out, want.detach(), rtol=1e-12, atol=1e-12)
