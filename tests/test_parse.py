"""The formula-string parser: every syntax form, KeOps's operator rules, and error messages."""

from __future__ import annotations

import warnings
from fractions import Fraction

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from lazykernels.errors import DimensionError, FormulaError
from lazykernels.formula import OPS, Cat, const, evaluate, make, var, zero
from lazykernels.formula.parse import (
    MAX_DEPTH,
    Alias,
    parse_aliases,
    parse_formula,
    parse_formula_info,
)
from lazykernels.reductions import parse_reduction

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"]
X, Y, B, S = var(0, 3, Cat.I), var(1, 3, Cat.J), var(2, 1, Cat.J), var(3, 1, Cat.PARAM)


def parse(text: str):
    return parse_formula(text, ALIASES)


def error(fn, *args) -> FormulaError:
    with pytest.raises(FormulaError) as info:
        fn(*args)
    return info.value


# --- aliases -----------------------------------------------------------------------------------


def test_alias_positions_are_list_indices_unless_explicit():
    got = parse_aliases(["x = Vi(3)", "y=Vj(4,2)", "p=Pm(1,1)", "Vj(5)"])
    assert [a.name for a in got] == ["x", "y", "p", None]
    assert [a.node for a in got] == [
        var(0, 3, Cat.I),
        var(4, 2, Cat.J),
        var(1, 1, Cat.PARAM),
        var(3, 5, Cat.J),
    ]


def test_alias_fields_and_spaces():
    (a,) = parse_aliases(["  w  =  Vj ( 2 , 3 ) "])
    assert (a.name, a.position, a.dim, a.cat) == ("w", 2, 3, Cat.J)
    (v,) = parse_aliases(["v=Var(5,2,2)"])
    assert v.node is var(5, 2, Cat.PARAM)


def test_a_single_string_is_one_alias():
    assert parse_aliases("x = Vi(3)") == parse_aliases(["x = Vi(3)"])


@pytest.mark.parametrize(("old", "new", "cat"), [("Vx", "Vi", Cat.I), ("Vy", "Vj", Cat.J)])
def test_legacy_vx_vy_warn_and_name_the_replacement(old, new, cat):
    with pytest.warns(UserWarning, match=f"'{old}' is the old name of '{new}'"):
        (a,) = parse_aliases([f"x = {old}(1, 3)"])
    assert a.node is var(1, 3, cat)


def test_heterogeneous_aliases_are_completed_by_inline_vars():
    # KeOps test "heterogeneous_var_aliases"
    info = parse_formula_info(
        "Square(p - Var(3,1,1)) * Exp(x + y)", ["p=Pm(0,1)", "x=Vi(1,3)", "y=Vj(2,3)"]
    )
    assert [a.node for a in info.aliases] == [
        var(0, 1, Cat.PARAM),
        var(1, 3, Cat.I),
        var(2, 3, Cat.J),
        var(3, 1, Cat.J),
    ]
    assert info.aliases[3].name is None


def test_alias_objects_are_accepted():
    aliases = [Alias("u", var(0, 2, Cat.I)), Alias("v", var(1, 2, Cat.J))]
    assert parse_formula("u * v", aliases) is make("Mult", (aliases[0].node, aliases[1].node))


@pytest.mark.parametrize(
    ("aliases", "reason", "column"),
    [
        (["x = Vi(3)", "x = Vj(3)"], "duplicate alias name 'x' (already declared by alias 0)", 0),
        (["x = Vi(3)", "  x = Vj(3)"], "duplicate alias name 'x'", 2),
        (["x = Vi(0,3)", "y = Vj(0,3)"], "alias 'y' = Var(0,3,1) conflicts with alias 'x'", 0),
        (["x = Vk(3)"], "unknown variable category 'Vk': expected Vi", 4),
        (["x = Var(0,3,5)"], "bad variable category 5: expected 0", 12),
        (["x = Vi(0)"], "the dimension must be >= 1, got 0", 7),
        (["x = Vi(-1, 3)"], "the position must be >= 0, got -1", 7),
        (["x = Vi(1, 2, 3)"], "Vi expects (dim) or (position, dim)", 13),
        (["x = Var(1, 2)"], "Var expects 3 integers (position, dim, cat)", 12),
        (["Exp = Vi(3)"], "alias name 'Exp' is the name of an operation", 0),
        (["Vi = Vi(3)"], "alias name 'Vi' is reserved", 0),
        (["x = Vi(3) y"], "unexpected 'y' after the alias", 10),
        (["x = Vi(3"], "expected ',' or ')', got the end of the text", 8),
        (["x = Vi(a)"], "expected an integer (dimension or position), got 'a'", 7),
        (["x = 3"], "expected an alias declaration", 4),
        ([""], "expected an alias declaration", 0),
        (["x = Vi(3) # comment"], "unexpected character '#'", 10),
    ],
)
def test_alias_errors(aliases, reason, column):
    err = error(parse_aliases, aliases)
    assert err.reason.startswith(reason), err.reason
    assert err.column == column
    assert err.text == aliases[-1]
    assert str(err).endswith("\n    " + " " * column + "^")


def test_alias_that_is_not_a_string():
    assert "alias 0 must be a string" in str(error(parse_aliases, [3]))


# --- operators, precedence and literals --------------------------------------------------------


def test_operator_mapping():
    assert parse("x + y") is make("Add", (X, Y))
    assert parse("x - y") is make("Add", (X, make("Minus", (Y,))))
    assert parse("x * b") is make("Mult", (X, B))
    assert parse("x / b") is make("Mult", (X, make("Inv", (B,))))
    assert parse("-x") is make("Minus", (X,))
    assert parse("+x") is X
    assert parse("(x | y)") is make("Scalprod", (X, Y))
    assert parse("x < y") is make("LessThan", (X, Y))
    assert parse("x > y") is make("LessThan", (Y, X))
    assert parse("x <= y") is make("LessOrEqual", (X, Y))
    assert parse("x >= y") is make("LessOrEqual", (Y, X))
    assert parse("x == y") is make("Equal", (X, Y))
    assert parse("x != y") is make("NotEqual", (X, Y))


def test_keops_division_and_power_rules():
    assert parse("x / 2") is make("Mult", (const(Fraction(1, 2)), X))
    assert parse("x / -4") is make("Mult", (const(Fraction(-1, 4)), X))
    assert parse("1 / x") is make("Inv", (X,))
    assert parse("3 / 6") is const(Fraction(1, 2))
    assert parse("x ** 2") is make("Square", (X,))
    assert parse("x ** 3") is make("Pow", (X,), (3,))
    assert parse("x ** -2") is make("Pow", (X,), (-2,))
    assert parse("x ** 0.5") is make("Sqrt", (X,))
    assert parse("x ** -0.5") is make("Rsqrt", (X,))
    assert parse("x ** 1.5") is make("Powf", (X, const(1.5)))
    assert parse("x ** b") is make("Powf", (X, B))


def test_python_precedence():
    minus = lambda n: make("Minus", (n,))  # noqa: E731
    assert parse("-x**2") is minus(make("Square", (X,)))
    assert parse("x < y | x") is make("LessThan", (X, make("Scalprod", (Y, X))))
    assert parse("x | y + x") is make("Scalprod", (X, make("Add", (Y, X))))
    assert parse("x + y * b") is make("Add", (X, make("Mult", (Y, B))))
    assert parse("x - y - b") is make("Add", (make("Add", (X, minus(Y))), minus(B)))
    assert parse("x - (y - b)") is make("Add", (X, minus(make("Add", (Y, minus(B))))))
    assert parse("x / b / s") is make(
        "Mult", (make("Mult", (X, make("Inv", (B,)))), make("Inv", (S,)))
    )
    # ** is right-associative: 2**3**2 = 2**(3**2)
    nine = make("Square", (const(3),))
    assert parse("2**3**2") is make("Powf", (const(2), nine))
    assert parse("Exp(-(x|y))") is make("Exp", (minus(make("Scalprod", (X, Y))),))


def test_number_literals():
    assert parse("1.5") is const(1.5)
    assert parse("1e-3") is const(1e-3)
    assert parse(".5") is const(0.5)
    assert parse("2.") is const(2.0)
    assert parse("3E+2") is const(300.0)
    assert parse("7") is const(7)
    assert parse("-7") is const(-7)
    assert parse("-2.5") is const(-2.5)
    assert parse("- 7") is const(-7)
    assert parse("-(7)") is make("Minus", (const(7),))
    assert parse("-2**2") is make("Minus", (make("Square", (const(2),)),))
    assert parse("x - -3") is make("Add", (X, make("Minus", (const(-3),))))
    assert parse("-0.0").params[0] == 0.0 and str(parse("-0.0").params[0]) == "-0.0"


def test_parsed_formula_evaluates_like_numpy():
    f = parse("Exp(-SqDist(x, y) / s) * b + (x | y) / 2 - x ** 2 * 3")
    rng = np.random.default_rng(0)
    xv, yv, bv, sv = (
        rng.random((4, 1, 3)),
        rng.random((1, 5, 3)),
        rng.random((1, 5, 1)),
        rng.random(1) + 1,
    )
    got = evaluate(f, {X: xv, Y: yv, B: bv, S: sv}, np.float64)
    sq = ((xv - yv) ** 2).sum(-1, keepdims=True)
    want = np.exp(-sq / sv) * bv + (xv * yv).sum(-1, keepdims=True) / 2 - xv**2 * 3
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --- calls, static parameters and special forms ------------------------------------------------


def test_generic_calls_with_static_params():
    assert parse("Elem(x, 1)") is make("Elem", (X,), (1,))
    assert parse("Extract(x, 1, 2)") is make("Extract", (X,), (1, 2))
    assert parse("ClampInt(x, -1, 1)") is make("ClampInt", (X,), (-1, 1))
    assert parse("Pow(x, 2)") is make("Pow", (X,), (2,))
    assert parse("Exp(x,)") is make("Exp", (X,))
    assert parse("IntInv(4)") is const(Fraction(1, 4))


def test_list_params_and_variadic_params():
    aliases = ["a = Vi(24)", "c = Vj(20)"]
    a, c = var(0, 24, Cat.I), var(1, 20, Cat.J)
    text = "TensorDot(a, c, [2, 3, 4], [4, 5], [2], [0])"
    assert parse_formula(text, aliases) is make(
        "TensorDot", (a, c), ((2, 3, 4), (4, 5), (2,), (0,))
    )
    permuted = parse_formula("TensorDot(a, c, [2,3,4], [4,5], [2], [0], [2,0,1])", aliases)
    assert permuted.params[-1] == (2, 0, 1)


def test_special_forms():
    assert parse("Var(4,2,1)") is var(4, 2, Cat.J)
    assert parse("IntCst(-2)") is const(-2)
    assert parse("RatCst(2,4)") is const(Fraction(1, 2))
    assert parse("RatCst(4,2)") is const(2)
    assert parse("Zero(3)") is zero(3)
    assert parse("FloatCst(2.5)") is const(2.5)
    assert parse("FloatCst(-inf)") is const(float("-inf"))


def test_grad_with_gradient_input_matches_the_registry_card():
    e = var(4, 1, Cat.I)
    f = parse("Grad(Exp(-SqDist(x,y)) * b, x, Var(4,1,0))")
    assert f is make("Grad", (parse("Exp(-SqDist(x,y)) * b"), X, e))


def test_grad_without_gradient_input_creates_the_next_variable():
    info = parse_formula_info("Grad(Exp(-SqDist(x,y)) * b, y)", ALIASES)
    (e,) = info.new_variables
    assert e is var(4, 1, Cat.I)  # opposite category of y, next index after the aliases
    assert info.formula is parse("Grad(Exp(-SqDist(x,y)) * b, y, Var(4,1,0))")
    assert info.aliases[-1] == Alias(None, e)
    # Numbers: d/dy [exp(-|x-y|^2) b] . e = 2 (x - y) exp(-|x-y|^2) b e
    rng = np.random.default_rng(1)
    xv, yv, bv, ev = (
        rng.random((4, 1, 3)),
        rng.random((1, 5, 3)),
        rng.random((1, 5, 1)),
        rng.random((4, 1, 1)),
    )
    got = evaluate(info.formula, {X: xv, Y: yv, B: bv, e: ev}, np.float64)
    k = np.exp(-((xv - yv) ** 2).sum(-1, keepdims=True))
    np.testing.assert_allclose(got, 2 * (xv - yv) * k * bv * ev, rtol=1e-12)


def test_grad_without_aliases_follows_keops_index_rule():
    info = parse_formula_info("Grad(Var(0,3,0) * Var(2,3,1), Var(0,3,0))")
    assert info.new_variables == (var(3, 3, Cat.J),)


# --- reductions -------------------------------------------------------------------------------


def test_reductions():
    f = parse("SqDist(x, y)")
    r = parse_reduction("Sum_Reduction(SqDist(x,y), 0)", ALIASES)
    assert (r.name, r.formula, r.output_cat, r.k, r.formula2) == ("Sum", f, Cat.I, None, None)
    assert parse_reduction("Sum_Reduction(SqDist(x,y), 1)", ALIASES).output_cat is Cat.J
    r = parse_reduction("KMin_Reduction(SqDist(x,y), 5, 1)", ALIASES)
    assert (r.name, r.k, r.output_cat) == ("KMin", 5, Cat.J)
    r = parse_reduction("LogSumExp_Reduction(-SqDist(x,y), 0, b)", ALIASES)
    assert (r.name, r.formula2) == ("LogSumExp", B)
    r = parse_reduction("Max_SumShiftExpWeight_Reduction(-SqDist(x,y), 0, y)", ALIASES)
    assert (r.name, r.formula2) == ("Max_SumShiftExpWeight", Y)
    assert parse_reduction("Max_SumShiftExpWeight_Reduction(s, 1)", ALIASES).formula2 is None
    r = parse_reduction("Zero_Reduction(3, 1)")
    assert (r.name, r.formula, r.output_cat) == ("Zero", zero(3), Cat.J)
    r = parse_reduction("ArgKMin_Reduction(Var(0,2,0) - Var(1,2,1), 3, 0)")
    assert [a.node for a in r.aliases] == [var(0, 2, Cat.I), var(1, 2, Cat.J)]


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("Sum_Reduction(x, 2)", "tagI must be 0 (output indexed by i", 17),
        ("KMin_Reduction(x, 0, 0)", "K must be a positive integer, got 0", 18),
        ("KMin_Reduction(x, 0)", "KMin_Reduction expects (formula, K, tagI): expected ','", 19),
        (
            "Summ_Reduction(x, 0)",
            "unknown reduction 'Summ_Reduction' (did you mean 'Sum_Reduction'",
            0,
        ),
        ("Sum_Reduction(x, 0, y)", "Sum_Reduction expects (formula, tagI)", 20),
        (
            "SumSoftMaxWeight_Reduction(x, 0)",
            "SumSoftMaxWeight_Reduction expects (formula, tagI, formula2): "
            "the second formula is missing",
            31,
        ),
        ("Exp(x)", "expected a reduction such as 'Sum_Reduction(formula, 0)', got 'Exp'", 0),
        ("Sum_Reduction(x, 0) + 1", "unexpected '+' after the formula", 20),
        ("Sum_Reduction(x, 0", "Sum_Reduction expects (formula, tagI): expected ')'", 18),
    ],
)
def test_reduction_errors(text, reason, column):
    err = error(parse_reduction, text, ALIASES)
    assert err.reason.startswith(reason), err.reason
    assert err.column == column


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason", "column"),
    [
        ("Exq(x)", "unknown operation 'Exq' (did you mean 'Exp'", 0),
        ("x + Sqrtt(x)", "unknown operation 'Sqrtt' (did you mean 'Sqrt'", 4),
        ("(x + y", "expected ')', got the end of the text", 6),
        ("Exp(x y)", "expected ',' or ')' in Exp(...), got 'y'", 6),
        ("Elem(x)", "Elem expects 1 formula argument and 1 integer parameter", 6),
        ("Elem(x, 1, 2)", "Elem expects 1 formula argument and 1 integer parameter", 11),
        ("Exp(x, y)", "Exp expects 1 formula argument", 7),
        ("Elem(x, y)", "expected an integer for m of Elem, got 'y'", 8),
        ("x * z", "unknown variable 'z': declare it in the aliases, e.g. 'z = Vi(3)'", 4),
        (
            "x * xx",
            "unknown variable 'xx': declare it in the aliases, e.g. 'xx = Vi(3)' (did you mean 'x'",
            4,
        ),
        (
            "Vi(3) * x",
            "Vi(...) cannot be used inside a formula: declare the variable in the aliases",
            0,
        ),
        (
            "x * Vx(3)",
            "Vx(...) cannot be used inside a formula: declare the variable in the aliases "
            "(e.g. 'x = Vi(3)')",
            4,
        ),
        ("x(3)", "'x' is a variable, not an operation", 0),
        ("Exp + x", "'Exp' is an operation: call it, as in 'Exp(...)'", 0),
        ("x # y", "unexpected character '#'", 2),
        ("x < y < b", "chained comparisons are not supported", 6),
        ("x + ", "unexpected end of the text: expected a formula", 4),
        ("x y", "unexpected 'y' after the formula", 2),
        ("x + )", "expected a formula, got ')'", 4),
        ("x = y", "unexpected '=' (write '==' for the Equal operation)", 2),
        ("[1, 2]", "a list [...] is only allowed as a static parameter", 0),
        ("x / 0", "division by zero", 2),
        ("RatCst(1, 0)", "RatCst: the denominator must not be 0", 10),
        ("Var(0, 3, 3)", "bad variable category 3", 10),
        ("Var(-1, 3, 0)", "Var(-1, 3, ...): the index must be >= 0", 0),
        ("Var(0, 2, 0)", "Var(0,2,0) conflicts with alias 'x' = Var(0,3,0) at position 0", 0),
        ("Var(7,1,0) + Var(7,2,0)", "Var(7,2,0) conflicts with Var(7,1,0) at position 7", 13),
        ("Zero(0)", "Zero(0): the dimension must be >= 1", 0),
        ("x + 1e999", "float literal out of range", 4),
        ("x * " + "9" * 200, "integer literal too long", 4),
        ("Grad(x, x + y)", "Grad: the second argument must be a variable", 8),
        ("Grad(x * s, s)", "Grad without a gradient input needs an i- or j-variable", 0),
        ("Sum_Reduction(x, 0)", "Sum_Reduction is a reduction: only allowed around a formula", 0),
        ("FloatCst(x)", "FloatCst expects a number, inf or nan", 9),
    ],
)
def test_formula_errors(text, reason, column):
    err = error(parse, text)
    assert err.reason.startswith(reason), err.reason
    assert err.column == column
    assert str(err) == f"{err.reason}\n    {text}\n    {' ' * column}^"


def test_dimension_errors_point_at_the_operator_or_call():
    err = error(parse, "Exp(x) + b * Elem(y, 5)")
    assert isinstance(err, FormulaError) and err.column == 13
    err = error(parse, "Exp(x) + Extract(y, 0, 2)")
    assert isinstance(err, DimensionError)
    assert err.column == 7 and "Add" in err.reason


def test_nesting_is_bounded():
    deep = "(" * (MAX_DEPTH + 5) + "x" + ")" * (MAX_DEPTH + 5)
    assert "nested too deeply" in error(parse, deep).reason
    assert "nested too deeply" in error(parse, "-" * 5000 + "x").reason
    assert "nested too deeply" in error(parse, "x" + "**x" * 5000).reason
    ok = "(" * (MAX_DEPTH // 2) + "x" + ")" * (MAX_DEPTH // 2)
    assert parse(ok) is X


def test_not_a_string():
    assert "must be a string" in error(parse_formula, 3).reason


def test_no_warning_for_modern_aliases():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_aliases(ALIASES)


# --- property: arbitrary text only ever raises FormulaError ------------------------------------

_WORDS = [
    *sorted(OPS),
    "Var",
    "IntCst",
    "RatCst",
    "FloatCst",
    "Zero",
    "Grad",
    "Vi",
    "Vj",
    "Pm",
    "Vx",
    "Vy",
    "x",
    "y",
    "b",
    "s",
    "z",
    "inf",
    "nan",
    "Sum_Reduction",
    "KMin_Reduction",
    "LogSumExp_Reduction",
    "Zero_Reduction",
]
_SYMBOLS = ["+", "-", "*", "/", "**", "|", "<", ">", "<=", ">=", "==", "!=", "=", "(", ")"]
_SYMBOLS += ["[", "]", ",", ",", "(", ")", "0", "1", "2", "3", "-1", "0.5", "-0.5", "1e3", ".5"]
_TOKEN_SOUP = st.lists(st.sampled_from(_WORDS + _SYMBOLS * 3), max_size=40).flatmap(
    lambda toks: st.sampled_from(["", " "]).map(lambda sep: sep.join(toks))
)
_TEXT = st.one_of(st.text(max_size=60), _TOKEN_SOUP, _TOKEN_SOUP.map(lambda t: f"Exp({t})"))
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_formula_errors(fn, *args) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy Vx/Vy aliases
        try:
            fn(*args)
        except FormulaError as err:
            assert err.column is None or 0 <= err.column <= len(err.text)


@_FUZZ
@given(_TEXT)
def test_random_formula_text_raises_only_formula_error(text):
    _only_formula_errors(parse_formula, text, ALIASES)


@_FUZZ
@given(st.one_of(_TEXT, _TOKEN_SOUP.map(lambda t: f"Sum_Reduction({t}, 0)")))
def test_random_reduction_text_raises_only_formula_error(text):
    _only_formula_errors(parse_reduction, text, ALIASES)


@_FUZZ
@given(st.lists(st.one_of(_TEXT, _TOKEN_SOUP.map(lambda t: f"a = Vi({t})")), max_size=4))
def test_random_alias_text_raises_only_formula_error(texts):
    _only_formula_errors(parse_aliases, texts)


@_FUZZ
@given(st.lists(st.sampled_from(["(", "Exp(", "-", "x**", "Elem(", "[", "Grad("]), min_size=50))
def test_random_deep_nesting_raises_only_formula_error(prefixes):
    _only_formula_errors(parse_formula, "".join(prefixes) + "x", ALIASES)
