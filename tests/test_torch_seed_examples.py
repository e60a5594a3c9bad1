"""KeOps's PyTorch seed examples, run as a KeOps user writes them, against dense torch.

The lazy code of each example is KeOps code with only the import changed
(``from lazykernels.torch import LazyTensor``) and the default backend (``"auto"``: the
compiled CPU backend when a compiler is usable); the same computation with the (M, N) matrix
stored in dense torch is the oracle. The N = 1e5 Hamiltonian gradient (marked slow) runs in
a subprocess that measures its peak memory: it must stay linear in N.

SciPy's ``eigsh(aslinearoperator(K))`` on a NumPy LazyTensor is tested in
``test_lazytensor_reductions.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

import lazykernels.cpu  # noqa: E402
from lazykernels.torch import LazyTensor  # noqa: E402


def assert_close_rel(got, want, rtol):
    """``max |got - want| <= rtol * max |want|``: a scale-aware check for float32 sums."""
    want = want.to(got.dtype)
    err = (got - want).abs().max().item()
    scale = want.abs().max().item()
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} * {scale:.3g}"


# --- LDDMM: Hamiltonian, gradient and Hessian-vector product ---------------------------


def hamiltonian(q_, p_, s, lazy: bool, idiom: str = "sum"):
    """The geodesic shooting Hamiltonian H(q, p) = 1/2 <p, K_q p> with a Gaussian kernel."""
    if lazy:
        q = LazyTensor(q_[:, None, :])
        qj = LazyTensor(q_[None, :, :])
        if idiom == "sqdist":
            K = (-q.sqdist(qj) / (2 * s * s)).exp()
        else:
            K = (-((q - qj) ** 2).sum(-1) / (2 * s * s)).exp()
        return 0.5 * (p_ * (K @ p_)).sum()
    K = (-((q_[:, None, :] - q_[None, :, :]) ** 2).sum(-1) / (2 * s * s)).exp()
    return 0.5 * (p_ * (K @ p_)).sum()


@pytest.mark.parametrize("idiom", ["sum", "sqdist"])
def test_lddmm_hamiltonian_gradient_and_hessian_vector_product(idiom):
    g = torch.Generator().manual_seed(0)
    N, D, s = 1000, 3, 0.5
    q0 = torch.rand(N, D, generator=g)
    p0 = torch.randn(N, D, generator=g) / N
    v = torch.randn(N, D, generator=g)
    results = []
    for lazy, dtype in ((True, torch.float32), (False, torch.float64)):
        q_ = q0.to(dtype).requires_grad_()
        p_ = p0.to(dtype).requires_grad_()
        H = hamiltonian(q_, p_, s, lazy, idiom)
        [dq, dp] = torch.autograd.grad(H, [q_, p_], create_graph=True)
        [hq, hp] = torch.autograd.grad((dq * v.to(dtype)).sum(), [q_, p_])
        results.append((H.detach(), dq.detach(), dp.detach(), hq, hp))
    for got, want in zip(*results):
        assert got.dtype == torch.float32
        assert_close_rel(got, want, 2e-5)


_BIG = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    from lazykernels.torch import LazyTensor

    N, D, s = int(sys.argv[1]), 3, 0.5
    g = torch.Generator().manual_seed(0)
    q_ = torch.rand(N, D, generator=g).requires_grad_()
    p_ = torch.randn(N, D, generator=g).div_(N).requires_grad_()
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    q = LazyTensor(q_[:, None, :])
    qj = LazyTensor(q_[None, :, :])
    K = (-((q - qj) ** 2).sum(-1) / (2 * s * s)).exp()
    H = 0.5 * (p_ * (K @ p_)).sum()
    [dq, dp] = torch.autograd.grad(H, [q_, p_])

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = time.perf_counter() - start
    # dense float64 reference for a few rows k: dH/dp_k = sum_j K_kj p_j and
    # dH/dq_k = sum_j (p_k . p_j) K_kj (q_j - q_k) / s^2
    rows = torch.arange(0, N, N // 8)
    q64, p64 = q_.detach().double(), p_.detach().double()
    diff = q64[None, :, :] - q64[rows, None, :]
    Kr = torch.exp(-(diff**2).sum(-1) / (2 * s * s))
    dp_ref = Kr @ p64
    dq_ref = (((p64[rows] @ p64.T) * Kr)[..., None] * diff).sum(1) / s**2

    def rel(a, b):
        return ((a.double() - b).abs().max() / b.abs().max()).item()

    print(json.dumps({
        "growth_mb": (peak - before) / 1024, "seconds": seconds,
        "err_dq": rel(dq[rows], dq_ref), "err_dp": rel(dp[rows], dp_ref),
    }))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not lazykernels.cpu.available(), reason="needs the compiled CPU backend")
def test_lddmm_gradient_at_1e5_points_in_linear_memory():
    """N = 1e5: a dense float32 kernel matrix would need 40 GB; the lazy one needs ~MBs.

    About 50 s on 2 cores (warm kernel cache), hence ``slow``.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _BIG, "100000"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["growth_mb"] < 500, report
    assert report["err_dq"] < 1e-4 and report["err_dp"] < 1e-4, report


# --- exp(x_i + y_j) summed over j, and its gradient w.r.t. y ----------------------------


def test_exp_sum_and_gradient_with_test_vector():
    g = torch.Generator().manual_seed(1)
    M, N, D = 1000, 2000, 3
    x = torch.randn(M, D, generator=g) / 2
    y = torch.randn(N, D, generator=g).div_(2).requires_grad_()
    e = torch.randn(M, D, generator=g)

    X = LazyTensor(x[:, None, :])
    Y = LazyTensor(y[None, :, :])
    res = ((X + Y).exp()).sum(1)
    [grad_y] = torch.autograd.grad(res, y, e)

    y64 = y.detach().double().requires_grad_()
    dense = (x.double()[:, None, :] + y64[None, :, :]).exp().sum(1)
    [dense_grad] = torch.autograd.grad(dense, y64, e.double())
    assert res.shape == (M, D) and grad_y.shape == (N, D)
    assert_close_rel(res.detach(), dense.detach(), 1e-5)
    assert_close_rel(grad_y, dense_grad, 1e-5)


# --- nearest neighbours with several metrics --------------------------------------------


def _metric(name, X, Y):
    """The KeOps kNN tutorial's dissimilarities, written for LazyTensors or dense tensors."""
    if name == "euclidean":
        return ((X - Y) ** 2).sum(-1)
    if name == "manhattan":
        return (X - Y).abs().sum(-1)
    if name == "cosine":  # on normalized vectors
        return -(X | Y) if isinstance(X, LazyTensor) else -(X * Y).sum(-1)
    if name == "cosine_norms":
        if isinstance(X, LazyTensor):
            return 1 - (X | Y) / (X.norm2() * Y.norm2())
        return 1 - (X * Y).sum(-1) / (X.norm(dim=-1) * Y.norm(dim=-1))
    if name == "hyperbolic":  # upper half-space model: the first coordinate is positive
        if isinstance(X, LazyTensor):
            return ((X - Y) ** 2).sum(-1) / (X[0] * Y[0])
        return ((X - Y) ** 2).sum(-1) / (X[..., 0] * Y[..., 0])
    raise ValueError(name)


@pytest.mark.parametrize(
    "metric", ["euclidean", "manhattan", "cosine", "cosine_norms", "hyperbolic"]
)
def test_nearest_neighbour_argmin(metric):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 3, dtype=torch.float64, generator=g)
    y = torch.randn(1000, 3, dtype=torch.float64, generator=g)
    if metric == "cosine":
        x, y = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    if metric == "hyperbolic":
        x[:, 0], y[:, 0] = x[:, 0].abs() + 0.1, y[:, 0].abs() + 0.1

    X = LazyTensor(x[:, None, :])
    Y = LazyTensor(y[None, :, :])
    D_ij = _metric(metric, X, Y)
    ind = D_ij.argmin(dim=1)

    dense = _metric(metric, x[:, None, :], y[None, :, :])
    assert ind.shape == (300, 1) and ind.dtype == torch.int64
    torch.testing.assert_close(ind[:, 0], dense.argmin(dim=1))


# --- RBF interpolation with K.solve -----------------------------------------------------


def gaussian_kernel(x, y, sigma=0.1):
    x_i = LazyTensor(x[:, None, :])
    y_j = LazyTensor(y[None, :, :])
    D_ij = ((x_i - y_j) ** 2).sum(-1)
    return (-D_ij / (2 * sigma**2)).exp()


def dense_gaussian(x, y, sigma=0.1):
    return torch.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))


def _samples(N, dtype, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(N, 1, generator=g, dtype=dtype)
    noise = torch.randn(N, 1, generator=g, dtype=dtype)
    b = x + 0.5 * (6 * x).sin() + 0.1 * (20 * x).sin() + 0.05 * noise
    return x, b


def test_rbf_interpolation_exact_at_1e3():
    x, b = _samples(1000, torch.float64)
    alpha = 1.0
    K_xx = gaussian_kernel(x, x)
    a = K_xx.solve(b, alpha=alpha, eps=1e-10)
    t = torch.reshape(torch.linspace(0, 1, 201, dtype=torch.float64), [201, 1])
    K_tx = gaussian_kernel(t, x)
    mean_t = K_tx @ a

    a_ref = torch.linalg.solve(
        alpha * torch.eye(1000, dtype=torch.float64) + dense_gaussian(x, x), b
    )
    torch.testing.assert_close(a, a_ref, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(mean_t, dense_gaussian(t, x) @ a_ref, rtol=1e-7, atol=1e-8)


def test_rbf_interpolation_at_1e4_residual():
    """N = 1e4 in float32 (the dense float64 matrix would be 800 MB): check the residual."""
    N = 10_000
    x, b = _samples(N, torch.float32)
    alpha = 1.0
    K_xx = gaussian_kernel(x, x)
    a = K_xx.solve(b, alpha=alpha)
    t = torch.reshape(torch.linspace(0, 1, 1001), [1001, 1])
    K_tx = gaussian_kernel(t, x)
    mean_t = K_tx @ a

    # dense float64 residual, 1000 rows at a time
    x64, a64, b64 = x.double(), a.double(), b.double()
    residual = torch.cat(
        [
            dense_gaussian(x64[k : k + 1000], x64) @ a64
            + alpha * a64[k : k + 1000]
            - b64[k : k + 1000]
            for k in range(0, N, 1000)
        ]
    )
    # CG stops at |r|^2 < N eps^2 (eps = 1e-6): |r| < 1e-4, |b| ~ 55
    assert residual.norm() < 3e-4
    assert_close_rel(mean_t, dense_gaussian(t.double(), x64) @ a64, 1e-5)
