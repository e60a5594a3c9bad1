"""Torch ``LazyTensor.solve`` and ``KernelSolve``: values and autograd against dense torch.

The dense oracle is ``torch.linalg.solve`` on the stored matrix ``alpha Id + K`` (float64),
whose autograd also gives the reference gradients; ``gradcheck`` / ``gradgradcheck`` compare
with finite differences.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lazykernels.torch import KernelSolve, LazyTensor, Pm, Vi, Vj  # noqa: E402
from lazykernels.torch.autograd import torch_reduce  # noqa: E402
from lazykernels.torch.solve import LinearSystem  # noqa: E402

REF = "reference"
F64 = torch.float64
EPS = {torch.float32: 1e-6, torch.float64: 1e-12}


def problem(dtype=F64, batch=(), n=8, nrhs=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, n, 2, dtype=F64, generator=g).to(dtype)
    b = torch.randn(*batch, n, nrhs, dtype=F64, generator=g).to(dtype)
    return x, b


def dense_solve(x, b, alpha, scale=1.0):
    D = torch.exp(-scale * torch.cdist(x, x) ** 2)
    eye = torch.eye(x.shape[-2], dtype=x.dtype)
    return torch.linalg.solve(alpha * eye + D, b)


def gauss(x, scale=1.0):
    if x.ndim == 2:
        return (-Vi(x).sqdist(Vj(x)) * scale).exp()
    return (-LazyTensor(x[..., :, None, :]).sqdist(LazyTensor(x[..., None, :, :])) * scale).exp()


@pytest.mark.parametrize("batch", [(), (2,)], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_solve_against_dense(dtype, batch):
    x, b = problem(dtype, batch)
    a = gauss(x).solve(b, alpha=0.5, eps=EPS[dtype], backend=REF)
    assert a.shape == b.shape and a.dtype == dtype
    expected = dense_solve(x.double(), b.double(), 0.5)
    tol = 1e-9 if dtype == F64 else 2e-4
    torch.testing.assert_close(a.double(), expected, rtol=tol, atol=tol)


def test_solve_gradients_against_dense_autograd():
    x, b = problem(nrhs=2)
    x.requires_grad_()
    b.requires_grad_()
    s = torch.tensor([0.8], dtype=F64, requires_grad=True)
    a = gauss(x, Pm(s)).solve(b, alpha=0.3, eps=1e-13, backend=REF)
    expected = dense_solve(x, b, 0.3, s)
    torch.testing.assert_close(a, expected)
    v = torch.randn(a.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    got = torch.autograd.grad(a, [x, b, s], v)
    want = torch.autograd.grad(expected, [x, b, s], v)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-9)


def test_solve_gradcheck_and_gradgradcheck():
    x, b = problem(n=5, nrhs=2)
    s = torch.tensor([0.6], dtype=F64)
    inputs = tuple(t.requires_grad_() for t in (x, b, s))

    def f(x, b, s):
        return gauss(x, Pm(s)).solve(b, alpha=0.4, eps=1e-13, backend=REF)

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs, fast_mode=True)


def test_solve_gradients_with_symbolic_var_call_false_and_j_rhs():
    x, b = problem(nrhs=2)
    x.requires_grad_()
    b.requires_grad_()
    expected = dense_solve(x, b, 1.0)
    K = gauss(x) * Vj(0, 2)
    a = K.solve(Vi(b), var=Vj(0, 2), alpha=1.0, eps=1e-13, backend=REF)
    torch.testing.assert_close(a, expected)
    solver = (-Vi(0, 2).sqdist(Vj(x))).exp().solve(b, alpha=1.0, eps=1e-13, call=False)
    a2 = solver(x, backend=REF)  # x feeds both the symbolic Vi(0, 2) and the bound Vj
    torch.testing.assert_close(a2, expected)
    a3 = gauss(x).solve(Vj(b), alpha=1.0, eps=1e-13, backend=REF)  # unknown indexed by i
    torch.testing.assert_close(a3, expected)
    for res in (a, a2, a3):
        got = torch.autograd.grad((res**2).sum(), [x, b])
        want = torch.autograd.grad((expected**2).sum(), [x, b], retain_graph=True)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-9)


def test_no_graph_without_requires_grad():
    x, b = problem()
    a = gauss(x).solve(b, alpha=1.0, backend=REF)
    assert not a.requires_grad and a.grad_fn is None


def test_kernel_solve_values_and_gradcheck():
    aliases = ["x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "g = Pm(1)"]
    solver = KernelSolve("Exp(-g * SqDist(x, y)) * b", aliases, "b", axis=1)
    x, b = problem(n=5, nrhs=2)
    g = torch.tensor([0.9], dtype=F64)
    a = solver(x, x, b, g, alpha=0.3, eps=1e-13, backend=REF)
    torch.testing.assert_close(a, dense_solve(x, b, 0.3, g))
    inputs = tuple(t.clone().requires_grad_() for t in (x, b, g))

    def f(x, b, g):
        return solver(x, x, b, g, alpha=0.3, eps=1e-13, backend=REF)

    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs, fast_mode=True)


def test_transposed_operator_of_a_non_symmetric_kernel():
    """``LinearSystem.T`` is the adjoint: <u, K v> == <K^T u, v> with K_ij = k(x_i, y_j) c_j."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 2, dtype=F64, generator=g), torch.randn(6, 2, dtype=F64, generator=g)
    c = torch.rand(6, 1, dtype=F64, generator=g) + 0.5
    K = (-Vi(x).sqdist(Vj(y))).exp() * Vj(c) * Vj(0, 1)
    plan = K.sum(axis=1, call=False)._plan

    def apply(v, inputs):
        (kv,) = torch_reduce(plan, [v, *inputs], backend=REF)
        return kv + 0.5 * v

    bound = [x, y, c]
    system = LinearSystem(apply)
    dense = 0.5 * torch.eye(6, dtype=F64) + torch.exp(-(torch.cdist(x, y) ** 2)) * c.T
    u, v = torch.randn(6, 1, dtype=F64, generator=g), torch.randn(6, 1, dtype=F64, generator=g)
    torch.testing.assert_close(system(v, bound), dense @ v)
    torch.testing.assert_close(system.T(u, bound), dense.T @ u)
    assert system == system.T.T
