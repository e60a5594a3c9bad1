"""Leaf cards: variables and constants (SPEC §1.6), plus our ``FloatCst``.

Their evaluation and C spelling are special-cased by the evaluator and the code generator
(a variable is an input, a constant a literal), so the cards only carry names, parameters
and dimension rules.
"""

from __future__ import annotations

from fractions import Fraction

from ...errors import FormulaError
from ..opspec import OpSpec, fixed_dim

MAX_DIM = 1 << 16
"""Largest vector dimension of a variable (kernels loop over those above unroll_max)."""


def _var_dim(dims: tuple[int, ...], params: tuple) -> int:
    index, dim, _cat = params
    if not 1 <= dim <= MAX_DIM:
        raise FormulaError(f"Var({index}, {dim}, ...): the dimension must be in [1, {MAX_DIM}]")
    if index < 0:
        raise FormulaError(f"Var({index}, {dim}, ...): the index must be >= 0")
    return dim


def _zero_dim(dims: tuple[int, ...], params: tuple) -> int:
    (dim,) = params
    if dim < 1:
        raise FormulaError(f"Zero({dim}): the dimension must be >= 1")
    return dim


def _rat_dim(dims: tuple[int, ...], params: tuple) -> int:
    (value,) = params
    if not isinstance(value, Fraction) or value.denominator == 1:
        raise FormulaError(f"RatCst holds a non-integer fraction, got {value!r}")
    return 1


VAR = OpSpec(
    "Var",
    0,
    dim=_var_dim,
    nparams=3,
    param_names=("index", "dim", "cat"),
    test=None,
    doc="input number `index`, of vector dimension `dim`, indexed by i, j or a parameter",
)
INT_CST = OpSpec("IntCst", 0, dim=fixed_dim(1), nparams=1, test=None, doc="integer constant")
RAT_CST = OpSpec("RatCst", 0, dim=_rat_dim, nparams=1, test=None, doc="rational constant p/q")
FLOAT_CST = OpSpec(
    "FloatCst",
    0,
    dim=fixed_dim(1),
    nparams=1,
    test=None,
    doc="floating-point constant (a float literal in a formula string)",
)
ZERO = OpSpec("Zero", 0, dim=_zero_dim, nparams=1, test=None, doc="the zero vector")

CARDS = (VAR, INT_CST, RAT_CST, FLOAT_CST, ZERO)
