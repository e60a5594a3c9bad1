"""Symbolic reverse-mode differentiation: ``Grad(F, v, e)`` as a new formula.

Each op card carries a local VJP rule; this module holds the one global algorithm: walk the
DAG in reverse topological order, apply each rule to the node's accumulated cotangent, sum
contributions per node, and fix up broadcasting (a dim-1 argument of a dim-D element-wise op
receives the ``Sum`` of its cotangent). The result is IR again, so it can be differentiated
again to any order.
"""

from __future__ import annotations

from ..errors import DimensionError, FormulaError
from .ir import Node, make, topological_order, zero
from .opspec import NotDifferentiable


def _fit(cot: Node, target_dim: int, where: Node) -> Node:
    """Bring a cotangent to the dimension of the argument that receives it."""
    if cot.dim == target_dim:
        return cot
    if target_dim == 1:
        return make("Sum", (cot,))  # the argument was broadcast: its adjoint sums
    if cot.dim == 1:
        return make("SumT", (cot,), (target_dim,))
    raise DimensionError(
        f"internal: cotangent of dim {cot.dim} for an argument of dim {target_dim} in {where}"
    )


def grad(root: Node, wrt: Node, cotangent: Node) -> Node:
    """The vector-Jacobian product ``(dF/dv)^T e`` as a formula (not simplified).

    Args:
        root: the formula F.
        wrt: the variable v (or any sub-formula node) to differentiate with respect to.
        cotangent: the formula e, of dimension ``root.dim`` (or 1, broadcast).

    Returns:
        A formula of dimension ``wrt.dim``; ``Zero(wrt.dim)`` if F does not depend on v.

    Raises:
        DimensionError: ``cotangent`` has the wrong dimension.
        FormulaError: the path from F to v crosses an op with no derivative rule.
    """
    if cotangent.dim not in (root.dim, 1):
        raise DimensionError(
            f"Grad: the gradient input must have the formula's dimension {root.dim} "
            f"(or 1), got {cotangent.dim}"
        )
    order = topological_order(root)
    depends = _nodes_depending_on(order, wrt)
    if root not in depends:
        return zero(wrt.dim)
    cots: dict[Node, Node] = {root: _fit(cotangent, root.dim, root)}
    for node in reversed(order):
        if node is wrt or node not in cots or node not in depends:
            continue
        if node.op.vjp is None:
            raise FormulaError(f"{node.op.name} is not differentiable (in {node})")
        arg_cots = node.op.vjp(node, cots[node], node.args, node.params)
        for arg, cot in zip(node.args, arg_cots):
            if cot is None or arg not in depends:
                continue
            if isinstance(cot, NotDifferentiable):
                raise FormulaError(f"{node.op.name}: {cot.reason} (in {node})")
            cot = _fit(cot, arg.dim, node)
            cots[arg] = make("Add", (cots[arg], cot)) if arg in cots else cot
    return cots.get(wrt, zero(wrt.dim))


def _nodes_depending_on(order: list[Node], wrt: Node) -> set[Node]:
    depends: set[Node] = set()
    for node in order:
        if node is wrt or any(a in depends for a in node.args):
            depends.add(node)
    return depends
