"""The structural plan cache of LazyTensor reductions (issue 12, item 7).

Every LazyTensor built by the constructors and by ``GenericLazyTensor._apply`` carries a
*structure id* (its ``_sid``): two LazyTensors have the same id exactly when the same
``make`` calls built them, up to the renaming of their bound variables. A bound variable's
id is its ``Leaf.code`` (dim, cat); the others are ints, interned from a symbolic
variable's (index, dim, cat), a constant leaf's node, and an operation's (op, params key,
result class, the operands' ids, and how the operands share bound variables). The bound values
of a LazyTensor are kept in the order its id fixes (operands' bindings merged in operand
order), so one id means one plan *and* one order of its bound arrays.

A reduction looks its plan up in :data:`STRUCTURES` by (id, reduction, axis, K, plan
options) before any formula node is built, renumbered or simplified; :data:`PLANS` keys
plans by the renumbered formula for the paths that build it. LazyTensors made otherwise
(a transposition, a complex view...) get their id from their node when it is a leaf, and
have none (no structural caching) when it is a compound node.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ..core.plan import ReductionPlan
from ..formula.ir import Node
from .construct import DATA_INDEX_BASE

PLAN_KEYS = ("dtype_acc", "use_double_acc", "sum_scheme", "gemm")
PLANS: dict[tuple[Any, ...], ReductionPlan] = {}  # see GenericLazyTensor._build_plan
MAX_PLANS = 1024

STRUCTURES: dict[tuple[Any, ...], tuple[ReductionPlan, tuple[Node, ...]]] = {}
"""(plan, its symbolic variables in call order) by :func:`reduction_key`."""

UNSET = object()
"""The class default of ``_sid``: not computed yet (see :func:`own_sid`)."""

SIDS: dict[tuple[Any, ...], tuple[int, int | None]] = {}
"""(structure id, result dimension) of an operation by its key (see ``_apply``)."""
MAX_SIDS = 4096
_LEAF_SIDS: dict[tuple[Any, ...], int] = {}
_next_sid = itertools.count()  # never reused: an id outlives a clearing of the tables


def leaf_sid(key: tuple[Any, ...]) -> int:
    """The id of a variable or constant leaf of key ``key``."""
    sid = _LEAF_SIDS.get(key)
    if sid is None:
        if len(_LEAF_SIDS) >= MAX_SIDS:
            _LEAF_SIDS.clear()
        sid = _LEAF_SIDS[key] = next(_next_sid)
    return sid


def op_sid(key: tuple[Any, ...], dim: int | None) -> int:
    """A new id for the operation of key ``key`` (not in :data:`SIDS`) of result ``dim``."""
    if len(SIDS) >= MAX_SIDS:
        SIDS.clear()
    sid = next(_next_sid)
    SIDS[key] = (sid, dim)
    return sid


def own_sid(lt: Any) -> int | None:
    """The id of a LazyTensor made outside the constructors and ``_apply``, from its node:
    a symbolic variable or a constant leaf has one, anything else (a compound node, a data
    variable's node) None. Remembered on ``lt``."""
    node = lt.node
    sid = None
    if node.op.name == "Var":
        index, dim, cat = node.params
        if index < DATA_INDEX_BASE:
            sid = leaf_sid(("s", index, dim, cat))
    elif not node.args and not lt._binds:
        sid = leaf_sid(("c", node))
    lt._sid = sid
    return sid


def sharing(operands: Sequence[Any], binds: dict) -> tuple[tuple[int, ...], ...]:
    """Where each operand's bound variables sit among the merged ``binds`` (needed in a key
    only when operands share a variable)."""
    position = {leaf: k for k, leaf in enumerate(binds)}
    return tuple(tuple(position[leaf] for leaf in o._binds) for o in operands)


def operands_key(operands: Sequence[Any], binds: dict) -> tuple[Any, ...] | None:
    """The operands' part of a key: their ids and their sharing (None if one has no id)."""
    sids = []
    n_bound = 0
    for o in operands:
        sid = o._sid
        if sid is UNSET:
            sid = own_sid(o)
        if sid is None:
            return None
        sids.append(sid)
        n_bound += len(o._binds)
    share = None if n_bound == len(binds) else sharing(operands, binds)
    return (*sids, share)


def reduction_key(
    operands: list, binds: dict, reduction_op: str, axis: int, opt_arg: Any, options: Any
) -> tuple[Any, ...] | None:
    """The key of a reduction of ``operands`` (the LazyTensor, and its weight) in
    :data:`STRUCTURES`: their ids, the reduction, its axis and K, the plan options. None
    when an operand has no id. It may be unhashable (an unhashable option): the caller
    catches the TypeError."""
    head = operands_key(operands, binds)
    if head is None:
        return None
    opts = ()
    if options:
        opts = tuple(sorted((k, options[k]) for k in PLAN_KEYS if k in options))
    return (*head, reduction_op, axis, opt_arg, opts)


def remember_structure(key: Any, res: Any) -> None:
    """Remember the plan of the reduced LazyTensor ``res`` under ``key``."""
    if key is None:
        return
    if len(STRUCTURES) >= MAX_PLANS:
        STRUCTURES.clear()
    STRUCTURES[key] = (res._plan, tuple(res._symbolic_vars()))
