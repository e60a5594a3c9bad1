"""The op cards' helper functions in CUDA kernels (Rsqrt, SinXDivX, XLogX, Pow, Round, Sign,
Step, Mod, Clamp, ClampInt, DiffClampInt, Fence) and the gradients that call them.

Each kernel of tests/cuda_op_cases.py is compiled by NVRTC for sm_80 and sm_90 (skipped
without the ``cuda`` extra) and run in the host emulation (cuda/emulation.py, the same
kernel text) against the cases' dense float64 NumPy computation, singular points included.
Every card of the registry, and its gradient, prints for CUDA and compiles.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lazykernels.codegen.cuda import render_cuda
from lazykernels.codegen.dialect_cpu import CpuDialect
from lazykernels.codegen.dialect_cuda import CudaDialect, CudaHalfDialect
from lazykernels.codegen.helpers import HELPERS
from lazykernels.core.genred import build_plan
from lazykernels.cuda import nvrtc
from lazykernels.errors import FormulaError
from lazykernels.formula import Cat, grad, make, var
from lazykernels.formula.ops import OPS

from .cuda_op_cases import CASES, DTYPES, SIZES, check, data, plan


def test_every_op_with_a_helper_has_a_case():
    with_helpers = {name for name, card in OPS.items() if card.helpers}
    assert with_helpers == set().union(*(case[3] for case in CASES.values()))
    assert {h for card in OPS.values() for h in card.helpers} == set(HELPERS)


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_helpers_print_in_every_dialect(name):
    for dialect in (CpuDialect("float32"), CudaDialect("float32"), CudaDialect("float64")):
        text = dialect.helper(name)
        assert "$" not in text and f" {name}(" in text
    cuda = CudaDialect("float32").helper(name)
    assert "std::" not in cuda and cuda.startswith("template <typename T> static __device__")
    assert CudaHalfDialect().helper(name) == cuda  # half data: float arithmetic
    if "$" in HELPERS[name].replace("${qualifier}", ""):  # a maths call: float vs double
        assert CudaDialect("float64").helper(name) != cuda


def test_unknown_and_target_helpers_are_refused_clearly(monkeypatch):
    with pytest.raises(FormulaError, match="CudaDialect has no source for the helper 'lk_exp'"):
        CudaDialect("float32").helper("lk_exp")  # the CPU's own vectorised exp
    with pytest.raises(FormulaError, match="'lk_nothing'"):
        CpuDialect("float64").helper("lk_nothing")
    monkeypatch.setitem(HELPERS, "lk_typo", "template <typename T> T lk_typo(T x) { $sqrtt(x); }")
    with pytest.raises(FormulaError, match="lk_typo calls sqrtt, not a neutral maths function"):
        CudaDialect("float32").helper("lk_typo")
    monkeypatch.setitem(HELPERS, "lk_e", "template <typename T> T lk_e(T x) { return $exp(x); }")
    assert CudaDialect("float32").helper("lk_e").endswith("{ return expf(x); }")
    with pytest.raises(FormulaError, match=r"lk_e calls exp, which needs \['lk_exp'\]"):
        CpuDialect("float32").helper("lk_e")  # the CPU's exp is a helper of its own


def test_kernels_print_only_the_helpers_they_call():
    source = render_cuda(plan("grad_rsqrt"), "float32").source
    assert source.count("static __device__ inline") == 2  # lk_powi, lk_rsqrt
    assert source.index("lk_powi(T x, int m)") < source.index("lk_rsqrt(T x)")
    assert "lk_powi<T>(" in source and "sqrtf(x)" in source
    two_d = render_cuda(plan("grad_rsqrt"), "float64", scheme="2D")
    assert "lk_rsqrt(T x)" in two_d.source and "lk_rsqrt" not in two_d.merge.source


def _one_unit(sources: list[str]) -> str:
    """Kernels in one NVRTC program (one compile): each text unchanged in a namespace of
    its own, its entry point renamed by a macro (as the emulation's ``_unit`` does)."""
    parts = []
    for n, text in enumerate(sources):
        parts += [f"#define lk_cuda_kernel lk_cuda_kernel_{n}", f"namespace lk_{n} {{", text]
        parts += ["}", "#undef LK_BLOCK", "#undef lk_cuda_kernel"]
    return "\n".join(parts)


@pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
@pytest.mark.nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nvrtc_compiles_kernels_with_helpers(dtype, arch):
    # every case in one program per dtype and architecture (one NVRTC run: ~40 % faster
    # than one per kernel); a failure's log names the kernel's namespace lk_<n>
    names = sorted(CASES)
    out = nvrtc.compile_source(
        _one_unit([render_cuda(plan(n), dtype).source for n in names]), arch, f"ops_{dtype}.cu"
    )
    assert f".target {arch}" in out.ptx and out.cubin[:4] == b"\x7fELF"
    assert all(f".entry lk_cuda_kernel_{k}(" in out.ptx for k in range(len(names)))
    assert "warning" not in out.log
    if dtype == "float16":  # half loads and stores converted in registers
        assert "cvt.f32.f16" in out.ptx and "cvt.rn.f16.f32" in out.ptx


def _card_plans() -> dict[str, object]:
    """Every card applied to variables of its test dimensions (even arguments indexed by i,
    odd ones by j: the op is evaluated per pair), and its gradient where it has one."""
    plans = {}
    for name, card in sorted(OPS.items()):
        spec = card.test
        if spec is None or card.arity == 0:
            continue
        xs = [var(k, d, Cat.I if k % 2 == 0 else Cat.J) for k, d in enumerate(spec.arg_dims)]
        node = make(card, tuple(xs), spec.params)
        cot = var(len(xs), node.dim, Cat.I)
        aliases = [f"v{k}=Var({k},{v.dim},{v.params[2].value})" for k, v in enumerate(xs)]
        plans[name] = build_plan(str(node), aliases, axis=1)
        if spec.grad:
            aliases.append(f"v{len(xs)}=Var({len(xs)},{node.dim},0)")
            plans[f"Grad({name})"] = build_plan(str(grad(node, xs[0], cot)), aliases, axis=1)
    return plans


def test_every_card_and_its_gradient_prints_for_cuda():
    plans = _card_plans()
    assert len(plans) > 100 and {"Rsqrt", "Grad(Rsqrt)", "Grad(Pow)"} <= set(plans)
    for name, card_plan in plans.items():
        for dtype in ("float16", "float64"):
            ks = render_cuda(card_plan, dtype)
            assert f"__global__ void {ks.name}(" in ks.source, name


@pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
@pytest.mark.nvrtc
def test_nvrtc_compiles_every_card_and_its_gradient():
    # one architecture (the helper ops of CASES are compiled for both, above): ~10 s
    plans = _card_plans()
    sources = [render_cuda(p, "float32").source for p in plans.values()]
    out = nvrtc.compile_source(_one_unit(sources), "sm_80", "cards.cu")
    assert all(f".entry lk_cuda_kernel_{n}(" in out.ptx for n in range(len(plans)))
    assert "warning" not in out.log


needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ for the emulation")


@pytest.fixture(scope="module")
def emulated():
    """Every case's kernel for each of its dtypes, compiled together (a few g++ runs)."""
    from lazykernels.cuda import emulation

    kernels = {(n, t): render_cuda(plan(n), t, block=32) for n, t in DTYPES}
    emulation.prepare(list(kernels.values()))
    return kernels


@needs_gxx
@pytest.mark.cpu
@pytest.mark.parametrize(("name", "dtype"), DTYPES)
def test_emulated_kernel_matches_dense_numpy(name, dtype, emulated):
    from lazykernels.cuda.emulation import Emulated

    kernel = Emulated(emulated[name, dtype], dtype)
    rng = np.random.default_rng(len(name))
    for m, n in SIZES:
        args = data(rng, name, m, n)
        (got,) = kernel.run(m, n, [a.astype(dtype) for a in args])
        check(name, dtype, got, args)


@needs_gxx
@pytest.mark.cpu
def test_cuda_powi_helper_at_zero_and_negative_exponents(tmp_path):
    # formulas never reach lk_powi with m = 0 (Pow(f, 0) simplifies to 1): call the CUDA
    # text directly, behind the emulation's header, for m in -3..3 at 0 and negative x
    import ctypes
    import subprocess

    from lazykernels.cuda.emulation import HEADER

    lines = [HEADER]
    for ctype in ("float", "double"):
        text = CudaDialect("float32" if ctype == "float" else "float64").helper("lk_powi")
        lines += [f"namespace {ctype}_ns {{", text, "}"]
        lines.append(
            f'extern "C" double powi_{ctype}(double x, int m) '
            f"{{ return {ctype}_ns::lk_powi<{ctype}>(({ctype})x, m); }}"
        )
    (tmp_path / "powi.cpp").write_text("\n".join(lines))
    lib = tmp_path / "powi.so"
    cmd = ["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-Wall", "-Wextra"]
    done = subprocess.run([*cmd, str(tmp_path / "powi.cpp"), "-o", str(lib)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    library = ctypes.CDLL(str(lib))
    for ctype, dtype in (("float", np.float32), ("double", np.float64)):
        fn = getattr(library, f"powi_{ctype}")
        fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_double, ctypes.c_int]
        for x in (-1.75, -0.5, 0.0, 1.25):
            for m in range(-3, 4):
                with np.errstate(divide="ignore"):
                    want = float(np.float64(x) ** m)  # 0 ** -m = inf, 0 ** 0 = 1
                got = fn(x, m)
                assert got == pytest.approx(want, rel=4 * float(np.finfo(dtype).eps)), (ctype, x, m)
