"""Fitting a Gaussian mixture model by EM with ``logsumexp`` reductions.

A mixture of K Gaussians with weights ``pi_j``, means ``mu_j`` and covariances
``Sigma_j`` gives the point ``x_i`` the log-density ``log sum_j exp(L_ij)``, with

    L_ij = log pi_j - 1/2 log det(2 pi Sigma_j) - 1/2 (x_i - mu_j)^T Sigma_j^-1 (x_i - mu_j).

``L`` is a symbolic N x K LazyTensor (``WeightedSqDist`` with the flattened precision
matrices as j-variables), and each EM iteration is two lazykernels reductions:

- E-step: ``lse_i = L.logsumexp(axis=1)`` (the log-likelihood is ``sum_i lse_i``), the
  responsibilities being ``r_ij = exp(L_ij - lse_i)``;
- M-step: one Sum over i of ``r_ij * [1, x_i, x_i x_i^T]`` gives, for every component,
  its mass, first and second moments: the new ``pi``, ``mu`` and ``Sigma``.

Nothing of size N x K is stored. EM never decreases the log-likelihood: the script prints
it per iteration, runs the same EM densely (NumPy + ``scipy.special.logsumexp``) and
compares both. Writes ``gaussian_mixture.png`` (data, fitted 2-sigma ellipses, and the
log-likelihood per iteration).

Run: ``python examples/gaussian_mixture.py [--n 10000] [--components 6] [--out-dir .]``
(KeOps tutorial ``gaussian_mixture/plot_gaussian_mixture.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from _common import dense_fits, make_parser, new_figure, parse, print_timings, save_figure, timed
from scipy.special import logsumexp

from lazykernels.numpy import Vi, Vj

Params = tuple[np.ndarray, np.ndarray, np.ndarray]  # weights (K,), means (K, D), covs (K, D, D)
REG = 1e-6  # added to the covariances' diagonal: keeps a collapsing component invertible


def log_constants(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Per component: ``log pi - 1/2 log det(2 pi Sigma)`` (K, 1) and precisions (K, D*D)."""
    weights, means, covs = params
    d = means.shape[1]
    _, logdet = np.linalg.slogdet(covs)
    const = np.log(weights) - 0.5 * (logdet + d * np.log(2 * np.pi))
    return const[:, None], np.linalg.inv(covs).reshape(len(covs), d * d)


def features(x: np.ndarray) -> np.ndarray:
    """``[1, x_i, vec(x_i x_i^T)]`` per point: the statistics the M-step sums up."""
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)
    return np.concatenate([np.ones((len(x), 1)), x, outer], axis=1)


def m_step(stats: np.ndarray, d: int) -> Params:
    """Weights, means and covariances from the summed statistics (K, 1 + D + D^2)."""
    mass = stats[:, :1]
    means = stats[:, 1 : 1 + d] / mass
    second = stats[:, 1 + d :].reshape(-1, d, d) / mass[:, :, None]
    covs = second - means[:, :, None] * means[:, None, :] + REG * np.eye(d)
    return mass[:, 0] / mass.sum(), means, covs


def em_step_lazy(x: np.ndarray, phi: np.ndarray, params: Params) -> tuple[Params, float]:
    """One EM iteration with two lazykernels reductions; returns new params, log-lik."""
    const, prec = log_constants(params)
    xi, mu_j = Vi(x), Vj(params[1])
    L = Vj(const) - 0.5 * xi.weightedsqdist(mu_j, Vj(prec))  # symbolic (N, K)
    lse = L.logsumexp(axis=1)  # E-step: (N, 1)
    stats = ((L - Vi(lse)).exp() * Vi(phi)).sum(axis=0)  # M-step statistics: (K, 1+D+D^2)
    return m_step(stats, x.shape[1]), float(lse.sum())


def em_step_dense(x: np.ndarray, phi: np.ndarray, params: Params) -> tuple[Params, float]:
    """The same iteration with the stored (N, K) matrix."""
    const, prec = log_constants(params)
    diff = x[:, None, :] - params[1][None, :, :]  # (N, K, D)
    prec = prec.reshape(-1, x.shape[1], x.shape[1])
    L = const[:, 0] - 0.5 * np.einsum("nkd,kde,nke->nk", diff, prec, diff)
    lse = logsumexp(L, axis=1, keepdims=True)
    stats = np.exp(L - lse).T @ phi
    return m_step(stats, x.shape[1]), float(lse.sum())


def fit(x: np.ndarray, params: Params, iters: int, step: Any) -> tuple[Params, list[float]]:
    """``iters`` EM iterations; the log-likelihood before each one."""
    phi = features(x)
    history = []
    for _ in range(iters):
        params, loglik = step(x, phi, params)
        history.append(loglik)
    return params, history


def sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points from a random anisotropic mixture of ``k`` Gaussians in the plane."""
    centres = 4 * rng.standard_normal((k, 2))
    scales = rng.uniform(0.2, 1.0, size=(k, 2))
    angles = rng.uniform(0, np.pi, size=k)
    which = rng.integers(0, k, size=n)
    z = rng.standard_normal((n, 2)) * scales[which]
    c, s = np.cos(angles[which]), np.sin(angles[which])
    return centres[which] + np.stack([c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]], 1)


def plot(x: np.ndarray, params: Params, history: list[float], out_dir: Any) -> Any:
    """Data and 2-sigma ellipses of the fitted components; log-likelihood per iteration."""
    fig, axes = new_figure(ncols=2, size=5)
    step = max(1, len(x) // 10000)
    axes[0].scatter(x[::step, 0], x[::step, 1], s=1, c="0.6")
    t = np.linspace(0, 2 * np.pi, 100)
    circle = np.stack([np.cos(t), np.sin(t)])
    for w, mu, cov in zip(*params):
        vals, vecs = np.linalg.eigh(cov)
        ellipse = mu[:, None] + 2 * vecs @ (np.sqrt(vals)[:, None] * circle)
        axes[0].plot(ellipse[0], ellipse[1], lw=1 + 10 * w)
        axes[0].plot(*mu, "k+")
    axes[0].set_title(f"GMM fitted by EM (N = {len(x)}, K = {len(params[0])})")
    axes[0].set_aspect("equal")
    axes[1].plot(np.arange(1, len(history) + 1), np.array(history) / len(x), "o-", ms=3)
    axes[1].set_xlabel("EM iteration")
    axes[1].set_ylabel("mean log-likelihood")
    axes[1].set_title("log-likelihood (lazykernels logsumexp)")
    return save_figure(fig, out_dir, "gaussian_mixture.png")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the tutorial; return the log-likelihood per iteration, lazy and dense."""
    parser = make_parser(__doc__.splitlines()[0], n_default=10000)
    parser.add_argument("--components", type=int, default=6, help="mixture components K")
    parser.add_argument("--iters", type=int, default=30, help="EM iterations")
    args = parse(parser, argv)
    rng = np.random.default_rng(args.seed)
    x = sample(args.n, args.components, rng)
    k = args.components
    init: Params = (
        np.full(k, 1.0 / k),
        x[rng.choice(len(x), k, replace=False)],
        np.tile(np.cov(x.T) / k, (k, 1, 1)),
    )

    em_step_lazy(x, features(x), init)  # warm-up: compiles (or loads) the kernels
    (params, history), t_lazy = timed(fit, x, init, args.iters, em_step_lazy)
    for it, loglik in enumerate(history):
        print(f"EM iteration {it:3d}: log-likelihood {loglik:.6f}")
    result: dict[str, Any] = {"x": x, "loglik": history, "params": params, "dense_loglik": None}

    t_dense = None
    if dense_fits(args.n, k * x.shape[1]):
        (_, dense_history), t_dense = timed(fit, x, init, args.iters, em_step_dense)
        result["dense_loglik"] = dense_history
        gap = np.max(np.abs(np.array(history) - dense_history) / np.abs(dense_history))
        print(f"largest relative gap with the dense EM's log-likelihood: {gap:.2e}")
    print_timings(
        f"EM times, N = {args.n}, K = {k} (float64, lazykernels warm):",
        ["lazykernels logsumexp", "NumPy/SciPy dense"],
        [(f"{args.iters} iterations", [t_lazy, t_dense])],
    )
    plot(x, params, history, args.out_dir)
    return result


if __name__ == "__main__":
    main()
