"""The nodes a LazyTensor operation leaves pending (issue 12.7).

An operation checks its dimensions at once (:func:`remembered_dim`, by op, parameters and
operand dimensions, remembered) but builds its formula node only when it is first read
(:func:`build_nodes`): a warm reduction found in the plan cache by its structural key never
builds one.
"""

from __future__ import annotations

from typing import Any

from ..formula.ir import make, result_dim

_SAME_DIM = {"Subtract": "Add", "Divide": "Mult"}
"""Sugar ops whose result has the dimension rule of a primitive op (Add(f, Minus(g)),
Mult(f, Inv(g))): their nodes can wait too."""


DIMS: dict[tuple, int | None] = {}
"""``result_dim`` by (op name, parameters key, operand dims): checked dims, remembered."""
UNKNOWN = object()


def remembered_dim(key: tuple, params: tuple) -> int | None:
    """The result dimension of the op of ``key`` (``(name, params key, operand dims)``),
    checked (raises ``DimensionError``) and remembered in :data:`DIMS`; None for sugar ops,
    whose node is built at once."""
    name, _, dims = key
    dim = result_dim(_SAME_DIM.get(name, name), dims, params)  # raises on bad dims
    if len(DIMS) >= 4096:
        DIMS.clear()
    DIMS[key] = dim
    return dim


def build_nodes(lt: Any) -> None:
    """Build the pending nodes of ``lt`` and of its unbuilt operands (iteratively: a formula
    accumulated in a loop can be deeper than Python's recursion limit)."""
    todo = [lt]
    while todo:
        t = todo[-1]
        if t._node is not None:
            todo.pop()
            continue
        if t._pending is None:  # a bound leaf
            t._node = next(iter(t._binds)).node
            todo.pop()
            continue
        name, operands, params = t._pending
        unbuilt = [o for o in operands if o._node is None]
        if unbuilt:
            todo.extend(unbuilt)
            continue
        t.node = make(name, tuple(o._node for o in operands), params)
        todo.pop()
