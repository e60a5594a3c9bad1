"""The log-sum-exp gradient normalised per weight component, checked for exactness.

LogSumExpWeight with a weight of any dimension up to ``NORMALISED_MAX_DIM``: the gradient
w.r.t. output-category inputs and parameters is normalised in the pass, component by
component (one SumSoftMaxWeight, cut into blocks by ``core.autodiff.normalise``); wider
weights and the reduced-category inputs keep the ``Exp(F - o)`` rule. Both are checked
against dense float64 torch and ``gradcheck`` / ``gradgradcheck``; the accuracy the
normalised rule buys in float32 is measured by tests/test_accuracy.py.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lazykernels.core.genred import build_plan  # noqa: E402
from lazykernels.reductions.derivatives import vjp_group_rule  # noqa: E402
from lazykernels.reductions.logsumexp import NORMALISED_MAX_DIM  # noqa: E402

pytestmark = pytest.mark.cpu


def _data(width, seed=5):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 6, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 7, 2, generator=gen, dtype=torch.float64)
    b = torch.rand(2, 7, width, generator=gen, dtype=torch.float64) + 0.5
    p = torch.tensor([0.7], dtype=torch.float64)
    return x, y, b, p


def _lazy(x, y, b, p):
    """The LazyTensors y_j, b_j and F = -p |x_i - y_j|^2."""
    from lazykernels.torch import LazyTensor

    x_i, y_j = LazyTensor(x[..., :, None, :]), LazyTensor(y[..., None, :, :])
    return y_j, LazyTensor(b[..., None, :, :]), -LazyTensor(p) * ((x_i - y_j) ** 2).sum(-1)


def _dense(x, y, b, p):
    """y_j, b_j and F densely, (..., M, N, 1)."""
    d = -p * ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1, keepdim=True)
    return y[..., None, :, :], b[..., None, :, :], d


def _lse(backend):
    def ours(*args):
        y_j, b_j, f = _lazy(*args)
        return f.logsumexp(dim=2, weight=b_j * b_j + y_j[..., :1].exp(), backend=backend)

    def dense(*args):
        y_j, b_j, f = _dense(*args)
        return (f + (b_j**2 + y_j[..., :1].exp()).log()).logsumexp(-2)

    return ours, dense


def _softmax(backend):
    def ours(*args):
        y_j, b_j, f = _lazy(*args)
        return f.sumsoftmaxweight(b_j * y_j[..., :1].sin(), dim=2, backend=backend)

    def dense(*args):
        y_j, b_j, f = _dense(*args)
        return (f.softmax(-2) * b_j * y_j[..., :1].sin()).sum(-2)

    return ours, dense


# the softmax's rules do not depend on the weight's width
_CASES = [(_lse, 2), (_lse, NORMALISED_MAX_DIM + 1), (_softmax, 2)]


@pytest.mark.parametrize("family, width", _CASES)
def test_derivatives_agree_with_float64_dense_torch(family, width):
    """Gradients w.r.t. x, y (reduced category), the weight's b and a parameter; Hessians
    w.r.t. x and y (a parameter's: tests/test_accuracy.py)."""
    from torch.func import grad, hessian

    ours, dense = family("CPU")
    args = _data(width)

    def loss(fn):
        return lambda *a: fn(*a).norm()

    got = grad(loss(ours), (0, 1, 2, 3))(*args)
    want = grad(loss(dense), (0, 1, 2, 3))(*args)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for argnums in (0, 1):
        got = hessian(loss(ours), argnums)(*args)
        want = hessian(loss(dense), argnums)(*args)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_gradcheck():
    ours, _ = _lse("CPU")
    x, y, b, p = _data(2, seed=2)
    x, y, p = (t.clone().requires_grad_() for t in (x, y, p))
    assert torch.autograd.gradcheck(ours, (x, y, b, p))
    assert torch.autograd.gradgradcheck(ours, (x, y, b, p))


def test_weighted_gradient_is_normalised_per_component_up_to_the_limit():
    aliases = ["x = Vi(2)", "y = Vj(2)"]
    for width in (1, 2, NORMALISED_MAX_DIM, NORMALISED_MAX_DIM + 1):
        plan = build_plan(
            "-SqDist(x,y)",
            [*aliases, f"b = Vj({width})"],
            "LogSumExpWeight",
            axis=1,
            formula2="b",
        )
        rule = vjp_group_rule(plan, (0,))
        if width <= NORMALISED_MAX_DIM:
            assert (rule.plan.reduction, rule.denominator) == ("SumSoftMaxWeight", width)
            assert rule.plan.weight.dim == width * (1 + 2)
        else:
            assert rule.plan.reduction == "Sum"  # the Exp(F - o) rule
        assert vjp_group_rule(plan, (1,)).plan.reduction == "Sum"  # reduced category
