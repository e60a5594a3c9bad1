"""The op cards' helper functions in CUDA kernels (Rsqrt, SinXDivX, XLogX, Pow, Round, Sign,
Step, Mod, Clamp, ClampInt, DiffClampInt) and the gradients that call them.

Each kernel is compiled by NVRTC for sm_80 and sm_90 (skipped without the ``cuda`` extra)
and run in the host emulation (cuda/emulation.py, the same kernel text) against a dense
float64 NumPy computation written here, singular points included: the data sit on a grid,
so x - y and |x - y|^2 are exactly 0 for some pairs (Rsqrt(0) = 0, SinXDivX(0) = 1,
XLogX(0) = 0, Sign(0) = 0, Step(0) = 1, the clamps' bounds), or on a grid shifted by a
quarter (never 0, negative for half the pairs: negative powers, halves of Round).
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


def _aliases(d: int) -> list[str]:
    return [f"x=Vi({d})", f"y=Vj({d})", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)", f"u=Vi({d})"]


def _where(mask, value, x):
    return np.where(mask, value, x)


def _rsqrt(v):
    return _where(v == 0, 0.0, 1 / np.sqrt(_where(v == 0, 1.0, v)))


def _sinc(v):
    return _where(v == 0, 1.0, np.sin(v) / _where(v == 0, 1.0, v))


def _xlogx(v):
    return _where(v == 0, 0.0, v * np.log(_where(v == 0, 1.0, v)))


def _round1(v):  # one decimal, halves away from zero
    return np.sign(v) * np.floor(np.abs(v) * 10 + 0.5) / 10


# name -> (formula, data grid, vector dim, ops covered, per-pair dense terms (m, n, width)).
# The terms read a dict: d = x_i - y_j (m, n, D), r2 = |d|^2 (m, n, 1), b, g, e, u
# broadcast to (m, n, .).
CASES = {
    "rsqrt": ("Rsqrt(SqDist(x,y)) * b", "zero", 2, {"Rsqrt"}, lambda a: _rsqrt(a["r2"]) * a["b"]),
    "sinxdivx": ("SinXDivX(x - y)", "zero", 2, {"SinXDivX"}, lambda a: _sinc(a["d"])),
    "xlogx": ("XLogX(SqDist(x,y)) * b", "zero", 2, {"XLogX"}, lambda a: _xlogx(a["r2"]) * a["b"]),
    "pow_negative": (
        "Concat(Pow(x - y, -3), Pow(x - y, -2))",
        "shift",
        2,
        {"Pow"},
        lambda a: np.concatenate([a["d"] ** -3, a["d"] ** -2], -1),
    ),
    "pow_zero_positive": (  # Pow(f, 0) simplifies to 1 (0 ** 0 = 1, as NumPy)
        "Concat(Pow(x - y, 5), Concat(Pow(x - y, 0), Pow(x - y, 2)))",
        "zero",
        2,
        {"Pow"},
        lambda a: np.concatenate([a["d"] ** 5, a["d"] ** 0, a["d"] ** 2], -1),
    ),
    "round": ("Round(x - y, 1)", "shift", 2, {"Round"}, lambda a: _round1(a["d"])),
    "sign_step": (
        "Concat(Sign(x - y), Step(x - y))",
        "zero",
        2,
        {"Sign", "Step"},
        lambda a: np.concatenate([np.sign(a["d"]), (a["d"] >= 0) * 1.0], -1),
    ),
    "mod": (
        "Mod(x - y, g, y)",
        "shift",
        2,
        {"Mod"},
        lambda a: a["d"] - a["g"] * np.floor((a["d"] - a["y"]) / a["g"]),
    ),
    "clamps": (
        "Concat(Clamp(x - y, -g, y), Concat(ClampInt(x - y, -1, 1), DiffClampInt(x - y, -1, 1)))",
        "zero",
        2,
        {"Clamp", "ClampInt", "DiffClampInt"},
        lambda a: np.concatenate(
            [
                np.where(a["d"] < -a["g"], -a["g"], np.where(a["d"] > a["y"], a["y"], a["d"])),
                np.clip(a["d"], -1, 1),
                ((a["d"] >= -1) & (a["d"] <= 1)) * 1.0,
            ],
            -1,
        ),
    ),
    "looped": (  # dimension 40: the templates inside the kernel IR's loops
        "Sum(SinXDivX(x - y) + XLogX(Abs(x - y)))",
        "zero",
        40,
        {"SinXDivX", "XLogX"},
        lambda a: (_sinc(a["d"]) + _xlogx(np.abs(a["d"]))).sum(-1, keepdims=True),
    ),
    # gradients: Rsqrt's calls Pow, Sqrt's calls Rsqrt, Abs's Sign, ReLU's Step, ClampInt's
    # DiffClampInt; d/dx Rsqrt(|x-y|^2) = -(x-y) |x-y|^-3, 0 where x = y (Rsqrt(0)^3 = 0)
    "grad_rsqrt": (
        "Grad(Rsqrt(SqDist(x,y)) * b, x, e)",
        "zero",
        2,
        {"Rsqrt", "Pow"},
        lambda a: -a["e"] * a["b"] * a["d"] * _rsqrt(a["r2"]) ** 3,
    ),
    "grad_sinxdivx": (
        "Grad(SinXDivX(x - y), x, u)",
        "shift",
        2,
        {"SinXDivX"},
        lambda a: a["u"] * (np.cos(a["d"]) - np.sin(a["d"]) / a["d"]) / a["d"],
    ),
    "grad_xlogx": (
        "Grad(XLogX(SqDist(x,y)), x, e)",
        "shift",
        2,
        {"XLogX"},
        lambda a: a["e"] * (np.log(a["r2"]) + 1) * 2 * a["d"],
    ),
    "grad_pow": (
        "Grad(Pow(x - y, -3) + Pow(x - y, 3), x, u)",
        "shift",
        2,
        {"Pow"},
        lambda a: a["u"] * (-3 * a["d"] ** -4 + 3 * a["d"] ** 2),
    ),
    "grad_sqrt_abs": (
        "Grad(Sqrt(SqDist(x,y)) + Abs(x - y), x, u)",
        "shift",
        2,
        {"Rsqrt", "Sign"},
        lambda a: (
            a["u"].sum(-1, keepdims=True) * a["d"] / np.sqrt(a["r2"]) + a["u"] * np.sign(a["d"])
        ),
    ),
    "grad_piecewise": (
        "Grad(ReLU(x - y) + ClampInt(x - y, -1, 1) + Mod(x - y, g, y), x, u)",
        "shift",
        2,
        {"Step", "DiffClampInt"},
        lambda a: a["u"] * ((a["d"] >= 0) * 1.0 + (np.abs(a["d"]) <= 1) + 1.0),
    ),
}
HALF = [n for n in CASES if not n.startswith("grad")]  # storage in half, arithmetic in float
SIZES = [(37, 45), (1, 3)]  # tails of the 32-thread blocks; one row, one partial tile
DTYPES = [(n, t) for n in sorted(CASES) for t in ("float32", "float64")]
DTYPES += [(n, "float16") for n in sorted(HALF)]


def _plan(name):
    formula, _, dim, _, _ = CASES[name]
    return build_plan(formula, _aliases(dim), axis=1)


def _data(rng, grid: str, dim: int, m: int, n: int) -> list[np.ndarray]:
    """x, y, b, g, e, u on the half-integers in [-1.5, 1.5] (exact in float16); ``shift``
    moves y by a quarter, so x - y is never 0."""
    x = rng.integers(-3, 4, (m, dim)) * 0.5
    y = rng.integers(-3, 4, (n, dim)) * 0.5 + (0.25 if grid == "shift" else 0.0)
    b = rng.integers(-3, 4, (n, 1)) * 0.5
    e = rng.integers(-3, 4, (m, 1)) * 0.5
    u = rng.integers(-3, 4, (m, dim)) * 0.5
    return [x, y, b, np.array([1.5]), e, u]


def _dense(name: str, args: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The float64 sum over j of the case's terms, and the sum of their absolute values."""
    x, y, b, g, e, u = (np.asarray(a, dtype=np.float64) for a in args)
    d = x[:, None, :] - y[None, :, :]
    values = {
        "d": d,
        "r2": (d**2).sum(-1, keepdims=True),
        "y": y[None, :, :],
        "b": b[None, :, :],
        "g": g[None, None, :],
        "e": e[:, None, :],
        "u": u[:, None, :],
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = CASES[name][4](values)
    return terms.sum(1), np.abs(terms).sum(1)


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


def test_unknown_and_target_helpers_are_refused_clearly():
    with pytest.raises(FormulaError, match="CudaDialect has no source for the helper 'lk_exp'"):
        CudaDialect("float32").helper("lk_exp")  # the CPU's own vectorised exp
    with pytest.raises(FormulaError, match="'lk_nothing'"):
        CpuDialect("float64").helper("lk_nothing")


def test_kernels_print_only_the_helpers_they_call():
    source = render_cuda(_plan("grad_rsqrt"), "float32").source
    assert source.count("static __device__ inline") == 2  # lk_powi, lk_rsqrt
    assert source.index("lk_powi(T x, int m)") < source.index("lk_rsqrt(T x)")
    assert "lk_powi<T>(" in source and "sqrtf(x)" in source
    two_d = render_cuda(_plan("grad_rsqrt"), "float64", scheme="2D")
    assert "lk_rsqrt(T x)" in two_d.source and "lk_rsqrt" not in two_d.merge.source


@pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
@pytest.mark.nvrtc
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize(("name", "dtype"), DTYPES)
def test_nvrtc_compiles_kernels_with_helpers(name, dtype, arch):
    ks = render_cuda(_plan(name), dtype)
    out = nvrtc.compile_source(ks.source, arch, f"{name}.cu")
    assert f".entry {ks.name}(" in out.ptx and f".target {arch}" in out.ptx
    assert out.cubin[:4] == b"\x7fELF" and "warning" not in out.log


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


def _one_unit(sources: list[str]) -> str:
    """Kernels in one NVRTC program (one compile): each text unchanged in a namespace of
    its own, its entry point renamed by a macro (as the emulation's ``_unit`` does)."""
    parts = []
    for n, text in enumerate(sources):
        parts += [f"#define lk_cuda_kernel lk_cuda_kernel_{n}", f"namespace lk_{n} {{", text]
        parts += ["}", "#undef LK_BLOCK", "#undef lk_cuda_kernel"]
    return "\n".join(parts)


def test_every_card_and_its_gradient_prints_for_cuda():
    plans = _card_plans()
    assert len(plans) > 100 and {"Rsqrt", "Grad(Rsqrt)", "Grad(Pow)"} <= set(plans)
    for name, plan in plans.items():
        for dtype in ("float16", "float64"):
            ks = render_cuda(plan, dtype)
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

    kernels = {(n, t): render_cuda(_plan(n), t, block=32) for n, t in DTYPES}
    emulation.prepare(list(kernels.values()))
    return kernels


@needs_gxx
@pytest.mark.cpu
@pytest.mark.parametrize(("name", "dtype"), DTYPES)
def test_emulated_kernel_matches_dense_numpy(name, dtype, emulated):
    from lazykernels.cuda.emulation import Emulated

    _, grid, dim, _, _ = CASES[name]
    kernel = Emulated(emulated[name, dtype], dtype)
    rng = np.random.default_rng(len(name))
    tol = {"float16": 2e-3, "float32": 1e-5, "float64": 1e-13}[dtype]
    for m, n in SIZES:
        args = _data(rng, grid, dim, m, n)
        (got,) = kernel.run(m, n, [a.astype(dtype) for a in args])
        want, scale = _dense(name, args)
        if grid == "zero" and m > 1:  # the singular points are in the data: x_i = y_j
            same = args[0][:, None, :] == args[1][None, :, :]
            assert (same.all(-1) if dim == 2 else same).any()
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        assert np.isfinite(want).all()  # the data keep clear of the undefined points
        bound = tol * (scale + np.abs(want)) + (tol if dtype == "float16" else 0.0)
        err = np.abs(got.astype(np.float64) - want)
        assert (err <= bound).all(), f"{name} {dtype} {m}x{n}: max error {err.max()}"
