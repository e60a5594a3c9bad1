"""The dot-product path (codegen/dotprod_cpp.py) and its call-time bound (cpu/gemm.py).

Compiled results with ``gemm=True`` against dense float64 NumPy, for every reduction the
path fuses on its tiles; the matcher on what it must and must not take; the bound at its
edges (points far from the origin, tiny bandwidths, float16/32/64) and the bound itself
checked against the error actually made. Sizes stay small (the benchmarks run big N).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.codegen.dotprod_cpp import match_dotprod
from lazykernels.core.bind import bind_call
from lazykernels.core.genred import build_plan
from lazykernels.errors import ArgumentError
from lazykernels.numpy import Genred

needs_cc = pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler")


def _aliases(d: int, extra: tuple[str, ...] = ("b = Vj(1)", "g = Pm(1)")) -> list[str]:
    return [f"x = Vi({d})", f"y = Vj({d})", *extra]


def _sq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x.astype(np.float64), y.astype(np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def _data(rng, m, n, d, dtype=np.float32, offset=0.0, scale=1.0):
    x = (rng.standard_normal((m, d)) * scale + offset).astype(dtype)
    y = (rng.standard_normal((n, d)) * scale + offset).astype(dtype)
    b = rng.standard_normal((n, 1)).astype(dtype)
    return x, y, b


# --- the matcher (no compiler) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "kinds"),
    [
        ("Exp(-g * SqDist(x, y)) * b", ["sqdist"]),
        ("Exp(-WeightedSqDist(w, x, y)) * b", ["sqdist"]),
        ("(x | y) * b", ["dot"]),
        ("Sum(x * y) + g", ["dot"]),
        ("Exp(-SqDist(x, y)) + (x | y)", None),  # x in a distance and a dot product: fine
        ("Exp(-SqDist(x, y)) * Sum(x)", None),  # x read outside an atom
        ("Exp(-SqDist(x, y)) * (x - y)", None),
    ],
)
def test_match(formula, kinds):
    aliases = _aliases(32, ("b = Vj(1)", "g = Pm(1)", "w = Pm(32)"))
    m = match_dotprod(build_plan(formula, aliases, axis=1), 16)
    if formula.startswith("Exp(-SqDist(x, y)) + "):
        assert m is not None and sorted(a.kind for a in m.atoms) == ["dot", "sqdist"]
        return
    assert (None if m is None else [a.kind for a in m.atoms]) == kinds


def test_match_needs_high_dim_and_valid_option():
    assert match_dotprod(build_plan("Exp(-SqDist(x,y))", _aliases(8), axis=1), 16) is None
    with pytest.raises(ArgumentError, match="gemm must be"):
        build_plan("Exp(-SqDist(x,y))", _aliases(32), axis=1, gemm="yes")


# --- compiled results -----------------------------------------------------------------------

CASES = [  # (reduction, formula, weight formula, dense reference from (sq, dot, b, g))
    ("Sum", "Exp(-g * SqDist(x, y)) * b", None, lambda s, p, b, g: np.exp(-g * s) @ b),
    (
        "Sum",
        "Exp(-g * SqDist(y, x) + (x | y) * g) * b",
        None,
        lambda s, p, b, g: np.exp(-g * s + g * p) @ b,
    ),
    ("LogSumExp", "b - g * SqDist(x, y)", None, lambda s, p, b, g: _lse(b.T - g * s)),
    ("SumSoftMaxWeight", "-g * SqDist(x, y)", "b", lambda s, p, b, g: _softmax(-g * s) @ b),
    ("ArgMin", "-(x | y)", None, lambda s, p, b, g: np.argmin(-p, axis=1)[:, None]),
    ("Min", "b - (x | y)", None, lambda s, p, b, g: np.min(b.T - p, axis=1, keepdims=True)),
    ("ArgKMin", "-(x | y)", None, lambda s, p, b, g: np.argsort(-p, axis=1)[:, :4]),
]


def _lse(a):
    m = a.max(axis=1, keepdims=True)
    return m + np.log(np.exp(a - m).sum(axis=1, keepdims=True))


def _softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.cpu
@needs_cc
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reductions_on_tiles(case, dtype):
    name, formula, weight, dense = case
    rng = np.random.default_rng(0)
    d = 40 if dtype == np.float32 else 70  # 70: two depth chunks of the micro-kernel
    x, y, b = _data(rng, 203, 517, d, dtype)  # odd sizes: partial blocks and tiles
    g = np.array([1.0 / d], dtype=dtype)
    opts = {"opt_arg": 4} if name == "ArgKMin" else {}
    k = Genred(formula, _aliases(d), reduction_op=name, axis=1, formula2=weight, gemm=True, **opts)
    assert cpu.kernel_source(replace(k.plan, gemm="on"), dtype).path == "dot-gemm"
    out = k(x, y, b, g, backend="CPU")
    want = dense(_sq(x, y), x.astype(np.float64) @ y.astype(np.float64).T, b, float(g[0]))
    if name.startswith("Arg"):
        np.testing.assert_array_equal(out, want)
    else:
        tol = 2e-5 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.cpu
@needs_cc
def test_axis0_ranges_batches_and_weighted():
    rng = np.random.default_rng(1)
    d = 24
    x, y, _ = _data(rng, 150, 90, d)
    w = rng.uniform(0.5, 1.5, d).astype(np.float32)
    bi = rng.standard_normal((150, 1)).astype(np.float32)
    aliases = [f"x = Vi({d})", f"y = Vj({d})", "b = Vi(1)", f"w = Pm({d})"]
    k = Genred("Exp(-WeightedSqDist(w, x, y) / 32) * b", aliases, axis=0, gemm=True)
    s = (((x[:, None, :] - y[None]) ** 2).astype(np.float64) * w).sum(-1)
    kern = np.exp(-s / 32)
    np.testing.assert_allclose(k(x, y, bi, w, backend="CPU"), kern.T @ bi, rtol=2e-5, atol=1e-5)
    # block-sparse ranges: i blocks [0, 70) x j [0, 40) and [70, 150) x j [60, 90)
    r = np.array
    ranges = (
        r([[0, 70], [70, 150]]),
        r([1, 2]),
        r([[0, 40], [60, 90]]),
        r([[0, 40], [60, 90]]),
        r([1, 2]),
        r([[0, 70], [70, 150]]),
    )
    mask = np.zeros((150, 90), dtype=bool)
    mask[0:70, 0:40] = mask[70:150, 60:90] = True
    out = k(x, y, bi, w, backend="CPU", ranges=tuple(a.astype(np.int64) for a in ranges))
    np.testing.assert_allclose(out, (kern * mask).T @ bi, rtol=2e-5, atol=1e-5)
    # batch dimensions
    xb, yb = np.stack([x, x[::-1]]), np.stack([y, y * 0.5])
    bb = rng.standard_normal((2, 90, 1)).astype(np.float32)
    kb = Genred("Exp(-SqDist(x, y) / 32) * b", [*aliases[:2], "b = Vj(1)"], axis=1, gemm=True)
    outb = kb(xb, yb, bb, backend="CPU")
    for n in range(2):
        want_b = np.exp(-_sq(xb[n], yb[n]) / 32) @ bb[n].astype(np.float64)
        np.testing.assert_allclose(outb[n], want_b, rtol=2e-5, atol=1e-5)


# --- the bound ------------------------------------------------------------------------------


def _decide(k, args):
    from lazykernels.cpu.gemm import decide

    call, _ = bind_call(k.plan, list(args), None, None)
    return decide(call)


def _gauss(d, mode="auto"):
    return Genred("Exp(-g * SqDist(x, y)) * b", _aliases(d), axis=1, gemm=mode)


@pytest.mark.cpu
@needs_cc
def test_far_from_origin_is_centred():
    """A tight cloud 1e4 away from the origin: uncentred, the expansion would lose every
    digit (|x|^2 ~ 3e9 in float32); centred, the bound passes and the values are right."""
    rng = np.random.default_rng(2)
    d = 32
    x, y, b = _data(rng, 120, 300, d, offset=1e4, scale=0.1)
    g = np.array([0.5], dtype=np.float32)
    k = _gauss(d)
    dec = _decide(k, (x, y, b, g))
    assert dec.plan.gemm == "on" and dec.rho <= dec.tau
    np.testing.assert_allclose(dec.arrays[0].mean(0), 0, atol=0.05)  # centred
    want = np.exp(-0.5 * _sq(x, y)) @ b.astype(np.float64)
    out = k(x, y, b, g, backend="CPU")
    exact = _gauss(d, False)(x, y, b, g, backend="CPU")
    err_ours = np.abs(out - want).max() / np.abs(want).max()
    err_exact = np.abs(exact - want).max() / np.abs(want).max()
    assert err_ours <= 2 * err_exact + 1e-6


@pytest.mark.cpu
@needs_cc
@pytest.mark.parametrize("g", [1e-4, 1.0, 100.0])
def test_bound_edges_and_validity(g):
    """Tiny bandwidths (large g) refuse the path under auto; gemm=True still runs, and the
    error it makes stays within the bound ``rho`` times the sum of |terms|."""
    rng = np.random.default_rng(3)
    d = 48
    x, y, b = _data(rng, 100, 250, d)
    gp = np.array([g], dtype=np.float32)
    dec = _decide(_gauss(d), (x, y, b, gp))
    assert (dec.plan.gemm == "on") == (g == 1e-4)
    assert dec.rho > 0 and dec.tau > 0
    out = _gauss(d, True)(x, y, b, gp, backend="CPU").astype(np.float64)
    terms = np.exp(-g * _sq(x, y)) * b.T.astype(np.float64)
    want = terms.sum(1, keepdims=True)
    scale = np.abs(terms).sum(1, keepdims=True)
    # the expansion's bound plus float32's own accumulation (gamma_n, n <= 260 here)
    allowed = (dec.rho + 300 * 6e-8) * scale + 1e-30
    assert np.all(np.abs(out - want) <= allowed)


@pytest.mark.cpu
@needs_cc
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes(dtype):
    """float64 computes in float64 (rho ~ 1e-14: auto takes the path); float16 computes in
    float32 and rounds to float16 at the end."""
    rng = np.random.default_rng(4)
    d = 32
    x, y, b = _data(rng, 64, 130, d, dtype)
    g = np.array([1.0 / (4 * d)], dtype=dtype)
    k = _gauss(d)
    dec = _decide(k, (x, y, b, g))
    if dtype == np.float64:
        assert dec.plan.gemm == "on" and dec.rho < 1e-12
    out = k(x, y, b, g, backend="CPU")
    assert out.dtype == dtype
    want = np.exp(-float(g[0]) * _sq(x, y)) @ b.astype(np.float64)
    tol = {np.float16: 2e-3, np.float32: 2e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(
        out.astype(np.float64), want, rtol=tol, atol=tol * np.abs(want).max()
    )


@pytest.mark.cpu
@needs_cc
def test_off_and_low_dim_keep_todays_kernels():
    """gemm=False, and the default at D = 3, print exactly the per-pair kernel."""
    from lazykernels.codegen.cpp import render_cpu

    for d in (3, 64):
        plan = build_plan("Exp(-SqDist(x, y)) * b", _aliases(d, ("b = Vj(1)",)), axis=1)
        off = replace(plan, gemm="off")
        assert cpu.kernel_source(off, "float32").path == "tiled"
        assert render_cpu(off, "float32").source == render_cpu(plan, "float32").source
    plan3 = build_plan("Exp(-SqDist(x, y)) * b", _aliases(3, ("b = Vj(1)",)), axis=1)
    assert render_cpu(plan3, "float32", dotprod=True).path == "tiled"
    rng = np.random.default_rng(5)
    x, y, b = _data(rng, 50, 60, 3)
    dec = _decide(Genred("Exp(-SqDist(x, y)) * b", _aliases(3, ("b = Vj(1)",)), axis=1), (x, y, b))
    assert dec.plan.gemm != "on"


@pytest.mark.cpu
@needs_cc
def test_lazytensor_front_ends():
    torch = pytest.importorskip("torch")
    from lazykernels.torch import LazyTensor

    rng = np.random.default_rng(6)
    d = 32
    x, y, b = _data(rng, 80, 120, d)
    want = np.exp(-_sq(x, y) / d) @ b.astype(np.float64)
    xi = LazyTensor(torch.from_numpy(x)[:, None, :])
    yj = LazyTensor(torch.from_numpy(y)[None, :, :])
    k = (-xi.sqdist(yj) / d).exp()
    for mode in (True, False, "auto"):
        out = (k * LazyTensor(torch.from_numpy(b)[None, :, :])).sum(dim=1, gemm=mode)
        np.testing.assert_allclose(out.numpy(), want, rtol=2e-5, atol=1e-5)
    with pytest.raises(ArgumentError, match="gemm must be"):
        (k * LazyTensor(torch.from_numpy(b)[None, :, :])).sum(dim=1, gemm="fast")


# --- gradients (codegen/dotgrad_cpp.py) -----------------------------------------------------


@pytest.mark.cpu
@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_as_tiles(dtype):
    """The x- and y-gradient reductions of a Gaussian sum are ``S (x - y)`` products: they
    take the two-product path, and agree with dense autograd (float64: to rounding)."""
    torch = pytest.importorskip("torch")
    from lazykernels.reductions.derivatives import vjp_rule
    from lazykernels.torch import Genred as TorchGenred

    rng = np.random.default_rng(7)
    d, m, n = 40, 203, 300
    tt = torch.float32 if dtype == np.float32 else torch.float64
    x = torch.tensor(rng.standard_normal((m, d)), dtype=tt, requires_grad=True)
    y = torch.tensor(rng.standard_normal((n, d)), dtype=tt, requires_grad=True)
    b = torch.tensor(rng.standard_normal((n, 1)), dtype=tt)
    g = torch.tensor([1.0 / d], dtype=tt)
    e = torch.tensor(rng.standard_normal((m, 1)), dtype=tt)
    k = TorchGenred("Exp(-g * SqDist(x, y)) * b", _aliases(d), axis=1, gemm=True)
    for pos in (0, 1):
        plan = vjp_rule(k.plan, pos).plan
        assert plan.gemm == "on" and cpu.kernel_source(plan, dtype).path == "dot-grad"
    gx, gy = torch.autograd.grad((k(x, y, b, g, backend="CPU") * e).sum(), [x, y])
    xd, yd = x.detach().double(), y.detach().double()
    xd.requires_grad_(True)
    yd.requires_grad_(True)
    dense = torch.exp(-g.double() * ((xd[:, None] - yd[None]) ** 2).sum(-1)) @ b.double()
    rx, ry = torch.autograd.grad((dense * e.double()).sum(), [xd, yd])
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for got, want in ((gx, rx), (gy, ry)):
        err = float((got.double() - want).abs().max() / want.abs().max())
        assert err < tol
