"""Formulas of looped dimension (above the unrolling threshold, 32) in the CUDA kernels: the
kernel IR's loops printed by the CUDA dialect, reduction-side vectors staged in shared
memory (or, when they cannot fit the smallest tile, recomputed from global memory), looped
root formulas reduced one component at a time. Host emulation against the NumPy reference
(1D and 2D schemes), and NVRTC compiles. No GPU is used."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest

from lazykernels.codegen.cuda import render_cuda
from lazykernels.codegen.target_cuda import CUDA
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.cuda import emulation, nvrtc
from lazykernels.cuda.emulation import Emulated, EmulatedDevice
from lazykernels.cuda.runner import kernel_source, run

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
BLOCK = 8

KNN = build_plan("SqDist(x,y)", ["x=Vi(50)", "y=Vj(50)"], reduction_op="ArgKMin", axis=1, opt_arg=5)
KNN_VALUES = build_plan(
    "SqDist(x,y)", ["x=Vi(50)", "y=Vj(50)"], reduction_op="KMin_ArgKMin", axis=1, opt_arg=3
)
# a Gaussian matvec with a 64-dim weight: a looped root, one pass per component
MATVEC = build_plan("Exp(-SqDist(x,y)*g)*b", ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(64)"], axis=1)
# a Sum over a looped dimension inside the formula, a computed reduction-side vector
LOOP_SUM = build_plan(
    "Exp(-Sum((x - 2*y)**2) * g) * c", ["x=Vi(40)", "y=Vj(40)", "g=Pm(1)", "c=Vj(1)"], axis=1
)
ONEHOT = build_plan("OneHot(u, 100) * v", ["u=Vi(1)", "v=Vj(1)"], axis=1)
MATRIX = build_plan("MatVecMult(a, y)", ["a=Vi(3200)", "y=Vj(50)"], reduction_op="Max", axis=1)
PLANS = {
    "knn": KNN,
    "knn_values": KNN_VALUES,
    "matvec": MATVEC,
    "loop_sum": LOOP_SUM,
    "onehot": ONEHOT,
    "matrix": MATRIX,
}


def _args(plan, rng, m, n, dtype):
    out = []
    for s in plan.slots:
        rows = {"I": m, "J": n}.get(s.cat.name)
        shape = (s.dim,) if rows is None else (rows, s.dim)
        a = rng.standard_normal(shape)
        if plan is ONEHOT and s.cat.name == "I":
            a = rng.integers(0, 100, shape).astype(np.float64)
        if s.cat.name == "PARAM":
            a = np.full(shape, 0.05)
        out.append((a * (0.3 if plan is LOOP_SUM else 1)).astype(dtype))
    return out


@pytest.fixture(scope="module")
def compiled():
    if shutil.which("g++") is None:
        pytest.skip("no g++ for the emulation")
    kernels = []
    for plan in PLANS.values():
        for dtype in ("float32", "float64"):
            kernels.append(render_cuda(plan, dtype, BLOCK))
            two = render_cuda(plan, dtype, BLOCK, "2D")
            kernels += [two, two.merge]
    kernels.append(render_cuda(KNN, "float16", BLOCK))
    emulation.prepare(kernels)


def _compare(plan, args, got, tol):
    want = run_plan(plan, [a.astype(np.float64) for a in args], backend="reference")
    for g, w in zip(got, want):
        if g.dtype == np.int64:
            np.testing.assert_array_equal(g, w.reshape(g.shape))
        else:
            np.testing.assert_allclose(
                g.astype(np.float64), w.reshape(g.shape), rtol=tol, atol=tol * (1 + abs(w).max())
            )


@pytest.mark.cpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scheme", ["1D", "2D"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_looped_dimensions_match_the_reference(compiled, name, scheme, dtype):
    plan = PLANS[name]
    rng = np.random.default_rng(len(name))
    args = _args(plan, rng, 13, 29, dtype)
    call = bind(plan, args, None)
    run(call, EmulatedDevice(), block=BLOCK, scheme=scheme, chunk=2 * BLOCK)
    _compare(plan, args, call.outputs, 3e-5 if dtype == "float32" else 1e-12)


@pytest.mark.cpu
def test_knn_d50_half_storage(compiled):
    rng = np.random.default_rng(4)
    args = _args(KNN, rng, 13, 29, np.float16)
    (got,) = Emulated(render_cuda(KNN, "float16", BLOCK)).run(13, 29, args)
    (want,) = run_plan(KNN, [a.astype(np.float64) for a in args], backend="reference")
    assert (got == want).mean() > 0.9  # float arithmetic: near-ties may differ


def test_loops_print_plain_c_and_stage_vectors_in_shared_memory():
    ks = render_cuda(KNN, "float32")
    assert "#pragma" not in ks.source and "std::" not in ks.source
    assert re.search(r"for \(int64_t c\d+ = 0; c\d+ < 50; \+\+c\d+\)", ks.source)
    assert "__shared__ T lk_sh[50 * LK_BLOCK];" in ks.source and ks.staged  # -y_j, staged
    assert ks.shared_bytes == 50 * 128 * 4
    vec = render_cuda(MATVEC, "float32")  # one pass of the Sum per component of b
    assert "for (int64_t cc = 0; cc < 64; ++cc)" in vec.source and vec.outputs == ((64, "S"),)


def test_staging_that_cannot_fit_reads_global_memory():
    # float64 D=50 at 128 threads: 51200 bytes > 48 KiB, the tile shrinks to 96 indices
    ks = kernel_source(KNN, "float64")
    assert ks.block == 96 and ks.shared_bytes <= CUDA.shared_budget and ks.staged
    # D=200 float64 does not fit even 32 indices (51200 bytes): recomputed from global
    wide = build_plan(
        "SqDist(x,y)", ["x=Vi(200)", "y=Vj(200)"], reduction_op="ArgKMin", axis=1, opt_arg=3
    )
    ks = kernel_source(wide, "float64")
    assert not ks.staged and ks.shared_bytes == 0 and "global memory" in ks.source
    tiny = replace(CUDA, shared_budget=512)  # the same choice, made small for the emulation
    ks = render_cuda(LOOP_SUM, "float64", BLOCK, target=tiny)
    assert not ks.staged and "T* const ys" not in ks.source
    if shutil.which("g++") is not None:
        args = _args(LOOP_SUM, np.random.default_rng(5), 13, 29, "float64")
        _compare(LOOP_SUM, args, Emulated(ks).run(13, 29, args), 1e-12)


# MatVecMult 64 x 50 under a Max takes NVRTC ~7 s (ptxas on the unrolled component loops)
NVRTC_PLANS = (
    sorted(PLANS) if os.environ.get("LAZYKERNELS_CUDA_SWEEP") else sorted(set(PLANS) - {"matrix"})
)


@needs_nvrtc
@pytest.mark.nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", NVRTC_PLANS)
def test_nvrtc_compiles_looped_kernels(name, arch):
    dtype = "float32" if arch == "sm_80" else "float16"
    ks = render_cuda(PLANS[name], dtype, scheme="2D" if name in ("knn", "matvec") else "1D")
    for kernel in (ks, ks.merge) if ks.merge else (ks,):
        out = nvrtc.compile_source(kernel.source, arch, f"{name}.cu")
        assert f".entry {kernel.name}(" in out.ptx and "warning" not in out.log
