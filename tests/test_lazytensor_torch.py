"""PyTorch LazyTensor: methods, reductions, linear algebra and autograd against dense values.

The method and reduction tables are shared with the NumPy LazyTensor tests
(:mod:`tests.lazytensor_cases`, ``reduction_cases.REDUCTIONS``,
``test_lazytensor_complex.CASES``): the same formulas are built from torch tensors and
compared with the same independent dense NumPy references. Derivatives are checked with
``torch.autograd.gradcheck`` / ``gradgradcheck`` (float64, finite differences) and against
dense torch autograd.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lazykernels.errors import ArgumentError, BackendError, DtypeError  # noqa: E402
from lazykernels.numpy import LazyTensor as NumpyLazyTensor  # noqa: E402
from lazykernels.torch import ComplexLazyTensor, LazyTensor, Pm, Vi, Vj  # noqa: E402

from . import test_lazytensor_complex as complex_cases  # noqa: E402
from .lazytensor_cases import CASES, TOL, run_case  # noqa: E402
from .reduction_cases import REDUCTIONS, run_reduction_case  # noqa: E402

REF = "reference"
NP_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def as_numpy(t):
    assert isinstance(t, torch.Tensor)
    return t.detach().numpy()


# --- every formula-building method and operator -----------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_method_against_dense(case, dtype, batch):
    got, expected = run_case(case, dtype, batch, LazyTensor, torch.from_numpy)
    assert isinstance(got, torch.Tensor) and got.dtype == TORCH_DTYPE[dtype]
    np.testing.assert_allclose(as_numpy(got), expected, **TOL[dtype])


# --- every reduction method -------------------------------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("case", REDUCTIONS, ids=[c[0] for c in REDUCTIONS])
def test_reduction_against_dense(case, axis, dtype, batch):
    got_t, exp_t = run_reduction_case(case, axis, dtype, batch, LazyTensor, torch.from_numpy)
    for g, e in zip(got_t, exp_t):
        assert isinstance(g, torch.Tensor)
        if np.issubdtype(e.dtype, np.integer):
            assert g.dtype == torch.int64
            np.testing.assert_array_equal(as_numpy(g), e)
        else:
            assert g.dtype == TORCH_DTYPE[dtype]
            np.testing.assert_allclose(as_numpy(g), e, **TOL[dtype])


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("case", complex_cases.CASES, ids=[c[0] for c in complex_cases.CASES])
def test_complex_against_dense(case, batch):
    _, lazy, dense = case
    data = complex_cases.make_data(np.float64, batch)
    L = {name: LazyTensor(torch.from_numpy(v)) for name, v in data.items()}
    L["ZR"] = ComplexLazyTensor(torch.from_numpy(data["S"]))
    formula = lazy(L)
    full = (*formula.batchdims, formula.ni or 1, formula.nj or 1, formula._shape[-1])
    expected = np.broadcast_to(dense(data), full).sum(-2)
    got = formula.sum(axis=formula.nbatchdims + 1, backend=REF)
    assert got.dtype == (torch.complex128 if formula.is_complex else torch.float64)
    np.testing.assert_allclose(as_numpy(got), expected, **TOL[np.float64])


def test_float16_reductions():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(6, 2))
    y = rng.uniform(-1, 1, size=(7, 2))
    K = -Vi(torch.tensor(x, dtype=torch.float16)).sqdist(Vj(torch.tensor(y, dtype=torch.float16)))
    assert K.dtype == "float16"
    F = -((x[:, None] - y[None]) ** 2).sum(-1)
    got = K.exp().sum(axis=1, backend=REF)
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got[:, 0].float().numpy(), np.exp(F).sum(1), rtol=3e-3)
    lse = K.logsumexp(axis=0, backend=REF)
    np.testing.assert_allclose(lse[:, 0].float().numpy(), np.log(np.exp(F).sum(0)), rtol=3e-3)
    np.testing.assert_array_equal(K.argmax(axis=1, backend=REF)[:, 0].numpy(), F.argmax(1))


# --- construction, memory and devices ---------------------------------------------------


def test_contiguous_tensors_are_bound_without_copies():
    x = torch.randn(5, 3)
    y = torch.randn(1, 4, 3)
    for lazy, source in (
        (Vi(x), x),
        (Vj(x), x),
        (LazyTensor(x[:, None, :]), x),
        (LazyTensor(y), y),
    ):
        (bound,) = lazy.variables
        assert bound.data_ptr() == source.data_ptr()


def test_non_cpu_tensors_raise():
    meta = torch.empty(5, 1, 3, device="meta")
    with pytest.raises(BackendError, match="only CPU and CUDA tensors"):
        LazyTensor(meta)
    with pytest.raises(BackendError, match="only CPU and CUDA tensors"):
        (Vi(0, 3) - Vj(torch.ones(4, 3))).sqnorm2().sum(axis=1, call=False)(meta[:, 0])


def test_properties_and_dtype_names():
    x = torch.zeros(5, 3, dtype=torch.float64)
    K = Vi(x).sqdist(Vj(torch.zeros(4, 3, dtype=torch.float64)))
    assert K.shape == (5, 4) and K.ndim == 1 and K.dtype == "float64"
    assert K.T.shape == (4, 5) and (Vi(x) * Pm(torch.ones(3, dtype=torch.float64))).ndim == 3
    assert LazyTensor(torch.ones(2, dtype=torch.complex64)).dtype == "complex64"
    assert isinstance(Vi(torch.ones(3, 1, dtype=torch.complex128)), ComplexLazyTensor)
    assert Vi(x).variables[0] is x and LazyTensor(2.5).variables == (2.5,)
    assert "torch LazyTensor" in str(K)


def test_mixing_errors():
    x32, x64 = torch.ones(3, 2), torch.ones(4, 2, dtype=torch.float64)
    with pytest.raises(DtypeError, match="float32 and float64"):
        Vi(x32) + Vj(x64)
    with pytest.raises(TypeError, match="cannot mix"):
        Vi(x64) + NumpyLazyTensor(np.ones((4, 2)), axis=1)
    with pytest.raises(TypeError, match="cannot combine"):
        Vi(x64) + np.ones(2)
    with pytest.raises(DtypeError, match="float16, float32 or float64"):
        Vi(torch.ones(3, 2, dtype=torch.int64))


def test_float_parameters_symbolic_variables_ranges():
    x = torch.arange(6.0).reshape(3, 2)
    y = torch.arange(8.0).reshape(4, 2) / 4
    dense = ((x[:, None] - y[None]) ** 2).sum(-1)
    res = (Vi(x).sqdist(Vj(y)) * 0.5).sum(axis=1, backend=REF)
    assert res.dtype == torch.float32
    torch.testing.assert_close(res[:, 0], 0.5 * dense.sum(1))
    f = (Vi(0, 2) - Vj(1, 2)).sqnorm2().argmin(axis=1, backend=REF)
    torch.testing.assert_close(f(x, y)[:, 0], dense.argmin(1))
    ranges = (
        torch.tensor([[0, 1], [1, 3]]),
        torch.tensor([1, 2]),
        torch.tensor([[0, 2], [2, 4]]),
        torch.tensor([[0, 2], [2, 4]]),
        torch.tensor([2, 2]),
        torch.tensor([[0, 1], [1, 3]]),
    )
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.float32)
    K = (-Vi(x).sqdist(Vj(y))).exp()
    got = K.sum(axis=1, ranges=ranges, backend=REF)
    torch.testing.assert_close(got[:, 0], (torch.exp(-dense) * mask).sum(1))


# --- linear algebra ---------------------------------------------------------------------


def test_matmul_matvec_rmatvec_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, dtype=torch.float64, generator=g)
    y = torch.randn(4, 2, dtype=torch.float64, generator=g)
    K = (-Vi(x).sqdist(Vj(y))).exp()
    K.backend = REF
    D = torch.exp(-(torch.cdist(x, y) ** 2))
    v = torch.randn(4, dtype=torch.float64, generator=g)
    V = torch.randn(4, 3, dtype=torch.float64, generator=g)
    u = torch.randn(5, dtype=torch.float64, generator=g)
    torch.testing.assert_close(K @ v, D @ v)
    torch.testing.assert_close(K @ V, D @ V)
    torch.testing.assert_close(K.matvec(v), D @ v)
    torch.testing.assert_close(K.rmatvec(u), D.T @ u)
    xb = torch.randn(2, 5, 2, dtype=torch.float64, generator=g)
    yb = torch.randn(2, 4, 2, dtype=torch.float64, generator=g)
    Vb = torch.randn(2, 4, 3, dtype=torch.float64, generator=g)
    Kb = (-LazyTensor(xb[:, :, None]).sqdist(LazyTensor(yb[:, None]))).exp()
    torch.testing.assert_close(
        Kb.matvec(Vb, backend=REF), torch.exp(-(torch.cdist(xb, yb) ** 2)) @ Vb
    )


# --- autograd ---------------------------------------------------------------------------


def _inputs(seed=0, m=4, n=5, d=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, d, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(n, d, dtype=torch.float64, generator=g).requires_grad_()
    b = (torch.rand(n, 2, dtype=torch.float64, generator=g) + 0.5).requires_grad_()
    s = torch.tensor([0.7], dtype=torch.float64).requires_grad_()
    return x, y, b, s


def _kernel(x, y, s):
    return -Vi(x).sqdist(Vj(y)) * Pm(s)


def _matvec(x, y, b, s, axis):
    K = _kernel(x, y, s).exp()
    K.backend = REF
    return K.matvec(b) if axis == 1 else K.rmatvec(x)  # K @ b or K.T @ x


GRAD_CASES = {
    "sum": lambda x, y, b, s, ax: (_kernel(x, y, s).exp() * Vj(b)).sum(axis=ax, backend=REF),
    "logsumexp": lambda x, y, b, s, ax: _kernel(x, y, s).logsumexp(axis=ax, backend=REF),
    "logsumexp_weight": lambda x, y, b, s, ax: _kernel(x, y, s).logsumexp(
        axis=ax, weight=Vj(b), backend=REF
    ),
    "sumsoftmaxweight": lambda x, y, b, s, ax: _kernel(x, y, s).sumsoftmaxweight(
        Vj(b), axis=ax, backend=REF
    ),
    "min": lambda x, y, b, s, ax: (_kernel(x, y, s) * Vj(b)).min(axis=ax, backend=REF),
    "max": lambda x, y, b, s, ax: (_kernel(x, y, s) * Vj(b)).max(axis=ax, backend=REF),
    "Kmin": lambda x, y, b, s, ax: _kernel(x, y, s).Kmin(2, axis=ax, backend=REF),
    "min_argmin": lambda x, y, b, s, ax: (_kernel(x, y, s) + Vj(b)).min_argmin(
        axis=ax, backend=REF
    )[0],
    "matvec": _matvec,
}


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck_and_gradgradcheck(name, axis):
    x, y, b, s = _inputs()
    fn = GRAD_CASES[name]

    def f(x, y, b, s):
        return fn(x, y, b, s, axis)

    assert torch.autograd.gradcheck(f, (x, y, b, s))
    assert torch.autograd.gradgradcheck(f, (x, y, b, s), fast_mode=True)


def test_gradients_against_dense_torch_batched():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 1, 3, dtype=torch.float64, generator=g).requires_grad_()
    y = torch.randn(1, 1, 5, 3, dtype=torch.float64, generator=g).requires_grad_()
    lse = (-LazyTensor(x).sqdist(LazyTensor(y))).logsumexp(axis=2, backend=REF)
    dense = torch.logsumexp(-((x - y) ** 2).sum(-1), dim=2, keepdim=True)
    torch.testing.assert_close(lse, dense)
    v = torch.randn(2, 6, 1, dtype=torch.float64, generator=g)
    got = torch.autograd.grad(lse, [x, y], v, create_graph=True)
    want = torch.autograd.grad(dense, [x, y], v, create_graph=True)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)
    second = torch.autograd.grad((got[0] ** 2).sum(), y)
    torch.testing.assert_close(second[0], torch.autograd.grad((want[0] ** 2).sum(), y)[0])


def test_complex_gradient():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4, 2, dtype=torch.complex128, generator=g).requires_grad_()
    u = torch.randn(3, 2, dtype=torch.complex128, generator=g)
    res = (Vi(z) * Vj(u)).exp().real.sum(axis=1, backend=REF)
    dense = torch.exp(z[:, None] * u[None]).real.sum(1)
    torch.testing.assert_close(res, dense)
    (got,) = torch.autograd.grad(res.sum(), z)
    (want,) = torch.autograd.grad(dense.sum(), z)
    torch.testing.assert_close(got, want)


def test_indices_carry_no_gradient_and_out_refused_when_tracked():
    x, y, b, s = _inputs()
    idx = _kernel(x, y, s).argKmin(2, axis=1, backend=REF)
    assert idx.dtype == torch.int64 and not idx.requires_grad
    with pytest.raises(ArgumentError, match="out="):
        _kernel(x, y, s).sum(axis=1, backend=REF, out=torch.empty(4, 1, dtype=torch.float64))
