"""GPyTorch's KeOps kernels, unedited, on lazykernels via ``install_as_pykeops()`` (issue 12).

``gpytorch.kernels.keops.RBFKernel`` and ``MaternKernel`` import ``pykeops`` themselves and
build their covariance as a KeOps ``LazyTensor`` when both sides have at least
``max_cholesky_size`` points. Each is compared with GPyTorch's dense kernel of the same name
(float64): kernel-matrix products, then one exact-GP marginal log-likelihood and its
gradients with respect to every hyperparameter (the same CG / Lanczos iterations, so the
same probe vectors, run on each side).
"""

from __future__ import annotations

import warnings

import pytest

import lazykernels

torch = pytest.importorskip("torch")
lazykernels.install_as_pykeops()  # before GPyTorch imports pykeops
gpytorch = pytest.importorskip("gpytorch")
from gpytorch.kernels.keops import keops_kernel  # noqa: E402

import lazykernels.torch as lkt  # noqa: E402

pytestmark = pytest.mark.cpu

N, DIM = 120, 2
KERNELS = [
    ("RBFKernel", {"ard_num_dims": DIM}),
    ("MaternKernel", {"nu": 1.5}),
    ("MaternKernel", {"nu": 2.5, "ard_num_dims": DIM}),
]
IDS = ["rbf-ard", "matern-1.5", "matern-2.5-ard"]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, DIM, generator=g, dtype=torch.float64)
    y = torch.sin(6 * x[:, 0]) + 0.1 * torch.randn(N, generator=g, dtype=torch.float64)
    return x, y


def _kernel(module, name, options):
    kernel = getattr(module, name)(**options).double()
    with torch.no_grad():  # lengthscales away from the default, one per dimension if ARD
        kernel.lengthscale = torch.linspace(0.2, 0.4, kernel.lengthscale.shape[-1])
    return kernel


def test_gpytorch_keops_kernels_import_our_lazytensor():
    assert keops_kernel.LazyTensor is lkt.LazyTensor


@pytest.mark.parametrize("name, options", KERNELS, ids=IDS)
def test_kernel_products_match_the_dense_kernel(name, options):
    x, _ = _data()
    v = torch.randn(N, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    results = []
    for module in (gpytorch.kernels.keops, gpytorch.kernels):
        kernel = _kernel(module, name, options)
        with gpytorch.settings.max_cholesky_size(10):
            product = kernel(x, x) @ v
            (grad,) = torch.autograd.grad((product**2).sum(), kernel.raw_lengthscale)
        results.append((product.detach(), grad))
    (ours, ours_grad), (dense, dense_grad) = results
    torch.testing.assert_close(ours, dense, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours_grad, dense_grad, rtol=1e-9, atol=1e-9)


def _mll_step(module, name, options):
    x, y = _data()

    class ExactGP(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(x, y, likelihood)
            self.mean = gpytorch.means.ConstantMean()
            self.covar = gpytorch.kernels.ScaleKernel(_kernel(module, name, options))

        def forward(self, t):
            return gpytorch.distributions.MultivariateNormal(self.mean(t), self.covar(t))

    likelihood = gpytorch.likelihoods.GaussianLikelihood()
    model = ExactGP(likelihood).double()
    model.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    torch.manual_seed(2)  # the same probe vectors on both sides
    with gpytorch.settings.max_cholesky_size(40), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CG's NumericalWarning: the same on both sides
        loss = -mll(model(x), y)
        loss.backward()
    return float(loss.detach()), {k: p.grad for k, p in model.named_parameters()}


@pytest.mark.parametrize("name, options", KERNELS, ids=IDS)
def test_marginal_log_likelihood_step_matches_the_dense_kernel(name, options):
    ours, ours_grads = _mll_step(gpytorch.kernels.keops, name, options)
    dense, dense_grads = _mll_step(gpytorch.kernels, name, options)
    assert ours == pytest.approx(dense, rel=1e-8)
    assert ours_grads.keys() == dense_grads.keys()
    for key, grad in ours_grads.items():
        torch.testing.assert_close(grad, dense_grads[key], rtol=1e-6, atol=1e-7, msg=key)
