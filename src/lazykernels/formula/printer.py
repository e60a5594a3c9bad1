"""Formula printer: ``to_string(node)`` writes text that the parser reads back to ``node``.

Arithmetic prints infix with Python's precedences and the fewest parentheses
(``Add(a, Minus(b))`` is ``a - b``, ``Mult(a, Inv(b))`` is ``a / b``, ``Square(a)`` is
``a**2``); everything else prints as a call ``Name(args, params)``. An infix spelling is used
only when the parser's own operator semantics (:mod:`~lazykernels.formula.syntax`) rebuild
the very same node from it, so ``parse_formula(to_string(f)) is f`` for every formula
(within the parser's nesting limit). The walk is iterative: deep formulas print fine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction

from ..errors import LazyKernelsError
from .ir import Cat, Node, const, topological_order
from .syntax import ARITH, CMP, OR, TERM, binary_node, power_node

UNARY, POWER, ATOM = 5, 6, 7  # above the binary levels CMP < OR < ARITH < TERM

# Infix form of binary ops: op name -> (operator, level, left operand level, right level).
_INFIX = {
    "Add": ("+", ARITH, ARITH, TERM),
    "Mult": ("*", TERM, TERM, UNARY),
    "Scalprod": ("|", OR, OR, ARITH),
    "LessThan": ("<", CMP, OR, OR),
    "LessOrEqual": ("<=", CMP, OR, OR),
    "Equal": ("==", CMP, OR, OR),
    "NotEqual": ("!=", CMP, OR, OR),
}
_CHECK_ERRORS = (LazyKernelsError, KeyError, TypeError, ValueError, ArithmeticError)

Printed = tuple[str, int]  # text and its precedence level


def to_string(node: Node, names: Mapping[Node, str] | None = None) -> str:
    """The formula as text that :func:`~lazykernels.formula.parse.parse_formula` reads back.

    Args:
        node: the formula.
        names: optional names to print instead of sub-formulas (typically the aliases'
            variables: ``{var: "x"}``, see :func:`~lazykernels.formula.aliases.alias_names`).

    Example:
        >>> from lazykernels.formula import Cat, var
        >>> x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
        >>> to_string((-(x - y).sqnorm2()).exp() * 2, {x: "x", y: "y"})
        'Exp(-Sum((x - y)**2)) * 2'
    """
    names = names or {}
    done: dict[Node, Printed] = {}
    for n in topological_order(node):
        done[n] = (names[n], ATOM) if n in names else _render(n, done)
    return done[node][0]


def _render(node: Node, done: dict[Node, Printed]) -> Printed:
    special = _SPECIAL.get(node.op.name)
    if special is not None:
        printed = special(node, done)
        if printed is not None:
            return printed
    return _call(node, done)


def _wrap(printed: Printed, level: int) -> str:
    text, own = printed
    return text if own >= level else f"({text})"


def _builds(node: Node, build: Callable[..., Node], *args: object) -> bool:
    """Whether the parser's ``build(*args)`` gives back ``node`` itself."""
    try:
        return build(*args) is node
    except _CHECK_ERRORS:
        return False


def _param(p: object) -> str:
    if isinstance(p, Cat):
        return str(p.value)
    if isinstance(p, tuple):
        return "[" + ", ".join(_param(q) for q in p) + "]"
    return repr(p)


def _call(node: Node, done: dict[Node, Printed]) -> Printed:
    parts = [done[a][0] for a in node.args] + [_param(p) for p in node.params]
    return f"{node.op.name}({', '.join(parts)})", ATOM


# --- leaves ----------------------------------------------------------------------------------


def _var(node: Node, done: dict[Node, Printed]) -> Printed:
    index, dim, cat = node.params
    return f"Var({index},{dim},{_param(cat)})", ATOM


def _int_cst(node: Node, done: dict[Node, Printed]) -> Printed:
    value = node.params[0]
    return str(value), ATOM if value >= 0 else UNARY


def _rat_cst(node: Node, done: dict[Node, Printed]) -> Printed:
    value: Fraction = node.params[0]
    return f"RatCst({value.numerator},{value.denominator})", ATOM


def _float_cst(node: Node, done: dict[Node, Printed]) -> Printed:
    value = float(node.params[0])
    if not math.isfinite(value):
        return f"FloatCst({value!r})", ATOM
    return repr(value), ATOM if math.copysign(1.0, value) > 0 else UNARY


def _zero(node: Node, done: dict[Node, Printed]) -> Printed:
    return f"Zero({node.dim})", ATOM


# --- operators -------------------------------------------------------------------------------


def _is_literal(printed: Printed) -> bool:
    # "-" in front of a number literal is part of the literal for the parser.
    return printed[1] == ATOM and printed[0][:1] in set("0123456789.")


def _minus(node: Node, done: dict[Node, Printed]) -> Printed | None:
    operand = done[node.args[0]]
    if _is_literal(operand):
        return None  # Minus(3), not -3 (which is IntCst(-3))
    text = _wrap(operand, UNARY)
    if text.startswith("-"):
        text = f"({text})"
    return f"-{text}", UNARY


def _add(node: Node, done: dict[Node, Printed]) -> Printed | None:
    a, b = node.args
    if b.op.name == "Minus" and _builds(node, binary_node, "-", a, b.args[0]):
        return f"{_wrap(done[a], ARITH)} - {_wrap(done[b.args[0]], TERM)}", ARITH
    return _binary(node, done)


def _mult(node: Node, done: dict[Node, Printed]) -> Printed | None:
    a, b = node.args
    if b.op.name == "Inv" and _builds(node, binary_node, "/", a, b.args[0]):
        return f"{_wrap(done[a], TERM)} / {_wrap(done[b.args[0]], UNARY)}", TERM
    return _binary(node, done)


def _binary(node: Node, done: dict[Node, Printed]) -> Printed | None:
    op, level, left, right = _INFIX[node.op.name]
    a, b = node.args
    if not _builds(node, binary_node, op, a, b):
        return None
    return f"{_wrap(done[a], left)} {op} {_wrap(done[b], right)}", level


def _inv(node: Node, done: dict[Node, Printed]) -> Printed | None:
    (a,) = node.args
    if not _builds(node, binary_node, "/", const(1), a):
        return None  # Inv(2): "1 / 2" is RatCst(1,2)
    return f"1 / {_wrap(done[a], UNARY)}", TERM


def _square(node: Node, done: dict[Node, Printed]) -> Printed | None:
    (a,) = node.args
    if not _builds(node, power_node, a, const(2)):
        return None
    return f"{_wrap(done[a], ATOM)}**2", POWER


def _pow(node: Node, done: dict[Node, Printed]) -> Printed | None:
    (a,), (n,) = node.args, node.params
    if not isinstance(n, int) or not _builds(node, power_node, a, const(n)):
        return None  # Pow(x, 2): "x**2" is Square(x)
    return f"{_wrap(done[a], ATOM)}**{n}", POWER


_Special = Callable[[Node, dict[Node, Printed]], "Printed | None"]
_SPECIAL: dict[str, _Special] = {
    "Var": _var,
    "IntCst": _int_cst,
    "RatCst": _rat_cst,
    "FloatCst": _float_cst,
    "Zero": _zero,
    "Minus": _minus,
    "Add": _add,
    "Mult": _mult,
    "Inv": _inv,
    "Square": _square,
    "Pow": _pow,
    "Scalprod": _binary,
    "LessThan": _binary,
    "LessOrEqual": _binary,
    "Equal": _binary,
    "NotEqual": _binary,
}
