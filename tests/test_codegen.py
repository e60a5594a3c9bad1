"""Code generation: lowering to scalar SSA, the printed CPU kernel, golden sources, lk_exp.

The compiler-free tests check the lowering (levels, hoisting, CSE, literals, determinism,
no user text); golden files pin the printed source of a few plans byte for byte (refresh with
``pytest --update-golden``); ``cpu`` tests compile the exp helper and check its accuracy and
that GCC vectorises the inner loop of a generated kernel.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lazykernels.codegen.buffer import IndentedBuffer
from lazykernels.codegen.cpp import render_cpu
from lazykernels.codegen.dialect_cpu import CpuDialect, c_literal
from lazykernels.codegen.fastmath import CPU_HELPERS
from lazykernels.codegen.kir import Scope, Sym
from lazykernels.codegen.lower import LowerCtx, Names, lower
from lazykernels.codegen.prelude import includes
from lazykernels.core.genred import build_plan
from lazykernels.core.plan import ArgSlot, ReductionPlan
from lazykernels.errors import CompileError, DimensionError, FormulaError
from lazykernels.formula import Cat, make, var
from lazykernels.formula.ops import OPS

GOLDEN = Path(__file__).parent / "golden"
GAUSS = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]


def _golden_plans() -> dict[str, tuple[ReductionPlan, str]]:
    return {
        "gauss_sum_f32": (build_plan("Exp(-SqDist(x,y)*g)*b", GAUSS, axis=1), "float32"),
        "logsumexp_axis0_f64": (
            build_plan("-SqDist(x,y)*g + b", GAUSS, reduction_op="LogSumExp", axis=0),
            "float64",
        ),
        "argkmin_f32": (
            build_plan("SqDist(x,y)", GAUSS[:2], reduction_op="ArgKMin", axis=1, opt_arg=4),
            "float32",
        ),
        # D >= 16: the blocked |u|^2 + |w|^2 + 2 u.w path (sqdist_cpp)
        "argkmin_sqdist_gemm_f32": (
            build_plan(
                "SqDist(x,y)",
                ["x = Vi(16)", "y = Vj(16)"],
                reduction_op="ArgKMin",
                axis=1,
                opt_arg=4,
            ),
            "float32",
        ),
        # The batch and ranges layouts are runtime arguments of the same kernel: this plan
        # is the one the batch + ranges tests run (a weighted softmax, Kahan, double acc).
        "softmax_kahan_f32": (
            build_plan(
                "-SqDist(x,y)*g",
                GAUSS,
                reduction_op="SumSoftMaxWeight",
                axis=1,
                formula2="y*b",
                dtype_acc="float64",
                sum_scheme="kahan_scheme",
            ),
            "float32",
        ),
    }


@pytest.mark.parametrize("name", sorted(_golden_plans()))
def test_golden_source(name, request):
    plan, dtype = _golden_plans()[name]
    source = render_cpu(plan, dtype).source
    path = GOLDEN / f"{name}.cpp"
    if request.config.getoption("--update-golden"):
        path.write_text(source)
    assert path.exists(), f"missing {path}: run pytest --update-golden"
    assert source == path.read_text(), f"{name}: generated source changed (--update-golden)"


def test_same_plan_same_bytes_across_processes():
    plan, dtype = _golden_plans()["gauss_sum_f32"]
    here = hashlib.sha256(render_cpu(plan, dtype).source.encode()).hexdigest()
    again = hashlib.sha256(render_cpu(plan, dtype).source.encode()).hexdigest()
    script = textwrap.dedent(
        """
        import hashlib
        from lazykernels.codegen.cpp import render_cpu
        from lazykernels.core.genred import build_plan
        from lazykernels.formula import make, var, Cat
        make("Exp", (var(7, 5, Cat.I),))  # other nodes built first must not matter
        plan = build_plan("Exp(-SqDist(x,y)*g)*b",
                          ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"], axis=1)
        print(hashlib.sha256(render_cpu(plan, "float32").source.encode()).hexdigest())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert here == again == out.stdout.strip()


def test_no_user_text_in_source():
    secret = "ZZsecretZZ"
    aliases = [f"{secret}x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]
    plan = build_plan(f"Exp(-SqDist({secret}x,y)*g)*b", aliases, axis=1)
    source = render_cpu(plan, "float32").source
    assert secret not in source
    # the same formula under other alias names prints the same kernel
    assert source == render_cpu(_golden_plans()["gauss_sum_f32"][0], "float32").source


# --- lowering ---------------------------------------------------------------------------


def _statements(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"const T (\w+) = (.*);$", line)
        assert m, line
        out[m.group(1)] = m.group(2)
    return out


def test_lowering_hoists_by_dependence():
    x, y, p = var(0, 2, Cat.I), var(1, 2, Cat.J), var(2, 1, Cat.PARAM)
    outer = make("Exp", (x,))  # i only: once per output row
    inner = make("Log", (y,))  # j only: precomputed once per call
    param = make("Exp", (p,))  # parameters only: once per batch entry
    f = make("Sum", (make("Mult", (make("Add", (outer, inner)), param)),))
    prog = lower([f], "float64", Cat.I)
    assert any("lk_exp(p" in s for s in prog.param)
    assert sum("lk_exp(x" in s for s in prog.outer) == 2
    assert sum("std::log(y" in s for s in prog.inner) == 2
    mixed = " ".join(prog.mixed)
    assert "exp" not in mixed and "log" not in mixed
    assert len(prog.outer_store) == 2 and len(prog.precomputed) == 2
    # swapped roles: j is the output index, the same formula is hoisted the other way
    prog_j = lower([f], "float64", Cat.J)
    outer, inner = " ".join(prog_j.outer), " ".join(prog_j.inner)
    assert "a1[i * 2 + 1]" in outer and outer.count("std::log") == 2 and "a0" not in outer
    assert "a0[j * 2 + 1]" in inner and inner.count("lk_exp") == 2 and "a1" not in inner


def test_lowering_emits_each_node_once():
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    d = make("Subtract", (x, y))
    e = make("Exp", (make("Sum", (make("Square", (d,)),)),))
    f = make("Mult", (e, make("Sum", (make("Mult", (d, e)),))))
    prog = lower([f, e], "float32", Cat.I)
    mixed = _statements(prog.mixed)
    assert sum("lk_exp" in rhs for rhs in mixed.values()) == 1
    assert sum(rhs.startswith("(xr") and "+ yr" in rhs for rhs in mixed.values()) == 3
    assert prog.roots[1][0] in mixed and len(prog.roots[0]) == 1


GRAD = "Grad(Exp(-SqDist(x,y)*g)*b, x, e)"  # -2 (e b g (x - y) Exp(..)) after simplification


def test_products_are_regrouped_by_level():
    plan = build_plan(GRAD, [*GAUSS, "e = Vi(1)"], axis=1)
    prog = lower([plan.formula], "float32", Cat.I)
    mixed = _statements(prog.mixed)
    products = [r for r in mixed.values() if re.fullmatch(r"\((\w+) \* (?!\1\))\w+\)", r)]
    # e * b, then * exp, then one product per component: 5, not 3 + 3 * 3 = 12 (SqDist * g
    # is inside lk_exp_scaled, below)
    assert len(products) == 5, mixed
    assert any("(-2.0f) * p0" in line for line in prog.param)  # -2 g: once per call
    assert any(re.search(r"\(p\d+ \* x\d+\)", line) for line in prog.outer)  # (-2 g) e: per row
    # shared sub-products are not duplicated: the exp and each difference appear once
    assert sum("lk_exp" in r for r in mixed.values()) == 1
    assert any(re.fullmatch(r"lk_exp_scaled\(t\d+, p\d+\)", r) for r in mixed.values())


def test_dim1_reduction_variable_is_read_in_place():
    x, b = var(0, 1, Cat.I), var(1, 1, Cat.J)
    prog = lower([make("Mult", (x, b))], "float32", Cat.I)
    assert [v.pointer for v in prog.inner_values] == ["a1"] and not prog.precomputed
    assert prog.inner == []  # the dead load of b was pruned


def test_literals():
    assert c_literal(0.1, "float32") == "0.10000000149011612f"
    assert c_literal(0.1, "float64") == "0.1"
    assert c_literal(3, "float64") == "3.0"
    assert c_literal(-2.5, "float32") == "(-2.5f)"
    assert c_literal(1e300, "float32") == "std::numeric_limits<T>::infinity()"
    assert c_literal(float("-inf"), "float64") == "(-std::numeric_limits<T>::infinity())"
    assert c_literal(float("nan"), "float64") == "std::numeric_limits<T>::quiet_NaN()"
    assert c_literal(1e-20, "float64") == "1e-20"


def test_ctx_emit_and_arrays():
    scope = Scope(Names(), "t")
    ctx = LowerCtx(scope, np.dtype(np.float32), CpuDialect("float32"), set())
    a = ctx.emit(ctx.fmt("({0} + {1})", Sym("u"), Sym("v")))
    assert ctx.emit(a) == a  # an atom is not bound again
    assert ctx.emit(ctx.fmt("({0} + {1})", Sym("u"), Sym("v"))) == a  # a known value is reused
    arr = ctx.emit_array([a, ctx.literal(2)])
    lines = CpuDialect("float32").lines(scope.stmts)
    assert lines == ["const T t0 = (u + v);", f"const T {arr.name}[2] = {{t0, 2.0f}};"]


def test_lowering_errors():
    x = var(0, 3, Cat.I)
    with pytest.raises(FormulaError, match="float32 or float64"):
        lower([x], "float16", Cat.I)
    with pytest.raises(FormulaError, match="TEMP"):
        lower([var(0, 1, Cat.TEMP)], "float32", Cat.I)
    slots = (ArgSlot(0, 3, Cat.I),)
    plan = ReductionPlan(x, "LogSumExp", Cat.J, slots)
    with pytest.raises(DimensionError, match="scalar"):
        render_cpu(plan, "float32")
    with pytest.raises(FormulaError, match="K >= 1"):
        render_cpu(ReductionPlan(x, "KMin", Cat.J, slots), "float32")


def _registry_cases():
    for name, card in sorted(OPS.items()):
        if card.test is None or card.is_sugar or (card.c is None and card.lower is None):
            continue
        yield name, card


@pytest.mark.parametrize("name", [n for n, _ in _registry_cases()])
def test_every_card_lowers(name):
    card = OPS[name]
    args = tuple(
        var(k, d, Cat.I if k % 2 == 0 else Cat.J) for k, d in enumerate(card.test.arg_dims)
    )
    node = make(card, args, card.test.params)
    for dtype in ("float32", "float64"):
        prog = lower([node], dtype, Cat.I)
        assert len(prog.roots[0]) == node.dim


def test_headers_follow_printed_std_names():
    # STYLE rule 8: a kernel includes only what its text uses (headers cost compile time)
    def headers(source):
        return re.findall(r"#include <([\w.]+)>", source)

    base = ["cstddef", "cstdint", "sched.h", "omp.h", "unistd.h"]
    gauss = render_cpu(*_golden_plans()["gauss_sum_f32"]).source
    assert headers(gauss) == base  # lk_exp needs no <cmath>, <cstring> or <limits>
    lse = render_cpu(*_golden_plans()["logsumexp_axis0_f64"]).source
    assert headers(lse) == ["cstddef", "cstdint", "cmath", "limits", *base[2:]]
    sin = render_cpu(_plan("Sin(x) * y", ["x = Vi(1)", "y = Vj(1)"], "Sum"), "float32").source
    assert headers(sin) == ["cstddef", "cstdint", "cmath", *base[2:]]
    assert includes("std::sqrt(x) + std::memcpy(a, b, 4)") == [
        "#include <cstddef>",
        "#include <cstdint>",
        "#include <cmath>",
        "#include <cstring>",
    ]
    with pytest.raises(FormulaError, match="std::vector"):
        includes("std::vector<T> v;")


def test_indented_buffer_else_join():
    b = IndentedBuffer()
    with b.block("if (a)"):
        b.line("x = 1;")
    with b.block("else"):
        b.line("x = 2;")
    assert b.getvalue() == "if (a) {\n  x = 1;\n} else {\n  x = 2;\n}\n"


# --- compiled checks ------------------------------------------------------------------


def _build(source: str, name: str):
    from lazykernels import jit

    try:
        return jit.build(source, name)
    except CompileError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no working compiler: {exc}")


_EXP_SOURCE = (
    "#include <cstdint>\n#include <cstring>\n#include <cmath>\n#include <limits>\n"
    + CPU_HELPERS["lk_exp"]
    + """
extern "C" void lk_exp_f(const float* x, float* y, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = lk_exp(x[i]);
}
extern "C" void lk_exp_d(const double* x, double* y, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = lk_exp(x[i]);
}
extern "C" void lk_exp_scaled_f(const float* s, float c, float* y, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = lk_exp_scaled(s[i], c);
}
extern "C" void lk_exp_scaled_d(const double* s, double c, double* y, int64_t n) {
  #pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = lk_exp_scaled(s[i], c);
}
"""
)


@pytest.mark.cpu
@pytest.mark.parametrize(
    "dtype, fn, lo, hi, tol",
    [(np.float32, "lk_exp_f", -87.0, 88.72, 1.5e-7), (np.float64, "lk_exp_d", -708, 709.78, 3e-16)],
)
def test_lk_exp_accuracy_and_special_values(dtype, fn, lo, hi, tol):
    lib = _build(_EXP_SOURCE, "test_lk_exp")
    f = getattr(lib, fn)
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    special = [-np.inf, np.inf, np.nan, 0.0, -1e30, 1e30, lo - 1, hi + 1]
    x = np.concatenate([np.linspace(lo, hi, 400_001), np.linspace(-1, 1, 100_001), special])
    x = x.astype(dtype)
    y = np.empty_like(x)
    f(x.ctypes.data, y.ctypes.data, len(x))
    n = len(special)
    want = np.exp(x[:-n].astype(np.longdouble))
    rel = np.abs((y[:-n] - want) / want)
    assert rel.max() < tol, float(rel.max())
    np.testing.assert_array_equal(y[-n:], [0, np.inf, np.nan, 1, 0, np.inf, 0, np.inf])


@pytest.mark.cpu
@pytest.mark.parametrize(
    "dtype, ctype, fn, tol",
    [
        (np.float32, ctypes.c_float, "lk_exp_scaled_f", 1.5e-7),
        (np.float64, ctypes.c_double, "lk_exp_scaled_d", 3e-16),
    ],
)
def test_lk_exp_scaled_is_exp_of_the_product(dtype, ctype, fn, tol):
    lib = _build(_EXP_SOURCE, "test_lk_exp")
    f = getattr(lib, fn)
    f.argtypes = [ctypes.c_void_p, ctype, ctypes.c_void_p, ctypes.c_int64]
    rng = np.random.default_rng(5)
    hi = 80.0 if dtype == np.float32 else 700.0
    for c in (-4.0, -0.3, 1.7, 1e-3):
        s = (rng.uniform(-hi, hi, 200_001) / abs(c)).astype(dtype)
        y = np.empty_like(s)
        f(s.ctypes.data, c, y.ctypes.data, len(s))
        x = (s * dtype(c)).astype(dtype)  # the product as the kernel rounds it
        want = np.exp(x.astype(np.longdouble))
        rel = np.abs((y - want) / want)
        assert rel.max() < tol, (c, float(rel.max()))
    special = np.array([np.inf, -np.inf, np.nan, 0.0, 1e30, -1e30], dtype=dtype)
    y = np.empty_like(special)
    f(special.ctypes.data, -2.0, y.ctypes.data, len(special))
    np.testing.assert_array_equal(y, [0, np.inf, np.nan, 1, 0, np.inf])


def _loop_lines(lines: list[str], header: str) -> set[int]:
    """1-based line numbers of the first loop with ``header`` (header to closing brace)."""
    start = next(k for k, t in enumerate(lines) if header in t)
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    end = next(k for k in range(start, len(lines)) if lines[k] == indent + "}")
    return set(range(start + 1, end + 2))


@pytest.mark.cpu
@pytest.mark.parametrize(
    "name, headers",
    [
        # the whole-vector loop and the masked last vector of a tile
        # (float32: the whole vectors as per-lane partials, schedule_cpp.lane_sums)
        ("gauss_sum_f32", ["for (int64_t u = 0; u < VW; ++u)", "for (int u = 0; u < VW; ++u)"]),
        # the K-min filter's vectorised threshold test
        ("argkmin_f32", ["for (int64_t j = j0; j < jm; ++j)", "for (int u = 0; u < 16; ++u)"]),
    ],
)
def test_inner_loops_are_vectorised(name, headers):
    from lazykernels.jit import compiler_info

    info = compiler_info()
    if "g++" not in Path(info.path).name and "GCC" not in info.version.upper():
        pytest.skip("the vectorisation report is GCC's")
    plan, dtype = _golden_plans()[name]
    source = render_cpu(plan, dtype).source
    flags = [f for f in info.flags if f not in ("-shared",)]
    out = subprocess.run(
        [info.path, *flags, "-x", "c++", "-", "-S", "-o", "/dev/null", "-fopt-info-vec-optimized"],
        input=source,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    reported = {int(m) for m in re.findall(r":(\d+):\d+: optimized: loop vectorized", out.stderr)}
    # GCC reports the loop at its header or its first statement (1-based line numbers)
    for header in headers:
        assert reported & _loop_lines(source.splitlines(), header), (header, out.stderr)


def _plan(formula, aliases, red, axis=1, k=None):
    return build_plan(formula, aliases, reduction_op=red, axis=axis, opt_arg=k)


def test_sqdist_gemm_path_selection():
    big, small = ["x = Vi(16)", "y = Vj(16)"], ["x = Vi(15)", "y = Vj(15)"]
    for red, k in [("ArgKMin", 3), ("KMin", 2), ("KMin_ArgKMin", 1), ("Min", None)]:
        for axis in (0, 1):
            assert render_cpu(_plan("SqDist(x,y)", big, red, axis, k), "float32").path == (
                "sqdist-gemm"
            )
    assert render_cpu(_plan("SqDist(y,x)", big, "ArgMin"), "float64").path == "sqdist-gemm"
    assert render_cpu(_plan("Sum((x-y)**2)", big, "Min_ArgMin"), "float32").path == "sqdist-gemm"
    scaled = ["x = Vi(16)", "y = Vj(16)", "s = Pm(1)"]  # u and w may read parameters
    assert render_cpu(_plan("SqDist(x*s,y)", scaled, "ArgMin"), "float32").path == "sqdist-gemm"
    not_gemm = [
        _plan("SqDist(x,y)", small, "ArgKMin", k=3),  # D < 16
        _plan("SqDist(x,y)", big, "Sum"),  # not a min-type reduction
        _plan("SqDist(x,y)", big, "Max_ArgMax"),
        _plan("SqDist(x,y) + 1", big, "ArgMin"),  # the formula is not the distance itself
        _plan("SqDist(x*y,y)", big, "ArgMin"),  # u reads both indices
    ]
    for plan in not_gemm:
        assert render_cpu(plan, "float32").path == "tiled"
    forced = render_cpu(_plan("SqDist(x,y)", big, "ArgMin"), "float32", sqdist_gemm=False)
    assert forced.path == "tiled"
