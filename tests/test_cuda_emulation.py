"""The generated CUDA kernels run in the host emulation (cuda/emulation.py) against the
NumPy reference backend: the same kernel text NVRTC compiles, behind a macro header
(std::thread per CUDA thread, std::barrier for __syncthreads, a per-block shared buffer).
Row and tile tails are covered by sizes that are not multiples of the block."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lazykernels.codegen.cuda import render_cuda
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.cuda.emulation import Emulated, emulation_source
from lazykernels.errors import ShapeError
from lazykernels.reductions import SPECS

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ for the emulation"),
]

GAUSS = ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(2)"]
F = "Exp(-SqDist(x,y)*g)*b"
CASES = {
    "gauss_i": (build_plan(F, GAUSS, axis=1), "i"),
    "gauss_j": (build_plan("Exp(-SqDist(x,y)*g)*(x|y)", GAUSS[:3], axis=0), "j"),
    "direct": (build_plan(F, GAUSS, axis=1, sum_scheme="direct_sum"), "i"),
    "double_acc": (build_plan(F, GAUSS, axis=1, use_double_acc=True), "i"),
    "no_inner": (build_plan("Sqrt(x|x) * g", GAUSS[:3], axis=1), "i"),
    "maths": (
        # 4 + Atan2 > 0.85: with 1 + Atan2 the pole made float32 sums of ~1e3 differ by 2e-4
        # between two correct orders of evaluation (AMD EPYC; a draw of the data)
        build_plan("Log(1 + Abs(Sin(x) * Cos(y))) / (4 + Atan2(x, y))", GAUSS[:2], axis=1),
        "i",
    ),
}
for _red in ["Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax"]:
    CASES[_red.lower()] = (
        build_plan("SqDist(x,y) - x*y*g", GAUSS[:3], reduction_op=_red, axis=1),
        "i",
    )
CASES["argmin_j"] = (build_plan("SqDist(x,y)", GAUSS[:2], reduction_op="ArgMin", axis=0), "j")
_BOTH_DTYPES = set(CASES) | {"logsumexp_w", "kmin_argkmin"}  # the others: float64 only
_HALF_CASES = ["gauss_i", "gauss_j", "max", "argmax", "max_argmax"]
# every other card: the per-thread statements are the card's program (codegen/reductions_cuda)
_LSE = "-SqDist(x,y)*g"
for _red, _w in [
    ("LogSumExp", None),
    ("LogSumExp", "b"),
    ("SumSoftMaxWeight", "b"),
    ("Max_SumShiftExp", None),
    ("Max_SumShiftExpWeight", "b"),
]:
    CASES[f"{_red.lower()}{'_w' if _w else ''}"] = (
        build_plan(_LSE, GAUSS, reduction_op=_red, formula2=_w, axis=1),
        "i",
    )
CASES["lse_kahan_j"] = (
    build_plan(_LSE, GAUSS, reduction_op="LogSumExp", axis=0, sum_scheme="kahan_scheme"),
    "j",
)
CASES["lse_direct_double"] = (
    build_plan(
        _LSE, GAUSS, "LogSumExp", formula2="b", axis=1, sum_scheme="direct_sum", use_double_acc=True
    ),
    "i",
)
CASES["kahan"] = (build_plan(F, GAUSS, axis=1, sum_scheme="kahan_scheme"), "i")
for _red in ["KMin", "ArgKMin", "KMin_ArgKMin"]:
    CASES[_red.lower()] = (
        build_plan("SqDist(x,y) - x*y*g", GAUSS[:3], reduction_op=_red, axis=1, opt_arg=4),
        "i",
    )
CASES["kmin_argkmin_d1_j"] = (
    build_plan("SqDist(x,y)", GAUSS[:2], reduction_op="KMin_ArgKMin", axis=0, opt_arg=3),
    "j",
)


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    """The kernels of the main sweep, compiled together (a few g++ runs, not one each)."""
    from lazykernels.cuda import emulation

    kernels = [
        render_cuda(plan, t, block=32)
        for n, (plan, _) in CASES.items()
        for t in ("float32", "float64")
        if t == "float64" or n in _BOTH_DTYPES
    ]
    kernels += [render_cuda(CASES[n][0], "float16", block=32) for n in _HALF_CASES]
    emulation.prepare(kernels)


def test_every_reduction_card_has_a_case():
    assert {plan.reduction for plan, _ in CASES.values()} == set(SPECS)


def _args(rng, m, n, n_slots, dtype):
    x, y = rng.standard_normal((m, 3)), rng.standard_normal((n, 3))
    args = [x, y, np.array([0.7]), rng.standard_normal((n, 2))][:n_slots]
    return [a.astype(dtype) for a in args]


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        (n, t)
        for n in sorted(CASES)
        for t in ("float32", "float64")
        if t == "float64" or n in _BOTH_DTYPES
    ],
)
def test_emulated_kernel_matches_the_reference(name, dtype):
    plan, out_index = CASES[name]
    ks = render_cuda(plan, dtype, block=32)
    kernel = Emulated(ks, dtype)
    rng = np.random.default_rng(len(name))
    for m, n in [(70, 45), (32, 64), (1, 1), (5, 100)]:
        args = _args(rng, m, n, len(plan.slots), dtype)
        n_out, n_red = (m, n) if out_index == "i" else (n, m)
        if plan.k is not None and plan.k > n_red:
            continue  # refused by the binding
        got = kernel.run(n_out, n_red, args)
        want = run_plan(plan, args, backend="reference")
        assert len(got) == len(want)
        tol = 2e-5 if dtype == "float32" else 1e-12
        for g, w in zip(got, want):
            if g.dtype == np.int64:  # indices: exactly the reference's (ties: lowest first)
                np.testing.assert_array_equal(g, w.reshape(g.shape))
                continue
            np.testing.assert_allclose(g, w.reshape(g.shape), rtol=tol, atol=tol * n_red)


def test_default_block_with_tails_float64():
    plan = CASES["gauss_i"][0]
    kernel = Emulated(render_cuda(plan, "float64"), "float64")
    rng = np.random.default_rng(1)
    args = _args(rng, 130, 300, 4, "float64")
    (want,) = run_plan(plan, args, backend="reference")
    np.testing.assert_allclose(kernel.run(130, 300, args)[0], want, rtol=1e-12, atol=1e-12)


def test_emulation_keeps_the_kernel_text_and_checks_inputs():
    ks = render_cuda(CASES["gauss_i"][0], "float32", block=8)
    assert ks.source in emulation_source(ks)
    kernel = Emulated(ks, "float32")
    with pytest.raises(ShapeError, match="takes 4 inputs"):
        kernel.run(3, 3, [])
    with pytest.raises(ShapeError, match="at least one output row"):
        kernel.run(0, 3, _args(np.random.default_rng(0), 1, 3, 4, "float32"))


@pytest.mark.parametrize("red", ["Min", "ArgMin", "Max_ArgMax", "KMin_ArgKMin"])
def test_nan_never_wins_as_in_the_reference(red):
    # NaN inputs are refused at binding: the formula makes them (Sqrt of y < 0.3)
    k = 3 if red.startswith("KMin") else None
    plan = build_plan("Sqrt(y - 0.3) + x", GAUSS[:2], reduction_op=red, axis=1, opt_arg=k)
    kernel = Emulated(render_cuda(plan, "float64", block=16), "float64")
    args = _args(np.random.default_rng(3), 20, 40, 2, "float64")
    got = kernel.run(20, 40, args)
    want = run_plan(plan, args, backend="reference")
    for g, w in zip(got, want):
        assert not np.isnan(g).any()
        np.testing.assert_allclose(g, w.reshape(g.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", _HALF_CASES)
def test_float16_storage_float_arithmetic(name):
    plan, out_index = CASES[name]
    kernel = Emulated(render_cuda(plan, "float16", block=32))
    rng = np.random.default_rng(7)
    args = _args(rng, 70, 45, len(plan.slots), np.float16)
    n_out, n_red = (70, 45) if out_index == "i" else (45, 70)
    got = kernel.run(n_out, n_red, args)
    want = run_plan(plan, [a.astype(np.float64) for a in args], backend="reference")
    for g, w in zip(got, want):
        if g.dtype == np.int64:
            assert (
                g == w.reshape(g.shape)
            ).mean() > 0.95  # near-ties may differ in float arithmetic
        else:  # float arithmetic and accumulator: one rounding to half on the store
            assert g.dtype == np.float16
            np.testing.assert_allclose(
                g, w.reshape(g.shape), rtol=2e-3, atol=2e-3 * np.abs(w).max()
            )
