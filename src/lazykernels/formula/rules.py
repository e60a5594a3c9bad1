"""The simplifier's rewrite rules (SPEC §1.3), one small named function each.

Every ``rule_*`` looks at one node, whose arguments the engine
(:mod:`lazykernels.formula.simplify`) has already simplified, and returns the replacement
node or ``None``. Rules match by op name (``node.op.name``), so a rule about an op that is
not registered (yet) simply never fires.

Invariants every rule keeps:

- the value is unchanged (up to floating-point rounding; ``0 * x -> 0`` also for infinite
  ``x``, as in KeOps) and so is the output dimension: a dim-1 result standing for a
  dim-D node is broadcast with ``SumT``;
- exact constants (``IntCst``, ``RatCst``) fold with :class:`fractions.Fraction`; a
  ``FloatCst`` operand makes the result a ``FloatCst`` (never a silent rational);
- termination: rules only move constants left and outwards, ``Minus`` outwards and to the
  right of sums, ``Exp`` to the right of products and ``SumT`` up the tree, or shrink the
  formula; no rule distributes (duplicates a sub-tree), and no two rules undo each other.

The canonical forms they produce: ``c * f`` and ``c + f`` with the constant on the left,
``f - g`` as ``Add(f, Minus(g))``, ``(-c) * f`` rather than ``-(c * f)``, ``u * Exp(a)``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..errors import FormulaError
from .ir import Node, constant_value, make, zero

Number = Fraction | float


@dataclass(frozen=True)
class Rule:
    """A named rewrite: ``rewrite(node)`` returns the replacement, or None to pass.

    Attributes:
        name: shown by the debug trace (``LAZYKERNELS_DEBUG_SIMPLIFY=1``).
        rewrite: the rule function.
        ops: names of the ops the rule can match (the engine tries it on those nodes only);
            None means every node.
    """

    name: str
    rewrite: Callable[[Node], Node | None]
    ops: frozenset[str] | None = None


# --- helpers ----------------------------------------------------------------------------

_NUMBERS = frozenset({"IntCst", "RatCst", "FloatCst"})


def _is(node: Node, name: str) -> bool:
    return node.op.name == name


def _is_number(node: Node) -> bool:
    """A scalar constant leaf other than ``Zero``."""
    return node.op.name in _NUMBERS


def _value(node: Node) -> Number:
    value = constant_value(node)
    assert value is not None, node
    return value


def _number(value: Number) -> Node:
    """The constant node of ``value``: exact zero is ``Zero(1)``, a float stays a FloatCst."""
    if value == 0:
        return zero(1)
    if isinstance(value, float):
        return make("FloatCst", (), (value,))
    if value.denominator == 1:
        return make("IntCst", (), (int(value),))
    return make("RatCst", (), (value,))


def _combine(a: Number, b: Number, fn: Callable[[Number, Number], Number]) -> Number:
    """``fn(a, b)``, exactly unless one operand is a float (then in float)."""
    if isinstance(a, float) or isinstance(b, float):
        return float(fn(float(a), float(b)))
    return fn(a, b)


def _fit(node: Node, dim: int) -> Node:
    """``node`` broadcast to ``dim`` (``SumT`` of a dim-1 node)."""
    if node.dim == dim:
        return node
    assert node.dim == 1, (node, dim)
    return make("SumT", (node,), (dim,))


def _mult(a: Node, b: Node) -> Node:
    return make("Mult", (a, b))


def _add(a: Node, b: Node) -> Node:
    return make("Add", (a, b))


def _minus(a: Node) -> Node:
    return make("Minus", (a,))


# --- leaves -----------------------------------------------------------------------------


def rule_cst_zero(node: Node) -> Node | None:
    """``IntCst(0) -> Zero(1)``; also ``FloatCst(0.0)`` (an exact zero)."""
    if _is_number(node) and _value(node) == 0:
        return zero(1)
    return None


# --- zeros ------------------------------------------------------------------------------


def rule_add_zero(node: Node) -> Node | None:
    """``0 + x -> x`` and ``x + 0 -> x``, broadcast to the sum's dimension."""
    a, b = node.args
    if _is(a, "Zero"):
        return _fit(b, node.dim)
    if _is(b, "Zero"):
        return _fit(a, node.dim)
    return None


def rule_mult_zero(node: Node) -> Node | None:
    """``0 * x -> 0`` and ``x * 0 -> 0``, of the product's dimension (covers ``0 / x``)."""
    if any(_is(a, "Zero") for a in node.args):
        return zero(node.dim)
    return None


def rule_minus_zero(node: Node) -> Node | None:
    """``-0 -> 0``."""
    return node.args[0] if _is(node.args[0], "Zero") else None


def rule_inv_zero(node: Node) -> Node | None:
    """``x / 0`` (that is ``Inv(0)``) is an error."""
    (a,) = node.args
    if _is(a, "Zero") or (_is_number(a) and _value(a) == 0):
        raise FormulaError("division by zero in the formula (Inv of a zero constant)")
    return None


def rule_sum_zero(node: Node) -> Node | None:
    """``Sum(0) -> Zero(1)``."""
    return zero(1) if _is(node.args[0], "Zero") else None


def rule_sumt_zero(node: Node) -> Node | None:
    """``SumT(0, d) -> Zero(d)``."""
    return zero(node.dim) if _is(node.args[0], "Zero") else None


def rule_square_zero(node: Node) -> Node | None:
    """``Square(0) -> 0``."""
    return node.args[0] if _is(node.args[0], "Zero") else None


def rule_exp_zero(node: Node) -> Node | None:
    """``Exp(0) -> 1``, broadcast to the argument's dimension."""
    if _is(node.args[0], "Zero"):
        return _fit(make("IntCst", (), (1,)), node.dim)
    return None


def rule_scalprod_zero(node: Node) -> Node | None:
    """``(0 | x) -> Zero(1)`` and ``(x | 0) -> Zero(1)``."""
    return zero(1) if any(_is(a, "Zero") for a in node.args) else None


# --- ones -------------------------------------------------------------------------------


def rule_mult_one(node: Node) -> Node | None:
    """``1 * f -> f`` and ``f * 1 -> f`` (the constant has dim 1, so the dims match)."""
    a, b = node.args
    if _is_number(a) and _value(a) == 1:
        return _fit(b, node.dim)
    if _is_number(b) and _value(b) == 1:
        return _fit(a, node.dim)
    return None


def rule_mult_minus_one(node: Node) -> Node | None:
    """``-1 * f -> -f``."""
    a, b = node.args
    if _is_number(a) and _value(a) == -1:
        return _minus(_fit(b, node.dim))
    return None


# --- constant folding -------------------------------------------------------------------


def rule_fold_add(node: Node) -> Node | None:
    """``m + n -> (m+n)`` for constants (exact for IntCst/RatCst)."""
    a, b = node.args
    if _is_number(a) and _is_number(b):
        return _number(_combine(_value(a), _value(b), operator.add))
    return None


def rule_fold_mult(node: Node) -> Node | None:
    """``m * n -> (mn)`` for constants."""
    a, b = node.args
    if _is_number(a) and _is_number(b):
        return _number(_combine(_value(a), _value(b), operator.mul))
    return None


def rule_fold_minus(node: Node) -> Node | None:
    """``-(n) -> (-n)``."""
    (a,) = node.args
    return _number(-_value(a)) if _is_number(a) else None


def rule_fold_inv(node: Node) -> Node | None:
    """``1 / n -> (1/n)`` (a RatCst for an integer n); ``f / 1`` then folds by ``1 * f``."""
    (a,) = node.args
    if not _is_number(a) or _value(a) == 0:
        return None
    return _number(_combine(Fraction(1), _value(a), operator.truediv))


def rule_fold_square(node: Node) -> Node | None:
    """``Square(n) -> n*n``."""
    (a,) = node.args
    if _is_number(a):
        v = _value(a)
        return _number(_combine(v, v, operator.mul))
    return None


# --- constants to the left, regrouped ---------------------------------------------------


def rule_add_constant_left(node: Node) -> Node | None:
    """``f + n -> n + f``."""
    a, b = node.args
    if _is_number(b) and not _is_number(a):
        return _add(b, a)
    return None


def rule_add_regroup_constants(node: Node) -> Node | None:
    """``m + (n + g) -> (m+n) + g``."""
    a, b = node.args
    if _is_number(a) and _is(b, "Add") and _is_number(b.args[0]):
        total = _combine(_value(a), _value(b.args[0]), operator.add)
        return _add(_number(total), b.args[1])
    return None


def rule_add_pull_constant(node: Node) -> Node | None:
    """``f + (n + g) -> n + (f + g)`` and ``(n + g) + f -> n + (g + f)``."""
    a, b = node.args
    if _is_number(a) or _is_number(b):
        return None
    if _is(b, "Add") and _is_number(b.args[0]):
        return _add(b.args[0], _add(a, b.args[1]))
    if _is(a, "Add") and _is_number(a.args[0]):
        return _add(a.args[0], _add(a.args[1], b))
    return None


def rule_mult_constant_left(node: Node) -> Node | None:
    """``f * n -> n * f``."""
    a, b = node.args
    if _is_number(b) and not _is_number(a):
        return _mult(b, a)
    return None


def rule_mult_regroup_constants(node: Node) -> Node | None:
    """``m * (n * g) -> (mn) * g``."""
    a, b = node.args
    if _is_number(a) and _is(b, "Mult") and _is_number(b.args[0]):
        product = _combine(_value(a), _value(b.args[0]), operator.mul)
        return _mult(_number(product), b.args[1])
    return None


def rule_mult_pull_constant(node: Node) -> Node | None:
    """``f * (n * g) -> n * (f * g)`` and ``(n * g) * f -> n * (g * f)``."""
    a, b = node.args
    if _is_number(a) or _is_number(b):
        return None
    if _is(b, "Mult") and _is_number(b.args[0]):
        return _mult(b.args[0], _mult(a, b.args[1]))
    if _is(a, "Mult") and _is_number(a.args[0]):
        return _mult(a.args[0], _mult(a.args[1], b))
    return None


# --- signs ------------------------------------------------------------------------------


def rule_minus_minus(node: Node) -> Node | None:
    """``-(-f) -> f``."""
    (a,) = node.args
    return a.args[0] if _is(a, "Minus") else None


def rule_minus_constant_product(node: Node) -> Node | None:
    """``-(n * g) -> (-n) * g``."""
    (a,) = node.args
    if _is(a, "Mult") and _is_number(a.args[0]):
        return _mult(_number(-_value(a.args[0])), a.args[1])
    return None


def rule_mult_minus_minus(node: Node) -> Node | None:
    """``(-f) * (-g) -> f * g``."""
    a, b = node.args
    if _is(a, "Minus") and _is(b, "Minus"):
        return _mult(a.args[0], b.args[0])
    return None


def rule_mult_minus(node: Node) -> Node | None:
    """``(-f) * g -> -(f * g)`` and ``f * (-g) -> -(f * g)``."""
    a, b = node.args
    if _is(a, "Minus") and not _is(b, "Minus"):
        return _minus(_mult(a.args[0], b))
    if _is(b, "Minus") and not _is(a, "Minus"):
        return _minus(_mult(a, b.args[0]))
    return None


def rule_add_minus_minus(node: Node) -> Node | None:
    """``(-x) + (-y) -> -(x + y)``."""
    a, b = node.args
    if _is(a, "Minus") and _is(b, "Minus"):
        return _minus(_add(a.args[0], b.args[0]))
    return None


def rule_add_minus_right(node: Node) -> Node | None:
    """``(-x) + y -> y + (-x)``, i.e. ``y - x`` (Subtract is ``Add(y, Minus(x))``)."""
    a, b = node.args
    if _is(a, "Minus") and not _is(b, "Minus") and not _is_number(b):
        return _add(b, a)
    return None


def rule_square_minus(node: Node) -> Node | None:
    """``Square(-f) -> Square(f)``."""
    (a,) = node.args
    return make("Square", (a.args[0],)) if _is(a, "Minus") else None


# --- collecting terms and factors -------------------------------------------------------


def rule_add_self(node: Node) -> Node | None:
    """``x + x -> 2 * x``."""
    a, b = node.args
    return _mult(make("IntCst", (), (2,)), a) if a is b else None


def rule_sub_self(node: Node) -> Node | None:
    """``x - x -> 0`` (``x + (-x)`` and ``(-x) + x``)."""
    a, b = node.args
    if (_is(b, "Minus") and b.args[0] is a) or (_is(a, "Minus") and a.args[0] is b):
        return zero(node.dim)
    return None


def _coefficient_and_base(term: Node) -> tuple[Number, Node]:
    """``n * x -> (n, x)``, ``-x -> (-1, x)``, ``x -> (1, x)``."""
    if _is(term, "Mult") and _is_number(term.args[0]):
        return _value(term.args[0]), term.args[1]
    if _is(term, "Minus"):
        inner = term.args[0]
        if _is(inner, "Mult") and _is_number(inner.args[0]):
            return -_value(inner.args[0]), inner.args[1]
        return Fraction(-1), inner
    return Fraction(1), term


def rule_add_like_terms(node: Node) -> Node | None:
    """``n*x + x -> (n+1)*x``, ``x + n*x``, ``m*x + n*x``, ``n*x - x -> (n-1)*x``..."""
    a, b = node.args
    ca, base = _coefficient_and_base(a)
    cb, other = _coefficient_and_base(b)
    if base is not other or _is_number(base):
        return None  # different bases, or constants (folded elsewhere)
    return _mult(_number(_combine(ca, cb, operator.add)), base)


def rule_add_factor(node: Node) -> Node | None:
    """``a*b + a*c -> a*(b+c)`` (all four placements of the shared factor) and
    ``a*b - a*c -> a*(b-c)``; only a structurally identical factor counts."""
    p, q = node.args
    negative = _is(q, "Minus")
    if negative:
        q = q.args[0]
    if not (_is(p, "Mult") and _is(q, "Mult")):
        return None

    def sign(x: Node) -> Node:
        return _minus(x) if negative else x

    (p0, p1), (q0, q1) = p.args, q.args
    if p0 is q0:
        return _mult(p0, _add(p1, sign(q1)))
    if p0 is q1:
        return _mult(p0, _add(p1, sign(q0)))
    if p1 is q0:
        return _mult(_add(p0, sign(q1)), p1)
    if p1 is q1:
        return _mult(_add(p0, sign(q0)), p1)
    return None


def rule_mult_self(node: Node) -> Node | None:
    """``f * f -> Square(f)``."""
    a, b = node.args
    return make("Square", (a,)) if a is b else None


# --- exponentials -----------------------------------------------------------------------


def rule_mult_exp(node: Node) -> Node | None:
    """``Exp(f) * Exp(g) -> Exp(f + g)``."""
    a, b = node.args
    if _is(a, "Exp") and _is(b, "Exp"):
        return make("Exp", (_add(a.args[0], b.args[0]),))
    return None


def rule_mult_exp_right(node: Node) -> Node | None:
    """``Exp(a) * g -> g * Exp(a)`` (exponentials to the right, constants stay left)."""
    a, b = node.args
    if _is(a, "Exp") and not _is(b, "Exp") and not _is_number(b):
        return _mult(b, a)
    return None


def rule_mult_exp_regroup(node: Node) -> Node | None:
    """``(u * Exp(a)) * Exp(b) -> u * Exp(a + b)``."""
    a, b = node.args
    if _is(b, "Exp") and _is(a, "Mult") and _is(a.args[1], "Exp"):
        u, exp_a = a.args
        return _mult(u, make("Exp", (_add(exp_a.args[0], b.args[0]),)))
    return None


def rule_mult_exp_outward(node: Node) -> Node | None:
    """``f * (v * Exp(b)) -> (f * v) * Exp(b)`` and ``(u * Exp(a)) * g -> (u * g) * Exp(a)``
    (f, g not constants nor exponentials): exponentials float to the right end of a
    product chain, where ``(u*Exp(a))*Exp(b)`` merges them."""
    a, b = node.args
    if _is(b, "Mult") and _is(b.args[1], "Exp") and not (_is_number(a) or _is(a, "Exp")):
        return _mult(_mult(a, b.args[0]), b.args[1])
    if _is(a, "Mult") and _is(a.args[1], "Exp") and not (_is_number(b) or _is(b, "Exp")):
        return _mult(_mult(a.args[0], b), a.args[1])
    return None


# --- Sum, SumT and broadcasting ---------------------------------------------------------


def rule_sum_scalar(node: Node) -> Node | None:
    """``Sum(f) -> f`` when ``f`` has dim 1."""
    (a,) = node.args
    return a if a.dim == 1 else None


def rule_sum_sumt(node: Node) -> Node | None:
    """``Sum(SumT(f, d)) -> d * f``."""
    (a,) = node.args
    if _is(a, "SumT"):
        return _mult(make("IntCst", (), (a.dim,)), a.args[0])
    return None


def rule_sum_scalar_factor(node: Node) -> Node | None:
    """``Sum(a * b) -> a * Sum(b)`` if ``a`` is scalar, ``Sum(a) * b`` if ``b`` is."""
    (p,) = node.args
    if not _is(p, "Mult"):
        return None
    a, b = p.args
    if a.dim == 1 and b.dim > 1:
        return _mult(a, make("Sum", (b,)))
    if b.dim == 1 and a.dim > 1:
        return _mult(make("Sum", (a,)), b)
    return None


def rule_sum_minus(node: Node) -> Node | None:
    """``Sum(-f) -> -Sum(f)``."""
    (a,) = node.args
    return _minus(make("Sum", (a.args[0],))) if _is(a, "Minus") else None


def rule_sumt_identity(node: Node) -> Node | None:
    """``SumT(f, 1) -> f``."""
    return node.args[0] if node.dim == 1 else None


def rule_elementwise_sumt(node: Node) -> Node | None:
    """Broadcasts fuse into element-wise ops: ``SumT(f, d) * g -> f * g`` when ``g`` has
    dim ``d``, and ``op(SumT(f, d), s) -> SumT(op(f, s), d)`` when the rest is scalar."""
    if not node.op.elementwise or node.dim == 1:
        return None
    if not any(_is(a, "SumT") for a in node.args):
        return None
    args = tuple(a.args[0] if _is(a, "SumT") else a for a in node.args)
    inner = make(node.op, args, node.params)
    return _fit(inner, node.dim)


# --- Pow and Scalprod (registered by other op families) ---------------------------------


def _pow_exponent(node: Node) -> int | None:
    if len(node.params) == 1 and type(node.params[0]) is int:
        return node.params[0]
    return None


def rule_pow_one(node: Node) -> Node | None:
    """``Pow(f, 1) -> f``."""
    return node.args[0] if _pow_exponent(node) == 1 else None


def rule_pow_zero(node: Node) -> Node | None:
    """``Pow(f, 0) -> 1``, broadcast to ``f``'s dimension."""
    if _pow_exponent(node) == 0:
        return _fit(make("IntCst", (), (1,)), node.dim)
    return None


def rule_pow_two(node: Node) -> Node | None:
    """``Pow(f, 2) -> Square(f)``."""
    return make("Square", (node.args[0],)) if _pow_exponent(node) == 2 else None


def rule_fold_pow(node: Node) -> Node | None:
    """``Pow(n, m) -> n**m`` for a constant n (exact for IntCst/RatCst), ``Pow(0, m) -> 0``
    for ``m > 0``."""
    m = _pow_exponent(node)
    (a,) = node.args
    if m is None or m <= 0:
        return None  # m == 0 is Pow(f,0); 0 ** (m < 0) is left to overflow at run time
    if _is(a, "Zero"):
        return a
    if _is_number(a):
        try:
            return _number(_value(a) ** m)
        except OverflowError:  # a float constant to a large power: leave it to run time
            return None
    return None


def rule_scalprod_scalar(node: Node) -> Node | None:
    """``(f | g) -> f * Sum(g)`` when ``f`` is scalar, ``Sum(f) * g`` when ``g`` is."""
    a, b = node.args
    if a.dim == 1:
        return _mult(a, make("Sum", (b,)))
    if b.dim == 1:
        return _mult(make("Sum", (a,)), b)
    return None


def rule_scalprod_scalar_factor(node: Node) -> Node | None:
    """``(a*f | g) -> a*(f | g)`` and ``(f | a*g) -> a*(f | g)`` for a scalar ``a``."""
    f, g = node.args
    if _is(f, "Mult") and f.args[0].dim == 1:
        return _mult(f.args[0], make("Scalprod", (f.args[1], g)))
    if _is(g, "Mult") and g.args[0].dim == 1:
        return _mult(g.args[0], make("Scalprod", (f, g.args[1])))
    return None


def rule_scalprod_self(node: Node) -> Node | None:
    """``(f | f) -> Sum(Square(f))``."""
    a, b = node.args
    return make("Sum", (make("Square", (a,)),)) if a is b else None
