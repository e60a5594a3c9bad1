"""The CUDA 2D scheme (codegen/cuda.py, cuda/runner.py): the reduction range split into
column blocks, partial states in scratch arrays, merged and finalized by a second kernel.

Every reduction card x {float16, float32, float64} x {plain, batch, ranges} runs on the host
emulation (cuda/emulation.py: the generated text, a host thread per CUDA thread) through
the runner, against the NumPy reference; both kernels of each compile with NVRTC (float32
for sm_80, float16 and float64 for sm_90; both for all with LAZYKERNELS_CUDA_SWEEP=1). Blocks of 8
threads and column blocks of 16 indices keep the emulation small: 37 reduction indices are
three column blocks, the last a tail. No GPU is used.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from lazykernels.codegen.cuda import render_cuda
from lazykernels.codegen.target_cuda import CUDA, choose_scheme, column_chunk
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.cuda import emulation, nvrtc
from lazykernels.cuda.emulation import EmulatedDevice
from lazykernels.cuda.runner import run, scheme_for
from lazykernels.errors import ArgumentError
from lazykernels.reductions import SPECS

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ for the emulation")
needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
SWEEP = bool(os.environ.get("LAZYKERNELS_CUDA_SWEEP"))
BLOCK, CHUNK = 8, 16
DTYPES = ("float16", "float32", "float64")
ALIASES = ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(2)"]
F, SEL, LSE = "Exp(-SqDist(x,y)*g)*b", "SqDist(x,y) - x*y*g", "-SqDist(x,y)*g"


def _plan(formula, reduction="Sum", axis=1, **kw):
    return build_plan(formula, ALIASES, reduction_op=reduction, axis=axis, **kw)


CASES = {
    "sum_block": _plan(F),
    "sum_direct_j": _plan("Exp(-SqDist(x,y)*g)*(x|y)", axis=0, sum_scheme="direct_sum"),
    "sum_kahan": _plan(F, sum_scheme="kahan_scheme"),
    "sum_double_acc": _plan(F, use_double_acc=True),
    "lse": _plan(LSE, "LogSumExp"),
    "lse_w_kahan_j": _plan(LSE, "LogSumExp", axis=0, formula2="b", sum_scheme="kahan_scheme"),
    "softmax": _plan(LSE, "SumSoftMaxWeight", formula2="b"),
    "max_sumshiftexp": _plan(LSE, "Max_SumShiftExp"),
    "max_sumshiftexpweight": _plan(LSE, "Max_SumShiftExpWeight", formula2="b"),
}
for _red in ["Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax"]:
    CASES[_red.lower()] = _plan(SEL, _red)
for _red in ["KMin", "ArgKMin", "KMin_ArgKMin"]:
    CASES[_red.lower()] = _plan(SEL, _red, opt_arg=4)
CASES["kmin_argkmin_j"] = _plan("SqDist(x,y)", "KMin_ArgKMin", axis=0, opt_arg=3)

# rows 0-9, 12-25 and 25-30 of 37 (a gap at 10-11, rows past 30 in no range), intervals that
# cut the column blocks anywhere, one output range with none; the same for the i-side
R_OUT = np.array([[12, 25], [0, 10], [25, 30], [30, 30]])
SLICES = np.array([2, 3, 3, 4])
R_RED = np.array([[3, 20], [22, 37], [0, 37], [5, 9]])
RANGES = (R_OUT, SLICES, R_RED, R_OUT, SLICES, R_RED)
OVERLAP = ("sum_block", "kmin_argkmin", "lse", "max_argmax")


def test_every_reduction_card_has_a_case():
    assert {plan.reduction for plan in CASES.values()} == set(SPECS)


@pytest.fixture(scope="module")
def compiled():
    """Every kernel of this module's emulation, compiled in one program."""
    if shutil.which("g++") is None:
        pytest.skip("no g++ for the emulation")
    kernels = []
    for plan in CASES.values():
        for dtype in DTYPES:
            ks = render_cuda(plan, dtype, BLOCK, "2D")
            kernels += [ks, ks.merge]
    kernels += [render_cuda(CASES[name], "float64", BLOCK) for name in OVERLAP]
    emulation.prepare(kernels)


def _inputs(rng, batch_x, batch_y, m, n, dtype):
    x = rng.standard_normal((*batch_x, m, 3))
    y = rng.standard_normal((*batch_y, n, 3))
    g = np.full((*np.broadcast_shapes(batch_x, batch_y), 1), 0.6)
    b = rng.standard_normal((*batch_y, n, 2))
    return [a.astype(dtype) for a in (x, y, g, b)]


def _check(plan, args, dtype, ranges=None):
    device = EmulatedDevice()
    call = bind(plan, args, ranges)
    run(call, device, block=BLOCK, scheme="2D", chunk=CHUNK)
    exact = [a.astype(np.float64) for a in args]  # half inputs: their values, exactly
    want = run_plan(plan, exact, backend="reference", ranges=ranges)
    half = dtype == "float16"
    for got, ref in zip(call.outputs, want):
        if got.dtype == np.int64:
            if half:  # float arithmetic: near-ties may pick another index
                assert (got == ref).mean() > 0.9
            else:
                np.testing.assert_array_equal(got, ref)
            continue
        tol = {"float16": 3e-3, "float32": 3e-5, "float64": 1e-12}[dtype]
        finite = np.abs(ref[np.isfinite(ref)])
        scale = max(1.0, float(finite.max(initial=0))) if half else 1.0
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol * scale)
    return device


@needs_gxx
@pytest.mark.cpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_2d_scheme_matches_the_reference(compiled, name, dtype):
    plan = CASES[name]
    rng = np.random.default_rng(len(name))
    out_i = plan.output_cat.name == "I"
    m, n = (11, 37) if out_i else (37, 11)  # 11 rows: two row blocks; 37: 3 column blocks
    device = _check(plan, _inputs(rng, (), (), m, n, dtype), dtype)
    (grid1, block, params1), (grid2, _, params2) = device.launches
    assert block == BLOCK and params1[4:6] == (3, CHUNK) and grid1 == 2 * 3
    assert grid2 == 2 and params2[:2] == (11, 3)  # the merge: a thread per row
    # broadcast batch dims (2, 1) x (1, 2): four entries
    _check(plan, _inputs(rng, (2, 1), (1, 2), m, n, dtype), dtype)
    # ranges (rows in no range get the empty reduction's value), then with a batch
    _check(plan, _inputs(rng, (), (), 37, 37, dtype), dtype, RANGES)
    _check(plan, _inputs(rng, (2,), (2,), 37, 37, dtype), dtype, RANGES)


@needs_gxx
@pytest.mark.cpu
def test_overlapping_output_ranges_accumulate_as_the_reference(compiled):
    # rows 5-9 are in both output ranges: they reduce over both ranges' intervals
    r_out = np.array([[0, 10], [5, 20]])
    slices = np.array([1, 3])
    r_red = np.array([[0, 12], [10, 30], [33, 37]])
    ranges = (r_out, slices, r_red, r_out, slices, r_red)
    for name in OVERLAP:
        plan = CASES[name]
        args = _inputs(np.random.default_rng(9), (), (), 37, 37, "float64")
        _check(plan, args, "float64", ranges)
        call = bind(plan, args, ranges)  # and the 1D scheme
        run(call, EmulatedDevice(), block=BLOCK, scheme="1D")
        want = run_plan(plan, args, backend="reference", ranges=ranges)
        for got, ref in zip(call.outputs, want):
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@needs_gxx
@pytest.mark.cpu
def test_empty_reduction_and_a_single_column_block(compiled):
    plan = CASES["max_argmax"]
    args = _inputs(np.random.default_rng(2), (), (), 11, 5, "float32")
    device = _check(plan, args, "float32")  # 5 indices: one column block
    assert device.launches[0][2][4] == 1
    args = _inputs(np.random.default_rng(2), (), (), 11, 0, "float64")
    device = EmulatedDevice()
    call = bind(CASES["sum_block"], args, None)
    run(call, device, block=BLOCK, scheme="2D", chunk=CHUNK)
    np.testing.assert_array_equal(call.outputs[0], 0)


@needs_gxx
@pytest.mark.cpu
def test_chunk_must_be_whole_tiles(compiled):
    args = _inputs(np.random.default_rng(2), (), (), 11, 37, "float64")
    call = bind(CASES["sum_block"], args, None)
    with pytest.raises(ArgumentError, match="whole tiles of 8"):
        run(call, EmulatedDevice(), block=BLOCK, scheme="2D", chunk=12)


def test_scratch_holds_only_the_merged_fields():
    # a block sum's tile partial is spent at each tile's end: only the sum is stored
    ks = render_cuda(CASES["sum_block"], "float32", BLOCK, "2D")
    assert ks.state == (("A", 2, 4),)
    assert "lk_part" not in ks.merge.source
    ks = render_cuda(CASES["kmin_argkmin"], "float64", BLOCK, "2D")
    assert ks.state == (("T", 12, 8), ("int64_t", 12, 8))  # K = 4 of a dim-3 formula
    assert ks.merge.params[:2] == ("int64_t", "int64_t") and ks.merge.scheme == "merge"


def test_scheme_rule_and_column_blocks():
    assert choose_scheme(CUDA.rows_2d, CUDA.cols_2d) == "2D"
    assert choose_scheme(CUDA.rows_2d + 1, 10**7) == "1D"
    assert choose_scheme(100, CUDA.cols_2d - 1) == "1D"
    assert scheme_for("GPU_1D", 10, 10**7) == "1D" and scheme_for("GPU_2D_host", 10**7, 1) == "2D"
    assert scheme_for("GPU", 1000, 10**6) == "2D" and scheme_for("auto", 10**6, 10**6) == "1D"
    for n_blocks, n_red in [(1, 10**6), (8, 10**6), (10**5, 10**6), (3, 5)]:
        chunk = column_chunk(n_blocks, n_red, 128)
        assert chunk % 128 == 0 and chunk >= 128
        splits = -(-n_red // chunk)
        assert splits == 1 or n_blocks * splits <= 2 * CUDA.grid_2d


def _nvrtc_cases():
    """Each (reduction, dtype) for one architecture (float32: sm_80, the others: sm_90),
    both architectures for all with LAZYKERNELS_CUDA_SWEEP=1."""
    for name in sorted(CASES):
        for dtype in DTYPES:
            for arch in ("sm_80", "sm_90"):
                if SWEEP or (arch == "sm_80") == (dtype == "float32"):
                    yield name, dtype, arch


@needs_nvrtc
@pytest.mark.nvrtc
@pytest.mark.parametrize(("name", "dtype", "arch"), list(_nvrtc_cases()))
def test_nvrtc_compiles_both_passes(name, dtype, arch):
    ks = render_cuda(CASES[name], dtype, scheme="2D")
    for kernel in (ks, ks.merge):
        out = nvrtc.compile_source(kernel.source, arch, f"{name}_{kernel.scheme}.cu")
        assert f".entry {kernel.name}(" in out.ptx and f".target {arch}" in out.ptx
        assert out.cubin[:4] == b"\x7fELF" and "warning" not in out.log
    assert "__syncthreads" not in ks.merge.source and "__shared__" not in ks.merge.source


@needs_gxx
@pytest.mark.cpu
def test_torch_adapter_runs_the_2d_scheme_with_the_default_column_blocks(compiled):
    torch = pytest.importorskip("torch")
    from lazykernels.torch.cuda import run_cuda

    rng = np.random.default_rng(11)
    for name, dtype in [("sum_block", "float16"), ("min_argmin", "float64")]:
        plan = CASES[name]
        args = _inputs(rng, (2,), (2,), 37, 37, dtype)[: len(plan.slots)]
        for ranges in (None, RANGES):
            device = EmulatedDevice()
            tensors = [torch.from_numpy(a) for a in args]
            got = run_cuda(plan, tensors, "GPU_2D", ranges, device=device, block=BLOCK)
            want = run_plan(plan, [a.astype(np.float64) for a in args], "reference", ranges)
            (grid1, _, params1), (_, _, params2) = device.launches
            assert params1[5] % BLOCK == 0 and params2[1] == params1[4] > 1  # column blocks
            for g_, w in zip(got, want):
                if g_.dtype == torch.int64:
                    np.testing.assert_array_equal(g_.numpy(), w)
                else:
                    tol = 3e-3 if dtype == "float16" else 1e-12
                    np.testing.assert_allclose(g_.numpy().astype(float), w, rtol=tol, atol=tol)
