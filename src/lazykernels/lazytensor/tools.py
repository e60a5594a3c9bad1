"""The array-library adapter ("tools") a LazyTensor front end plugs into the neutral core.

Everything the LazyTensor core and the conjugate-gradient solver need from an array library
goes through one :class:`ArrayTools` object: recognising arrays, dtypes, reshaping, the
interleaved view of complex arrays, building parameter arrays, a few reductions used by CG,
and the hook that runs a reduction plan (NumPy calls the Genred core; PyTorch wraps it in an
``autograd.Function``). A new array library is one subclass of this class, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.plan import ReductionPlan


class ArrayTools:
    """Interface of an array-library adapter. Subclasses implement every method.

    Attributes:
        name: the library's name, used in error messages ("numpy", "torch").
    """

    name = "abstract"

    # --- recognition and dtypes ------------------------------------------------------------

    def is_array(self, x: Any) -> bool:
        """True for an array of this library (not a Python number or list)."""
        raise NotImplementedError

    def is_complex_array(self, x: Any) -> bool:
        """True for a complex array of this library."""
        raise NotImplementedError

    def is_floating(self, dtype: Any) -> bool:
        """True for a supported real floating dtype."""
        raise NotImplementedError

    def dtype_of(self, x: Any) -> Any:
        """The array's dtype (a real dtype: complex arrays are first viewed as real)."""
        raise NotImplementedError

    def float_info(self, x: Any) -> tuple[Any, tuple[int, ...]] | None:
        """``(dtype, shape)`` of a real floating array of this library (one call for the
        constructor's common case: what ``is_array``, ``dtype_of``, ``is_floating`` and
        ``shape`` say), None for anything else."""
        if self.is_array(x) and not self.is_complex_array(x):
            dtype = self.dtype_of(x)
            if self.is_floating(dtype):
                return dtype, self.shape(x)
        return None

    def dtype_name(self, dtype: Any) -> str:
        """``"float32"``, ``"float64"``... for messages and ``LazyTensor.dtype``."""
        raise NotImplementedError

    def public_dtype(self, dtype: Any, is_complex: bool) -> Any:
        """What ``LazyTensor.dtype`` returns for a real ``dtype`` (complex: the complex one)."""
        raise NotImplementedError

    def default_dtype(self) -> Any:
        """dtype of a reduction whose inputs are all Python numbers."""
        raise NotImplementedError

    # --- shapes and conversions ------------------------------------------------------------

    def shape(self, x: Any) -> tuple[int, ...]:
        """The array's shape as a tuple of ints."""
        return tuple(int(n) for n in x.shape)

    def reshape(self, x: Any, shape: tuple[int, ...]) -> Any:
        """``x`` viewed with ``shape``."""
        return x.reshape(shape)

    def expand_reshape(self, x: Any, shape: tuple[int, ...], new_shape: tuple[int, ...]) -> Any:
        """``x`` broadcast to ``shape`` (size-1 axes repeated), then reshaped to ``new_shape``."""
        raise NotImplementedError

    def view_as_real(self, x: Any) -> Any:
        """A complex array ``(..., D)`` as real interleaved ``(..., 2D)`` ``[re, im]``."""
        raise NotImplementedError

    def view_as_complex(self, x: Any) -> Any:
        """A real interleaved array ``(..., 2D)`` as a complex ``(..., D)``."""
        raise NotImplementedError

    def from_values(self, values: Sequence[float], dtype: Any, like: Any = None) -> Any:
        """A 1-D array of ``dtype`` holding Python numbers (the float parameters).

        ``like`` is another input of the same call (or None), for libraries that also need
        a device.
        """
        raise NotImplementedError

    # --- what the conjugate-gradient solver needs ------------------------------------------

    def zeros_like(self, x: Any) -> Any:
        """An array of zeros with ``x``'s shape and dtype."""
        raise NotImplementedError

    def sum_rows(self, x: Any) -> Any:
        """Sum over the row axis (-2), keeping it: ``(..., n, D) -> (..., 1, D)``."""
        raise NotImplementedError

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        """Element-wise ``a if cond else b`` (broadcasting)."""
        raise NotImplementedError

    def all(self, cond: Any) -> bool:
        """True when every entry of the boolean array ``cond`` is true."""
        raise NotImplementedError

    # --- running a reduction ---------------------------------------------------------------

    warm_adapter: Any = None
    """The core's :class:`~lazykernels.core.arrays.ArrayAdapter` of this library when its
    ``run_reduction`` is :func:`~lazykernels.core.genred.run_plan` through it (its plain
    calls may then be served by prepared calls, see :mod:`.warm`); None otherwise."""

    def untracked(self, values: Sequence[Any]) -> bool:
        """True when no derivative of a reduction of ``values`` can be asked for (a warm
        call may then bypass the library's autograd)."""
        return True

    def run_reduction(
        self,
        plan: ReductionPlan,
        arrays: Sequence[Any],
        backend: str = "auto",
        ranges: Any = None,
        out: Any = None,
    ) -> tuple[Any, ...]:
        """Run ``plan`` on ``arrays`` (one per slot, in position order); return its outputs."""
        raise NotImplementedError

    # --- solving kernel linear systems -----------------------------------------------------

    def solve_linear(
        self,
        apply: Callable[[Any, Sequence[Any]], Any],
        rhs: Any,
        inputs: Sequence[Any],
        eps: float,
        max_iter: int | None,
    ) -> Any:
        """Solve ``apply(a, inputs) = rhs`` by conjugate gradient; return ``a``.

        ``apply(a, inputs)`` is ``alpha a + K a`` (symmetric positive definite, linear in
        ``a``) computed from ``a`` and the other arrays ``inputs`` only, so that an adapter
        with autograd (PyTorch) can differentiate the solution with respect to ``rhs`` and
        ``inputs``. The default runs :func:`lazykernels.solve.conjugate_gradient`.
        """
        from .solve import (
            conjugate_gradient,
        )  # solve.py imports this module: a cycle inside the package

        return conjugate_gradient(lambda a: apply(a, inputs), rhs, self, eps, max_iter)
