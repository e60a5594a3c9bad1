"""float32 accuracy of values, gradients and Hessians against dense torch float32.

The truth is the dense float64 computation (``benchmarks/bench_accuracy.py``, which prints
the full table); ours must stay within 2x of dense torch float32's error. The log-sum-exp
cases use spread points (scale 2), where the saved output's rounding, amplified by
``Exp(F - o)``, made the Hessians 4-7x less accurate than dense torch before the softmax was
normalised inside the derivative reductions (``lazykernels.reductions.derivatives``).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import pathlib
import sys

import pytest

torch = pytest.importorskip("torch")

_PATH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_accuracy.py"
_SPEC = importlib.util.spec_from_file_location("bench_accuracy", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("bench_accuracy", bench)  # its dataclass looks itself up there
_SPEC.loader.exec_module(bench)

M, N, B = 40, 100, 2
# LAZYKERNELS_LONG_ACCURACY=1: every seed (0-7) of the long-sum and Exp(F - o) tests
LONG = os.environ.get("LAZYKERNELS_LONG_ACCURACY", "") == "1"


def _check(name, seed, scale, backend="CPU", m=M, n=N, batch=B, **opts):
    errors = bench.measure(bench.CASES[name], m, n, batch, seed, backend, scale, **opts)
    assert set(errors) == {"value", "grad", "hessian"}
    for order, (ours, dense) in errors.items():
        assert 0 < dense < 1e-5, (order, dense)  # the measure itself is sane
        assert ours <= bench.TARGET * dense, f"{name} {order}: {ours:.2e} vs torch {dense:.2e}"


@pytest.mark.cpu
@pytest.mark.parametrize("name", ["LogSumExp", "LogSumExpWeight"])
def test_log_sum_exp_derivatives_are_as_accurate_as_dense_torch(name):
    # Pooled over seeds 0-2 (the sum of our errors over the sum of dense torch's), each seed
    # within 3x: one seed's ratio is a draw (dense torch against itself with the summed
    # points permuted spreads 0.35-1.73x), and on an AMD EPYC LogSumExpWeight's seed 2 drew
    # 2.35x (gradient) / 2.43x (Hessian) on main as on this rule (benchmarks/README.md).
    pooled = {}
    for seed in (0, 1, 2):
        errors = bench.measure(bench.CASES[name], M, N, B, seed, "CPU", 2.0)
        for order, (ours, dense) in errors.items():
            assert 0 < dense < 1e-5, (order, dense)
            assert ours <= 3 * dense, f"{name} {order} seed {seed}: {ours:.2e} vs {dense:.2e}"
            mine, theirs = pooled.get(order, (0.0, 0.0))
            pooled[order] = (mine + ours, theirs + dense)
    for order, (mine, theirs) in pooled.items():
        assert mine <= bench.TARGET * theirs, f"{name} {order}: {mine:.2e} vs torch {theirs:.2e}"


@pytest.mark.cpu
@pytest.mark.parametrize("name", ["SumSoftMaxWeight", "Min", "KMin"])
def test_other_reductions_are_as_accurate_as_dense_torch(name):
    _check(name, 0, 1.0)


@pytest.mark.cpu
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sum_is_as_accurate_as_dense_torch(seed):
    # N = 100: the short-sum path; one sequential float32 sum per row gave 2.06 (value,
    # seed 1), 2.03 (value, seed 2), 2.56 (Hessian, seed 3) x dense torch's error
    _check("Sum", seed, 1.0)


@pytest.mark.cpu
def test_sum_with_float64_accumulation_is_as_accurate_as_dense_torch():
    _check("Sum", 1, 1.0, dtype_acc="float64")


_LONG_SUMS = [(1000, 2, 0), (3000, 1, 5)]  # (N, batch, seed): seed 5 is the hardest
if LONG:
    _LONG_SUMS = [(n, b, s) for (n, b), s in itertools.product([(1000, 2), (3000, 1)], range(8))]


@pytest.mark.cpu
@pytest.mark.parametrize("n, batch, seed", _LONG_SUMS)
def test_long_sum_is_as_accurate_as_dense_torch(n, batch, seed):
    # N > 256: the tiled path, float32 tiles summed in two levels per lane
    # (codegen/schedule_cpp.lane_sums). One lane per tile (256 terms each) gave 1.3-3.3x
    # dense torch's error at N = 3000 (value, gradient and Hessian, seeds 0-7).
    _check("Sum", seed, 1.0, m=20, n=n, batch=batch)


@pytest.mark.cpu
def test_long_sum_over_ranges_is_as_accurate_as_dense_torch():
    """Block-sparse ranges: reduction intervals that start and end off the vector width,
    longer than a tile (2048), in a batch of 2; the value against float64."""
    from lazykernels.torch import Genred

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 40, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 5000, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(2, 5000, 1, generator=gen, dtype=torch.float64)
    x, y, b = (t.float().double() for t in (x, y, b))
    blocks = [(0, 25, 3, 2990), (25, 40, 1001, 4999)]  # rows [i0, i1) reduce over [j0, j1)
    ranges_i = torch.tensor([[i0, i1] for i0, i1, _, _ in blocks])
    redranges_j = torch.tensor([[j0, j1] for _, _, j0, j1 in blocks])
    none = (torch.zeros(0, 2, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    ranges = (ranges_i, torch.tensor([1, 2]), redranges_j, *none, none[0])
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
    g = Genred("Exp(-SqDist(x,y))*b", aliases, reduction_op="Sum", axis=1)

    def dense(x, y, b):
        k = (-((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)).exp()
        parts = [(k[:, i0:i1, j0:j1] * b[:, None, j0:j1, 0]).sum(-1) for i0, i1, j0, j1 in blocks]
        return torch.cat(parts, 1)[..., None]

    truth = dense(x, y, b)
    ours = g(x.float(), y.float(), b.float(), backend="CPU", ranges=ranges)
    ours64 = g(x, y, b, backend="CPU", ranges=ranges)
    torch.testing.assert_close(ours64, truth, rtol=1e-12, atol=1e-12)
    mine, theirs = (
        bench.rel_error(ours, truth),
        bench.rel_error(dense(*(t.float() for t in (x, y, b))), truth),
    )
    assert 0 < theirs < 1e-5 and mine <= bench.TARGET * theirs, (mine, theirs)


# Weights of dimension > 1 and derivatives w.r.t. the reduced points y. With x at N = 3000
# LogSumExpWeight2's gradient (seed 1) was 3.32x dense torch's error through Exp(F - o) (the
# saved output's rounding in every term): now normalised per component of the weight (1.52x).
# W.r.t. y the rules keep Exp(F - o) (Exp(F - L) for the softmax; Exp(F - m) g / s from the
# raw state with a weight), one seed each here; over seeds 0-7 (LAZYKERNELS_LONG_ACCURACY=1)
# some exceed 2x (benchmarks/README.md, "float32 accuracy").
_X3000 = {"m": 20, "n": 3000, "batch": 1}
_EXP_F_O = [
    ("LogSumExpWeight2", "x", 2.0, 1),
    ("LogSumExpWeight2", "y", 2.0, 0),
    ("SumSoftMaxWeight3", "y", 1.0, 0),
    ("LogSumExpWeight", "y", 2.0, 1),
    ("LogSumExp", "y", 2.0, 1),
    # F recomputed with other roundings than the forward kernel's (tests/test_exact_formula.py):
    # LogSumExp's gradient 3.67x, SumSoftMaxWeight's Hessian 3.21x dense torch's error
    ("LogSumExp", "y", 2.0, 9),
    ("SumSoftMaxWeight", "y", 1.0, 1),
    # Exp(F - o) g with o = m + log s rounded: LogSumExpWeight's gradient 3.52x (seed 27),
    # its Hessian 2.93x (seed 0) dense torch's error
    ("LogSumExpWeight", "y", 2.0, 27),
    ("LogSumExpWeight", "y", 2.0, 0),
]
if LONG:
    _EXP_F_O = sorted({(c, w, s, seed) for c, w, s, _ in _EXP_F_O for seed in range(8)})


@pytest.mark.cpu
@pytest.mark.parametrize("name, wrt, scale, seed", _EXP_F_O)
def test_exp_f_minus_o_paths_are_as_accurate_as_dense_torch(name, wrt, scale, seed):
    size = _X3000 if wrt == "x" else {"m": M, "n": 50, "batch": 1}
    _check(name, seed, scale, wrt=wrt, **size)


@pytest.mark.cpu
def test_dot_product_gradient_is_as_accurate_as_dense_torch():
    """D = 16 with ``gemm=True``: the gradient w.r.t. x takes the dot-product gradient path
    (codegen/dotgrad_cpp.py), whose block sums ran as one float32 sum per output over all
    N (3.6x dense torch's error at N = 3000); its chunked sums are within 2x."""
    from lazykernels.torch import LazyTensor

    gen = torch.Generator().manual_seed(0)
    x, y = (0.3 * torch.randn(k, 16, generator=gen, dtype=torch.float64) for k in (100, 3000))
    b = torch.randn(3000, 1, generator=gen, dtype=torch.float64)
    x, y, b = (t.float().double() for t in (x, y, b))

    def dense(x, y, b):
        d = ((x[:, None] - y[None]) ** 2).sum(-1, keepdim=True)
        return ((-d).exp() * b[None]).sum(1)

    def ours(x, y, b):
        x_i, y_j, b_j = LazyTensor(x[:, None]), LazyTensor(y[None]), LazyTensor(b[None])
        return ((-((x_i - y_j) ** 2).sum(-1)).exp() * b_j).sum(1, gemm=True, backend="CPU")

    def grad_x(fn, dtype):
        xx = x.to(dtype).requires_grad_()
        return torch.autograd.grad(fn(xx, y.to(dtype), b.to(dtype)).norm(), xx)[0]

    truth = grad_x(dense, torch.float64)
    mine = bench.rel_error(grad_x(ours, torch.float32), truth)
    theirs = bench.rel_error(grad_x(dense, torch.float32), truth)
    assert 0 < theirs < 1e-5 and mine <= bench.TARGET * theirs, (mine, theirs)


def test_reference_backend_log_sum_exp_hessian():
    _check("LogSumExpWeight", 1, 2.0, backend="reference")


def test_normalised_rules_agree_with_float64_dense_torch():
    """The self-normalised derivative rules are exact in float64 (vjp, jvp, Hessian), also
    with a weight of dimension 2 (the Exp(F - o) path) and a parameter."""
    from torch.func import hessian

    from lazykernels.torch import LazyTensor

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 7, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 9, 2, generator=gen, dtype=torch.float64)
    b = torch.rand(2, 9, 2, generator=gen, dtype=torch.float64) + 0.5
    p = torch.tensor([0.7], dtype=torch.float64)

    def ours(x, p, width):
        x_i, y_j = LazyTensor(x[..., :, None, :]), LazyTensor(y[..., None, :, :])
        w_j = LazyTensor(b[..., None, :, :width])
        f = -LazyTensor(p) * ((x_i - y_j) ** 2).sum(-1)
        return f.logsumexp(dim=2, weight=w_j * w_j, backend="reference").norm()

    def dense(x, p, width):
        d = -p * ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1, keepdim=True)
        return (d + (b[..., None, :, :width] ** 2).log()).logsumexp(-2).norm()

    for width in (1, 2):
        for argnums in (0, 1):
            got = hessian(ours, argnums)(x, p, width)
            want = hessian(dense, argnums)(x, p, width)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        gx, gp = torch.func.grad(ours, (0, 1))(x, p, width)
        wx, wp = torch.func.grad(dense, (0, 1))(x, p, width)
        torch.testing.assert_close((gx, gp), (wx, wp), rtol=1e-10, atol=1e-12)
