"""Operator semantics and reduction signatures shared by the parser and the printer.

The printer writes infix text only where these functions say the parser will rebuild the
very same node, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..errors import FormulaError
from .ir import Node, const, make
from .opspec import OpSpec

# Binding power of the binary operators; "**" and the unary signs are handled apart.
CMP, OR, ARITH, TERM = 1, 2, 3, 4
BINARY_POWER = {
    "<": CMP,
    ">": CMP,
    "<=": CMP,
    ">=": CMP,
    "==": CMP,
    "!=": CMP,
    "|": OR,
    "+": ARITH,
    "-": ARITH,
    "*": TERM,
    "/": TERM,
}
# Binary operator -> (op name, whether the operands are swapped).
BINARY_OPS = {
    "+": ("Add", False),
    "-": ("Subtract", False),
    "*": ("Mult", False),
    "|": ("Scalprod", False),
    "<": ("LessThan", False),
    ">": ("LessThan", True),
    "<=": ("LessOrEqual", False),
    ">=": ("LessOrEqual", True),
    "==": ("Equal", False),
    "!=": ("NotEqual", False),
}


# --- operator semantics (shared with the printer, which checks its output against them) ---


def _int_value(node: Node) -> int | None:
    return node.params[0] if node.op.name == "IntCst" else None


def binary_node(op: str, a: Node, b: Node) -> Node:
    """The node the parser builds for ``a <op> b`` (KeOps's operator overloads).

    Raises:
        FormulaError: division by the integer 0, or the op's own errors.
        KeyError: the op is not in the registry.
    """
    if op == "/":
        n = _int_value(b)
        if n is not None:  # f / n -> RatCst(1, n) * f;  m / n -> RatCst(m, n)
            if n == 0:
                raise FormulaError("division by zero")
            m = _int_value(a)
            if m is not None:
                return const(Fraction(m, n))
            return make("Mult", (const(Fraction(1, n)), a))
        if _int_value(a) == 1:
            return make("Inv", (b,))
        return make("Divide", (a, b))
    name, swap = BINARY_OPS[op]
    return make(name, (b, a) if swap else (a, b))


def power_node(base: Node, exponent: Node) -> Node:
    """The node the parser builds for ``base ** exponent``."""
    n = _int_value(exponent)
    if n is not None:
        return make("Square", (base,)) if n == 2 else make("Pow", (base,), (n,))
    if exponent.op.name == "FloatCst":
        if exponent.params[0] == 0.5:
            return make("Sqrt", (base,))
        if exponent.params[0] == -0.5:
            return make("Rsqrt", (base,))
    return make("Powf", (base, exponent))


# --- reductions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReductionSyntax:
    """Arguments of ``<Name>_Reduction(formula[, K], tagI[, formula2])``.

    Each reduction card gives its own (:attr:`lazykernels.reductions.ReductionSpec.syntax`);
    :data:`lazykernels.reductions.SYNTAX` is the table the parser reads.

    Attributes:
        takes_k: K comes between the formula and tagI.
        formula2: ``"none"``, ``"optional"`` or ``"required"`` second formula (a weight).
    """

    takes_k: bool = False
    formula2: str = "none"


def plural(n: int, word: str) -> str:
    """``"1 integer"``, ``"2 integers"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def signature(card: OpSpec) -> str:
    """``"1 formula argument and 1 integer parameter (m)"``: what a call of ``card`` takes."""
    parts = []
    if card.optional_args:
        most = card.arity + card.optional_args
        parts.append(f"{card.arity} to {most} formula arguments")
    elif card.arity or not card.nparams:
        parts.append(plural(card.arity, "formula argument"))
    if card.nparams or card.variadic_params:
        count = plural(card.nparams, "integer parameter")
        parts.append(("at least " if card.variadic_params else "") + count)
    text = " and ".join(parts)
    if card.param_names:
        text += f" ({', '.join(card.param_names)})"
    return text


def close_matches(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'Exp'?)`` for the choices close to ``word``, else ``""``."""
    found = difflib.get_close_matches(word, choices, n=3)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
