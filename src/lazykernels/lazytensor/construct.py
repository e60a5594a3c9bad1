"""Construction of a LazyTensor from data (SPEC §4.5): arrays, numbers, symbolic variables.

A mixin of :class:`~lazykernels.lazytensor.core.GenericLazyTensor`: the constructor
classifies its argument (a ``(ind, dim, cat)`` tuple, an int, floats, an array of one of the
shapes below) and binds a fresh ``Var`` node to the data.

==============================  ============================================================
data                            LazyTensor
==============================  ============================================================
``(ind, dim, cat)``             symbolic variable, filled when the reduction is called
int                             ``IntCst``
float(s), NumPy float scalar    parameter whose dtype is fixed when the reduction runs
0-d or 1-D array ``(D,)``       parameter (``axis`` 0 / 1: a column of M / N scalars)
``(M, D)``                      ``axis=0``: Vi, ``axis=1``: Vj, ``axis=2``: batch of Pm
``(..., M, 1, D)`` etc.         Vi / Vj / Pm read from the shape; leading dims are batch
complex data                    interleaved ``[re, im]`` reals in a ComplexLazyTensor
==============================  ============================================================
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import ArgumentError, DtypeError, ShapeError
from ..formula.ir import Cat, Node, const, var

DATA_INDEX_BASE = 1 << 32
"""Smallest index of the ``Var`` nodes that stand for bound arrays."""

_fresh_index = itertools.count(DATA_INDEX_BASE)


@lru_cache(maxsize=1)
def _placeholder_node() -> Node:
    """The node a LazyTensor holds until its constructor sets the real one."""
    return const(0)


@dataclass(frozen=True)
class FloatParam:
    """Python numbers bound to a parameter; their dtype is fixed when the reduction runs."""

    values: tuple[float, ...]


def is_number_list(x: Any) -> bool:
    """True for a non-empty list of Python numbers."""
    return isinstance(x, list) and len(x) > 0 and all(isinstance(v, numbers.Number) for v in x)


class ConstructionMixin:
    """The constructor's helpers; they set the state fields of ``GenericLazyTensor``."""

    tools: Any
    is_complex: bool

    def _init_symbolic(self, x: tuple, axis: int | None) -> None:
        if axis is not None:
            raise ArgumentError("LazyTensor((ind, dim, cat)): do not give axis, cat sets it")
        if len(x) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
            raise ArgumentError(
                f"a symbolic variable is a tuple of 3 ints (ind, dim, cat), got {x}"
            )
        ind, dim, cat = x
        if cat not in (0, 1, 2) or dim < 1 or not 0 <= ind < DATA_INDEX_BASE:
            raise ArgumentError(
                f"symbolic variable {x}: need ind >= 0, dim >= 1 and cat 0 (i), 1 (j) or 2 (param)"
            )
        self.node = var(ind, dim, Cat(cat))
        self.axis = cat

    def _init_numbers(self, values: Sequence[Any]) -> None:
        floats: list[float] = []
        for v in values:
            if isinstance(v, complex):
                floats += [v.real, v.imag]
            else:
                floats.append(float(v))
        if self.is_complex and not any(isinstance(v, complex) for v in values):
            floats = [p for v in floats for p in (v, 0.0)]
        self._bind_new(FloatParam(tuple(floats)), len(floats), Cat.PARAM)
        self.axis = 2

    def _init_array(self, x: Any, axis: int | None) -> None:
        tools = self.tools
        if tools.is_complex_array(x):
            x = tools.view_as_real(x)
        elif self.is_complex:
            raise DtypeError("ComplexLazyTensor: got a real array; use x.real2complex()")
        if not tools.is_floating(tools.dtype_of(x)):
            raise DtypeError(
                f"LazyTensor: arrays must be float16, float32 or float64 (or complex), got "
                f"{tools.dtype_name(tools.dtype_of(x))}"
            )
        if axis not in (None, 0, 1, 2):
            raise ArgumentError(f"axis must be 0 (i), 1 (j) or 2 (parameter), got {axis!r}")
        shape = tools.shape(x)
        self._dtype = tools.dtype_of(x)
        if len(shape) <= 1:
            if len(shape) == 0:
                x, shape = tools.reshape(x, (1,)), (1,)
            if axis in (0, 1):  # a vector of M (or N) scalars
                self._bind_rows(tools.reshape(x, (shape[0], 1)), Cat(axis), (), shape[0])
            else:
                self._bind_new(x, shape[0], Cat.PARAM)
                self.axis = 2
        elif len(shape) == 2:
            if axis is None:
                raise ArgumentError(
                    f"LazyTensor: a 2D array of shape {shape} needs axis=0 (indexed by i), "
                    f"axis=1 (indexed by j) or axis=2 (a batch of parameters)"
                )
            if axis == 2:
                self.batchdims = (shape[0],)
                self._bind_new(x, shape[1], Cat.PARAM)
                self.axis = 2
            else:
                self._bind_rows(x, Cat(axis), (), shape[0])
        else:
            self._init_batched(x, shape, axis)

    def _init_batched(self, x: Any, shape: tuple[int, ...], axis: int | None) -> None:
        if axis is not None:
            raise ArgumentError(
                f"LazyTensor: do not give axis for an array of shape {shape}; the axis is read "
                f"from the shape (..., M, 1, D), (..., 1, N, D) or (..., 1, 1, D)"
            )
        batch, (m, n, d) = shape[:-3], shape[-3:]
        if m == 1 and n == 1:
            self.batchdims = batch
            self._bind_new(self.tools.reshape(x, (*batch, d)), d, Cat.PARAM)
            self.axis = 2
        elif n == 1:
            self._bind_rows(self.tools.reshape(x, (*batch, m, d)), Cat.I, batch, m)
        elif m == 1:
            self._bind_rows(self.tools.reshape(x, (*batch, n, d)), Cat.J, batch, n)
        else:
            raise ShapeError(
                f"LazyTensor: an array of shape {shape} must look like (..., M, 1, D) (i), "
                f"(..., 1, N, D) (j) or (..., 1, 1, D) (parameter)"
            )

    def _bind_rows(self, x: Any, cat: Cat, batch: tuple[int, ...], n: int) -> None:
        self.batchdims = batch
        if cat is Cat.I:
            self.ni = n
        else:
            self.nj = n
        self._bind_new(x, self.tools.shape(x)[-1], cat)
        self.axis = cat.value

    def _bind_new(self, value: Any, dim: int, cat: Cat) -> None:
        if dim < 1:
            raise ShapeError("LazyTensor: the vector dimension (last axis) must be at least 1")
        node = var(next(_fresh_index), dim, cat)
        self.node = node
        self._bindings = {node: value}
