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
from typing import Any

from ..errors import ArgumentError, DtypeError, ShapeError
from ..formula.ir import Cat, Node, var

DATA_INDEX_BASE = 1 << 32
"""Smallest index of the ``Var`` nodes that stand for bound arrays."""

_fresh_index = itertools.count(DATA_INDEX_BASE)


class Leaf:
    """The variable of a bound array: ``Var(index, dim, cat)``, whose (interned) node is
    built only when first read. A warm reduction found in the plan cache by its structural
    key never builds it (building a fresh node costs about as much as the rest of the
    constructor). One Leaf per variable: the transposed leaf is made once and linked back."""

    __slots__ = ("index", "dim", "cat", "code", "core", "_node", "_t")

    def __init__(self, index: int, dim: int, cat: Cat, core: tuple[int, ...] | None) -> None:
        self.index, self.dim, self.cat = index, dim, cat
        self.code = (dim, cat._value_)  # its structure id (see plan_cache; ints hash fast)
        # the shape its array is viewed to before a call, when bound as given (an array of
        # shape (M, 1, D) is kept so, and read as (M, D): the view costs a torch tensor a
        # few us, and a warm call never makes it, see warm.py); None: bound as it is read
        self.core = core
        self._node: Node | None = None
        self._t: Leaf | None = None

    @property
    def node(self) -> Node:
        """``Var(index, dim, cat)``."""
        if self._node is None:
            self._node = var(self.index, self.dim, self.cat)
        return self._node

    def transposed(self) -> Leaf:
        """The same variable with i and j swapped (parameters: itself)."""
        if self.cat is Cat.PARAM:
            return self
        if self._t is None:
            self._t = Leaf(self.index, self.dim, self.cat.opposite(), self.core)
            self._t._t = self
        return self._t


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
        # complex data makes a complex LazyTensor (``GenericLazyTensor.__new__``), which
        # promotes real arrays before it gets here
        if self.is_complex:
            if not tools.is_complex_array(x):
                raise DtypeError("ComplexLazyTensor: got a real array; use x.real2complex()")
            x = tools.view_as_real(x)
        dtype = tools.dtype_of(x)
        if not tools.is_floating(dtype):
            raise DtypeError(
                f"LazyTensor: arrays must be float16, float32 or float64 (or complex), got "
                f"{tools.dtype_name(dtype)}"
            )
        if axis is not None and axis not in (0, 1, 2):
            raise ArgumentError(f"axis must be 0 (i), 1 (j) or 2 (parameter), got {axis!r}")
        shape = tools.shape(x)
        self._dtype = dtype
        if len(shape) <= 1:
            if len(shape) == 0:
                x, shape = tools.reshape(x, (1,)), (1,)
            if axis in (0, 1):  # a vector of M (or N) scalars
                self._bind_rows(tools.reshape(x, (shape[0], 1)), Cat(axis), (), shape[0], 1)
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
                self._bind_rows(x, Cat(axis), (), shape[0], shape[1])
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
            self._bind_new(x, d, Cat.PARAM, (*batch, d))
            self.axis = 2
        elif n == 1:
            self._bind_rows(x, Cat.I, batch, m, d, (*batch, m, d))
        elif m == 1:
            self._bind_rows(x, Cat.J, batch, n, d, (*batch, n, d))
        else:
            raise ShapeError(
                f"LazyTensor: an array of shape {shape} must look like (..., M, 1, D) (i), "
                f"(..., 1, N, D) (j) or (..., 1, 1, D) (parameter)"
            )

    @classmethod
    def _rows_of(cls, x: Any, cat: Cat, batch: tuple[int, ...], n: int, d: int, dtype: Any) -> Any:
        """A LazyTensor of ``cls`` binding ``x``, an ``(*batch, n, d)`` real floating array
        of ``dtype``, to an i- or j-variable: the constructor's result for ``x`` reshaped to
        ``(*batch, n, 1, d)`` or ``(*batch, 1, n, d)`` (the caller checked the array)."""
        obj = object.__new__(cls)
        obj._dtype = dtype
        obj._bind_rows(x, cat, batch, n, d)
        return obj

    def _bind_rows(
        self, x: Any, cat: Cat, batch: tuple[int, ...], n: int, d: int, core: Any = None
    ) -> None:
        if batch:
            self.batchdims = batch
        if cat is Cat.I:
            self.ni = n
        else:
            self.nj = n
        self._bind_new(x, d, cat, core)
        self.axis = cat._value_

    def _bind_new(self, value: Any, dim: int, cat: Cat, core: Any = None) -> None:
        """Bind ``value`` to a fresh variable; ``core``: the shape it is read as, when it
        is bound as given (see :class:`Leaf`)."""
        if dim < 1:
            raise ShapeError("LazyTensor: the vector dimension (last axis) must be at least 1")
        leaf = Leaf(next(_fresh_index), dim, cat, core)
        # a fresh LazyTensor's node and pending op are the class defaults (None): its
        # node waits for the Leaf
        self._ndim = dim
        self._binds = {leaf: value}
        self._sid = leaf.code  # a bound variable's structure id (see plan_cache)


def read_value(tools: Any, leaf: Leaf, value: Any) -> Any:
    """The array bound to ``leaf`` as a call reads it (viewed to its ``core`` shape)."""
    core = leaf.core
    return value if core is None else tools.reshape(value, core)
