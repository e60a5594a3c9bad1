"""The state a LazyTensor operation combines from its operands.

Besides its formula, a LazyTensor carries the arrays bound to its variables, its batch
dimensions, its numbers of i and j indices, its dtype and the user's default ``ranges`` and
``backend``. :func:`merge` combines them for an operation on several LazyTensors and raises
on any inconsistency (another array library, dtypes, ranges, batch dimensions that do not
broadcast, different sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError


def merge(tools: Any, operands: Sequence[Any]) -> dict[str, Any]:
    """The shared state of an operation on ``operands`` (LazyTensors of the array library
    ``tools``); raises on any inconsistency."""
    return dict(zip(FIELDS, merged(tools, operands)))


FIELDS = ("binds", "batchdims", "ni", "nj", "dtype", "ranges", "backend")
"""The state's fields, in the order of :func:`merged`."""


def merged(tools: Any, operands: Sequence[Any]) -> tuple:
    """:func:`merge`'s values as a tuple in the order of :data:`FIELDS` (an operation sets
    them on its result without building a dict)."""
    binds: dict[Any, Any] = {}
    dtype = None
    ranges = None
    backend = None
    batch: tuple[int, ...] = ()
    ni = nj = None
    for o in operands:
        if o._reduction is not None:
            o._check_usable()
        if o.tools is not tools:
            raise TypeError(f"cannot mix a {tools.name} LazyTensor with a {o.tools.name} one")
        if o._dtype is not None:
            if dtype is not None and o._dtype != dtype:
                raise DtypeError(
                    f"cannot mix LazyTensors of dtypes {tools.dtype_name(dtype)} and "
                    f"{tools.dtype_name(o._dtype)}; convert the arrays to one dtype"
                )
            dtype = o._dtype
        if o.ranges is not None:
            if ranges is not None and not _same_ranges(ranges, o.ranges):
                raise ArgumentError("cannot mix LazyTensors with different ranges")
            ranges = o.ranges
        backend = backend or o.backend
        if o.batchdims and o.batchdims != batch:
            batch = _broadcast_batch(batch, o.batchdims)
        if o.ni is not None and o.ni != ni:
            ni = o.ni if ni is None else _merge_size("i", ni, o.ni)
        if o.nj is not None and o.nj != nj:
            nj = o.nj if nj is None else _merge_size("j", nj, o.nj)
        binds.update(o._binds)
    return binds, batch, ni, nj, dtype, ranges, backend


def copy_state(cls: type, lt: Any, node: Any = None) -> Any:
    """A new LazyTensor of class ``cls`` with the state of ``lt`` and formula ``node``
    (None: set by the caller)."""
    res = object.__new__(cls)
    if node is not None:
        res.node = node
    res._binds, res.batchdims, res.ni, res.nj = lt._binds, lt.batchdims, lt.ni, lt.nj
    res._dtype, res.ranges, res.backend = lt._dtype, lt.ranges, lt.backend
    return res


def with_state(cls: type, state: tuple, node: Any = None) -> Any:
    """A new LazyTensor of class ``cls`` with the state ``state`` (from :func:`merged`) and
    formula ``node`` (None: set by the caller)."""
    res = object.__new__(cls)
    if node is not None:
        res.node = node
    res._binds, res.batchdims, res.ni, res.nj, res._dtype, res.ranges, res.backend = state
    return res


def empty_state() -> dict[str, Any]:
    """The state of a LazyTensor holding a constant formula (nothing bound)."""
    return {"binds": {}, "batchdims": (), "ni": None, "nj": None, "dtype": None}


def _broadcast_batch(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + a
    b = (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ShapeError(
                f"batch dimensions {a} and {b} do not broadcast (sizes must be 1 or equal)"
            )
        out.append(max(x, y))
    return tuple(out)


def _merge_size(label: str, a: int | None, b: int | None) -> int | None:
    if a is not None and b is not None and a != b:
        raise ShapeError(f"cannot combine LazyTensors with {a} and {b} {label}-indices")
    return a if a is not None else b


def _same_ranges(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if len(a) != len(b):
        return False
    try:
        return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    except (TypeError, ValueError, RuntimeError):
        return False
