"""Element-wise op cards against hand-written NumPy, their derivatives and C templates."""

from __future__ import annotations

import ctypes
import math
import re
import shutil
import subprocess

import numpy as np
import pytest

from lazykernels.codegen.dialect import MATH_FUNCTIONS
from lazykernels.codegen.dialect_cpu import CpuLibmDialect
from lazykernels.codegen.helpers import HELPERS
from lazykernels.errors import DimensionError, FormulaError
from lazykernels.formula import OPS, Cat, evaluate, grad, make, var
from lazykernels.formula.ops import arith, elementwise, elementwise_piecewise
from lazykernels.formula.opspec import MathCall, zero_derivative

from .opcheck import check_card_grad, check_forward, check_grad


def _pow_ref(a, m):
    r = np.ones_like(a)
    for _ in range(abs(m)):
        r = r * a
    return r if m >= 0 else 1.0 / r


def _clamp_ref(x, a, b):
    x, a, b = np.broadcast_arrays(x, a, b)
    out = x.copy()
    above = x > b
    out[above] = b[above]
    below = x < a  # tested last: it wins when a > b
    out[below] = a[below]
    return out


REFERENCE = {
    # arithmetic (ops/arith.py)
    "Add": lambda a, b: a + b,
    "Minus": lambda a: -a,
    "Mult": lambda a, b: a * b,
    "Inv": lambda a: 1.0 / a,
    "Subtract": lambda a, b: a - b,
    "Divide": lambda a, b: a / b,
    "Sum": lambda a: a.sum(-1, keepdims=True),
    "SumT": lambda a, d: np.tile(a, (1, d)),
    "Fence": lambda a: a.copy(),
    # exponentials and logarithms
    "Exp": lambda a: np.exp(a),
    "Log": lambda a: np.log(a),
    "XLogX": lambda a: np.log(a**a),
    # powers and roots
    "Square": lambda a: a * a,
    "Pow": _pow_ref,
    "Powf": lambda a, b: np.exp(b * np.log(a)),
    "Sqrt": lambda a: a**0.5,
    "Rsqrt": lambda a: a**-0.5,
    "IntInv": lambda n: 1.0 / n,
    # trigonometry
    "Sin": lambda a: np.cos(np.pi / 2 - a),
    "Cos": lambda a: np.sin(a + np.pi / 2),
    "SinXDivX": lambda a: np.sinc(a / np.pi),
    "Asin": lambda a: np.arctan(a / np.sqrt(1 - a * a)),
    "Acos": lambda a: np.pi / 2 - np.arctan(a / np.sqrt(1 - a * a)),
    "Atan": lambda a: np.arcsin(a / np.sqrt(1 + a * a)),
    "Atan2": lambda f, g: np.angle(g + 1j * f),
    # comparisons
    "Equal": lambda a, b: 1.0 - (a != b),
    "NotEqual": lambda a, b: 1.0 - (a == b),
    "LessThan": lambda a, b: (b - a > 0) * 1.0,
    "LessOrEqual": lambda a, b: 1.0 - (b < a),
    # rounding
    "Floor": lambda a: a - np.mod(a, 1.0),
    "Round": lambda a, d: np.sign(a) * np.floor(np.abs(a) * 10.0**d + 0.5) / 10.0**d,
    "Sign": lambda a: (a > 0) * 1.0 - (a < 0) * 1.0,
    "Step": lambda a: np.heaviside(a, 1.0),
    # kinks, clamps, selection
    "Abs": lambda a: np.where(a < 0, -a, a),
    "ReLU": lambda a: np.maximum(a, 0.0),
    "Mod": lambda x, n, d: d + np.mod(x - d, n),
    "Clamp": _clamp_ref,
    "ClampInt": lambda x, a, b: np.clip(x, a, b),
    "DiffClampInt": lambda x, a, b: ((a <= x) & (x <= b)) * 1.0,
    "IfElse": lambda f, a, b: np.where(f < 0, b, a),
}
CARDS = [
    c
    for c in (*arith.CARDS, *elementwise.CARDS, *elementwise_piecewise.CARDS)
    if c.test is not None
]
# every element-wise card of the registry, whichever family module holds it
ELEMENTWISE = [c for c in OPS.values() if c.elementwise and c.test is not None]

# (name, params, scalar arguments, expected value): special points and hand-checked values.
SPECIAL_POINTS = [
    ("Rsqrt", (), (0.0,), 0.0),
    ("Rsqrt", (), (4.0,), 0.5),
    ("Sqrt", (), (0.0,), 0.0),
    ("SinXDivX", (), (0.0,), 1.0),
    ("SinXDivX", (), (np.pi / 2,), 2 / np.pi),
    ("XLogX", (), (0.0,), 0.0),
    ("XLogX", (), (1.0,), 0.0),
    ("XLogX", (), (2.0,), 2 * math.log(2.0)),
    ("Sign", (), (0.0,), 0.0),
    ("Sign", (), (-3.0,), -1.0),
    ("Sign", (), (0.5,), 1.0),
    ("Step", (), (0.0,), 1.0),
    ("Step", (), (-1e-30,), 0.0),
    ("ReLU", (), (0.0,), 0.0),
    ("ReLU", (), (-2.0,), 0.0),
    ("ReLU", (), (1.5,), 1.5),
    ("Abs", (), (-2.0,), 2.0),
    ("Floor", (), (-0.5,), -1.0),
    ("Floor", (), (2.0,), 2.0),
    ("IfElse", (), (0.0, 1.0, 2.0), 1.0),
    ("IfElse", (), (-1e-30, 1.0, 2.0), 2.0),
    ("IfElse", (), (3.0, 1.0, 2.0), 1.0),
    ("Round", (0,), (2.5,), 3.0),
    ("Round", (0,), (-2.5,), -3.0),
    ("Round", (0,), (0.5,), 1.0),
    ("Round", (0,), (1.4,), 1.0),
    ("Round", (2,), (0.125,), 0.13),
    ("Round", (2,), (-1.2345,), -1.23),
    ("Round", (-1,), (15.0,), 20.0),
    ("Round", (-1,), (-14.0,), -10.0),
    ("Mod", (), (5.5, 2.0, 1.0), 1.5),
    ("Mod", (), (-0.5, 2.0, 0.0), 1.5),
    ("Mod", (), (1.0, 2.0, 1.0), 1.0),
    ("Mod", (), (0.5, 2.0, 1.0), 2.5),
    ("Clamp", (), (0.0, -1.0, 1.0), 0.0),
    ("Clamp", (), (-2.0, -1.0, 1.0), -1.0),
    ("Clamp", (), (3.0, -1.0, 1.0), 1.0),
    ("Clamp", (), (0.0, 1.0, -1.0), 1.0),  # a > b: below a gives a
    ("Clamp", (), (2.0, 1.0, -1.0), -1.0),  # a > b: otherwise b
    ("ClampInt", (-1, 1), (-3.0,), -1.0),
    ("ClampInt", (0, 2), (1.5,), 1.5),
    ("DiffClampInt", (-1, 1), (1.0,), 1.0),
    ("DiffClampInt", (-1, 1), (1.5,), 0.0),
    ("Equal", (), (1.5, 1.5), 1.0),
    ("Equal", (), (1.5, 2.0), 0.0),
    ("NotEqual", (), (1.5, 1.5), 0.0),
    ("NotEqual", (), (1.5, 2.0), 1.0),
    ("LessThan", (), (1.5, 1.5), 0.0),
    ("LessThan", (), (1.0, 1.5), 1.0),
    ("LessOrEqual", (), (1.5, 1.5), 1.0),
    ("LessOrEqual", (), (2.0, 1.5), 0.0),
    ("Pow", (-2,), (2.0,), 0.25),
    ("Pow", (0,), (0.0,), 1.0),
    ("Pow", (5,), (-2.0,), -32.0),
    ("Pow", (1,), (-0.75,), -0.75),
    ("Powf", (), (4.0, 0.5), 2.0),
    ("Atan2", (), (1.0, -1.0), 3 * np.pi / 4),
    ("Atan2", (), (-1.0, 0.0), -np.pi / 2),
    ("Acos", (), (1.0,), 0.0),
    ("Asin", (), (1.0,), np.pi / 2),
]


def _eval_scalar(name: str, params: tuple, args: tuple, dtype) -> float:
    variables = [var(k, 1, Cat.I) for k in range(len(args))]
    node = make(name, tuple(variables), params)
    env = {v: np.array([a], dtype=dtype) for v, a in zip(variables, args)}
    return float(evaluate(node, env, dtype)[0])


# --- NumPy evaluation ----------------------------------------------------------------------


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy(card, dtype):
    if dtype is np.float32 and not card.test.float32_ok:
        pytest.skip("float32 is not meaningful for this op")
    check_forward(card, REFERENCE[card.name], dtype)


@pytest.mark.parametrize("case", SPECIAL_POINTS, ids=lambda c: f"{c[0]}{c[1]}{c[2]}")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_special_points(case, dtype):
    name, params, args, expected = case
    with np.errstate(all="raise"):  # defined values, not silenced NaNs
        got = OPS[name].numpy(*(np.array([a], dtype=dtype) for a in args), *params)
    assert np.asarray(got).dtype == dtype
    assert got[0] == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert _eval_scalar(name, params, args, dtype) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_every_card_of_the_family_has_a_reference():
    assert {c.name for c in CARDS} <= set(REFERENCE)
    assert all(name in OPS for name in REFERENCE)


def test_int_inv_is_a_rational_constant():
    assert make("IntInv", (), (3,)).name == "RatCst"
    assert make("IntInv", (), (1,)).name == "IntCst"
    assert str(make("IntInv", (), (-4,))) == "RatCst(-1,4)"
    with pytest.raises(FormulaError, match="non-zero"):
        make("IntInv", (), (0,))


@pytest.mark.parametrize("name", ["Pow", "Round"])
def test_integer_parameters_are_checked(name):
    x = var(0, 2, Cat.I)
    with pytest.raises(FormulaError, match="integer"):
        make(name, (x,), (2.5,))


def test_element_wise_dims_broadcast_and_mismatch_raises():
    x3, y1, z2 = var(0, 3, Cat.I), var(1, 1, Cat.J), var(2, 2, Cat.J)
    assert make("Clamp", (y1, x3, y1)).dim == 3
    assert make("Atan2", (y1, y1)).dim == 1
    with pytest.raises(DimensionError):
        make("IfElse", (x3, z2, y1))


# --- derivatives ---------------------------------------------------------------------------


@pytest.mark.parametrize("card", [c for c in CARDS if c.test.grad], ids=lambda c: c.name)
def test_gradient_matches_finite_differences(card):
    check_card_grad(card)


@pytest.mark.parametrize("m", [-2, 0, 1, 2])
def test_pow_gradient_for_other_exponents(m):
    x = var(0, 3, Cat.I)
    values = [np.random.default_rng(3).uniform(0.5, 2.0, (5, 3))]
    check_grad(make("Pow", (x,), (m,)), [x], values)


PIECEWISE_CONSTANT = [c for c in ELEMENTWISE if c.vjp is zero_derivative]


@pytest.mark.parametrize("card", PIECEWISE_CONSTANT, ids=lambda c: c.name)
def test_piecewise_constant_ops_have_zero_gradient(card):
    variables = [var(k, d, Cat.I) for k, d in enumerate(card.test.arg_dims)]
    node = make(card, tuple(variables), card.test.params)
    e = var(9, node.dim, Cat.I)
    for v in variables:
        assert grad(node, v, e).name == "Zero"


def test_piecewise_constant_set_is_the_expected_one():
    assert {c.name for c in PIECEWISE_CONSTANT} == {
        "Equal",
        "NotEqual",
        "LessThan",
        "LessOrEqual",
        "Floor",
        "Round",
        "Sign",
        "Step",
        "DiffClampInt",
    }


def _grads_at(node, variables, values):
    e = var(9, node.dim, Cat.I)
    env = dict(zip(variables, values))
    ones = np.ones((len(values[0]), node.dim))
    return [
        np.broadcast_to(evaluate(grad(node, v, e), env | {e: ones}, np.float64), val.shape)
        for v, val in zip(variables, values)
    ]


def test_if_else_gradient_flows_to_the_selected_branch_at_zero():
    f, a, b = (var(k, 1, Cat.I) for k in range(3))
    fv = np.array([[-1.0], [0.0], [1.0]])
    df, da, db = _grads_at(make("IfElse", (f, a, b)), [f, a, b], [fv, fv * 0 + 5, fv * 0 + 7])
    np.testing.assert_array_equal(df[:, 0], [0, 0, 0])
    np.testing.assert_array_equal(da[:, 0], [0, 1, 1])
    np.testing.assert_array_equal(db[:, 0], [1, 0, 0])


def test_clamp_gradient_follows_the_selected_branch_also_when_a_exceeds_b():
    x, a, b = (var(k, 1, Cat.I) for k in range(3))
    # rows: inside [a, b]; below a; above b; a > b and x < a; a > b and x >= a
    xv = np.array([[0.0], [-2.0], [3.0], [0.0], [2.0]])
    av = np.array([[-1.0], [-1.0], [-1.0], [1.0], [1.0]])
    bv = np.array([[1.0], [1.0], [1.0], [-1.0], [-1.0]])
    dx, da, db = _grads_at(make("Clamp", (x, a, b)), [x, a, b], [xv, av, bv])
    np.testing.assert_array_equal(dx[:, 0], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(da[:, 0], [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(db[:, 0], [0, 0, 1, 0, 1])


def test_mod_gradient_with_respect_to_the_modulus():
    x, n, d = (var(k, 1, Cat.I) for k in range(3))
    # Mod(5.5, 2, 1) = 5.5 - 2 * floor(2.25): d/dn = -2, d/dx = 1, d/dd = 0
    vals = [np.array([[5.5]]), np.array([[2.0]]), np.array([[1.0]])]
    dx, dn, dd = _grads_at(make("Mod", (x, n, d)), [x, n, d], vals)
    assert (dx[0, 0], dn[0, 0], dd[0, 0]) == (1.0, -2.0, 0.0)


# --- C templates ---------------------------------------------------------------------------

_HELPER_CALL = re.compile(r"\blk_\w+")


def _template(card, dialect=None) -> str:
    """The card's neutral spelling as one template (a maths call as ``fn(args)``, with the
    function spelled by ``dialect`` if given)."""
    if isinstance(card.c, MathCall):
        assert card.c.fn in MATH_FUNCTIONS, f"{card.name}: {card.c.fn} is not a neutral function"
        fn = card.c.fn if dialect is None else dialect.function(card.c.fn)[0]
        return f"{fn}({', '.join(card.c.args)})"
    return card.c


def _render(card, atoms: list[str], ctype: str, params: tuple, dialect=None) -> str:
    fields = {f"p{k}": repr(p) for k, p in enumerate(params)}
    return _template(card, dialect).format(*atoms, T=ctype, **fields)


@pytest.mark.parametrize("card", ELEMENTWISE, ids=lambda c: c.name)
def test_c_template_and_helpers_are_declared(card):
    assert card.c, f"{card.name} has no C template"
    template = _template(card)
    assert set(_HELPER_CALL.findall(template)) <= set(card.helpers), "undeclared helper"
    for name in card.helpers:
        assert re.search(rf"\b{name}\b", template), f"{card.name} declares unused {name}"
        assert name in HELPERS, f"{card.name} needs the missing helper {name}"
        assert re.search(rf"\b{name}\s*\(", HELPERS[name]), f"{name} is not defined"
    text = _render(card, [f"a{k}" for k in range(card.arity)], "double", card.test.params)
    assert all(f"a{k}" in text for k in range(card.arity))
    assert "{" not in text and "}" not in text


def _c_cases() -> list[tuple]:
    """(card, params, inputs of shape (arity, n), expected or None) for the compiled check."""
    rng = np.random.default_rng(5)
    cases = []
    for card in ELEMENTWISE:
        t = card.test
        cases.append((card, t.params, rng.uniform(t.low, t.high, (card.arity, 6)), None))
    for name, params, args, expected in SPECIAL_POINTS:
        cases.append((OPS[name], params, np.array(args, dtype=float)[:, None], expected))
    return cases


_LIBM = CpuLibmDialect("float64")  # the C library's spellings (the test compiles no lk_exp)


def _c_source(cases: list[tuple]) -> str:
    needed = sorted({h for card, *_ in cases for h in card.helpers})
    lines = ["#include <cmath>", "", *(_LIBM.helper(h) for h in needed)]
    for k, (card, params, _inputs, _expected) in enumerate(cases):
        for ctype in ("float", "double"):
            atoms = [f"a{m}" for m in range(card.arity)]
            loads = "".join(
                f"        const {ctype} a{m} = static_cast<{ctype}>(in[{m} * n + i]);\n"
                for m in range(card.arity)
            )
            value = _render(card, atoms, ctype, params, _LIBM)
            lines.append(
                f'extern "C" void case{k}_{ctype}(const double* in, double* out, int n) {{\n'
                f"    for (int i = 0; i < n; ++i) {{\n{loads}"
                f"        out[i] = static_cast<double>({value});\n"
                "    }\n}\n"
            )
    return "\n".join(lines)


@pytest.mark.cpu
def test_c_templates_compile_and_agree_with_numpy(tmp_path):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    cases = _c_cases()
    source = tmp_path / "elementwise.cpp"
    source.write_text(_c_source(cases))
    library = tmp_path / "elementwise.so"
    # One compile for every op: it checks the syntax and gives the library we evaluate.
    cmd = [compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]
    done = subprocess.run([*cmd, str(source), "-o", str(library)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lib = ctypes.CDLL(str(library))
    pointer = np.ctypeslib.ndpointer(np.float64, flags="C_CONTIGUOUS")
    for k, (card, params, inputs, expected) in enumerate(cases):
        for ctype, dtype, tol in (("float", np.float32, 2e-6), ("double", np.float64, 1e-13)):
            fn = getattr(lib, f"case{k}_{ctype}")
            fn.argtypes = [pointer, pointer, ctypes.c_int]
            values = np.ascontiguousarray(inputs.astype(dtype).astype(np.float64))
            out = np.empty(values.shape[1])
            fn(values, out, values.shape[1])
            want = card.numpy(*values.astype(dtype), *params).astype(np.float64)
            where = f"{card.name}{params} in {ctype} at {values.T.tolist()}"
            np.testing.assert_allclose(out, want, rtol=tol, atol=tol, err_msg=where)
            if expected is not None:
                assert out[0] == pytest.approx(expected, rel=1e-6, abs=1e-7), where
