"""The op card: everything about one operation, declared in one place.

An :class:`OpSpec` gives an operation's formula-string name, arity, static parameters,
dimension rule, NumPy evaluation, scalar C spelling (or a lowering rule for structural ops),
derivative rule (VJP) and test metadata. The parser, printer, simplifier, code generators,
autodiff and tests all read these cards from :data:`lazykernels.formula.ops.OPS`.

A *sugar* card has ``expand`` instead: building it returns an expression of primitive ops
(``SqDist(x, y) := Sum(Square(x - y))``), so only primitives need C spellings and VJPs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DimensionError, FormulaError

if TYPE_CHECKING:
    from .ir import Node

DimRule = Callable[[tuple[int, ...], tuple[Any, ...]], int]
# vjp(out, g, args, params) -> one cotangent node (or None: no contribution) per argument.
VJP = Callable[["Node", "Node", tuple["Node", ...], tuple[Any, ...]], tuple["Node | None", ...]]
# lower(ctx, arg_scalars, params) -> output scalars (IR expressions, see codegen.lower.LowerCtx).
Lower = Callable[[Any, list[list[Any]], tuple[Any, ...]], list[Any]]


@dataclass(frozen=True)
class MathCall:
    """A neutral spelling: maths function ``fn`` (``exp``, ``atan2``...) applied to argument
    templates (``{0}``, ``{1}``: the op's arguments). A dialect prints the function
    (the C++ library's exp or ``lk_exp`` on the CPU, ``expf`` in CUDA)."""

    fn: str
    args: tuple[str, ...]


def math(fn: str, *args: str) -> MathCall:
    """``MathCall(fn, args)``: e.g. ``math("pow", "{0}", "{1}")``."""
    return MathCall(fn, tuple(args))


@dataclass(frozen=True)
class TestSpec:
    """How the registry-driven tests exercise an op.

    Attributes:
        arg_dims: vector dimension of each argument in the test.
        params: static parameters used in the test.
        low, high: interval from which argument values are drawn (the op's domain).
        grad: whether the derivative is checked against finite differences.
        float32_ok: whether float32 evaluation is meaningful at the usual tolerance.
    """

    arg_dims: tuple[int, ...] = ()
    params: tuple[Any, ...] = ()
    low: float = -2.0
    high: float = 2.0
    grad: bool = True
    float32_ok: bool = True


@dataclass(frozen=True, eq=False)
class OpSpec:
    """One operation of the formula language.

    Attributes:
        name: the name in formula strings (``"Exp"``).
        arity: number of formula arguments.
        optional_args: trailing formula arguments that may be left out (sugar cards
            without static parameters only: ``TraceOperator(f, v[, w])``).
        nparams: number of static parameters (ints, Fractions, tuples...).
        dim: output dimension from (argument dims, params); raises ``DimensionError``.
        numpy: NumPy evaluation, called as ``numpy(*arg_values, *params)``; each value has
            shape ``(..., dim)`` and broadcasts over the leading axes.
        c: for element-wise ops, the neutral scalar spelling: an infix template (C-family
            operators; ``{0}``, ``{1}``... the arguments, ``{T}`` the scalar type, ``{p0}``...
            the parameters, ``lk_*`` helper calls) or a :class:`MathCall` (:func:`math`).
        lower: for structural ops, the lowering rule to scalars (see ``codegen.lower``).
        helpers: names of helper functions the spelling needs (sources per dialect).
        vjp: reverse-mode rule; ``None`` means "not differentiable" (grad raises).
        elementwise: applies component-wise, with dim-1 arguments broadcast.
        expand: for sugar ops, builds the equivalent primitive expression.
        param_names: names of the static parameters, for messages and the parser.
        test: test metadata.
        doc: one line for the docs and error messages.
    """

    name: str
    arity: int
    dim: DimRule | None = None
    optional_args: int = 0
    numpy: Callable[..., np.ndarray] | None = None
    c: str | MathCall | None = None
    lower: Lower | None = None
    helpers: frozenset[str] = frozenset()
    vjp: VJP | None = None
    nparams: int = 0
    elementwise: bool = False
    expand: Callable[..., Node] | None = None
    param_names: tuple[str, ...] = ()
    variadic_params: bool = False
    test: TestSpec | None = field(default_factory=TestSpec)
    doc: str = ""

    @property
    def is_sugar(self) -> bool:
        return self.expand is not None

    def check_arity(self, nargs: int, nparams: int) -> None:
        """Raise ``FormulaError`` if the numbers of arguments or parameters are wrong."""
        if self.optional_args and self.arity <= nargs <= self.arity + self.optional_args:
            pass
        elif nargs != self.arity:
            most = f" to {self.arity + self.optional_args}" if self.optional_args else ""
            raise FormulaError(
                f"{self.name} takes {self.arity}{most} formula argument(s), got {nargs}"
            )
        if self.variadic_params:
            if nparams < self.nparams:
                raise FormulaError(
                    f"{self.name} takes at least {self.nparams} parameter(s), got {nparams}"
                )
        elif nparams != self.nparams:
            raise FormulaError(
                f"{self.name} takes {self.nparams} static parameter(s), got {nparams}"
            )


# --- dimension rules --------------------------------------------------------------------


def broadcast_dims(name: str, dims: Sequence[int]) -> int:
    """Output dim of an element-wise op: all dims equal, or 1 (broadcast)."""
    big = {d for d in dims if d != 1}
    if len(big) > 1:
        raise DimensionError(
            f"{name}: arguments must have the same dimension or dimension 1, got {tuple(dims)}"
        )
    return big.pop() if big else 1


def elementwise_dim(name: str) -> DimRule:
    """Dimension rule of element-wise ops."""
    return lambda dims, params: broadcast_dims(name, dims)


def fixed_dim(value: int) -> DimRule:
    """Dimension rule of ops whose output dim is a constant."""
    return lambda dims, params: value


# --- derivative helpers -----------------------------------------------------------------


class NotDifferentiable:
    """What a VJP returns for an argument it cannot differentiate (e.g. BSpline's knots).

    ``grad`` raises ``FormulaError`` with ``reason`` only if that argument depends on the
    variable being differentiated; otherwise the marker is ignored (unlike ``None``, which
    means "no contribution" and is always silently skipped).
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"NotDifferentiable({self.reason!r})"


def zero_derivative(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    """VJP of piecewise-constant ops (Sign, Step, Floor, Round, comparisons...): no flow."""
    return (None,) * len(args)


def chain(*dfdx: Callable[..., Node | None]) -> VJP:
    """VJP of an element-wise op from its partial derivatives.

    Each ``dfdx[k](out, *args)`` returns the partial derivative with respect to argument k
    (a node of the output's or dim 1), or ``None`` for no dependence. The cotangent is
    ``g * dfdx``; the global ``grad`` sums it back when the argument was broadcast.
    """

    def vjp(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
        cots = []
        for partial in dfdx:
            d = partial(out, *args, *params)
            cots.append(None if d is None else g * d)
        return tuple(cots)

    return vjp
