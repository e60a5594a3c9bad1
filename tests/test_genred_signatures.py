"""Genred's positional inputs (issue 12, item 2): aliases and every inline ``Var`` as written.

KeOps counts the arguments of a Genred from its aliases and every ``Var(k, d, c)`` of the
formula text (max position + 1), not from what is left after simplification: a formula
whose inline variables simplify away still takes all its arguments, returns zeros, and
its gradients with respect to those arguments are zeros.
"""

from __future__ import annotations

import numpy as np
import pytest

import lazykernels.numpy as lkn
from lazykernels.errors import ArgumentError, FormulaError
from lazykernels.formula.parse import parse_formula_info
from lazykernels.reductions import parse_reduction

RNG = np.random.default_rng(2)

# (formula, aliases, number of inputs, dense value of the Sum over j of F given the inputs)
CASES = [
    ("Var(0,1,0) - Var(0,1,0)", [], 1, lambda a: np.zeros((a[0].shape[0], 1))),
    ("Var(0,2,0) * 0 + Var(1,2,1) * IntCst(0)", [], 2, lambda a: np.zeros((a[0].shape[0], 2))),
    ("Grad(Var(1,1,1), Var(0,1,0), Var(2,1,0))", [], 3, lambda a: np.zeros((a[0].shape[0], 1))),
    (
        "Grad(Var(1,1,1) * Var(2,1,2), Var(0,1,0), Var(3,1,0))",
        [],
        4,
        lambda a: np.zeros((a[0].shape[0], 1)),
    ),
    (
        "Exp(-SqDist(x, y)) * b + Var(3,1,1) * 0",
        ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"],
        4,
        lambda a: np.exp(-((a[0][:, None] - a[1][None]) ** 2).sum(-1)) @ a[2],
    ),
    (
        "x - x + Var(2,1,2) * 0",
        ["x = Vi(1)", "y = Vj(3)"],
        3,
        lambda a: np.zeros((a[0].shape[0], 1)),
    ),
]


def _inputs(plan, m=4, n=3):
    arrays = []
    for slot in plan.slots:
        shape = {0: (m, slot.dim), 1: (n, slot.dim), 2: (slot.dim,)}[slot.cat.value]
        arrays.append(RNG.standard_normal(shape))
    return arrays


@pytest.mark.parametrize("formula, aliases, nargs, dense", CASES, ids=[c[0] for c in CASES])
def test_numpy_genred_takes_every_written_variable(formula, aliases, nargs, dense):
    g = lkn.Genred(formula, aliases, axis=1)
    assert g.nargs == nargs
    args = _inputs(g.plan)
    np.testing.assert_allclose(g(*args, backend="reference"), dense(args), atol=1e-12)
    with pytest.raises(ArgumentError, match=f"expected {nargs} input arrays"):
        g(*args[:-1], backend="reference")


def test_parser_reports_written_variables():
    info = parse_formula_info("Var(0,1,0) - Var(0,1,0) + Grad(Var(1,1,1), Var(0,1,0), Var(2,1,0))")
    assert [str(a.node) for a in info.aliases] == ["Var(0,1,0)", "Var(1,1,1)", "Var(2,1,0)"]
    r = parse_reduction("LogSumExp_Reduction(Var(0,1,0) * 0, 0, Var(1,1,1) * 0)")
    assert [str(a.node) for a in r.aliases] == ["Var(0,1,0)", "Var(1,1,1)"]


def test_gaps_are_still_refused():
    with pytest.raises(FormulaError, match="position 1"):
        lkn.Genred("Var(0,1,0) + Var(2,1,1) * 0", [], axis=1)


torch = pytest.importorskip("torch")
import lazykernels.torch as lkt  # noqa: E402


@pytest.mark.parametrize("formula, aliases, nargs, dense", CASES, ids=[c[0] for c in CASES])
def test_torch_genred_values_and_zero_gradients(formula, aliases, nargs, dense):
    g = lkt.Genred(formula, aliases, axis=1)
    assert g.nargs == nargs
    arrays = _inputs(g.plan)
    args = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = g(*args, backend="reference")
    torch.testing.assert_close(out, torch.tensor(dense(arrays)), atol=1e-12, rtol=1e-10)
    weights = torch.tensor(RNG.standard_normal(out.shape))
    grads = torch.autograd.grad((out * weights).sum(), args, allow_unused=True)
    used = {v.params[0] for v in g.plan.formula.variables()}
    for slot, arg, grad in zip(g.plan.slots, args, grads):
        assert grad is not None and grad.shape == arg.shape
        if slot.position not in used:
            assert torch.count_nonzero(grad) == 0, slot.describe()


def test_torch_gradient_of_the_used_inputs_matches_dense():
    g = lkt.Genred(CASES[4][0], CASES[4][1], axis=1)
    x, y, b, e = (torch.tensor(a, requires_grad=True) for a in _inputs(g.plan))
    out = g(x, y, b, e, backend="reference")
    dense = torch.exp(-((x[:, None] - y[None]) ** 2).sum(-1)) @ b
    gx, gy, gb, ge = torch.autograd.grad(out.sum(), (x, y, b, e))
    dx, dy, db = torch.autograd.grad(dense.sum(), (x, y, b))
    for got, want in ((gx, dx), (gy, dy), (gb, db)):
        torch.testing.assert_close(got, want)
    assert torch.count_nonzero(ge) == 0


@pytest.mark.cpu
def test_compiled_backend_zero_formula_with_unused_inputs():
    g = lkt.Genred("Grad(Var(1,1,1), Var(0,1,0), Var(2,1,0))", [], axis=1)
    x = torch.rand(5, 1, requires_grad=True)
    out = g(x, torch.rand(3, 1), torch.rand(5, 1), backend="CPU")
    assert out.shape == (5, 1) and torch.count_nonzero(out) == 0
    (gx,) = torch.autograd.grad(out.sum(), x)
    assert torch.count_nonzero(gx) == 0
