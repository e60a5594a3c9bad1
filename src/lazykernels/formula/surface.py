"""The operator surface shared by IR nodes and LazyTensors.

Each Python-side spelling of an op (``x + y``, ``x.exp()``, ``x.sqdist(y)``, ``x | y``) is
written once here, on a mixin with one abstract hook, ``_apply(name, *args, params=())``.
:class:`~lazykernels.formula.ir.Node` implements the hook by building IR; ``LazyTensor``
implements it by wrapping IR and tracking its arrays.

``==`` / ``!=`` are deliberately absent: nodes need identity equality to be hashable, and
``LazyTensor`` adds its own ``__eq__`` building ``Equal``.
"""

from __future__ import annotations

import math
from functools import reduce
from typing import Any

from ..errors import FormulaError


class FormulaSurface:
    """Mixin of formula-building operators; subclasses define ``_apply``."""

    __slots__ = ()

    def _apply(self, name: str, *args: Any, params: tuple = ()) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _apply_reversed(self, name: str, other: Any) -> Any:
        """``name(other, self)`` for reflected operators."""
        return type(self)._rlift(self, other)._apply(name, self)

    def _rlift(self, other: Any) -> Any:  # pragma: no cover - overridden where needed
        from .ir import lift

        return lift(other)

    # arithmetic
    def __add__(self, other: Any) -> Any:
        return self._apply("Add", other)

    def __radd__(self, other: Any) -> Any:
        return self._apply_reversed("Add", other)

    def __sub__(self, other: Any) -> Any:
        return self._apply("Subtract", other)

    def __rsub__(self, other: Any) -> Any:
        return self._apply_reversed("Subtract", other)

    def __mul__(self, other: Any) -> Any:
        return self._apply("Mult", other)

    def __rmul__(self, other: Any) -> Any:
        return self._apply_reversed("Mult", other)

    def __truediv__(self, other: Any) -> Any:
        return self._apply("Divide", other)

    def __rtruediv__(self, other: Any) -> Any:
        return self._apply_reversed("Divide", other)

    def __neg__(self) -> Any:
        return self._apply("Minus")

    def __abs__(self) -> Any:
        return self._apply("Abs")

    def __or__(self, other: Any) -> Any:
        return self._apply("Scalprod", other)

    def __ror__(self, other: Any) -> Any:
        return self._apply_reversed("Scalprod", other)

    def __lt__(self, other: Any) -> Any:
        return self._apply("LessThan", other)

    def __gt__(self, other: Any) -> Any:
        return self._apply_reversed("LessThan", other)

    def __le__(self, other: Any) -> Any:
        return self._apply("LessOrEqual", other)

    def __ge__(self, other: Any) -> Any:
        return self._apply_reversed("LessOrEqual", other)

    # unary maths: x.exp() etc.
    def exp(self) -> Any:
        return self._apply("Exp")

    def log(self) -> Any:
        return self._apply("Log")

    def xlogx(self) -> Any:
        return self._apply("XLogX")

    def sin(self) -> Any:
        return self._apply("Sin")

    def cos(self) -> Any:
        return self._apply("Cos")

    def sinxdivx(self) -> Any:
        return self._apply("SinXDivX")

    def asin(self) -> Any:
        return self._apply("Asin")

    def acos(self) -> Any:
        return self._apply("Acos")

    def atan(self) -> Any:
        return self._apply("Atan")

    def sqrt(self) -> Any:
        return self._apply("Sqrt")

    def rsqrt(self) -> Any:
        return self._apply("Rsqrt")

    def square(self) -> Any:
        return self._apply("Square")

    def sign(self) -> Any:
        return self._apply("Sign")

    def step(self) -> Any:
        return self._apply("Step")

    def relu(self) -> Any:
        return self._apply("ReLU")

    def floor(self) -> Any:
        return self._apply("Floor")

    def atan2(self, other: Any) -> Any:
        return self._apply("Atan2", other)

    # vector maths
    def sqnorm2(self) -> Any:
        return self._apply("SqNorm2")

    def norm2(self) -> Any:
        return self._apply("Norm2")

    def normalize(self) -> Any:
        return self._apply("Normalize")

    def sqdist(self, other: Any) -> Any:
        return self._apply("SqDist", other)

    def weightedsqnorm(self, other: Any) -> Any:
        return self._apply_reversed("WeightedSqNorm", other)

    def weightedsqdist(self, other: Any, weight: Any) -> Any:
        return type(self)._rlift(self, weight)._apply("WeightedSqDist", self, other)

    def elem(self, index: int) -> Any:
        return self._apply("Elem", params=(index,))

    def extract(self, start: int, dim: int) -> Any:
        return self._apply("Extract", params=(start, dim))

    def concat(self, other: Any) -> Any:
        return self._apply("Concat", other)

    def one_hot(self, dim: int) -> Any:
        return self._apply("OneHot", params=(dim,))

    def matvecmult(self, other: Any) -> Any:
        return self._apply("MatVecMult", other)

    def vecmatmult(self, other: Any) -> Any:
        return self._apply("VecMatMult", other)

    def tensorprod(self, other: Any) -> Any:
        return self._apply("TensorProd", other)

    # --- added for LazyTensor (SPEC §4.5): more element-wise and structural spellings ----

    def abs(self) -> Any:
        return self._apply("Abs")

    def __pow__(self, other: Any) -> Any:
        # KeOps's shortcuts: x**2 -> Square, x**n -> Pow, x**0.5 -> Sqrt, x**-0.5 -> Rsqrt,
        # any other exponent (float or formula) -> Powf.
        if isinstance(other, int) and not isinstance(other, bool):
            if other == 2:
                return self._apply("Square")
            return self._apply("Pow", params=(other,))
        if isinstance(other, float):
            if other == 0.5:
                return self._apply("Sqrt")
            if other == -0.5:
                return self._apply("Rsqrt")
        return self._apply("Powf", other)

    def power(self, other: Any) -> Any:
        return self.__pow__(other)

    def sinc(self) -> Any:
        from .ir import const  # ir imports this module

        return self._apply("Mult", const(math.pi))._apply("SinXDivX")  # SinXDivX(pi x)

    def clamp(self, a: Any, b: Any) -> Any:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b)):
            return self._apply("ClampInt", params=(a, b))
        return self._apply("Clamp", a, b)

    def ifelse(self, a: Any, b: Any) -> Any:
        return self._apply("IfElse", a, b)

    def mod(self, modulus: Any, offset: Any = 0) -> Any:
        return self._apply("Mod", modulus, offset)

    def round(self, decimals: int = 0) -> Any:
        return self._apply("Round", params=(decimals,))

    def keops_tensordot(
        self, other: Any, dimfa: Any, dimfb: Any, contfa: Any, contfb: Any, *args: Any
    ) -> Any:
        params = tuple(_int_tuple(p) for p in (dimfa, dimfb, contfa, contfb, *args))
        return self._apply("TensorDot", other, params=params)

    def keops_kron(self, other: Any, dimfself: Any, dimfother: Any) -> Any:
        return self._apply("Kron", other, params=(_int_tuple(dimfself), _int_tuple(dimfother)))

    def bspline(self, x: Any, k: int = 0) -> Any:
        return self._apply("BSpline", x, params=(k,))

    def softdtw_sqdist(self, other: Any, gamma: Any) -> Any:
        return self._apply("SoftDTW_SqDist", other, gamma)

    def real2complex(self) -> Any:
        return self._apply("Real2Complex")

    def imag2complex(self) -> Any:
        return self._apply("Imag2Complex")

    def exp1j(self) -> Any:
        return self._apply("ComplexExp1j")

    # symbolic calculus
    def grad(self, other: Any, gradin: Any) -> Any:
        return self._apply("Grad", other, gradin)

    def diff(self, other: Any, diffin: Any) -> Any:
        """``Diff(self, other, diffin)``; tuples ``(v1, v2), (u1, u2)`` give the sum of the
        differentials ``Diff(self, v1, u1) + Diff(self, v2, u2)`` (KeOps's tuple form)."""
        if isinstance(other, tuple) or isinstance(diffin, tuple):
            pairs = isinstance(other, tuple) and isinstance(diffin, tuple)
            if not pairs or len(other) != len(diffin):
                raise FormulaError(
                    "Diff: give one direction per variable, as two tuples of the same length"
                )
            if not other:
                raise FormulaError("Diff: the tuple of variables is empty")
            terms = [self._apply("Diff", v, u) for v, u in zip(other, diffin)]
            return reduce(lambda a, b: a + b, terms)
        return self._apply("Diff", other, diffin)

    def grad_matrix(self, other: Any) -> Any:
        return self._apply("GradMatrix", other)

    def divergence(self, var: Any) -> Any:
        return self._apply("Divergence", var)

    def laplacian(self, var: Any) -> Any:
        return self._apply("Laplacian", var)

    def trace_operator(self, var: Any) -> Any:
        return self._apply("TraceOperator", var)

    def factorize(self, other: Any) -> Any:
        return self._apply("Factorize", other)

    def auto_factorize(self) -> Any:
        return self._apply("AutoFactorize")

    # inner-dimension reductions (LazyTensor adds the axis= forms that launch a reduction)
    def sum(self) -> Any:
        return self._apply("Sum")

    def min(self) -> Any:
        return self._apply("Min")

    def max(self) -> Any:
        return self._apply("Max")

    def argmin(self) -> Any:
        return self._apply("ArgMin")

    def argmax(self) -> Any:
        return self._apply("ArgMax")


def _int_tuple(value: Any) -> tuple[int, ...]:
    """A static list parameter (TensorDot / Kron dimensions) as a tuple of ints."""
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)
