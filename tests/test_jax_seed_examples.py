"""KeOps's seed talk examples in JAX (issue #13), against dense float64 ``jax.numpy``: the
LDDMM Hamiltonian with its gradient and a Hessian-vector product, the kNN argmin with four
metrics, RBF interpolation with ``.solve``. They run on the compiled CPU backend, jitted."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from lazykernels.jax import LazyTensor  # noqa: E402

pytestmark = pytest.mark.cpu


def _rel(got, want):
    return float(jnp.abs(got - want).max() / jnp.abs(want).max())


def hamiltonian(q, p, s, lazy):
    """H(q, p) = 1/2 <p, K_q p>, Gaussian kernel of width s."""
    if lazy:
        K = (-LazyTensor(q[:, None, :]).sqdist(LazyTensor(q[None, :, :])) / (2 * s * s)).exp()
        return 0.5 * (p * (K @ p)).sum()
    K = jnp.exp(-((q[:, None, :] - q[None, :, :]) ** 2).sum(-1) / (2 * s * s))
    return 0.5 * (p * (K @ p)).sum()


def test_lddmm_hamiltonian_gradient_and_hessian_vector_product():
    rng = np.random.default_rng(0)
    n, d, s = 300, 3, 0.5
    q, p, v = (jnp.asarray(a) for a in (rng.random((n, d)), rng.normal(size=(n, d)) / n,
                                         rng.normal(size=(n, d))))  # fmt: skip
    results = []
    for lazy in (True, False):
        H = lambda q, p, lazy=lazy: hamiltonian(q, p, s, lazy)
        grad = jax.jit(jax.grad(H, argnums=(0, 1)))
        # Hessian-vector product of H in q along v: forward over reverse
        hvp = jax.jit(lambda q, p, H=H: jax.jvp(lambda q: jax.grad(H)(q, p), (q,), (v,))[1])
        results.append((H(q, p), *grad(q, p), hvp(q, p)))
    for got, want in zip(*results):
        assert got.dtype == jnp.float64
        assert _rel(got, want) < 1e-12


def _metric(name, X, Y):
    if name == "euclidean":
        return ((X - Y) ** 2).sum(-1)
    if name == "manhattan":
        return (X - Y).abs().sum(-1) if isinstance(X, LazyTensor) else jnp.abs(X - Y).sum(-1)
    if name == "cosine":  # on normalized vectors
        return -(X | Y) if isinstance(X, LazyTensor) else -(X * Y).sum(-1)
    if name == "hyperbolic":  # upper half-space model: the first coordinate is positive
        if isinstance(X, LazyTensor):
            return ((X - Y) ** 2).sum(-1) / (X[0] * Y[0])
        return ((X - Y) ** 2).sum(-1) / (X[..., 0] * Y[..., 0])
    raise ValueError(name)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine", "hyperbolic"])
def test_nearest_neighbour_argmin(metric):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(1000, 3))
    if metric == "cosine":
        x, y = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, y))
    if metric == "hyperbolic":
        x[:, 0], y[:, 0] = np.abs(x[:, 0]) + 0.1, np.abs(y[:, 0]) + 0.1
    x, y = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def knn(x, y):
        return _metric(metric, LazyTensor(x[:, None, :]), LazyTensor(y[None, :, :])).argmin(1)

    ind = knn(x, y)
    assert ind.shape == (300, 1) and ind.dtype == jnp.int64
    dense = _metric(metric, x[:, None, :], y[None, :, :])
    np.testing.assert_array_equal(ind[:, 0], dense.argmin(1))


def test_rbf_interpolation_with_solve():
    rng = np.random.default_rng(3)
    n, sigma, alpha = 400, 0.3, 1e-2
    x = jnp.asarray(rng.random((n, 2)))
    b = jnp.sin(6 * x[:, :1]) * jnp.cos(4 * x[:, 1:])

    @jax.jit
    def fit(x, b):
        K = (-LazyTensor(x[:, None, :]).sqdist(LazyTensor(x[None, :, :])) / sigma**2).exp()
        return K.solve(LazyTensor(b[:, None, :]), alpha=alpha, eps=1e-12)

    a = fit(x, b)
    Kd = jnp.exp(-((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) / sigma**2)
    want = jnp.linalg.solve(Kd + alpha * jnp.eye(n), b)
    assert _rel(a, want) < 1e-8
