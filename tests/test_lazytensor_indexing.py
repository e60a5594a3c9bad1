"""Indexing LazyTensors along the last axis (issue 12, item 1), NumPy and torch alike.

Every key is checked against the same key applied to the dense NumPy array of the formula,
with and without batch dimensions; the KeOps talk's four K-NN metrics run as written.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazykernels.numpy as lkn
from lazykernels.errors import IndexingError

torch = pytest.importorskip("torch")
import lazykernels.torch as lkt  # noqa: E402

RNG = np.random.default_rng(12)

# keys of the last axis of a dim-5 vector, each spelled as a user would
KEYS = [
    0,
    -1,
    -5,
    slice(1, 3),
    slice(-3, None),
    slice(None, -1),
    slice(None, None, 2),
    slice(None, None, -1),
    slice(4, 0, -2),
    slice(1, None, 3),
    slice(None),
]


def _spellings(key, naxes):
    """``x[key]``, ``x[..., key]`` and ``x[:, ..., :, key]`` (all axes spelled out)."""
    yield key
    yield (Ellipsis, key)
    yield (slice(None),) * (naxes - 1) + (key,)
    if naxes > 2:
        yield (slice(None), Ellipsis, key)


def _dense_pick(values, key):
    picked = values[..., key]
    return picked[..., None] if isinstance(key, int) else picked


@pytest.mark.parametrize("batch", [(), (2,)])
@pytest.mark.parametrize("key", KEYS, ids=str)
@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_last_axis_keys_match_dense_indexing(lib, key, batch):
    x = RNG.standard_normal((*batch, 4, 1, 5))
    y = RNG.standard_normal((*batch, 1, 3, 5))
    dense = np.exp(-((x - y) ** 2))  # (*batch, 4, 3, 5)
    expected = _dense_pick(dense, key).sum(axis=-2)
    front, wrap = (lkn, np.asarray) if lib == "numpy" else (lkt, torch.from_numpy)
    K = (-((front.LazyTensor(wrap(x)) - front.LazyTensor(wrap(y))) ** 2)).exp()
    for spelled in _spellings(key, len(K._shape)):
        got = K[spelled].sum(axis=len(batch) + 1, backend="reference")
        got = got.numpy() if lib == "torch" else got
        np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=f"key {spelled!r}")


def test_integer_key_is_elem_and_slices_are_extracts():
    x = lkn.Vi(np.ones((3, 5)))
    assert x[1].node is x[:, :, 1].node is x[..., 1].node is x[..., -4].node
    assert x[1].node.op.name == "Elem"
    assert x[..., 1:4].node.op.name == "Extract" and x[..., 1:4].ndim == 3
    assert x[..., ::2].ndim == 3 and x[..., ::-1].ndim == 5
    assert x[...] is x and x[:] is x
    assert x[np.int64(2)].node is x[2].node


def test_torch_gradient_through_a_stepped_slice():
    x = torch.tensor(RNG.standard_normal((4, 5)), requires_grad=True)
    y = torch.tensor(RNG.standard_normal((3, 5)))
    x_i, y_j = lkt.Vi(x), lkt.Vj(y)
    s = ((x_i - y_j)[..., ::-2] ** 2).sum(-1).sum(1, backend="reference")
    cols = torch.tensor([4, 2, 0])  # torch tensors take no negative steps
    dense = ((x[:, None, cols] - y[None, :, cols]) ** 2).sum(-1).sum(1, keepdim=True)
    (g,) = torch.autograd.grad(s.sum(), x)
    (g_dense,) = torch.autograd.grad(dense.sum(), x)
    torch.testing.assert_close(s, dense)
    torch.testing.assert_close(g, g_dense)


def test_complex_components():
    z = RNG.standard_normal((3, 1, 4)) + 1j * RNG.standard_normal((3, 1, 4))
    w = RNG.standard_normal((1, 2, 1))
    K = lkn.LazyTensor(z) * lkn.LazyTensor(w)
    dense = z * w
    for key in (1, -1, slice(1, 3), slice(None, None, -2)):
        got = K[..., key].sum(axis=1, backend="reference")
        np.testing.assert_allclose(got, _dense_pick(dense, key).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    "key",
    [
        (0, 1),
        (slice(None), 0),
        (Ellipsis, Ellipsis, 0),
        (slice(0, 2), slice(None), 0),
        (slice(None), slice(None), slice(None), 0),
        5,
        -6,
        slice(3, 1),
        slice(None, None, 0),
        slice(0.5, 2),
        None,
        "a",
        [0, 1],
    ],
    ids=repr,
)
def test_bad_keys_raise_indexing_errors(key):
    x = lkn.Vi(np.ones((3, 5)))
    with pytest.raises(IndexingError) as err:
        x[key]
    assert isinstance(err.value, IndexError)


def test_batched_bad_key_names_the_axes():
    x = lkn.LazyTensor(np.ones((2, 3, 1, 5)))
    with pytest.raises(IndexingError, match=r"x\[:, :, :, k\]"):
        x[:, 0]


@pytest.mark.cpu
def test_keops_talk_four_metrics_run_unchanged():
    """The KeOps talk's K-NN code with ``LazyTensor`` from lazykernels.torch (import only)."""
    from lazykernels.torch import LazyTensor

    N, D, K = 300, 3, 5
    x = torch.rand(N, D, dtype=torch.float64) + 0.1  # x[0] > 0: the Poincare half-space
    x_i = LazyTensor(x.view(N, 1, D))
    x_j = LazyTensor(x.view(1, N, D))
    D_ij = ((x_i - x_j) ** 2).sum(-1)  # Euclidean
    M_ij = (x_i - x_j).abs().sum(-1)  # Manhattan
    C_ij = 1 - (x_i | x_j)  # cosine
    H_ij = D_ij / (x_i[..., 0] * x_j[..., 0])  # hyperbolic

    d = x[:, None, :] - x[None, :, :]
    sq = (d**2).sum(-1)
    dense = {
        "euclidean": sq,
        "manhattan": d.abs().sum(-1),
        "cosine": 1 - x @ x.T,
        "hyperbolic": sq / (x[:, None, 0] * x[None, :, 0]),
    }
    for name, lazy in zip(dense, (D_ij, M_ij, C_ij, H_ij)):
        values, indices = lazy.Kmin_argKmin(K=K, dim=1)
        top = dense[name].topk(K, dim=1, largest=False)
        torch.testing.assert_close(values, top.values, msg=name)
        # ties aside, the neighbours are the dense ones: compare their values
        picked = dense[name].gather(1, indices)
        torch.testing.assert_close(picked, top.values, msg=name)
        assert torch.equal(lazy.argKmin(K=K, dim=1), indices), name


@pytest.mark.cpu
def test_keops_knn_benchmark_symbolic_metrics():
    """KeOps's benchmark_KNN metrics on symbolic Vi/Vj variables (``X_i[0]``)."""
    from lazykernels.numpy import Vi, Vj

    x = RNG.random((200, 4)) + 0.1
    X_i, X_j = Vi(0, 4), Vj(1, 4)
    H_ij = ((X_i - X_j) ** 2).sum(-1) / (X_i[0] * X_j[0])
    knn = H_ij.argKmin(3, dim=1)
    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    dense = sq / (x[:, None, 0] * x[None, :, 0])
    got = knn(x, x)
    np.testing.assert_allclose(
        np.take_along_axis(dense, got, 1), np.sort(dense, axis=1)[:, :3], rtol=1e-12
    )
