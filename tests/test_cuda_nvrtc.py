"""The CUDA dialect and 1D skeleton (codegen/cuda.py), compiled by NVRTC (cuda/nvrtc.py).

NVRTC needs no GPU: each generated source compiles to PTX and cubin for sm_80 and sm_90.
Skipped when the ``cuda`` extra (cuda-bindings + nvidia-cuda-nvrtc) is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.codegen.cuda import render_cuda
from lazykernels.codegen.dialect_cuda import CudaDialect
from lazykernels.core.genred import build_plan
from lazykernels.cuda import nvrtc
from lazykernels.errors import CompileError, FormulaError
from lazykernels.reductions import SPECS

GAUSS = ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(2)"]
PLANS = {
    "gauss_i": build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=1),
    "gauss_j": build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=0),
    "direct": build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=1, sum_scheme="direct_sum"),
    "double_acc": build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=1, use_double_acc=True),
    "no_inner": build_plan("Sqrt(x|x) * g", GAUSS[:3], axis=1),
    "argmin": build_plan("SqDist(x,y)", GAUSS[:2], reduction_op="Min_ArgMin", axis=1),
    "max": build_plan("SqDist(x,y) * g", GAUSS[:3], reduction_op="Max", axis=0),
    "maths": build_plan("Log(1 + Abs(Sin(x) * Cos(y))) / (1 + Atan2(x, y))", GAUSS[:2], axis=1),
    # the other reduction families, printed from their cards' programs
    "lse_weight": build_plan("-SqDist(x,y)", GAUSS, reduction_op="LogSumExp", formula2="b", axis=1),
    "softmax": build_plan("-SqDist(x,y)*g", GAUSS, reduction_op="SumSoftMaxWeight", formula2="b"),
    "kmin_argkmin": build_plan("SqDist(x,y)", GAUSS[:2], "KMin_ArgKMin", axis=1, opt_arg=5),
    "kahan": build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=1, sum_scheme="kahan_scheme"),
}

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")


def test_dialect_spells_cuda_maths_and_specials():
    f, d = CudaDialect("float32"), CudaDialect("float64")
    assert f.function("exp")[0] == "expf" and d.function("exp")[0] == "exp"
    assert f.literal(float("inf")) == "__int_as_float(0x7f800000)"
    assert d.literal(-float("inf")) == "(-__longlong_as_double(0x7ff0000000000000LL))"
    assert f.literal(0.5) == "0.5f" and d.literal(2) == "2.0"


def test_source_is_deterministic_and_tiles_in_shared_memory():
    a = render_cuda(PLANS["gauss_i"], "float32")
    assert a == render_cuda(PLANS["gauss_i"], "float32")
    assert "__shared__ T lk_sh[5 * LK_BLOCK];" in a.source  # y (3, negated) and b (2)
    assert a.source.count("__syncthreads();") == 2 and "expf(" in a.source
    assert a.shared_bytes == 5 * 128 * 4 and a.outputs == ((2, "S"),) and a.n_slots == 4
    assert "__shared__" not in render_cuda(PLANS["no_inner"], "float64").source


def test_unsupported_plans_are_refused_clearly():
    # (the op cards' helpers print for CUDA too: tests/test_cuda_ops.py)
    with pytest.raises(FormulaError, match="schemes"):
        render_cuda(PLANS["gauss_i"], "float32", scheme="3D")
    with pytest.raises(FormulaError, match="float16, float32 or float64"):
        render_cuda(PLANS["gauss_i"], "int32")


def test_every_card_prints_its_outputs():
    for name, card in SPECS.items():
        weight = "b" if card.needs_weight else None
        k = 2 if card.needs_k else None
        plan = build_plan("-SqDist(x,y)", GAUSS, name, axis=1, formula2=weight, opt_arg=k)
        ks = render_cuda(plan, "float64")
        want = tuple(("int64_t" if o.index else "S") for o in card.outputs)
        assert tuple(ctype for _, ctype in ks.outputs) == want, name


@needs_nvrtc
@pytest.mark.nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("name", sorted(PLANS))
def test_nvrtc_compiles_generated_kernels(name, dtype, arch):
    # batches and ranges are runtime arguments of this same kernel (codegen/cuda.py)
    ks = render_cuda(PLANS[name], dtype)
    out = nvrtc.compile_source(ks.source, arch, f"{name}.cu")
    assert f".entry {ks.name}(" in out.ptx
    assert f".target {arch}" in out.ptx
    assert out.cubin[:4] == b"\x7fELF"  # a cubin is an ELF image
    assert "warning" not in out.log
    if name != "maths":  # sinf's slow argument reduction uses f64 in libdevice
        assert (".f64" in out.ptx) == (dtype == "float64" or name == "double_acc")
    # float16: half loads and stores converted in registers, float arithmetic
    assert ("cvt.f32.f16" in out.ptx) == (dtype == "float16")
    assert ("cvt.rn.f16.f32" in out.ptx) == (dtype == "float16")


@needs_nvrtc
@pytest.mark.nvrtc
def test_nvrtc_errors_carry_the_log():
    with pytest.raises(CompileError, match="undefined"):
        nvrtc.compile_source('extern "C" __global__ void k() { undefined_name(); }')
    with pytest.raises(CompileError, match="sm_<digits>"):
        nvrtc.compile_source("", "compute_80; rm")


def test_version_is_two_integers_or_a_clear_error():
    if nvrtc.available():
        major, minor = nvrtc.version()
        assert major >= 12 and minor >= 0
    else:
        from lazykernels.errors import CompatibilityError

        with pytest.raises(CompatibilityError, match="lazykernels\\[cuda\\]"):
            nvrtc.version()


def test_float64_accumulator_is_declared():
    assert "typedef double A;" in render_cuda(PLANS["double_acc"], np.float32).source


@needs_nvrtc
@pytest.mark.nvrtc
def test_every_cards_merge_compiles_as_device_code():
    # the 2D scheme's merge of partial states: the card's merge statements, CUDA dialect
    from lazykernels.codegen.dialect_cuda import CudaDialect
    from lazykernels.codegen.reductions_cuda import thread_reduction

    for name, card in SPECS.items():
        red = thread_reduction(
            name,
            2 if not card.scalar_formula else 1,
            2,
            3,
            "kahan_scheme",
            CudaDialect("float32"),
            False,
        )
        params = [f"{ctype}* d_{n}, const {ctype}* s_{n}" for n, ctype, _ in red.layout()]
        body = red.merge(lambda f, i: f"d_{f}[{i}]", lambda f, i: f"s_{f}[{i}]")
        source = "\n".join(
            [
                "typedef long long int64_t;",
                "typedef float T;",
                "typedef double A;",
                f'extern "C" __global__ void merge({", ".join(params)}) {{',
                *body,
                "}",
            ]
        )
        out = nvrtc.compile_source(source, "sm_80", f"merge_{name}.cu")
        assert ".entry merge(" in out.ptx and "warning" not in out.log, name


@needs_nvrtc
@pytest.mark.nvrtc
def test_cubins_are_cached_by_content_and_checked(tmp_path, monkeypatch):
    from lazykernels.cuda import cubin as cubins
    from lazykernels.errors import CacheWarning

    monkeypatch.setenv("LAZYKERNELS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cubins, "_MEMORY", {})
    source = render_cuda(PLANS["gauss_i"], "float32").source
    image, built = cubins.cubin(source, "sm_80")
    assert built and image[:4] == b"\x7fELF"
    key = cubins.cubin_key(source, "sm_80")
    assert (tmp_path / "cache" / f"{key}.cubin").read_bytes() == image
    assert (tmp_path / "cache" / f"{key}.cu").read_text() == source
    assert cubins.cubin(source, "sm_80") == (image, False)  # from memory
    monkeypatch.setattr(cubins, "_MEMORY", {})
    assert cubins.cubin(source, "sm_80") == (image, False)  # from disk
    assert cubins.cubin_key(source, "sm_90") != key
    assert cubins.cubin_key(source + "\n", "sm_80") != key
    target = tmp_path / "cache" / f"{key}.cubin"
    target.chmod(0o600)
    target.write_bytes(b"planted")
    monkeypatch.setattr(cubins, "_MEMORY", {})
    with pytest.warns(CacheWarning, match="sha256"):
        again, built = cubins.cubin(source, "sm_80")
    assert built and again == image
