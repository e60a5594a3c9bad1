"""Derivatives of torch reductions: against dense torch autograd, gradcheck, torch.func.

The derived reductions come from :mod:`lazykernels.reductions.derivatives`; each check
compares with the same computation written densely in torch (the (M, N) matrix stored), whose
autograd is the oracle, or with finite differences (``gradcheck`` / ``gradgradcheck``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch.func import grad, hessian, jacfwd, jacrev, jvp, vjp, vmap  # noqa: E402

from lazykernels.core.genred import build_plan  # noqa: E402
from lazykernels.formula.ir import Cat  # noqa: E402
from lazykernels.reductions.derivatives import (  # noqa: E402
    Extra,
    jvp_rule,
    selection_plan,
    vjp_group_rule,
    vjp_groups,
    vjp_rule,
)
from lazykernels.torch import Genred  # noqa: E402

from .test_torch_genred import ALIASES, F_LSE, REF, dense, genred, inputs  # noqa: E402

SMOOTH = ["Sum", "LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight"]
SELECT = ["Min", "Max", "KMin", "KMin1", "Min_ArgMin", "Max_ArgMax", "KMin_ArgKMin"]


def values_of(reduction, result):
    """The differentiable values of a reduction's result (dense or Genred)."""
    if reduction in SMOOTH:
        return result
    if isinstance(result, tuple):
        return result[0]
    return result


def ours(reduction, axis):
    g = genred(reduction, axis)
    return lambda *a: values_of(reduction, g(*a, backend=REF))


def theirs(reduction, axis):
    return lambda *a: values_of(reduction, dense(reduction, axis, *a))


def tracked(seed=0, m=4, n=5):
    return [t.requires_grad_() for t in inputs(m=m, n=n, seed=seed)]


# --- the rules themselves -------------------------------------------------------------------


def test_vjp_rules_reduce_over_the_right_axis():
    plan = build_plan("Exp(-p * SqDist(x, y)) * b", ALIASES, axis=1)
    for position, cat, rows in ((0, Cat.I, False), (1, Cat.J, False), (3, Cat.I, True)):
        rule = vjp_rule(plan, position)
        assert rule.plan.reduction == "Sum" and rule.plan.output_cat is cat
        assert rule.sum_rows is rows and [f.kind for f in rule.feeds] == [Extra.GRADIENT]
        gslot = rule.plan.slots[-1]
        assert (gslot.position, gslot.dim, gslot.cat) == (4, 1, Cat.I)


def test_log_sum_exp_rules_feed_the_saved_output():
    plan = build_plan("-SqDist(x, y)", ALIASES, "SumSoftMaxWeight", axis=0, formula2="b * y")
    rule_j = vjp_rule(plan, 1)  # output category: one SumSoftMaxWeight reduction
    assert rule_j.plan.reduction == "SumSoftMaxWeight" and rule_j.auxiliary is None
    assert [f.kind for f in rule_j.feeds] == [Extra.GRADIENT, Extra.OUTPUT]
    rule_i = vjp_rule(plan, 0)  # reduced category: a log-sum-exp first, then a Sum
    assert rule_i.plan.reduction == "Sum" and rule_i.plan.output_cat is Cat.I
    assert rule_i.auxiliary.reduction == "LogSumExp" and rule_i.auxiliary.output_cat is Cat.J
    assert [f.kind for f in rule_i.feeds] == [Extra.GRADIENT, Extra.OUTPUT, Extra.AUXILIARY]
    assert vjp_rule(plan, 3).zero  # p does not appear: no reduction needed
    fwd = jvp_rule(plan, (0, 2))
    assert [f.kind for f in fwd.feeds] == [Extra.TANGENT, Extra.TANGENT, Extra.OUTPUT]
    assert [f.position for f in fwd.feeds[:2]] == [0, 2]


def test_gradients_of_one_category_come_from_one_reduction():
    aliases = ["q = Vi(2)", "p = Vi(2)", "r = Vj(2)", "s = Vj(2)", "a = Pm(1)", "c = Vi(1)"]
    plan = build_plan("Exp(-a * SqDist(q, r)) * (p | s)", aliases, axis=1)
    assert vjp_groups(plan, [0, 1, 2, 3, 4, 5]) == [(0, 1, 5), (2, 3), (4,)]
    rule = vjp_group_rule(plan, (0, 1, 5))  # c does not appear: left out of the output
    assert rule.parts == (0, 1) and rule.plan.formula.dim == 4 and not rule.sum_rows
    assert rule.plan.output_cat is Cat.I and [f.kind for f in rule.feeds] == [Extra.GRADIENT]
    assert vjp_group_rule(plan, (2, 3)).plan.output_cat is Cat.J
    assert vjp_group_rule(plan, (4,)).sum_rows and vjp_group_rule(plan, (5,)).zero
    with pytest.raises(Exception, match="not one group"):
        vjp_group_rule(plan, (0, 2))


@pytest.mark.parametrize("backend", [REF, pytest.param("CPU", marks=pytest.mark.cpu)])
def test_grouped_gradients_match_dense_torch_to_second_order(backend):
    torch.manual_seed(3)
    aliases = ["q = Vi(2)", "p = Vi(2)", "r = Vj(2)", "s = Vj(2)", "a = Pm(1)", "c = Vi(1)"]
    g = Genred("Exp(-a * SqDist(q, r)) * (p | s)", aliases, axis=1)
    q, p, c = (torch.randn(5, d, dtype=torch.float64, requires_grad=True) for d in (2, 2, 1))
    r, s = (torch.randn(4, 2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    a = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)

    def dense_h(q, p, r, s, a, c):
        k = torch.exp(-a * ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
        return (k * (p @ s.T)).sum(1, keepdim=True)

    args = (q, p, r, s, a, c)
    ours_h, dense_out = g(*args, backend=backend), dense_h(*args)
    torch.testing.assert_close(ours_h, dense_out)
    first = torch.autograd.grad(ours_h.sum(), args, create_graph=True, allow_unused=True)
    want = torch.autograd.grad(dense_out.sum(), args[:5], create_graph=True)
    for got, ref in zip(first, want):
        torch.testing.assert_close(got, ref)
    assert torch.equal(first[5], torch.zeros_like(c))  # c is not in the formula
    second = torch.autograd.grad((first[0] ** 2).sum() + first[3].sum(), (q, s, a))
    second_ref = torch.autograd.grad((want[0] ** 2).sum() + want[3].sum(), (q, s, a))
    for got, ref in zip(second, second_ref):
        torch.testing.assert_close(got, ref)
    assert torch.autograd.gradcheck(lambda *t: g(*t, c.detach(), backend=backend), args[:5])


def test_selection_plan_and_unsupported_rules():
    plan = build_plan("SqDist(x, y) * p + b", ALIASES, "KMin", axis=1, opt_arg=2)
    sel = selection_plan(plan)
    assert [s.cat for s in sel.slots] == [Cat.I, Cat.I, Cat.I, Cat.PARAM]
    assert sel.reduction == "Sum" and sel.output_cat is Cat.I
    assert all(v.params[2] is not Cat.J for v in sel.formula.variables())
    with pytest.raises(NotImplementedError, match="selection_plan"):
        vjp_rule(plan, 0)


# --- against dense torch autograd -----------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("reduction", SMOOTH + SELECT)
def test_first_and_second_derivatives_match_dense_torch(reduction, axis):
    args = tracked()
    out, ref = ours(reduction, axis)(*args), theirs(reduction, axis)(*args)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    gen = torch.Generator().manual_seed(1)
    e = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    g1 = torch.autograd.grad(out, args, e, create_graph=True)
    r1 = torch.autograd.grad(ref, args, e, create_graph=True)
    for a, b in zip(g1, r1):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    # second order: the gradient of <grad, w> with respect to every input
    w = [torch.randn(a.shape, generator=gen, dtype=a.dtype) for a in args]
    s1 = sum((a * v).sum() for a, v in zip(g1, w))
    s2 = sum((b * v).sum() for b, v in zip(r1, w))
    g2 = torch.autograd.grad(s1, args, allow_unused=True)
    r2 = torch.autograd.grad(s2, args, allow_unused=True)
    for a, b, t in zip(g2, r2, args):
        a = torch.zeros_like(t) if a is None else a
        b = torch.zeros_like(t) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_third_order_derivative_of_a_sum():
    args = tracked(seed=2)
    derivatives = []
    for f in (ours("Sum", 1), theirs("Sum", 1)):
        (gx,) = torch.autograd.grad(f(*args).sum(), args[1], create_graph=True)
        (gxx,) = torch.autograd.grad((gx**2).sum(), args[0], create_graph=True)
        (gxxx,) = torch.autograd.grad(gxx.sin().sum(), args[3])
        derivatives.append(gxxx)
    torch.testing.assert_close(*derivatives, rtol=1e-9, atol=1e-11)


# --- finite differences ----------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize(
    "reduction", ["Sum", "LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight"] + SELECT[:5]
)
def test_gradcheck_and_gradgradcheck(reduction, axis):
    args = tracked(seed=3, m=4, n=5)
    f = ours(reduction, axis)
    assert torch.autograd.gradcheck(f, args, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, args, fast_mode=True)


def batch_inputs(seed=4):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, 3, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(1, 2, 4, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(2, 2, 4, 1, generator=gen, dtype=torch.float64)
    p = torch.rand(1, 2, 1, generator=gen, dtype=torch.float64) + 0.5
    return [t.requires_grad_() for t in (x, y, b, p)]


@pytest.mark.parametrize("reduction", ["Sum", "LogSumExp"])
@pytest.mark.parametrize("axis", [0, 1])
def test_batch_dimensions_gradients_sum_back_to_broadcast_shapes(reduction, axis):
    args = batch_inputs()
    f = ours(reduction, axis)
    out = f(*args)
    assert out.shape == (2, 2, 3 if axis == 1 else 4, 2 if reduction == "Sum" else 1)
    grads = torch.autograd.grad(out.sum(), args)
    assert [g.shape for g in grads] == [a.shape for a in args]
    assert torch.autograd.gradcheck(f, args, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, args, fast_mode=True)


def test_gradients_with_ranges_match_masked_dense_sum():
    args = tracked(seed=5, m=4, n=6)
    blocks = torch.tensor([[0, 2], [2, 4]]), torch.tensor([[0, 3], [3, 6]])
    slices = torch.tensor([1, 2])
    ranges = (blocks[0], slices, blocks[1], blocks[1], slices, blocks[0])
    mask = torch.zeros(4, 6, 1, dtype=torch.float64)
    mask[:2, :3] = mask[2:, 3:] = 1.0
    g = genred("Sum", 1)
    out = g(*args, backend=REF, ranges=ranges)
    x, y, b, p = args
    d2 = ((x[:, None] - y[None]) ** 2).sum(-1, keepdim=True)
    ref = (torch.exp(-p * d2) * b[None] * x[:, None] * mask).sum(1)
    torch.testing.assert_close(out, ref)
    e = torch.randn_like(out)
    for a, r in zip(torch.autograd.grad(out, args, e), torch.autograd.grad(ref, args, e)):
        torch.testing.assert_close(a, r)


def test_min_gradient_flows_through_the_selected_entries_only():
    x = torch.tensor([[0.0], [10.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0], [4.0], [9.5]], dtype=torch.float64, requires_grad=True)
    g = Genred("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], "Min", axis=1)
    out = g(x, y, backend=REF)
    torch.testing.assert_close(out, torch.tensor([[1.0], [0.25]], dtype=torch.float64))
    gx, gy = torch.autograd.grad(out.sum(), (x, y))
    # d/dx (x - y*)^2 = 2 (x - y*), y* = 1 for x = 0 and 9.5 for x = 10
    torch.testing.assert_close(gx, torch.tensor([[-2.0], [1.0]], dtype=torch.float64))
    torch.testing.assert_close(gy, torch.tensor([[2.0], [0.0], [-1.0]], dtype=torch.float64))


def test_kmin_with_batch_dimensions_matches_dense_sort():
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(2, 1, 4, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    g = Genred("SqDist(x, y) * x", ["x = Vi(2)", "y = Vj(2)"], "KMin", axis=1, opt_arg=2)
    out = g(x, y, backend=REF)
    kmat = ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1, keepdim=True)
    ref = torch.sort(kmat * x[..., :, None, :], -2).values[..., :2, :]
    torch.testing.assert_close(out, ref)
    e = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    for a, r in zip(torch.autograd.grad(out, (x, y), e), torch.autograd.grad(ref, (x, y), e)):
        torch.testing.assert_close(a, r)
    assert torch.autograd.gradgradcheck(lambda x, y: g(x, y, backend=REF), (x, y), fast_mode=True)


def test_min_rows_without_candidates_get_no_gradient():
    x = torch.tensor([[0.0], [1.5], [2.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.5], [3.0]], dtype=torch.float64, requires_grad=True)
    rows, slices, red = torch.tensor([[0, 2]]), torch.tensor([1]), torch.tensor([[0, 2]])
    g = Genred("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], "Min", axis=1)
    out = g(x, y, backend=REF, ranges=(rows, slices, red, red, slices, rows))
    assert out[2, 0] == float("inf")  # row 2 is in no range
    gx, gy = torch.autograd.grad(out[:2].sum(), (x, y))
    torch.testing.assert_close(gx, torch.tensor([[-1.0], [2.0], [0.0]], dtype=torch.float64))
    torch.testing.assert_close(gy, torch.tensor([[-1.0], [0.0]], dtype=torch.float64))


@pytest.mark.parametrize("weight", [None, "Exp(b * x)"])
def test_raw_shift_exp_pseudo_derivatives_are_exact_through_m_plus_log_s(weight):
    # KeOps's rule: m held constant, only valid once [m, s] is flattened to m + log s
    x, y, b, p = tracked(seed=5)
    name = "Max_SumShiftExp" if weight is None else "Max_SumShiftExpWeight"
    g = Genred(F_LSE, ALIASES, name, axis=1, formula2=weight)

    def flattened(x, y, b, p):
        state = g(x, y, b, p, backend=REF)
        return state[:, :1] + state[:, 1:].log()

    want = theirs("LogSumExp" if weight is None else "LogSumExpWeight", 1)
    args = (x, y, b, p)
    e = torch.randn(want(*args).shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    got = torch.autograd.grad(flattened(*args), args, e)
    ref = torch.autograd.grad(want(*args), args, e)
    for a, r in zip(got, ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)
    tangents = tuple(torch.randn_like(t) for t in args)
    detached = tuple(t.detach() for t in args)
    torch.testing.assert_close(
        jvp(flattened, detached, tangents)[1], jvp(want, detached, tangents)[1]
    )
    assert torch.autograd.gradgradcheck(flattened, args, fast_mode=True)
    # the pseudo part: m alone gets no gradient (KeOps drops it)
    (of_m,) = torch.autograd.grad(g(*args, backend=REF)[:, 0].sum(), x)
    assert torch.equal(of_m, torch.zeros_like(x))
    raw_rule = vjp_rule(build_plan(F_LSE, ALIASES, name, axis=1, formula2=weight), 1)
    assert [f.kind for f in raw_rule.feeds] == [Extra.GRADIENT, Extra.OUTPUT]


def test_weighted_log_sum_exp_gradient_wrt_reduced_points_reads_the_raw_state():
    plan = build_plan(F_LSE, ALIASES, "LogSumExpWeight", axis=1, formula2="Exp(b * x)")
    rule = vjp_rule(plan, 1)
    assert rule.auxiliary.reduction == "Max_SumShiftExpWeight"
    assert rule.auxiliary.weight == plan.weight and rule.auxiliary.output_cat is Cat.I
    assert [f.kind for f in rule.feeds] == [Extra.GRADIENT, Extra.AUXILIARY]


def test_float32_gradients():
    args = [t.float().requires_grad_() for t in inputs(seed=6)]
    out = ours("LogSumExp", 0)(*args)
    ref = theirs("LogSumExp", 0)(*args)
    for a, r in zip(torch.autograd.grad(out.sum(), args), torch.autograd.grad(ref.sum(), args)):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a, r, rtol=1e-4, atol=1e-5)


# --- torch.func -------------------------------------------------------------------------------

TRANSFORMS = {
    "grad": lambda f, x, y, b, p: grad(lambda x: f(x, y, b, p).sum())(x),
    "vjp": lambda f, x, y, b, p: vjp(lambda y: f(x, y, b, p), y)[1](torch.ones_like(f(x, y, b, p))),
    "jacrev": lambda f, x, y, b, p: jacrev(f, argnums=(1, 3))(x, y, b, p),
    "jvp": lambda f, x, y, b, p: jvp(lambda y, p: f(x, y, b, p), (y, p), (y.cos(), p + 1)),
    "jacfwd": lambda f, x, y, b, p: jacfwd(f, argnums=0)(x, y, b, p),
    "hessian": lambda f, x, y, b, p: hessian(lambda x: f(x, y, b, p).sum())(x),
    "vmap": lambda f, x, y, b, p: vmap(f, in_dims=(None, 0, None, None))(
        x, torch.stack([y, y.sin()]), b, p
    ),
    "vmap_grad": lambda f, x, y, b, p: vmap(
        grad(lambda x, p: f(x, y, b, p).sum()), in_dims=(0, None)
    )(torch.stack([x, 2 * x]), p),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("reduction", ["Sum", "LogSumExpWeight", "SumSoftMaxWeight", "KMin"])
def test_torch_func_transforms_match_dense(reduction, name):
    args = inputs(seed=7, m=3, n=4)
    axis = 0 if reduction == "SumSoftMaxWeight" else 1
    result = TRANSFORMS[name](ours(reduction, axis), *args)
    expected = TRANSFORMS[name](theirs(reduction, axis), *args)
    leaves_r = torch.utils._pytree.tree_leaves(result)
    leaves_e = torch.utils._pytree.tree_leaves(expected)
    assert len(leaves_r) == len(leaves_e) > 0
    for r, e in zip(leaves_r, leaves_e):
        torch.testing.assert_close(r, e, rtol=1e-9, atol=1e-11)
