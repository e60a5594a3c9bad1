"""The formula engine: IR, op registry, parser, printer, simplifier, autodiff, NumPy evaluation.

Pipeline position: everything downstream (reductions, code generation, bindings) reads the
immutable :class:`~lazykernels.formula.ir.Node` DAG built here. Op semantics live in one
place, the cards of :mod:`lazykernels.formula.ops`.
"""

from __future__ import annotations

from .evaluate import evaluate
from .grad import grad
from .ir import Cat, Node, const, lift, make, substitute, var, zero
from .ops import OPS
from .parse import parse_aliases, parse_formula, parse_reduction
from .printer import to_string
from .simplify import simplify

__all__ = [
    "OPS",
    "Cat",
    "Node",
    "const",
    "evaluate",
    "grad",
    "lift",
    "make",
    "parse_aliases",
    "parse_formula",
    "parse_reduction",
    "simplify",
    "substitute",
    "to_string",
    "var",
    "zero",
]
