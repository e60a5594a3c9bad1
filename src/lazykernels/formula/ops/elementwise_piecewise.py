"""Piecewise element-wise cards: comparisons, rounding, kinks, clamps and selection.

The comparisons and the rounding family are piecewise constant: their derivative is zero
almost everywhere (``zero_derivative``, no cotangent flows through them). Abs, ReLU, Mod,
the clamps and IfElse are piecewise smooth: their derivatives are indicator functions
(Sign, Step, LessThan...) built from the cards of this module.

Conventions follow KeOps: comparisons return 1.0 or 0.0; ``Step(0) = 1``; ``Sign(0) = 0``;
``IfElse(f, a, b) = a`` where ``f >= 0``; ``Round`` rounds halves away from zero;
``Clamp(f, a, b)`` tests ``f < a`` first, so when ``a > b`` it gives ``a`` for ``f < a``
and ``b`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir import Node, const, make, zero
from ..opspec import OpSpec, TestSpec, chain, math, zero_derivative
from .elementwise import vso

# --- comparisons (1.0 or 0.0) --------------------------------------------------------------


Compare = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _indicator(compare: Compare) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """NumPy evaluation of a comparison: 1.0 where it holds, in the arguments' float type."""

    def evaluate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return compare(x, y).astype(np.result_type(x, y))

    return evaluate


def _comparison(name: str, compare: Compare, c_operator: str, doc: str) -> OpSpec:
    return vso(
        name,
        2,
        _indicator(compare),
        f"(({{0}}) {c_operator} ({{1}}) ? ({{T}})1 : ({{T}})0)",
        zero_derivative,
        TestSpec(arg_dims=(3, 1), grad=False),
        doc,
    )


EQUAL = _comparison("Equal", np.equal, "==", "1 where f == g, else 0")
NOT_EQUAL = _comparison("NotEqual", np.not_equal, "!=", "1 where f != g, else 0")
LESS_THAN = _comparison("LessThan", np.less, "<", "1 where f < g, else 0")
LESS_OR_EQUAL = _comparison("LessOrEqual", np.less_equal, "<=", "1 where f <= g, else 0")

# --- rounding (piecewise constant) ---------------------------------------------------------


def _round_half_away(x: np.ndarray) -> np.ndarray:
    # C's round(): halves go away from zero (np.round goes to even). x - trunc(x) is exact.
    t = np.trunc(x)
    return np.where(np.abs(x - t) >= 0.5, t + np.sign(x), t)


def _round(x: np.ndarray, d: int) -> np.ndarray:
    scale = np.asarray(10.0 ** abs(d), dtype=np.asarray(x).dtype)
    if d >= 0:
        return _round_half_away(x * scale) / scale
    return _round_half_away(x / scale) * scale


def _step(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.where(x < 0, 0, 1).astype(x.dtype)


FLOOR = vso(
    "Floor",
    1,
    np.floor,
    math("floor", "{0}"),
    zero_derivative,
    TestSpec(arg_dims=(3,), low=-3.0, high=3.0, grad=False),
    "largest integer <= f",
)
ROUND = vso(
    "Round",
    1,
    _round,
    "lk_round<{T}>({0}, {p0})",
    zero_derivative,
    TestSpec(arg_dims=(3,), params=(2,), grad=False),
    "f rounded to d decimals (halves away from zero)",
    helpers=("lk_round",),
    param_names=("d",),
)
SIGN = vso(
    "Sign",
    1,
    np.sign,
    "lk_sign<{T}>({0})",
    zero_derivative,
    TestSpec(arg_dims=(3,), grad=False),
    "-1, 0 or +1",
    helpers=("lk_sign",),
)
STEP = vso(
    "Step",
    1,
    _step,
    "lk_step<{T}>({0})",
    zero_derivative,
    TestSpec(arg_dims=(3,), grad=False),
    "0 where f < 0, else 1",
    helpers=("lk_step",),
)

# --- piecewise smooth: kinks ---------------------------------------------------------------


def _relu(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return np.where(x < 0, np.zeros((), x.dtype), x)


def _mod(x: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return x - n * np.floor((x - d) / n)


ABS = vso(
    "Abs",
    1,
    np.abs,
    math("fabs", "{0}"),
    chain(lambda out, x: make("Sign", (x,))),
    TestSpec(arg_dims=(3,)),
    "absolute value",
)
RELU = vso(
    "ReLU",
    1,
    _relu,
    "(({0}) < ({T})0 ? ({T})0 : ({0}))",
    chain(lambda out, x: make("Step", (x,))),
    TestSpec(arg_dims=(3,)),
    "max(f, 0)",
)
MOD = vso(
    "Mod",
    3,
    _mod,
    "lk_mod<{T}>({0}, {1}, {2})",
    # Mod(x, n, d) = x - n * Floor((x - d) / n); Floor's derivative is zero
    chain(
        lambda out, x, n, d: const(1),
        lambda out, x, n, d: -make("Floor", ((x - d) / n,)),
        lambda out, x, n, d: None,
    ),
    TestSpec(arg_dims=(3, 1, 3), low=0.5, high=2.0),
    "x - n * floor((x - d) / n): x modulo n, in [d, d + n)",
    helpers=("lk_mod",),
)

# --- clamps --------------------------------------------------------------------------------


def _clamp(x: np.ndarray, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    return np.where(x < a, a, np.where(x > b, b, x))


def _diff_clamp(x: np.ndarray, a: int, b: int) -> np.ndarray:
    x = np.asarray(x)
    return np.where((x < a) | (x > b), 0, 1).astype(x.dtype)


def _vjp_clamp(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    # Clamp(x, a, b) = a if x < a, else b if x > b, else x: each partial is an indicator
    # of its branch (correct also when a > b, where the middle branch is empty).
    x, a, b = args
    below = make("LessThan", (x, a))
    above = (1 - below) * make("LessThan", (b, x))
    return (g * (1 - below - above), g * below, g * above)


CLAMP = vso(
    "Clamp",
    3,
    _clamp,
    "lk_clamp<{T}>({0}, {1}, {2})",
    _vjp_clamp,
    TestSpec(arg_dims=(3, 1, 3)),
    "a if f < a, b if f > b, else f",
    helpers=("lk_clamp",),
)
CLAMP_INT = vso(
    "ClampInt",
    1,
    _clamp,
    "lk_clamp<{T}>({0}, ({T})({p0}), ({T})({p1}))",
    chain(lambda out, x, a, b: make("DiffClampInt", (x,), (a, b))),
    TestSpec(arg_dims=(3,), params=(-1, 1)),
    "Clamp with integer bounds a, b",
    helpers=("lk_clamp",),
    param_names=("a", "b"),
)
DIFF_CLAMP_INT = vso(
    "DiffClampInt",
    1,
    _diff_clamp,
    "lk_diffclamp<{T}>({0}, ({T})({p0}), ({T})({p1}))",
    zero_derivative,
    TestSpec(arg_dims=(3,), params=(-1, 1), grad=False),
    "1 where a <= f <= b, else 0 (the derivative of ClampInt)",
    helpers=("lk_diffclamp",),
    param_names=("a", "b"),
)

# --- selection -----------------------------------------------------------------------------


def _if_else(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(f >= 0, a, b)


def _vjp_if_else(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    # the condition gets no cotangent; each branch gets g where it was selected
    f, _a, _b = args
    nothing = zero(1)
    return (None, make("IfElse", (f, g, nothing)), make("IfElse", (f, nothing, g)))


IF_ELSE = vso(
    "IfElse",
    3,
    _if_else,
    "(({0}) >= ({T})0 ? ({1}) : ({2}))",
    _vjp_if_else,
    TestSpec(arg_dims=(3, 1, 3)),
    "a where f >= 0, else b",
)

CARDS = (
    # comparisons
    EQUAL,
    NOT_EQUAL,
    LESS_THAN,
    LESS_OR_EQUAL,
    # rounding
    FLOOR,
    ROUND,
    SIGN,
    STEP,
    # kinks
    ABS,
    RELU,
    MOD,
    # clamps
    CLAMP,
    CLAMP_INT,
    DIFF_CLAMP_INT,
    # selection
    IF_ELSE,
)
