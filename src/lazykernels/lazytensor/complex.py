"""``ComplexGenericLazyTensor``: LazyTensors of complex vectors (SPEC §1.5, §4.5).

A complex vector of D numbers is stored as a real vector of dimension 2D with interleaved
``[re, im]`` pairs (complex arrays are viewed that way when bound, and reductions view their
outputs back as complex). The arithmetic operators map to the Complex* ops; a real operand
is first promoted with ``Real2Complex``, except a real scalar factor (dim 1), which scales
with ``ComplexRealScal``.
"""

from __future__ import annotations

import numbers
from typing import Any

from ..errors import ArgumentError
from ..reductions import SPECS
from .core import GenericLazyTensor, is_scalar


class ComplexGenericLazyTensor(GenericLazyTensor):
    """A LazyTensor whose formula is a complex (interleaved) vector."""

    is_complex = True

    def __init__(self, x: Any = None, axis: int | None = None, is_complex: bool = True):
        tools = self.tools
        if tools.is_array(x) and not tools.is_complex_array(x):
            # real data given to a complex LazyTensor: promote it (imaginary part 0)
            real = self._real_cls(x, axis).real2complex()
            self._set_state(real.node, **real._state())
            self.axis = axis
            return
        if isinstance(x, numbers.Number) and not tools.is_array(x):
            x = [complex(x)]  # a number in a complex formula is a complex parameter
        super().__init__(x, axis)

    # --- promotion -------------------------------------------------------------------------

    def _as_complex(self, other: Any) -> GenericLazyTensor:
        lifted = self._lift(other)
        return lifted if lifted.is_complex else lifted.real2complex()

    # --- arithmetic ------------------------------------------------------------------------

    def __add__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return self
        return self._apply("ComplexAdd", self._as_complex(other))

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __sub__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return self
        return self._apply("ComplexSubtract", self._as_complex(other))

    def __rsub__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return -self
        return self._as_complex(other)._apply("ComplexSubtract", self)

    def __mul__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return 0
        if is_scalar(other, 1):
            return self
        lifted = self._lift(other)
        if not lifted.is_complex and lifted.ndim == 1:
            return self._apply("ComplexRealScal", lifted)
        return self._apply("ComplexMult", self._as_complex(lifted))

    def __rmul__(self, other: Any) -> Any:
        return self.__mul__(other)

    def __truediv__(self, other: Any) -> Any:
        if is_scalar(other, 1):
            return self
        lifted = self._lift(other)
        if not lifted.is_complex and lifted.ndim == 1:
            return self._apply("ComplexRealScal", lifted._apply("Inv"))
        return self._apply("ComplexDivide", self._as_complex(lifted))

    def __rtruediv__(self, other: Any) -> Any:
        if is_scalar(other, 0):
            return 0
        return self._as_complex(other)._apply("ComplexDivide", self)

    # --- complex-specific methods ----------------------------------------------------------

    @property
    def real(self) -> GenericLazyTensor:
        """Real parts (a real LazyTensor of dim ndim/2)."""
        return self._apply("ComplexReal")

    @property
    def imag(self) -> GenericLazyTensor:
        """Imaginary parts (a real LazyTensor of dim ndim/2)."""
        return self._apply("ComplexImag")

    def angle(self) -> GenericLazyTensor:
        """Arguments in (-pi, pi]."""
        return self._apply("ComplexAngle")

    def conj(self) -> GenericLazyTensor:
        """Complex conjugate."""
        return self._apply("Conj")

    def abs(self) -> GenericLazyTensor:
        """Moduli (real)."""
        return self._apply("ComplexAbs")

    __abs__ = abs

    def exp(self) -> GenericLazyTensor:
        """Complex exponential."""
        return self._apply("ComplexExp")

    def sum(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: ``ComplexSum`` (sum of the numbers); else a Sum reduction."""
        if self._inner(axis, dim):
            return self._apply("ComplexSum")
        if dim is not None and axis == -1:  # K.sum(dim=1): dim wins over the default axis
            axis = None
        return self.reduction("Sum", axis=axis, dim=dim, **kwargs)

    def _reduce(self, reduction_op: str, axis: int, *args: Any, **kwargs: Any) -> Any:
        # min, max, log-sum-exp, soft-max of complex numbers are undefined; KeOps runs them
        # on the interleaved (re, im) values, a silently meaningless result
        card = SPECS.get(reduction_op)
        if card is None or not card.linear:
            raise ArgumentError(
                f"{reduction_op} reduction of a complex LazyTensor: only the reductions linear "
                f"in the values ({', '.join(n for n, c in SPECS.items() if c.linear)}) are "
                f"defined for complex values; reduce .real, .imag or .abs() instead"
            )
        return super()._reduce(reduction_op, axis, *args, **kwargs)

    def _refuse(self, name: str) -> Any:
        raise ArgumentError(f"{name}() applies to real LazyTensors, not to complex ones")

    def real2complex(self) -> Any:
        return self._refuse("real2complex")

    def imag2complex(self) -> Any:
        return self._refuse("imag2complex")

    def exp1j(self) -> Any:
        return self._refuse("exp1j")

    def keops_tensordot(self, *args: Any, **kwargs: Any) -> Any:
        return self._refuse("keops_tensordot")
