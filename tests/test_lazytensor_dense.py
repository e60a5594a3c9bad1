"""``LazyTensor.dense()`` / ``.to_dense()`` (issue 12, item 6), NumPy and torch alike.

Each dense array is compared with the same formula written with dense NumPy / torch
broadcasting; torch's is differentiated against gradcheck (first and second order).
"""

from __future__ import annotations

import numpy as np
import pytest

import lazykernels.numpy as lkn
from lazykernels.errors import ArgumentError, DenseSizeError

pytestmark = pytest.mark.cpu
RNG = np.random.default_rng(6)


def _gaussian(front, wrap, x, y, s):
    """exp(-|x_i - y_j|^2 / s^2) * (x_i | y_j) as a LazyTensor, s a Python float or an array."""
    x_i, y_j = front.LazyTensor(wrap(x)), front.LazyTensor(wrap(y))
    scale = s if isinstance(s, float) else front.LazyTensor(wrap(s))
    return (-(((x_i - y_j) ** 2).sum(-1)) / scale**2).exp() * (x_i | y_j)


def _gaussian_dense(x, y, s):
    return np.exp(-((x - y) ** 2).sum(-1) / s[..., 0] ** 2) * (x * y).sum(-1)


@pytest.mark.parametrize("batch", [(), (2,), (3, 1)])
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_dense_matches_the_formula_written_densely(lib, batch):
    if lib == "torch":
        torch = pytest.importorskip("torch")
        import lazykernels.torch as front

        wrap = torch.from_numpy
    else:
        front, wrap = lkn, np.asarray
    x = RNG.standard_normal((*batch, 5, 1, 3))
    y = RNG.standard_normal((*(b if k else 1 for k, b in enumerate(batch)), 1, 4, 3))
    s = np.array([0.8])  # a Pm parameter
    for scale in (0.8, s):
        K = _gaussian(front, wrap, x, y, scale)
        dense = K.dense()
        assert tuple(dense.shape) == K.shape == (*batch, 5, 4)
        np.testing.assert_allclose(np.asarray(dense), _gaussian_dense(x, y, s), atol=1e-13)
        np.testing.assert_array_equal(np.asarray(K.to_dense()), np.asarray(dense))
        np.testing.assert_allclose(np.asarray(K.T.dense()), np.swapaxes(np.asarray(dense), -1, -2))
        # what the reductions sum is the dense array
        np.testing.assert_allclose(
            np.asarray(K.sum(axis=len(batch) + 1))[..., 0], np.asarray(dense).sum(-1), atol=1e-12
        )


def test_vector_complex_and_one_sided_lazytensors():
    x = RNG.standard_normal((4, 1, 3)).astype(np.float32)
    y = RNG.standard_normal((1, 6, 3)).astype(np.float32)
    V = lkn.LazyTensor(x) - lkn.LazyTensor(y) * 2.0
    dense = V.dense()
    assert dense.dtype == np.float32 and dense.shape == V.shape == (4, 6, 3)
    np.testing.assert_allclose(dense, x - 2 * y, rtol=1e-6)
    # only i variables: a (M, 1) matrix, as KeOps's shape says
    assert lkn.LazyTensor(x).sum(-1).dense().shape == (4, 1)
    z = RNG.standard_normal((4, 1, 2)) + 1j * RNG.standard_normal((4, 1, 2))
    w = RNG.standard_normal((1, 5, 2)) + 1j * RNG.standard_normal((1, 5, 2))
    C = (lkn.LazyTensor(z) * lkn.LazyTensor(w)).exp()
    assert C.dense().shape == C.shape == (4, 5, 2)
    np.testing.assert_allclose(C.dense(), np.exp(z * w), rtol=1e-12)


def test_torch_dense_is_differentiable_to_second_order():
    torch = pytest.importorskip("torch")
    from lazykernels.torch import LazyTensor

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 1, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def dense(a, b):
        return (-((LazyTensor(a) - LazyTensor(b)) ** 2).sum(-1)).exp().dense()

    assert torch.autograd.gradcheck(dense, (x, y))
    assert torch.autograd.gradgradcheck(dense, (x, y))


def test_too_large_a_dense_array_is_refused_with_its_size():
    x = np.zeros((1000, 1, 3))
    y = np.zeros((1, 2000, 3))
    K = ((lkn.LazyTensor(x) - lkn.LazyTensor(y)) ** 2).sum(-1)
    # 2e6 pairs x (1 output + 6 input values) x 8 bytes = 112e6 bytes
    with pytest.raises(DenseSizeError, match=r"shape \(1000, 2000\) needs 106.8 MiB") as info:
        K.dense(max_bytes=100 << 20)
    assert "15.3 MiB for the dense array" in str(info.value)
    assert isinstance(info.value, MemoryError)
    assert K.dense(max_bytes=120 << 20).shape == (1000, 2000)


def test_reduced_and_symbolic_lazytensors_cannot_be_dense():
    x = RNG.standard_normal((3, 1, 2))
    K = (lkn.LazyTensor(x) * lkn.LazyTensor(x.reshape(1, 3, 2))).sum(-1)
    with pytest.raises(ArgumentError, match="already reduced"):
        K.sum(axis=1, call=False).dense()
    S = (lkn.Vi(0, 2) * lkn.Vj(1, 2)).sum(-1)
    with pytest.raises(ArgumentError, match=r"symbolic variables \(ind, dim, cat\) = \(0, 2, 0\)"):
        S.dense()


def test_dask_dense_is_a_lazy_dask_array():
    da = pytest.importorskip("dask.array")
    from lazykernels.dask import LazyTensor

    x = RNG.standard_normal((7, 1, 3))
    y = RNG.standard_normal((1, 5, 3))
    K = (-((LazyTensor(da.from_array(x, chunks=(3, 1, 3))) - LazyTensor(y)) ** 2).sum(-1)).exp()
    dense = K.dense()
    assert isinstance(dense, da.Array) and dense.shape == K.shape == (7, 5)
    np.testing.assert_allclose(np.asarray(dense), np.exp(-((x - y) ** 2).sum(-1)), atol=1e-14)
