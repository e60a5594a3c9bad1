"""GeomLoss, unedited, on lazykernels through ``install_as_pykeops()`` (issue 12, item 4).

GeomLoss imports ``pykeops`` itself; its ``online`` and ``multiscale`` backends are KeOps
reductions (``LazyTensor``, ``generic_logsumexp``, the cluster utilities and block-sparse
ranges). Each is compared with GeomLoss's own dense backend, ``tensorized`` (float64):
values and gradients with respect to the points and the weights.
"""

from __future__ import annotations

import sys

import pytest

import lazykernels
from lazykernels.pykeops_hook import KeOpsModule

torch = pytest.importorskip("torch")
lazykernels.install_as_pykeops()  # before GeomLoss imports pykeops
geomloss = pytest.importorskip("geomloss")

pytestmark = pytest.mark.cpu


def _points(n: int, m: int, dim: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g, dtype=torch.float64)
    y = torch.rand(m, dim, generator=g, dtype=torch.float64) + 0.3
    a = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    b = torch.rand(m, generator=g, dtype=torch.float64) + 0.5
    return x, y, a / a.sum(), b / b.sum()


def _loss_and_grads(backend: str, name: str, x, y, a, b, **options):
    x = x.clone().requires_grad_(True)
    a = a.clone().requires_grad_(True)
    loss = geomloss.SamplesLoss(name, blur=0.05, backend=backend, **options)(a, x, b, y)
    gx, ga = torch.autograd.grad(loss.sum(), [x, a])  # one loss per batch entry
    return loss.detach(), gx, ga


def _assert_close_to_tensorized(backend, name, data, rtol, grad_rtol, **options):
    ours = _loss_and_grads(backend, name, *data, **options)
    dense_options = {k: v for k, v in options.items() if k in ("scaling", "reach", "debias")}
    dense = _loss_and_grads("tensorized", name, *data, **dense_options)
    torch.testing.assert_close(ours[0], dense[0], rtol=rtol, atol=0.0)
    for got, want in zip(ours[1:], dense[1:]):
        torch.testing.assert_close(got, want, rtol=0.0, atol=grad_rtol * float(want.abs().max()))
    assert isinstance(sys.modules["pykeops.torch"], KeOpsModule)  # GeomLoss ran on ours


@pytest.mark.parametrize(
    "name, options",
    [("sinkhorn", {}), ("sinkhorn", {"reach": 0.5, "debias": False}), ("gaussian", {})],
    ids=["sinkhorn", "unbalanced", "gaussian"],
)
def test_online_matches_tensorized(name, options):
    data = _points(120, 90, 3)
    _assert_close_to_tensorized("online", name, data, rtol=1e-7, grad_rtol=1e-6, **options)


def test_online_batched_matches_tensorized():
    x, y, a, b = _points(60, 50, 2, seed=1)
    batch = [t[None].repeat(2, *([1] * t.dim())) for t in (x, y, a, b)]
    batch[0][1] = batch[0][1].flip(0) * 0.8  # two different problems
    _assert_close_to_tensorized("online", "sinkhorn", batch, rtol=1e-7, grad_rtol=1e-6)


def test_multiscale_with_point_sized_clusters_matches_tensorized():
    """Clusters of one point: the same Sinkhorn iterates, so only the block-sparse
    truncation (blocks whose kernel is below exp(-25)) differs from the dense result."""
    _assert_close_to_tensorized(
        "multiscale",
        "sinkhorn",
        _points(300, 350, 2),
        rtol=1e-8,
        grad_rtol=1e-6,
        cluster_scale=1e-3,
    )


def test_multiscale_with_default_clusters_is_close_to_tensorized():
    """GeomLoss's default clustering anneals on cluster centroids first: an approximation of
    the dense Sinkhorn loss (measured: 1e-6 relative in value, 4e-3 in the gradients)."""
    _assert_close_to_tensorized(
        "multiscale", "sinkhorn", _points(300, 350, 2), rtol=1e-4, grad_rtol=2e-2
    )
