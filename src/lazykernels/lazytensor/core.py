"""``GenericLazyTensor``: a symbolic array ``F(x_i, y_j, p)`` that holds an IR node.

A LazyTensor is a formula :class:`~lazykernels.formula.ir.Node` plus what is needed to reduce
it later: the array (or Python float) bound to each data variable of the formula, the batch
dimensions, the numbers of i and j indices, the dtype, and the user's default ``ranges`` and
``backend``. It never holds a formula string. Operators and math methods come from the
shared :class:`~lazykernels.formula.surface.FormulaSurface` through the ``_apply`` hook, the
reductions from :class:`~lazykernels.lazytensor.reductions.ReductionMethods`.

Variables. A data variable (an array given to the constructor) becomes a fresh
``Var(index, dim, cat)`` whose index is at least :data:`DATA_INDEX_BASE`, so it never collides
with a *symbolic* variable ``Vi(ind, dim)``, whose index is the user's. A reduction renumbers
every variable to positions ``0..n-1`` (symbolic ones first, by index, then the data ones in
creation order) and builds its plan from the renumbered node.

An array library plugs in through class attributes set by its adapter (see
:mod:`lazykernels.numpy.lazytensor`): ``tools`` (an
:class:`~lazykernels.lazytensor.tools.ArrayTools`), and ``_real_cls`` / ``_complex_cls``, the
adapter's real and complex LazyTensor classes (set by :func:`.frontend.wire_front_end`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from ..errors import ArgumentError
from ..formula.ir import Cat, Node, const, make, params_key, substitute, var
from ..formula.surface import FormulaSurface
from .construct import (
    DATA_INDEX_BASE,
    ConstructionMixin,
    FloatParam,
    Leaf,
    is_number_list,
    read_value,
)
from .dense import materialise
from .indexing import index_last_axis
from .pending import DIMS, UNKNOWN, build_nodes, remembered_dim
from .plan_cache import SIDS, UNSET, op_sid, operands_key, own_sid
from .reductions import ReductionMethods
from .state import copy_state, empty_state, merge, merged, with_state
from .tools import ArrayTools

# Ops whose result is a complex (interleaved) vector, and ops that return real values.
COMPLEX_RESULT = frozenset(
    (
        "Real2Complex",
        "Imag2Complex",
        "ComplexExp1j",
        "ComplexAdd",
        "ComplexSubtract",
        "ComplexMult",
        "ComplexDivide",
        "ComplexExp",
        "ComplexRealScal",
        "Conj",
        "ComplexSum",
        "ComplexSumT",
    )
)
REAL_RESULT = frozenset(
    ("ComplexReal", "ComplexImag", "ComplexAbs", "ComplexAngle", "ComplexSquareAbs")
)


_RESULT_CLASS = {
    **dict.fromkeys(COMPLEX_RESULT, "_complex_cls"),
    **dict.fromkeys(REAL_RESULT, "_real_cls"),
}
"""The class attribute naming an op's result class (others: the operand's class)."""


class Variables(tuple):
    """The bound arrays: a tuple (KeOps's ``variables`` attribute) that is also callable."""

    def __call__(self) -> tuple[Any, ...]:
        return tuple(self)


def is_scalar(x: Any, value: float) -> bool:
    """True when ``x`` is a real Python/NumPy number equal to ``value`` (KeOps shortcuts)."""
    kind = type(x)
    if kind is float or kind is int:  # the common cases first: no ABC check
        return x == value
    if isinstance(x, GenericLazyTensor):  # (== would build a formula)
        return False
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and x == value


class GenericLazyTensor(ConstructionMixin, ReductionMethods, FormulaSurface):
    """The array-library-neutral LazyTensor; adapters subclass it (SPEC §4.5).

    Args:
        x: an array (``(..., M, 1, D)`` -> Vi, ``(..., 1, N, D)`` -> Vj, ``(..., 1, 1, D)`` ->
            Pm, ``(M, D)`` with ``axis`` 0 or 1, ``(D,)`` or a 0-d array -> Pm), a float or a
            list of floats (a parameter whose dtype is fixed later), an int (``IntCst``), or a
            tuple ``(ind, dim, cat)`` (a symbolic variable filled at call time).
        axis: 0 (Vi), 1 (Vj) or 2 (Pm) for 1-D and 2-D arrays; must be None for >= 3-D arrays.
        is_complex: build a ComplexLazyTensor (automatic for complex data).
    """

    tools: ClassVar[ArrayTools]
    _real_cls: ClassVar[type[GenericLazyTensor]]
    _complex_cls: ClassVar[type[GenericLazyTensor]]
    is_complex: ClassVar[bool] = False

    __array_ufunc__ = None  # ndarray (op) LazyTensor dispatches to the LazyTensor
    __hash__ = None  # type: ignore[assignment]  # __eq__ builds a formula

    # The state, with class-level defaults (a constructor sets only what differs):
    # the bound values by variable (a Leaf, or the Var node of a symbolic-free compound
    # LazyTensor's data), and the formula: a node, or the pending op or Leaf that builds it.
    _binds: Mapping[Leaf, Any] = MappingProxyType({})
    batchdims: tuple[int, ...] = ()
    ni: int | None = None
    nj: int | None = None
    _dtype: Any = None
    ranges: Any = None
    backend: str | None = None
    axis: int | None = None
    _node: Node | None = None
    _ndim: int = 1
    _pending: tuple | None = None  # (op name, operands, params) of a node not built yet
    _reduction: Any = None
    _sid: Any = UNSET  # the structure id (see plan_cache): set by _apply and constructors
    _sym: list[Node] | None = None  # a reduced LazyTensor's symbolic variables, when known

    def __new__(cls, x: Any = None, axis: int | None = None, is_complex: bool = False):
        # the common case, a real floating array of shape (..., M, 1, D) etc., is built
        # here at once (one look at the array decides the class and the binding), and
        # __init__ finds it done
        if not (cls.is_complex or is_complex or axis is not None):
            found = cls.tools.float_info(x)
            if found is not None and len(found[1]) >= 3:
                obj = object.__new__(cls)
                obj._dtype = found[0]
                obj._init_batched(x, found[1], None)
                return obj
        if not cls.is_complex and (is_complex or cls._is_complex_data(x)):
            return cls._complex_cls(x, axis)
        return object.__new__(cls)

    def __init__(self, x: Any = None, axis: int | None = None, is_complex: bool = False):
        if self._sid is not UNSET:  # bound by __new__
            return
        if self.tools.is_array(x):
            self._init_array(x, axis)
        elif x is None:
            raise ArgumentError("LazyTensor needs data: an array, a number or (ind, dim, cat)")
        elif isinstance(x, tuple):
            self._init_symbolic(x, axis)
        elif isinstance(x, numbers.Integral):
            self.node = const(int(x))
            self.axis = 2
        elif isinstance(x, numbers.Number):
            self._init_numbers([x])
        elif is_number_list(x):
            self._init_numbers(x)
        else:
            raise TypeError(
                f"LazyTensor: cannot build a {self.tools.name} LazyTensor from "
                f"{type(x).__name__}; expected a {self.tools.name} array, a number, a list of "
                f"numbers or a tuple (ind, dim, cat)"
            )

    # --- the formula node, built when first read ------------------------------------------

    @property
    def node(self) -> Node:
        """The formula of this LazyTensor (its variables numbered by creation)."""
        if self._node is None:
            build_nodes(self)
        return self._node

    @property
    def _bindings(self) -> dict[Node, Any]:
        """The bound values by their variable's node (builds the leaves' nodes)."""
        tools = self.tools
        return {leaf.node: read_value(tools, leaf, value) for leaf, value in self._binds.items()}

    @node.setter
    def node(self, node: Node) -> None:
        self._node = node
        self._ndim = node.dim
        self._pending = None

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def _is_complex_data(cls, x: Any) -> bool:
        if cls.tools.is_complex_array(x):
            return True
        return isinstance(x, complex) or (
            isinstance(x, list) and is_number_list(x) and any(isinstance(v, complex) for v in x)
        )

    def _set_state(
        self,
        node: Node | None,
        binds: Mapping[Leaf, Any],
        batchdims: tuple[int, ...],
        ni: int | None,
        nj: int | None,
        dtype: Any,
        ranges: Any = None,
        backend: str | None = None,
        axis: int | None = None,
    ) -> None:
        if node is not None:
            self.node = node
        self._binds = binds
        self.batchdims = tuple(batchdims)
        self.ni = ni
        self.nj = nj
        self._dtype = dtype
        self.ranges = ranges
        self.backend = backend
        self.axis = axis

    @classmethod
    def _wrap(cls, node: Node | None, state: dict[str, Any]) -> GenericLazyTensor:
        """A new LazyTensor of class ``cls`` holding ``node`` (None: set by the caller) and
        ``state`` (from ``_merge``)."""
        obj = object.__new__(cls)
        obj._set_state(node, **state)
        return obj

    # --- combining operands ----------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._reduction is not None:
            raise ArgumentError(
                "this LazyTensor is a reduced LazyTensor (the result of a reduction with "
                "call=False or with symbolic variables): call it to get the result, it cannot "
                "be used in further symbolic operations"
            )

    def _lift(self, other: Any) -> GenericLazyTensor:
        """``other`` as a LazyTensor of this array library (numbers, arrays, constant nodes)."""
        if isinstance(other, GenericLazyTensor):
            if other.tools is not self.tools:
                raise TypeError(
                    f"cannot mix a {self.tools.name} LazyTensor with a {other.tools.name} one"
                )
            return other
        if isinstance(other, Node):
            if other.variables():
                raise ArgumentError("only constant formula nodes can be combined with LazyTensors")
            return self._real_cls._wrap(other, empty_state())
        if isinstance(other, numbers.Number) or is_number_list(other) or self.tools.is_array(other):
            return self._real_cls(other)
        raise TypeError(
            f"cannot combine a {self.tools.name} LazyTensor with a {type(other).__name__}; "
            f"use {self.tools.name} arrays, numbers or LazyTensors"
        )

    _rlift = _lift

    def _merge(self, operands: Sequence[GenericLazyTensor]) -> dict[str, Any]:
        """The shared state of an operation on ``operands`` (see :func:`.state.merge`)."""
        return merge(self.tools, operands)

    def _apply(self, name: str, *args: Any, params: tuple = ()) -> Any:
        """Hook of the operator surface: ``name(self, *args; params)`` as a LazyTensor.

        The node is built when first read (a reduction found in the plan cache by its
        structure id never reads it); its dimensions are checked now. A warm operation is
        a few dictionary look-ups and one new object (no list or node built): its structure
        id and result dimension come from :data:`.plan_cache.SIDS`.
        """
        cls = _RESULT_CLASS.get(name)
        cls = type(self) if cls is None else getattr(self, cls)
        if len(args) == 1:  # (no list comprehensions: each is a call in Python 3.11)
            other = args[0]
            if not isinstance(other, GenericLazyTensor) or other.tools is not self.tools:
                other = self._lift(other)  # (_binary lifted it already)
            operands = (self, other)
            res = with_state(cls, merged(self.tools, operands))
        elif args:
            operands = (self, *[self._lift(a) for a in args])
            res = with_state(cls, merged(self.tools, operands))
        else:  # one operand: its state as it is (the bound values are never mutated)
            if self._reduction is not None:
                self._check_usable()
            operands = (self,)
            res = copy_state(cls, self)
        try:
            pkey = params_key(params) if params else ()
            if len(operands) == 1:
                sid = self._sid
                if sid is UNSET:
                    sid = own_sid(self)
                skey = None if sid is None else (name, pkey, cls, sid)
            else:
                head = operands_key(operands, res._binds)
                skey = None if head is None else (name, pkey, cls, *head)
            found = None if skey is None else SIDS.get(skey)
            if found is not None:
                res._sid, dim = found
            else:
                key = (name, pkey, tuple([o._ndim for o in operands]))
                dim = DIMS.get(key, UNKNOWN)
                if dim is UNKNOWN:
                    dim = remembered_dim(key, params)
                res._sid = None if skey is None else op_sid(skey, dim)
        except TypeError:  # an unhashable parameter: make says what is wrong
            dim = res._sid = None
        if dim is None:
            res.node = make(name, tuple([o.node for o in operands]), params)
        else:
            res._ndim = dim
            res._pending = (name, operands, params)
        return res

    def _state(self) -> dict[str, Any]:
        return self._merge([self])

    # --- arithmetic with KeOps's shortcuts (SPEC §4.5) -------------------------------------

    def _binary(self, name: str, other: Any, reflected: str) -> Any:
        lifted = self._lift(other)
        if lifted.is_complex and not self.is_complex:  # the complex class handles it
            return getattr(lifted, reflected)(self)
        return self._apply(name, lifted)

    def __add__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return self
        return self._binary("Add", other, "__radd__")

    def __radd__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return self
        return self._lift(other).__add__(self)

    def __sub__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return self
        return self._binary("Subtract", other, "__rsub__")

    def __rsub__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return -self
        return self._lift(other).__sub__(self)

    def __mul__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return 0
        if is_scalar(other, 1):
            return self
        if is_scalar(other, -1):
            return -self
        return self._binary("Mult", other, "__rmul__")

    def __rmul__(self, other: Any) -> Any:
        if is_scalar(other, 0) or is_scalar(other, 1) or is_scalar(other, -1):
            return self.__mul__(other)
        return self._lift(other).__mul__(self)

    def __truediv__(self, other: Any) -> Any:
        if is_scalar(other, 1):
            return self
        return self._binary("Divide", other, "__rtruediv__")

    def __rtruediv__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return 0
        if is_scalar(other, 1):
            return self._apply("Inv")
        return self._lift(other).__truediv__(self)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._apply("Equal", other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._apply("NotEqual", other)

    # --- indexing and shape-like methods ---------------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        """``x[k]``, ``x[..., k]``, ``x[:, :, a:b:s]``: the last axis (see :mod:`.indexing`)."""
        self._check_usable()
        return index_last_axis(self, key)

    def norm(self, dim: int) -> Any:
        """``Norm2`` over the vector dimension; ``dim`` must be -1 or the last axis."""
        if dim not in (-1, len(self._shape) - 1):
            raise ArgumentError(f"norm(dim): dim must be -1 (the vector dimension), got {dim}")
        return self.norm2()

    def difference_matrix(self, other: Any) -> Any:
        """Component ``k * m + l`` is ``self_k - other_l`` (``m = other.ndim``; dim ``n * m``).

        KeOps 2.3 emits an undefined ``DifferenceMatrix`` op (SPEC §8.1); this builds it from
        tensor products with vectors of ones.
        """
        other = self._lift(other)
        ones_m = make("SumT", (const(1),), (other.ndim,)) if other.ndim > 1 else const(1)
        ones_n = make("SumT", (const(1),), (self.ndim,)) if self.ndim > 1 else const(1)
        return self.tensorprod(ones_m) - self._lift(ones_n).tensorprod(other)

    @staticmethod
    def concatenate(tensors: Sequence[GenericLazyTensor], axis: int = -1) -> Any:
        """Concatenate LazyTensors along the vector dimension (``axis`` -1 or the last)."""
        tensors = tuple(tensors)
        if not tensors:
            raise ArgumentError("concatenate needs at least one LazyTensor")
        if axis not in (-1, len(tensors[0]._shape) - 1):
            raise ArgumentError(f"LazyTensors are concatenated along axis -1 only, got {axis}")
        result = tensors[0]
        for t in tensors[1:]:
            result = result.concat(t)
        return result

    @staticmethod
    def cat(tensors: Sequence[GenericLazyTensor], dim: int) -> Any:
        """Torch spelling of :meth:`concatenate`."""
        return GenericLazyTensor.concatenate(tensors, dim)

    # --- materialisation -------------------------------------------------------------------

    def dense(self, max_bytes: int | None = None) -> Any:
        """The matrix as a dense array of shape :attr:`shape`: ``K[..., i, j, :] = F(x_i, y_j)``.

        Computed by the compiled engine from the same formula as the reductions (torch:
        differentiable to any order). Every (i, j) pair is computed: ``ranges`` are ignored.

        Args:
            max_bytes: the most memory to allocate, the dense array plus the inputs repeated
                per (i, j) pair (default: half the physical memory).

        Raises:
            DenseSizeError: the array would need more than ``max_bytes`` (the message gives
                the size).
            ArgumentError: the LazyTensor is reduced or has symbolic variables.

        Example:
            >>> import numpy as np
            >>> from lazykernels.numpy import LazyTensor
            >>> x = np.array([[0.0], [1.0]])
            >>> D = ((LazyTensor(x[:, None, :]) - LazyTensor(x[None, :, :])) ** 2).sum(-1)
            >>> D.dense()  # doctest: +SKIP
            array([[0., 1.],
                   [1., 0.]])
        """
        return materialise(self, max_bytes)

    def to_dense(self, max_bytes: int | None = None) -> Any:
        """Alias of :meth:`dense` (the spelling of ``torch.Tensor.to_dense``)."""
        return materialise(self, max_bytes)

    # --- transposition ---------------------------------------------------------------------

    def t(self) -> GenericLazyTensor:
        """The transposed matrix: i and j swapped (variables, sizes and ranges)."""
        self._check_usable()
        mapping: dict[Node, Node] = {}
        for v in self.node.variables():
            index, dim, cat = v.params
            if cat in (Cat.I, Cat.J):
                mapping[v] = var(index, dim, cat.opposite())
        binds = {leaf.transposed(): value for leaf, value in self._binds.items()}
        state = self._state()
        state.update(binds=binds, ni=self.nj, nj=self.ni)
        if self.ranges is not None:
            state["ranges"] = (*self.ranges[3:6], *self.ranges[0:3])
        return type(self)._wrap(substitute(self.node, mapping), state)

    @property
    def T(self) -> GenericLazyTensor:  # noqa: N802 (NumPy's name)
        """The transposed matrix, see :meth:`t`."""
        return self.t()

    # --- properties ------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        """The vector dimension of the formula (KeOps's ``ndim``, not a number of axes)."""
        return self._ndim

    @property
    def nbatchdims(self) -> int:
        """Number of batch dimensions."""
        return len(self.batchdims)

    @property
    def _shape(self) -> tuple[int, ...]:
        inner = self.ndim // 2 if self.is_complex else self.ndim
        return (*self.batchdims, self.ni or 1, self.nj or 1, inner)

    @property
    def shape(self) -> tuple[int, ...]:
        """``batchdims + (M, N)``, plus the vector dimension when it is not 1."""
        shape = self._shape
        return shape[:-1] if shape[-1] == 1 else shape

    def dim(self) -> int:
        """Number of axes of ``_shape``."""
        return len(self._shape)

    @property
    def dtype(self) -> Any:
        """The data dtype (None while only Python numbers are bound)."""
        if self._dtype is None:
            return None
        return self.tools.public_dtype(self._dtype, self.is_complex)

    @property
    def variables(self) -> Variables:
        """The bound arrays (and Python numbers), in creation order."""
        values = []
        for leaf, value in self._binds.items():
            if isinstance(value, FloatParam):
                values.append(value.values[0] if len(value.values) == 1 else list(value.values))
            else:
                values.append(read_value(self.tools, leaf, value))
        return Variables(values)

    @property
    def symbolic_variables(self) -> tuple[tuple[int, int, int], ...]:
        """``(ind, dim, cat)`` of each symbolic variable, by index."""
        return tuple((v.params[0], v.dim, v.params[2].value) for v in self._symbolic_vars())

    def _symbolic_vars(self) -> list[Node]:
        if self._sym is not None:
            return list(self._sym)
        roots = [self.node] if self._reduction is None else self._reduction.roots(self.node)
        bound = {leaf.node for leaf in self._binds}
        found = {
            v: None
            for root in roots
            for v in root.variables()
            if v not in bound and v.params[2] is not Cat.TEMP
        }
        ordered = sorted(found, key=lambda v: (v.params[0], v.params[2].value))
        for a, b in zip(ordered, ordered[1:]):
            if a.params[0] == b.params[0]:
                raise ArgumentError(
                    f"symbolic variable index {a.params[0]} is used with two types: "
                    f"{_describe(a)} and {_describe(b)}"
                )
        if self._reduction is not None:  # a reduced LazyTensor never changes
            self._sym = ordered
            return list(ordered)
        return ordered

    def _layout(self) -> tuple[list[Node], dict[Node, Node]]:
        """Every variable in call order and its renumbered ``Var(position, dim, cat)``."""
        order = [*self._symbolic_vars(), *(leaf.node for leaf in self._binds)]
        mapping = {v: var(p, v.dim, v.params[2]) for p, v in enumerate(order)}
        return order, mapping

    @property
    def formula2(self) -> str | None:
        """The weight formula of a reduced LazyTensor (weighted log-sum-exp), else None."""
        info = self._reduction
        if info is None or info.weight is None:
            return None
        return str(substitute(info.weight, self._layout()[1]))

    @property
    def reduction_op(self) -> str | None:
        """The reduction of a reduced LazyTensor, else None."""
        return None if self._reduction is None else self._reduction.reduction_op

    @property
    def formula(self) -> str:
        """The formula, its variables numbered by call position."""
        return str(substitute(self.node, self._layout()[1]))

    def __str__(self) -> str:
        order, mapping = self._layout()
        lines = [f"{self.tools.name} {type(self).__name__}", f"    formula: {self.formula}"]
        symbolic = self._symbolic_vars()
        if symbolic:
            lines.append("    symbolic variables: " + ", ".join(_describe(v) for v in symbolic))
        lines.append(f"    shape: {self.shape}")
        if self._reduction is not None:
            lines.append(f"    reduction: {self._reduction.describe(mapping)}")
        return "\n".join(lines)

    __repr__ = __str__


def _describe(v: Node) -> str:
    index, dim, cat = v.params
    return {Cat.I: "Vi", Cat.J: "Vj", Cat.PARAM: "Pm"}.get(cat, "Var") + f"({index},{dim})"


__all__ = ["DATA_INDEX_BASE", "FloatParam", "GenericLazyTensor", "Variables"]
