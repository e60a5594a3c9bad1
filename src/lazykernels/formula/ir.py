"""The formula IR: one immutable, interned node type.

A formula is a tree (in fact a DAG) of :class:`Node` objects. Each node holds the
:class:`~lazykernels.formula.opspec.OpSpec` card of its operation, its argument nodes, its
static parameters and its output vector dimension. Nodes are *interned*: building the same
(op, args, params) twice returns the same object, so structural equality is identity (O(1)),
nodes are hashable, and common sub-expressions are shared for free.

Constructors are dumb on purpose: :func:`make` only checks the dimension rule. Simplification
lives in :mod:`lazykernels.formula.simplify`, sugar expansion in the op cards.
"""

from __future__ import annotations

import enum
import hashlib
import weakref
from collections.abc import Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .surface import FormulaSurface

if TYPE_CHECKING:
    from .opspec import OpSpec


class Cat(enum.Enum):
    """Category of a variable: which index it follows (KeOps's ``cat`` 0 / 1 / 2).

    ``TEMP`` marks internal placeholders (for example the cotangent slot of a linear
    operator); the parser never produces it.
    """

    I = 0  # noqa: E741  (KeOps's name for the i-indexed category)
    J = 1
    PARAM = 2
    TEMP = 3

    def opposite(self) -> Cat:
        """The other reduction index: I <-> J (parameters have no opposite)."""
        if self is Cat.I:
            return Cat.J
        if self is Cat.J:
            return Cat.I
        raise ValueError(f"category {self.name} has no opposite")


Param = Any  # int, Fraction, float, Cat, or a tuple of ints


def _param_key(p: Param) -> tuple:
    # Distinguish 1, 1.0, True and Fraction(1) (they hash equal in Python) and -0.0 from 0.0.
    # Text only: fingerprints hash it, and must not depend on the process.
    if isinstance(p, tuple):
        return ("tuple", tuple(_param_key(q) for q in p))
    return (type(p).__name__, repr(p))


def _intern_key(p: Param) -> tuple:
    # The same distinctions as _param_key within one process, without building text: the
    # type separates 1, 1.0, True and Fraction(1); floats keep their repr (-0.0, NaN).
    kind = type(p)
    if kind is float:
        return (kind, repr(p))
    if kind is tuple:
        return (kind, tuple([_intern_key(q) for q in p]))
    return (kind, p)


class Node(FormulaSurface):
    """One operation applied to argument nodes; build with :func:`make`, never directly.

    Attributes:
        op: the op card.
        args: argument nodes.
        params: static parameters (ints, Fractions, floats, ``Cat`` or tuples of ints).
        dim: output vector dimension.
    """

    __slots__ = ("op", "args", "params", "dim", "_fingerprint", "_variables", "__weakref__")

    op: OpSpec
    args: tuple[Node, ...]
    params: tuple[Param, ...]
    dim: int

    def __init__(self, op: OpSpec, args: tuple[Node, ...], params: tuple[Param, ...], dim: int):
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "dim", dim)
        object.__setattr__(self, "_fingerprint", None)
        object.__setattr__(self, "_variables", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("formula nodes are immutable")

    def __reduce__(self):
        return (make, (self.op.name, self.args, self.params))

    # Equality and hashing are inherited from object: identity, valid because of interning.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def name(self) -> str:
        """The op's name in formula strings."""
        return self.op.name

    def fingerprint(self) -> str:
        """A sha256 of the structure, stable across processes (use it for cache keys)."""
        if self._fingerprint is None:
            h = hashlib.sha256(repr(self._structure()).encode()).hexdigest()
            object.__setattr__(self, "_fingerprint", h)
        return self._fingerprint

    def _structure(self) -> tuple:
        return (
            self.op.name,
            tuple(_param_key(p) for p in self.params),
            tuple(a.fingerprint() for a in self.args),
        )

    def walk(self) -> Iterator[Node]:
        """Every distinct node of the DAG once, children before parents."""
        return iter(topological_order(self))

    def variables(self) -> tuple[Node, ...]:
        """The distinct ``Var`` leaves, sorted by (category, index) (computed once per node)."""
        if self._variables is None:
            found = {n for n in self.walk() if n.op.name == "Var"}
            ordered = tuple(sorted(found, key=lambda v: (v.params[2].value, v.params[0])))
            object.__setattr__(self, "_variables", ordered)
        return self._variables

    def __str__(self) -> str:
        from .printer import to_string  # printer imports ir: resolved at call time

        return to_string(self)

    def __repr__(self) -> str:
        return f"<Node {self}>"

    # Hook of the shared operator surface.
    def _apply(self, name: str, *args: Any, params: tuple[Param, ...] = ()) -> Node:
        return make(name, tuple(lift(a) for a in (self, *args)), params)


_INTERNED: weakref.WeakValueDictionary[tuple, Node] = weakref.WeakValueDictionary()


_REGISTRY: list[dict[str, OpSpec]] = []  # the registry, once imported


def _lookup(op_or_name: OpSpec | str) -> OpSpec:
    if not isinstance(op_or_name, str):
        return op_or_name
    if not _REGISTRY:
        from .ops import OPS  # the registry imports this module: resolved at first use

        _REGISTRY.append(OPS)
    try:
        return _REGISTRY[0][op_or_name]
    except KeyError:
        raise KeyError(f"unknown operation {op_or_name!r}") from None


def make(op: OpSpec | str, args: tuple[Node, ...] = (), params: tuple[Param, ...] = ()) -> Node:
    """Build (or fetch the interned) node ``op(*args; params)``.

    Sugar ops (cards with ``expand``) are expanded here into primitive nodes.

    Raises:
        DimensionError: the arguments' dimensions violate the op's rule.
    """
    spec = _lookup(op)
    if type(args) is not tuple:
        args = tuple(args)
    if type(params) is not tuple:
        params = tuple(params)
    spec.check_arity(len(args), len(params))
    if spec.expand is not None:
        return spec.expand(*args, *params)
    key = (spec.name, args, tuple([_intern_key(p) for p in params]) if params else ())
    node = _INTERNED.get(key)
    if node is None:
        dim = spec.dim(tuple(a.dim for a in args), params)
        node = Node(spec, args, params, dim)
        _INTERNED[key] = node
    return node


def params_key(params: tuple[Param, ...]) -> tuple:
    """``params`` as :func:`make` tells them apart (1, 1.0 and True differ; so do 0.0 and -0.0)."""
    return tuple([_intern_key(p) for p in params])


def result_dim(op: OpSpec | str, dims: tuple[int, ...], params: tuple[Param, ...]) -> int | None:
    """The ``dim`` of ``make(op, args, params)`` for arguments of dimensions ``dims``, checked
    as :func:`make` checks it but without building the node; None for sugar ops (cards with
    ``expand``: their expansion decides).

    Raises:
        DimensionError: the dimensions violate the op's rule.
    """
    spec = _lookup(op)
    spec.check_arity(len(dims), len(params))
    if spec.expand is not None:
        return None
    return spec.dim(dims, params)


# --- leaves -----------------------------------------------------------------------------


def var(index: int, dim: int, cat: Cat | int) -> Node:
    """``Var(index, dim, cat)``: input number ``index`` of vector dimension ``dim``."""
    return make("Var", (), (int(index), int(dim), Cat(cat)))


def zero(dim: int = 1) -> Node:
    """``Zero(dim)``: the zero vector."""
    return make("Zero", (), (int(dim),))


def const(value: int | Fraction | float) -> Node:
    """A scalar constant: ``IntCst``, ``RatCst`` or ``FloatCst`` according to the type."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return make("IntCst", (), (value,))
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return make("IntCst", (), (int(value),))
        return make("RatCst", (), (value,))
    if isinstance(value, float):
        return make("FloatCst", (), (value,))
    raise TypeError(f"cannot make a formula constant from {type(value).__name__}")


def lift(value: Any) -> Node:
    """A node as is; a Python number as a constant node."""
    if isinstance(value, Node):
        return value
    if isinstance(value, int | float | Fraction):
        return const(value)
    raise TypeError(f"cannot use a {type(value).__name__} in a formula")


def constant_value(node: Node) -> Fraction | float | None:
    """The scalar value of a constant node (IntCst, RatCst, FloatCst), else None."""
    name = node.op.name
    if name == "IntCst":
        return Fraction(node.params[0])
    if name == "RatCst":
        return node.params[0]
    if name == "FloatCst":
        return node.params[0]
    return None


def is_zero(node: Node) -> bool:
    """True for ``Zero(d)`` nodes."""
    return node.op.name == "Zero"


def topological_order(root: Node) -> list[Node]:
    """Distinct nodes of ``root``'s DAG, each after all of its arguments (iterative)."""
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for a in reversed(node.args):
            if id(a) not in seen:
                stack.append((a, False))
    return order


def substitute(root: Node, mapping: dict[Node, Node]) -> Node:
    """``root`` with every occurrence of each key node replaced by its value."""
    done: dict[Node, Node] = {}
    for node in topological_order(root):
        if node in mapping:
            done[node] = mapping[node]
        elif node.args:
            new_args = tuple(done[a] for a in node.args)
            same = all(n is o for n, o in zip(new_args, node.args))
            done[node] = node if same else make(node.op, new_args, node.params)
        else:
            done[node] = node
    return done[root]
