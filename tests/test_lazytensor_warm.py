"""The warm path of LazyTensor reductions (issue 12.7): a reduction whose structure is in the
plan cache runs straight on the operand's state (``reductions.run_bound``), and the torch
front end reads plain CPU tensors by pointer (no NumPy view).

Each case runs an expression twice or more (the first call fills the cache) and checks every
call against a dense computation: what is cached (the plan, by structure) must never carry a
value, a size, a dtype, a call option or a gradient from one call to the next.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lazykernels.torch.lazytensor as torch_front  # noqa: E402
from lazykernels.core.genred import run_plan  # noqa: E402
from lazykernels.errors import ArgumentError, ShapeError  # noqa: E402
from lazykernels.numpy import LazyTensor  # noqa: E402

TorchLazyTensor = torch_front.LazyTensor

RNG = np.random.default_rng(12)


def gauss(lt, x, y):
    """The benchmark's matrix, built the way its users write it."""
    return (-((lt(x[:, None, :]) - lt(y[None, :, :])) ** 2).sum(-1)).exp()


def dense_gauss(x, y):
    return np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))


def test_warm_numpy_calls_follow_new_values_and_in_place_edits():
    x, y, b = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    for _ in range(3):
        np.testing.assert_allclose(gauss(LazyTensor, x, y) @ b, dense_gauss(x, y) @ b, rtol=1e-12)
    K = gauss(LazyTensor, x, y)
    x += 0.5  # the LazyTensor holds views: an edit after building it is seen by the call
    b[0] = 7.0
    np.testing.assert_allclose(K @ b, dense_gauss(x, y) @ b, rtol=1e-12)
    np.testing.assert_allclose(
        K.sum(axis=0, backend="reference"), dense_gauss(x, y).sum(0)[:, None], rtol=1e-12
    )


def test_warm_numpy_sizes_dtypes_and_batch_dims():
    for m, n, dtype in [(6, 5, np.float64), (3, 9, np.float64), (6, 5, np.float32), (1, 4, None)]:
        dtype = dtype or np.float64
        x, y = RNG.standard_normal((m, 3)).astype(dtype), RNG.standard_normal((n, 3)).astype(dtype)
        b = RNG.standard_normal((n, 1)).astype(dtype)
        for _ in range(2):
            got = gauss(LazyTensor, x, y) @ b
            assert got.dtype == dtype and got.shape == (m, 1)
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, dense_gauss(x, y) @ b, rtol=tol, atol=tol)
    xb, yb = RNG.standard_normal((2, 4, 1, 3)), RNG.standard_normal((1, 1, 5, 3))
    for _ in range(2):  # the same structure with a batch dimension, then without
        got = (
            (-((LazyTensor(xb) - LazyTensor(yb)) ** 2).sum(-1))
            .exp()
            .sum(axis=2, backend="reference")
        )
        np.testing.assert_allclose(
            got, np.exp(-((xb - yb) ** 2).sum(-1)).sum(2)[..., None], rtol=1e-12
        )
        x, y = xb[0, :, 0], yb[0, 0]
        np.testing.assert_allclose(
            gauss(LazyTensor, x, y).sum(axis=1, backend="reference"),
            dense_gauss(x, y).sum(1)[:, None],
            rtol=1e-12,
        )


def test_warm_numpy_parameters_take_their_value_at_each_call():
    x, y = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3))
    D = ((x[:, None] - y[None]) ** 2).sum(-1)
    for s in (0.5, 2.0, 0.5, 3.0):  # a Python float: a parameter, one plan for all
        got = (-((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1) * s).exp()
        np.testing.assert_allclose(
            got.sum(axis=1, backend="reference"), np.exp(-s * D).sum(1)[:, None], rtol=1e-12
        )
    for g in (np.array([0.5]), np.array([2.0])):  # a parameter array
        K = (
            -LazyTensor(g) * ((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1)
        ).exp()
        np.testing.assert_allclose(
            K.sum(axis=1, backend="reference"), np.exp(-g[0] * D).sum(1)[:, None], rtol=1e-12
        )


def test_warm_numpy_call_options_reach_each_call(monkeypatch):
    x, y, b = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3)), RNG.standard_normal((5, 1))
    expected = dense_gauss(x, y) @ b
    gauss(LazyTensor, x, y) @ b  # warm
    seen = []

    def spy(plan, arrays, backend="auto", ranges=None, out=None):
        seen.append(backend)
        return run_plan(plan, arrays, backend=backend, ranges=ranges, out=out)

    monkeypatch.setattr(LazyTensor.tools, "run_reduction", spy)
    K = gauss(LazyTensor, x, y)
    np.testing.assert_allclose(
        K.sum(axis=1, backend="reference"), dense_gauss(x, y).sum(1)[:, None], rtol=1e-12
    )
    np.testing.assert_allclose(K @ b, expected, rtol=1e-12)
    out = np.zeros((6, 1))
    res = (K * LazyTensor(b[None, :, :])).sum(axis=1, out=out, backend="reference")
    assert res is out
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    # K @ b has no option: the prepared call of its layout runs it (lazytensor/warm.py)
    assert seen == ["reference", "reference"]
    with pytest.raises(TypeError, match="unexpected reduction option"):
        K.sum(axis=1, bakend="CPU")
    with pytest.raises(ArgumentError, match="out: expected shape"):
        (K * LazyTensor(b[None, :, :])).sum(axis=1, out=np.zeros((5, 1)), backend="reference")


def test_warm_numpy_ranges_and_axis():
    x, y = RNG.standard_normal((5, 3)), RNG.standard_normal((4, 3))
    # i-block [0, 1) meets j in [2, 4); i-block [1, 5) meets j in [0, 2) and [3, 4)
    i_side = (np.array([[0, 1], [1, 5]]), np.array([1, 3]), np.array([[2, 4], [0, 2], [3, 4]]))
    j_side = (
        np.array([[0, 2], [2, 3], [3, 4]]),
        np.array([1, 2, 3]),
        np.array([[1, 5], [0, 1], [0, 5]]),
    )
    ranges = (*i_side, *j_side)
    mask = np.zeros((5, 4), dtype=bool)
    mask[0, 2:4] = mask[1:, 0:2] = mask[1:, 3] = True
    D = dense_gauss(x, y)
    for _ in range(2):
        K = gauss(LazyTensor, x, y)
        plain = K.sum(axis=1, backend="reference")
        ranged = K.sum(axis=1, ranges=ranges, backend="reference")
        np.testing.assert_allclose(plain, D.sum(1)[:, None], rtol=1e-12)
        np.testing.assert_allclose(ranged, np.where(mask, D, 0).sum(1)[:, None], rtol=1e-12)
        np.testing.assert_allclose(
            K.sum(axis=0, backend="reference"), D.sum(0)[:, None], rtol=1e-12
        )
        np.testing.assert_allclose(
            K.max(axis=1, backend="reference"), D.max(1)[:, None], rtol=1e-12
        )


def test_warm_numpy_errors_are_still_raised():
    x, y = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3))
    gauss(LazyTensor, x, y).sum(axis=1, backend="reference")
    K = gauss(LazyTensor, x, y)
    with pytest.raises(ShapeError):
        K @ np.ones((4, 1))  # 4 rows against N = 5
    xn = x.copy()
    xn[2, 1] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        gauss(LazyTensor, xn, y).sum(axis=1, backend="reference")
    reduced = K.sum(axis=1, call=False)
    with pytest.raises(ArgumentError, match="reduced LazyTensor"):
        reduced.exp()


# --- torch ----------------------------------------------------------------------------


def torch_inputs(dtype=torch.float64):
    x, y, b = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3)), RNG.standard_normal((5, 1))
    return tuple(torch.tensor(a, dtype=dtype) for a in (x, y, b))


def dense_torch(x, y, b):
    return torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b


def test_torch_plain_tensors_follow_dtypes_and_edits(monkeypatch):
    x, y, b = torch_inputs()
    gauss(TorchLazyTensor, x, y) @ b  # warm
    monkeypatch.setattr(torch.Tensor, "numpy", _no_numpy)  # by pointer, no NumPy view
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.float16, 2e-2)]:
        xs, ys, bs = (t.to(dtype) for t in (x, y, b))
        got = gauss(TorchLazyTensor, xs, ys) @ bs
        assert got.dtype == dtype
        expected = dense_torch(x, y, b).to(dtype)
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    K = gauss(TorchLazyTensor, x, y)
    x.add_(0.25)  # in place, after building
    torch.testing.assert_close(K @ b, dense_torch(x, y, b), rtol=1e-12, atol=1e-12)


def _no_numpy(self, *args, **kwargs):
    raise AssertionError("the torch front end made a NumPy view")


def test_torch_neg_view_is_read_by_the_adapter(monkeypatch):
    # the torch adapter resolves a lazy negative view itself (no NumPy view needed)
    x, y, b = torch_inputs()
    monkeypatch.setattr(torch.Tensor, "numpy", _no_numpy)
    nb = torch._neg_view(-b)
    got = (gauss(TorchLazyTensor, x, y) * TorchLazyTensor(nb[None, :, :])).sum(axis=1)
    torch.testing.assert_close(got, dense_torch(x, y, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", ["requires_grad", "neg_view", "no_grad", "out", "ranges"])
def test_torch_tracked_and_optioned_calls_match_dense(case):
    x, y, b = torch_inputs()
    expected = dense_torch(x, y, b)
    kwargs = {"backend": "reference"}
    if case == "requires_grad":
        x.requires_grad_()
    elif case == "neg_view":
        b = torch._neg_view(-b)  # a lazy negative view (the adapter resolves it)
        x.requires_grad_()  # (and a derivative may be asked: torch_reduce)
    elif case == "no_grad":
        x.requires_grad_()
    elif case == "out":
        kwargs["out"] = torch.zeros(6, 1, dtype=torch.float64)
    else:
        kwargs["ranges"] = tuple(
            torch.tensor(r) for r in ([[0, 6]], [1], [[0, 5]], [[0, 5]], [1], [[0, 6]])
        )
    K = gauss(TorchLazyTensor, x, y)
    if case == "no_grad":
        with torch.no_grad():
            got = (K * TorchLazyTensor(b[None, :, :])).sum(axis=1, **kwargs)
        assert not got.requires_grad
    else:
        got = (K * TorchLazyTensor(b[None, :, :])).sum(axis=1, **kwargs)
    torch.testing.assert_close(got.detach(), expected.detach(), rtol=1e-12, atol=1e-12)
    if case == "requires_grad":
        (g,) = torch.autograd.grad(got.sum(), x)
        xd = x.detach().clone().requires_grad_()
        dense_torch(xd, y, b).sum().backward()
        torch.testing.assert_close(g, xd.grad, rtol=1e-10, atol=1e-12)
    if case == "out":
        assert got is kwargs["out"]


def test_torch_func_transforms_and_forward_ad_see_the_warm_call():
    x, y, b = torch_inputs()

    def f(x):  # the reference backend: no derivative kernels to compile
        K = gauss(TorchLazyTensor, x, y) * TorchLazyTensor(b[None, :, :])
        return K.sum(axis=1, backend="reference").sum()

    def dense(x):
        return dense_torch(x, y, b).sum()

    f(x)  # warm
    torch.testing.assert_close(
        torch.func.grad(f)(x), torch.func.grad(dense)(x), rtol=1e-10, atol=1e-12
    )
    v = torch.ones_like(x)
    torch.testing.assert_close(
        torch.func.jvp(f, (x,), (v,))[1],
        torch.func.jvp(dense, (x,), (v,))[1],
        rtol=1e-10,
        atol=1e-12,
    )
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        xd = fwad.make_dual(x, v)
        tangent = fwad.unpack_dual(f(xd)).tangent
    torch.testing.assert_close(
        tangent, torch.func.jvp(dense, (x,), (v,))[1], rtol=1e-10, atol=1e-12
    )
    xs = torch.stack([x, x + 1.0])
    torch.testing.assert_close(
        torch.func.vmap(f)(xs), torch.stack([dense(x), dense(x + 1.0)]), rtol=1e-10, atol=1e-12
    )
