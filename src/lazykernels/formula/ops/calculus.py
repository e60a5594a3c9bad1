"""Symbolic calculus names (SPEC §1.7-1.9): autodiff, linear operators, factorization.

Every card here is *sugar*: building ``Grad(f, v, e)``, ``Laplacian(f, v)``,
``TraceOperator(f, v)``... runs the transformation at construction time and returns ordinary,
simplified IR, so the code generators and the evaluator never see these names.

All of them rest on the one reverse-mode algorithm :func:`~lazykernels.formula.grad.grad`
(``grad(f, v, e) = J^T e`` with ``J = df/dv``, of shape ``f.dim x v.dim``):

- ``Diff(f, v, u) = J u`` is the adjoint of the linear map ``e -> J^T e``, i.e.
  ``grad(grad(f, v, e), e, u)`` with ``e`` an internal placeholder variable;
- ``GradMatrix``, ``Divergence`` and ``TraceOperator`` read rows / the diagonal of ``J`` as
  ``grad(Elem(f, k), v, 1)`` (row k of ``J``), one per output component;
- ``SumLinOperator(f, v) = 1^T J 1`` and ``AdjointOperator(f, v, u) = J^T u``.

The linear operators check that ``J`` does not depend on ``v`` (``f`` is linear in ``v``)
and raise :class:`~lazykernels.errors.FormulaError` otherwise. A constant offset (an affine
``f``) has the same ``J`` and is not detected: the operators act on the linear part.

Placeholders are ``Var(index, dim, Cat.TEMP)`` with an index above every TEMP variable of
the inputs (and at least ``2**40``), so they never collide with user variables or with
each other when the names nest; every result is checked to be free of them.
"""

from __future__ import annotations

from functools import reduce

from ...errors import DimensionError, FormulaError
from ..grad import grad
from ..ir import Cat, Node, const, make, var
from ..opspec import OpSpec

PLACEHOLDER_BASE = 1 << 40
"""Smallest index of the internal placeholder variables (category ``Cat.TEMP``)."""


def _simplify(node: Node) -> Node:
    # The simplifier's rules build nodes through the registry, which imports this module:
    # import it at call time to keep the module graph acyclic.
    from ..simplify import simplify

    return simplify(node)


def _placeholder(dim: int, *formulas: Node) -> Node:
    """A fresh ``Cat.TEMP`` variable whose index no TEMP variable of ``formulas`` uses."""
    taken = [
        n.params[0]
        for root in formulas
        for n in root.walk()
        if n.op.name == "Var" and n.params[2] is Cat.TEMP
    ]
    return var(max([PLACEHOLDER_BASE - 1, *taken]) + 1, dim, Cat.TEMP)


def _contains(root: Node, node: Node) -> bool:
    return any(n is node for n in root.walk())


def _require_var(name: str, v: Node) -> None:
    if v.op.name != "Var":
        raise FormulaError(
            f"{name}: the second argument must be a variable (Var), got {v}; "
            "differentiate with respect to an input of the formula"
        )


def _check_cotangent(name: str, what: str, u: Node, dim: int) -> None:
    if u.dim not in (dim, 1):
        raise DimensionError(f"{name}: {what} must have dimension {dim} (or 1), got {u.dim}")


def _free_of(name: str, result: Node, placeholder: Node) -> Node:
    if _contains(result, placeholder):  # would be a bug of a derivative rule
        raise FormulaError(f"{name}: internal placeholder {placeholder} left in {result}")
    return result


MAX_EXPANDED = 1024
"""Most Jacobian rows/diagonal terms a calculus op expands symbolically (one per component)."""


def _check_expansion_size(name: str, count: int) -> None:
    if count > MAX_EXPANDED:
        raise FormulaError(
            f"{name}: expanding {count} components symbolically is too large "
            f"(limit {MAX_EXPANDED}); use Grad with an explicit gradient input instead"
        )


def _jacobian_row(f: Node, v: Node, k: int) -> Node:
    """Row k of ``J = df/dv``: ``grad(f_k, v, 1)``, of dimension ``v.dim``."""
    component = f if f.dim == 1 else make("Elem", (f,), (k,))
    return grad(component, v, const(1))


def _diagonal_sum(f: Node, v: Node, w: Node | None = None) -> Node:
    """``sum_k w_k df_k/dv_k`` (f.dim == v.dim), or ``sum_k w_k df/dv_k`` for a scalar f;
    ``w`` (dimension 1 or ``v.dim``) defaults to 1."""
    if f.dim == 1 or v.dim == 1:
        diagonal = grad(f, v, const(1))  # df/dv_k for a scalar f; df/dv for a scalar v
        if w is not None:
            diagonal = make("Mult", (diagonal, w))
        return diagonal if diagonal.dim == 1 else make("Sum", (diagonal,))
    _check_expansion_size("trace", v.dim)
    terms = []
    for k in range(v.dim):
        term = make("Elem", (_jacobian_row(f, v, k),), (k,))
        if w is not None:
            term = make("Mult", (term, w if w.dim == 1 else make("Elem", (w,), (k,))))
        terms.append(term)
    return reduce(lambda a, b: make("Add", (a, b)), terms)


def _check_linear(name: str, f: Node, v: Node) -> None:
    """Raise unless ``J = df/dv`` is free of ``v`` (checked on ``J^T e``, e a placeholder)."""
    e = _placeholder(f.dim, f, v)
    transposed = _simplify(grad(f, v, e))
    if _contains(transposed, v):
        raise FormulaError(
            f"{name}: the formula must be linear in {v}, but its derivative still depends "
            f"on it: {f}"
        )


# --- autodiff (SPEC §1.7) ---------------------------------------------------------------------


def expand_grad(f: Node, v: Node, gradin: Node) -> Node:
    """``Grad(f, v, gradin) = (df/dv)^T gradin``, simplified (dimension ``v.dim``)."""
    _require_var("Grad", v)
    _check_cotangent("Grad", "the gradient input", gradin, f.dim)
    return _simplify(grad(f, v, gradin))


def expand_diff(f: Node, v: Node, u: Node) -> Node:
    """``Diff(f, v, u) = (df/dv) u``, the forward-mode derivative (dimension ``f.dim``)."""
    _require_var("Diff", v)
    _check_cotangent("Diff", "the direction u", u, v.dim)
    e = _placeholder(f.dim, f, v, u)
    transposed = _simplify(grad(f, v, e))  # J^T e: linear in e, its adjoint is u -> J u
    return _free_of("Diff", _simplify(grad(transposed, e, u)), e)


def expand_divergence(f: Node, v: Node) -> Node:
    """``Divergence(f, v) = sum_k df_k/dv_k`` (f.dim == v.dim; dimension 1)."""
    _require_var("Divergence", v)
    if f.dim != v.dim:
        raise DimensionError(
            f"Divergence: the formula's dimension {f.dim} must equal the variable's {v.dim}"
        )
    return _simplify(_diagonal_sum(f, v))


def expand_laplacian(f: Node, v: Node) -> Node:
    """``Laplacian(f, v) = Divergence(Grad(f, v, 1), v)`` for a scalar f (dimension 1)."""
    _require_var("Laplacian", v)
    if f.dim != 1:
        raise DimensionError(f"Laplacian: the formula must be a scalar (dim 1), got {f.dim}")
    gradient = _simplify(grad(f, v, const(1)))
    return _simplify(_diagonal_sum(gradient, v))


def expand_grad_matrix(f: Node, v: Node) -> Node:
    """``GradMatrix(f, v)``: the rows ``Grad(f, v, e_k)`` of the Jacobian, concatenated.

    The result has dimension ``f.dim * v.dim`` and component ``k * v.dim + j`` is
    ``df_k / dv_j``: the Jacobian stored row-major, i.e. the gradient matrix (the transpose
    of the Jacobian) stored column-major, as in KeOps.
    """
    _require_var("GradMatrix", v)
    _check_expansion_size("GradMatrix", f.dim)
    rows = [_simplify(_jacobian_row(f, v, k)) for k in range(f.dim)]
    return reduce(lambda a, b: make("Concat", (a, b)), rows)


# --- linear operators (SPEC §1.8) -------------------------------------------------------------


def expand_trace_operator(f: Node, v: Node, w: Node | None = None) -> Node:
    """``TraceOperator(f, v[, w])``: the (weighted) trace ``sum_k w_k J_kk`` of the linear
    map ``v -> f`` (dimension 1).

    ``f.dim`` must be ``v.dim``, or 1 (the scalar is broadcast: the trace is then the sum
    of the derivatives ``df/dv_k``); the weights ``w`` (default 1) have dimension 1 or
    ``v.dim``.
    """
    _require_var("TraceOperator", v)
    if f.dim not in (v.dim, 1):
        raise DimensionError(
            f"TraceOperator: the formula's dimension {f.dim} must be the variable's {v.dim} or 1"
        )
    if w is not None:
        _check_cotangent("TraceOperator", "the weights w", w, v.dim)
    _check_linear("TraceOperator", f, v)
    return _simplify(_diagonal_sum(f, v, w))


def expand_adjoint_operator(f: Node, v: Node, u: Node) -> Node:
    """``AdjointOperator(f, v, u)``: the adjoint of the linear map ``v -> f``, applied to u."""
    _require_var("AdjointOperator", v)
    _check_cotangent("AdjointOperator", "u", u, f.dim)
    _check_linear("AdjointOperator", f, v)
    return _simplify(grad(f, v, u))


def expand_sum_lin_operator(
    f: Node, v: Node, wl: Node | None = None, wr: Node | None = None
) -> Node:
    """``SumLinOperator(f, v[, wl[, wr]])``: ``wl^T J wr``, the sum of the entries of the
    matrix ``J`` of the linear map ``v -> f`` weighted on the left by ``wl`` (dimension 1 or
    ``f.dim``) and on the right by ``wr`` (1 or ``v.dim``); both default to 1."""
    _require_var("SumLinOperator", v)
    if wl is not None:
        _check_cotangent("SumLinOperator", "the left weights wl", wl, f.dim)
    if wr is not None:
        _check_cotangent("SumLinOperator", "the right weights wr", wr, v.dim)
    _check_linear("SumLinOperator", f, v)
    columns = grad(f, v, const(1) if wl is None else wl)  # wl^T J
    return _simplify(make("Sum", (columns if wr is None else make("Mult", (columns, wr)),)))


# --- factorization (SPEC §1.9) ----------------------------------------------------------------


def expand_factorize(f: Node, g: Node) -> Node:
    """``Factorize(f, g)``: returns ``f`` unchanged (see the card's doc)."""
    return f


def expand_auto_factorize(f: Node) -> Node:
    """``AutoFactorize(f)``: returns ``f`` unchanged (see the card's doc)."""
    return f


_SHARED = (
    "Nodes are interned, so every occurrence of a sub-formula is one node, and the code "
    "generator computes each node once (CSE): returns f unchanged."
)

GRAD = OpSpec(
    "Grad",
    3,
    expand=expand_grad,
    test=None,
    doc="Grad(f, v, e): gradient of f w.r.t. the variable v, applied to e (dim v.dim)",
)
DIFF = OpSpec(
    "Diff",
    3,
    expand=expand_diff,
    test=None,
    doc="Diff(f, v, u): differential of f w.r.t. v in the direction u (dim f.dim)",
)
LAPLACIAN = OpSpec(
    "Laplacian",
    2,
    expand=expand_laplacian,
    test=None,
    doc="Laplacian(f, v): sum of the second derivatives of the scalar f w.r.t. v (dim 1)",
)
DIVERGENCE = OpSpec(
    "Divergence",
    2,
    expand=expand_divergence,
    test=None,
    doc="Divergence(f, v): trace of df/dv, f.dim == v.dim (dim 1)",
)
GRAD_MATRIX = OpSpec(
    "GradMatrix",
    2,
    expand=expand_grad_matrix,
    test=None,
    doc="GradMatrix(f, v): component k*v.dim + j is df_k/dv_j (dim f.dim * v.dim)",
)
TRACE_OPERATOR = OpSpec(
    "TraceOperator",
    2,
    optional_args=1,
    expand=expand_trace_operator,
    test=None,
    doc="TraceOperator(f, v[, w]): (weighted) trace of the linear map v -> f (dim 1)",
)
ADJOINT_OPERATOR = OpSpec(
    "AdjointOperator",
    3,
    expand=expand_adjoint_operator,
    test=None,
    doc="AdjointOperator(f, v, u): adjoint of the linear map v -> f applied to u (dim v.dim)",
)
SUM_LIN_OPERATOR = OpSpec(
    "SumLinOperator",
    2,
    optional_args=2,
    expand=expand_sum_lin_operator,
    test=None,
    doc="SumLinOperator(f, v[, wl[, wr]]): wl^T M wr, M the matrix of the linear map v -> f",
)
FACTORIZE = OpSpec(
    "Factorize",
    2,
    expand=expand_factorize,
    test=None,
    doc="Factorize(f, g): compute g once in f. " + _SHARED,
)
AUTO_FACTORIZE = OpSpec(
    "AutoFactorize",
    1,
    expand=expand_auto_factorize,
    test=None,
    doc="AutoFactorize(f): compute every repeated sub-formula once. " + _SHARED,
)

CARDS = (
    GRAD,
    DIFF,
    LAPLACIAN,
    DIVERGENCE,
    GRAD_MATRIX,
    TRACE_OPERATOR,
    ADJOINT_OPERATOR,
    SUM_LIN_OPERATOR,
    FACTORIZE,
    AUTO_FACTORIZE,
)
