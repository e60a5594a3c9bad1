"""Warm LazyTensor calls on the bound arrays as given (lazytensor/warm.py, issue 12.7).

A LazyTensor keeps ``x[:, None, :]`` of shape (M, 1, D) as it is; a plain call whose
layout was seen runs the prepared call filed for that layout, straight on those arrays.
Every case checks each call (the first, which files the layout, and the warm ones) against
a dense computation, and that the warm calls do skip the cold path when they may, and do
not when they may not (derivatives, options, layouts that cannot be prepared).
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.core import prepared
from lazykernels.errors import ArgumentError
from lazykernels.numpy import LazyTensor

RNG = np.random.default_rng(5)


def gauss(lt, x, y):
    return (-((lt(x[..., :, None, :]) - lt(y[..., None, :, :])) ** 2).sum(-1)).exp()


def dense_gauss(x, y):
    return np.exp(-((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1))


@pytest.fixture
def cold_calls(monkeypatch):
    """The calls that went through the LazyTensor's run_reduction (the cold path)."""
    prepared.clear()  # (other tests filed the same structures and layouts)
    seen = []
    tools = LazyTensor.tools
    original = type(tools).run_reduction

    def spy(plan, arrays, **kwargs):
        seen.append([a.shape for a in arrays])
        return original(plan, arrays, **kwargs)

    monkeypatch.setattr(tools, "run_reduction", spy)
    return seen


def test_second_call_skips_the_cold_path_and_follows_values(cold_calls):
    x, y, b = RNG.standard_normal((7, 3)), RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
    for k in range(4):
        xs, bs = x + k, b * (k + 1)
        got = gauss(LazyTensor, xs, y) @ bs
        np.testing.assert_allclose(got, dense_gauss(xs, y) @ bs, rtol=1e-12)
    assert len(cold_calls) == 1  # the first call files the layout
    assert cold_calls[0] == [(7, 3), (6, 3), (6, 2)]  # the plan read the views
    K = gauss(LazyTensor, x, y)
    x += 0.5  # in place, after building: the warm call reads the memory at call time
    np.testing.assert_allclose(K @ b, dense_gauss(x, y) @ b, rtol=1e-12)
    assert len(cold_calls) == 1


def test_each_layout_is_filed_on_its_own(cold_calls):
    x, y, b = RNG.standard_normal((5, 3)), RNG.standard_normal((4, 3)), RNG.standard_normal((4, 1))
    xt = np.asfortranarray(x)  # x[:, None, :] of it has other strides: not preparable
    for _ in range(2):
        for xs in (x, xt, x.astype(np.float32)):
            got = gauss(LazyTensor, xs, y.astype(xs.dtype)) @ b.astype(xs.dtype)
            tol = 1e-12 if xs.dtype == np.float64 else 1e-5
            np.testing.assert_allclose(got, dense_gauss(x, y) @ b, rtol=tol)
    # float64 and float32 were filed by their first call; the Fortran-ordered x is
    # filed as not preparable and takes the cold path each time
    assert len(cold_calls) == 4


def test_batch_layout_as_given_never_serves_the_same_core_layout():
    """(B, M, 1, D) arrays are viewed to (B, M, D): the same shapes as another plan call's
    arrays as given; the two must never share a prepared call."""
    x, y = RNG.standard_normal((4, 1, 3)), RNG.standard_normal((1, 4, 3))
    flat = (LazyTensor(x) * LazyTensor(y)).sum(-1)  # M = 4, N = 4, no batch
    xb, yb = x[:, None, :, :], y[:, None, :, :]  # batch 4 / 1, M = 1, N = 4
    batched = (LazyTensor(xb) * LazyTensor(yb)).sum(-1)
    want_flat = (x * y).sum(-1).sum(1, keepdims=True)  # (4, 1)
    want_batched = (xb * yb).sum(-1).sum(-1, keepdims=True)  # (4, 1, 1)
    for _ in range(3):
        flat = (LazyTensor(x) * LazyTensor(y)).sum(-1)
        batched = (LazyTensor(xb) * LazyTensor(yb)).sum(-1)
        np.testing.assert_allclose(flat.sum(axis=1), want_flat, rtol=1e-12)
        np.testing.assert_allclose(batched.sum(axis=2), want_batched, rtol=1e-12)


def test_options_parameters_and_nan_on_the_warm_path(cold_calls):
    x, y, b = RNG.standard_normal((5, 3)), RNG.standard_normal((4, 3)), RNG.standard_normal((4, 1))
    gauss(LazyTensor, x, y) @ b
    gauss(LazyTensor, x, y) @ b
    assert len(cold_calls) == 1
    got = gauss(LazyTensor, x, y).sum(axis=1, backend="reference")  # an option: cold
    np.testing.assert_allclose(got, dense_gauss(x, y).sum(1)[:, None], rtol=1e-12)
    assert len(cold_calls) == 2
    for s in (2.0, 3.0):  # a bound Python number: cold, and its value each call
        K = (-((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1) / s).exp()
        np.testing.assert_allclose(K @ b, np.exp(np.log(dense_gauss(x, y)) / s) @ b, rtol=1e-12)
    xn = x.copy()
    xn[3, 0] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        gauss(LazyTensor, xn, y) @ b  # warm layout: the prepared call checks NaN


def test_torch_tracked_calls_take_the_autograd_path():
    torch = pytest.importorskip("torch")
    import lazykernels.torch as lt

    x, y, b = (torch.tensor(RNG.standard_normal(s)) for s in ((5, 3), (4, 3), (4, 1)))

    def dense(x, y, b):
        return torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b

    for _ in range(2):  # files the layout, then warm
        torch.testing.assert_close(gauss(lt.LazyTensor, x, y) @ b, dense(x, y, b))
    xg = x.clone().requires_grad_(True)
    for _ in range(2):
        got = gauss(lt.LazyTensor, xg, y) @ b
        (grad,) = torch.autograd.grad(got.sum(), xg)
        xd = xg.detach().clone().requires_grad_(True)
        (want,) = torch.autograd.grad(dense(xd, y, b).sum(), xd)
        torch.testing.assert_close(grad, want)
    with torch.no_grad():
        got = gauss(lt.LazyTensor, xg, y) @ b
    assert not got.requires_grad
    torch.testing.assert_close(got, dense(x, y, b))
    g = torch.func.grad(lambda t: (gauss(lt.LazyTensor, t, y) @ b).sum())(x)
    xd = x.clone().requires_grad_(True)
    torch.testing.assert_close(g, torch.autograd.grad(dense(xd, y, b).sum(), xd)[0])


def test_variables_and_dense_read_the_bound_arrays_viewed():
    x, y = RNG.standard_normal((3, 2)), RNG.standard_normal((4, 2))
    x_i, y_j = LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :])
    assert [v.shape for v in (x_i - y_j).variables] == [(3, 2), (4, 2)]
    np.testing.assert_allclose(
        np.reshape((x_i - y_j).sum(-1).dense(), (3, 4)), (x[:, None] - y[None]).sum(-1)
    )
    np.testing.assert_allclose(
        ((x_i - y_j) ** 2).sum(-1).t().sum(axis=1)[:, 0],
        ((x[:, None] - y[None]) ** 2).sum(-1).sum(0),
    )
