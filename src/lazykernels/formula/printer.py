"""Formula printer: ``to_string(node)`` writes text that the parser reads back to ``node``."""

from __future__ import annotations

from fractions import Fraction

from .ir import Cat, Node


def _param(p: object) -> str:
    if isinstance(p, Cat):
        return str(p.value)
    if isinstance(p, tuple):
        return "[" + ",".join(_param(q) for q in p) + "]"
    return repr(p)


def to_string(node: Node) -> str:
    """Generic prefix form ``Name(arg, ..., param, ...)``."""
    name = node.op.name
    if name == "IntCst":
        return str(node.params[0])
    if name == "RatCst":
        value: Fraction = node.params[0]
        return f"RatCst({value.numerator},{value.denominator})"
    parts = [to_string(a) for a in node.args] + [_param(p) for p in node.params]
    return f"{name}({','.join(parts)})"
