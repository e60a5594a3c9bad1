"""Smooth element-wise maths cards (KeOps's VectorizedScalarOps): one scalar function per component.

Families: exponentials and logarithms, powers and roots, trigonometry. The piecewise ops
(comparisons, rounding, clamps, IfElse, Mod, Abs, ReLU) are in ``elementwise_piecewise``.

Every card here is built by :func:`vso`: dim-1 arguments broadcast against the others
(``elementwise_dim``), the C template is a scalar expression with ``{T}`` for the type, and
the derivative is written with ``chain`` (one partial derivative per argument). Special
points are defined values, not NaNs: ``Rsqrt(0) = 0``, ``SinXDivX(0) = 1``,
``XLogX(0) = 0``, as in KeOps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import numpy as np

from ...errors import FormulaError
from ..ir import Node, const, make
from ..opspec import VJP, DimRule, MathCall, OpSpec, TestSpec, chain, elementwise_dim, math


def _quiet(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``fn`` with NumPy floating-point warnings silenced (NaN/inf results are the answer)."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return fn(*args)

    return wrapper


def int_params_dim(name: str, param_names: tuple[str, ...]) -> DimRule:
    """Dimension rule of element-wise ops whose static parameters must be integers."""
    broadcast = elementwise_dim(name)

    def rule(dims: tuple[int, ...], params: tuple) -> int:
        for pname, p in zip(param_names, params):
            if isinstance(p, bool) or not isinstance(p, int | np.integer):
                raise FormulaError(f"{name}: the parameter {pname} must be an integer, got {p!r}")
        return broadcast(dims, params)

    return rule


def vso(
    name: str,
    arity: int,
    numpy: Callable[..., np.ndarray],
    c: str | MathCall,
    vjp: VJP | None,
    test: TestSpec,
    doc: str,
    *,
    helpers: Iterable[str] = (),
    param_names: tuple[str, ...] = (),
) -> OpSpec:
    """The card of a vectorized scalar op (element-wise, dim-1 arguments broadcast).

    Args:
        name: formula-string name.
        arity: number of formula arguments.
        numpy: NumPy evaluation ``numpy(*arg_values, *params)``; run with warnings silenced.
        c: neutral scalar spelling: an infix template (``{0}``.. arguments, ``{T}`` type,
            ``{p0}``.. parameters) or ``math(fn, templates...)`` (see ``opspec.MathCall``).
        vjp: derivative rule (``chain(...)``, ``zero_derivative`` or a hand rule).
        test: test metadata.
        doc: one-line description.
        helpers: names of the ``codegen.helpers.HELPERS`` functions ``c`` calls.
        param_names: names of the static parameters, which must be integers.
    """
    dim = int_params_dim(name, param_names) if param_names else elementwise_dim(name)
    return OpSpec(
        name,
        arity,
        dim=dim,
        elementwise=True,
        numpy=_quiet(numpy),
        c=c,
        helpers=frozenset(helpers),
        vjp=vjp,
        nparams=len(param_names),
        param_names=param_names,
        test=test,
        doc=doc,
    )


def _where(mask: np.ndarray, value: float, x: np.ndarray) -> np.ndarray:
    """``x`` with ``value`` where ``mask`` holds, keeping ``x``'s floating dtype."""
    x = np.asarray(x)
    return np.where(mask, np.asarray(value, dtype=x.dtype), x)


# --- exponentials and logarithms ---------------------------------------------------------


def _xlogx(x: np.ndarray) -> np.ndarray:
    safe = _where(x == 0, 1.0, x)  # 0 * log(1) = 0: the defined value at 0
    return x * np.log(safe)


EXP = vso(
    "Exp",
    1,
    np.exp,
    math("exp", "{0}"),
    chain(lambda out, x: out),
    TestSpec(arg_dims=(3,)),
    "exponential",
)
LOG = vso(
    "Log",
    1,
    np.log,
    math("log", "{0}"),
    chain(lambda out, x: make("Inv", (x,))),
    TestSpec(arg_dims=(3,), low=0.2, high=3.0),
    "natural logarithm",
)
XLOGX = vso(
    "XLogX",
    1,
    _xlogx,
    "lk_xlogx<{T}>({0})",
    chain(lambda out, x: make("Log", (x,)) + 1),
    TestSpec(arg_dims=(3,), low=0.2, high=3.0),
    "f * log(f), 0 at 0",
    helpers=("lk_xlogx",),
)

# --- powers and roots --------------------------------------------------------------------


def _rsqrt(x: np.ndarray) -> np.ndarray:
    safe = _where(x == 0, 1.0, x)
    return _where(x == 0, 0.0, 1 / np.sqrt(safe))


def _dpow(out: Node, x: Node, m: int) -> Node | None:
    # d/dx x^m = m x^(m-1), spelled without Pow where the exponent makes it trivial
    if m == 0:
        return None
    if m == 1:
        return const(1)
    if m == 2:
        return 2 * x
    return m * make("Pow", (x,), (m - 1,))


def _int_inv(n: int) -> Node:
    # IntInv(n) := RatCst(1/n)  (IntCst(1) or IntCst(-1) when n = +-1)
    if isinstance(n, bool) or not isinstance(n, int) or n == 0:
        raise FormulaError(f"IntInv: the parameter must be a non-zero integer, got {n!r}")
    return const(Fraction(1, n))


SQUARE = vso(
    "Square",
    1,
    np.square,
    "({0} * {0})",
    chain(lambda out, x: 2 * x),
    TestSpec(arg_dims=(3,)),
    "f * f",
)
POW = vso(
    "Pow",
    1,
    np.power,
    "lk_powi<{T}>({0}, {p0})",
    chain(_dpow),
    TestSpec(arg_dims=(3,), params=(3,)),
    "f ** m for an integer m",
    helpers=("lk_powi",),
    param_names=("m",),
)
POWF = vso(
    "Powf",
    2,
    np.power,
    math("pow", "{0}", "{1}"),
    chain(
        lambda out, x, y: y * make("Powf", (x, y - 1)),
        lambda out, x, y: make("Log", (x,)) * out,
    ),
    TestSpec(arg_dims=(3, 1), low=0.5, high=2.0),
    "f ** g (f > 0)",
)
SQRT = vso(
    "Sqrt",
    1,
    np.sqrt,
    math("sqrt", "{0}"),
    chain(lambda out, x: Fraction(1, 2) * make("Rsqrt", (x,))),
    TestSpec(arg_dims=(3,), low=0.2, high=3.0),
    "square root",
)
RSQRT = vso(
    "Rsqrt",
    1,
    _rsqrt,
    "lk_rsqrt<{T}>({0})",
    chain(lambda out, x: Fraction(-1, 2) * make("Pow", (out,), (3,))),
    TestSpec(arg_dims=(3,), low=0.2, high=3.0),
    "1 / sqrt(f), 0 at 0",
    helpers=("lk_rsqrt",),
)
INT_INV = OpSpec(
    "IntInv",
    0,
    nparams=1,
    param_names=("n",),
    expand=_int_inv,
    test=TestSpec(params=(4,), grad=False),  # no formula argument to differentiate
    doc="the rational constant 1/n",
)

# --- trigonometry ------------------------------------------------------------------------


def _sinxdivx(x: np.ndarray) -> np.ndarray:
    safe = _where(x == 0, 1.0, x)
    return _where(x == 0, 1.0, np.sin(safe) / safe)


def _atan2_partial(k: int) -> Callable[..., Node]:
    # d atan2(f, g) = (g df - f dg) / (f^2 + g^2)
    def partial(out: Node, f: Node, g: Node) -> Node:
        r2 = make("Square", (f,)) + make("Square", (g,))
        return g / r2 if k == 0 else -f / r2

    return partial


SIN = vso(
    "Sin",
    1,
    np.sin,
    math("sin", "{0}"),
    chain(lambda out, x: make("Cos", (x,))),
    TestSpec(arg_dims=(3,), low=-3.0, high=3.0),
    "sine",
)
COS = vso(
    "Cos",
    1,
    np.cos,
    math("cos", "{0}"),
    chain(lambda out, x: -make("Sin", (x,))),
    TestSpec(arg_dims=(3,), low=-3.0, high=3.0),
    "cosine",
)
SINXDIVX = vso(
    "SinXDivX",
    1,
    _sinxdivx,
    "lk_sinxdivx<{T}>({0})",
    # d/dx sin(x)/x = (cos(x) - sin(x)/x) / x  (NaN at exactly 0, as in KeOps)
    chain(lambda out, x: (make("Cos", (x,)) - out) * make("Inv", (x,))),
    TestSpec(arg_dims=(3,), low=-3.0, high=3.0),
    "sin(f) / f, 1 at 0",
    helpers=("lk_sinxdivx",),
)
ASIN = vso(
    "Asin",
    1,
    np.arcsin,
    math("asin", "{0}"),
    chain(lambda out, x: make("Rsqrt", (1 - make("Square", (x,)),))),
    TestSpec(arg_dims=(3,), low=-0.8, high=0.8),
    "arc sine",
)
ACOS = vso(
    "Acos",
    1,
    np.arccos,
    math("acos", "{0}"),
    chain(lambda out, x: -make("Rsqrt", (1 - make("Square", (x,)),))),
    TestSpec(arg_dims=(3,), low=-0.8, high=0.8),
    "arc cosine",
)
ATAN = vso(
    "Atan",
    1,
    np.arctan,
    math("atan", "{0}"),
    chain(lambda out, x: make("Inv", (1 + make("Square", (x,)),))),
    TestSpec(arg_dims=(3,)),
    "arc tangent",
)
ATAN2 = vso(
    "Atan2",
    2,
    np.arctan2,
    math("atan2", "{0}", "{1}"),
    chain(_atan2_partial(0), _atan2_partial(1)),
    TestSpec(arg_dims=(3, 1), low=0.3, high=2.0),
    "angle of the point (g, f): atan2(f, g)",
)

CARDS = (
    # exponentials and logarithms
    EXP,
    LOG,
    XLOGX,
    # powers and roots
    SQUARE,
    POW,
    POWF,
    SQRT,
    RSQRT,
    INT_INV,
    # trigonometry
    SIN,
    COS,
    SINXDIVX,
    ASIN,
    ACOS,
    ATAN,
    ATAN2,
)
