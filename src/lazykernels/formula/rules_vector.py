"""Simplifier rules for the structural vector ops (Elem, ElemT, Extract, Concat, SumT).

They mostly clean up what symbolic calculus produces: a trace or Jacobian row is built from
standard basis vectors ``ElemT(1, n, k)`` and components ``Elem(., k)``, which these rules
collapse (``Divergence(x*p, x)`` becomes ``3*p`` rather than a sum of basis-vector
products). Same invariants as :mod:`lazykernels.formula.rules`: value and output dimension
unchanged, and the formula never grows.
"""

from __future__ import annotations

from .ir import Node, make, zero


def _is(node: Node, name: str) -> bool:
    return node.op.name == name


def rule_elem_of_elemt(node: Node) -> Node | None:
    """Elem(ElemT(a, n, k), m) -> a if m == k else 0."""
    (arg,) = node.args
    if not _is(arg, "ElemT"):
        return None
    (m,) = node.params
    _n, k = arg.params
    return arg.args[0] if m == k else zero(1)


def rule_elem_of_sumt(node: Node) -> Node | None:
    """Elem(SumT(a, d), m) -> a."""
    (arg,) = node.args
    return arg.args[0] if _is(arg, "SumT") else None


def rule_elem_of_concat(node: Node) -> Node | None:
    """Elem(Concat(f, g), m) -> Elem(f, m) or Elem(g, m - f.dim)."""
    (arg,) = node.args
    if not _is(arg, "Concat"):
        return None
    (m,) = node.params
    f, g = arg.args
    if m < f.dim:
        return f if f.dim == 1 else make("Elem", (f,), (m,))
    return g if g.dim == 1 else make("Elem", (g,), (m - f.dim,))


def rule_elem_of_scalar(node: Node) -> Node | None:
    """Elem(f, 0) -> f when f has dimension 1."""
    (arg,) = node.args
    return arg if arg.dim == 1 else None


def rule_elem_of_zero(node: Node) -> Node | None:
    """Elem(Zero(n), m) -> Zero(1); ElemT(Zero(1), n, k) -> Zero(n)."""
    (arg,) = node.args
    if not _is(arg, "Zero"):
        return None
    return zero(node.dim)


def rule_extract_whole(node: Node) -> Node | None:
    """Extract(f, 0, f.dim) -> f."""
    (arg,) = node.args
    start, dim = node.params
    return arg if start == 0 and dim == arg.dim else None


def rule_sum_of_elemt(node: Node) -> Node | None:
    """Sum(ElemT(a, n, k)) -> a."""
    (arg,) = node.args
    return arg.args[0] if _is(arg, "ElemT") else None


def rule_mult_elemt(node: Node) -> Node | None:
    """ElemT(a, n, k) * b -> ElemT(a * b_k, n, k) (and mirrored): one component survives."""
    left, right = node.args
    if _is(right, "ElemT") and not _is(left, "ElemT"):
        left, right = right, left
    if not _is(left, "ElemT") or left.dim != node.dim:
        return None
    n, k = left.params
    factor = right if right.dim == 1 else make("Elem", (right,), (k,))
    return make("ElemT", (make("Mult", (left.args[0], factor)),), (n, k))


def rule_add_elemt(node: Node) -> Node | None:
    """ElemT(a, n, k) + ElemT(b, n, k) -> ElemT(a + b, n, k)."""
    left, right = node.args
    if _is(left, "ElemT") and _is(right, "ElemT") and left.params == right.params:
        return make("ElemT", (make("Add", (left.args[0], right.args[0])),), left.params)
    return None
