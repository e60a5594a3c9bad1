"""The structural plan cache of LazyTensor reductions (issue 12, item 7).

A LazyTensor records, as it is built, the postfix of the operations that made it (its
``_ops``: bound ``Leaf`` variables, symbolic ``Var`` nodes, constant leaves, and
``(op, params key, arity, class)`` entries, see ``GenericLazyTensor._apply``). A reduction
turns it into a key independent of the fresh variable indices (:func:`structure_key`) and
looks its plan up in :data:`STRUCTURES` before any formula node is built, renumbered or
simplified; :data:`PLANS` keys plans by the renumbered formula for the paths that build it.
"""

from __future__ import annotations

from typing import Any

from ..core.plan import ReductionPlan
from ..formula.ir import Node
from .construct import DATA_INDEX_BASE, Leaf

PLAN_KEYS = ("dtype_acc", "use_double_acc", "sum_scheme", "gemm")
PLANS: dict[tuple[Any, ...], ReductionPlan] = {}  # see GenericLazyTensor._build_plan
MAX_PLANS = 1024


STRUCTURES: dict[tuple[Any, ...], tuple[ReductionPlan, tuple[int, ...]]] = {}
"""(plan, positions of the symbolic variables among the leaves) by structural key."""


def canonical(ops: tuple, ids: dict[Any, tuple], leaves: list[Any]) -> Any:
    """``ops`` (a LazyTensor's postfix, see ``GenericLazyTensor._apply``) with each variable
    leaf replaced by a name independent of its fresh index: bound variables (Leaf) by their
    order of first appearance, symbolic ones by (index, dim, cat); None when a leaf is a
    compound node or a data variable's node (built outside ``_apply``: its variables are not
    in the postfix)."""
    out = []
    for t in ops:
        kind = type(t)
        if kind is tuple:
            out.append(t)
        elif kind is Leaf:
            c = ids.get(t)
            if c is None:
                c = ids[t] = ("b", len(leaves), t.code)
                leaves.append(t)
            out.append(c)
        elif t.op.name == "Var":
            index, dim, cat = t.params
            if index >= DATA_INDEX_BASE:  # a data variable's node (e.g. from t()): no key
                return None
            c = ids.get(t)
            if c is None:
                c = ids[t] = ("s", index, dim, cat)
                leaves.append(t)
            out.append(c)
        elif t.args:
            return None
        else:
            out.append(t)  # an interned constant leaf: IntCst, Zero...
    return tuple(out)


def structure_key(
    operands: list, reduction_op: str, axis: int, opt_arg: Any, options: dict[str, Any]
) -> tuple[Any, list[Node]]:
    """(the structural key of a reduction of ``operands``, its variable leaves in order).

    The postfix fixes every ``make`` call up to the renaming of variables, hence the
    renumbered formula and the plan; the key also holds the reduction, its axis and K, and
    the plan options. It is None when it cannot be formed (it may be unhashable: an
    unhashable parameter or option, see ``_reduce``)."""
    leaves: list[Any] = []
    ids: dict[Any, tuple] = {}
    if len(operands) == 1:
        o = operands[0]
        c = canonical(o._ops if o._ops is not None else (o.node,), ids, leaves)
        if c is None:
            return None, leaves
        parts: tuple = (c,)
        n_bound = len(o._binds)
    else:
        bindings: dict = {}
        found = []
        for o in operands:
            bindings.update(o._binds)
            c = canonical(o._ops if o._ops is not None else (o.node,), ids, leaves)
            if c is None:
                return None, leaves
            found.append(c)
        parts, n_bound = tuple(found), len(bindings)
    opts = ()
    if options:
        opts = tuple(sorted((k, options[k]) for k in PLAN_KEYS if k in options))
    return (*parts, reduction_op, axis, opt_arg, opts, n_bound), leaves


def bound_leaves(leaves: list[Node], bindings: dict) -> bool:
    """The bound leaves are the bindings, in the same (layout) order."""
    return [v for v in leaves if v in bindings] == list(bindings)


def remember_structure(key: Any, leaves: list[Node], res: Any) -> None:
    if key is None or not bound_leaves(leaves, res._binds):
        return
    positions = {v: k for k, v in enumerate(leaves)}
    symbolic = res._symbolic_vars()
    if any(v not in positions for v in symbolic):
        return
    if len(STRUCTURES) >= MAX_PLANS:
        STRUCTURES.clear()
    STRUCTURES[key] = (res._plan, tuple(positions[v] for v in symbolic))
