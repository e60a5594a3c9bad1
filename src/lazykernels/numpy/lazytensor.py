"""The NumPy LazyTensor: the neutral core (:mod:`lazykernels.lazytensor`) plus NumPy tools.

``LazyTensor``, ``ComplexLazyTensor``, the ``Vi`` / ``Vj`` / ``Pm`` helpers and
``KernelSolve`` of ``pykeops.numpy`` (SPEC §4.3, §4.5). Everything NumPy-specific is the
:class:`NumpyTools` adapter below; a NumPy LazyTensor also satisfies SciPy's LinearOperator
protocol (``shape``, ``dtype``, ``matvec``, ``rmatvec``, ``.T``), so
``scipy.sparse.linalg.aslinearoperator(K)`` works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.arrays import NUMPY
from ..core.genred import run_plan
from ..lazytensor import ArrayTools, ComplexGenericLazyTensor, GenericLazyTensor
from ..lazytensor.frontend import wire_front_end
from ..solve import GenericKernelSolve
from .genred import Genred

_FLOATS = frozenset((np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)))
_DTYPE_TYPES = frozenset(type(d) for d in _FLOATS)  # np.dtype's subclasses of these


class NumpyTools(ArrayTools):
    """The :class:`~lazykernels.lazytensor.tools.ArrayTools` adapter of NumPy."""

    name = "numpy"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def is_complex_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray) and x.dtype.kind == "c"

    def is_floating(self, dtype: Any) -> bool:
        return (dtype if type(dtype) in _DTYPE_TYPES else np.dtype(dtype)) in _FLOATS

    def dtype_of(self, x: Any) -> np.dtype:
        dtype = x.dtype if isinstance(x, np.ndarray) else np.asarray(x).dtype
        return np.empty(0, dtype).real.dtype if dtype.kind == "c" else dtype

    def shape(self, x: Any) -> tuple[int, ...]:
        return x.shape if isinstance(x, np.ndarray) else tuple(int(n) for n in x.shape)

    def float_info(self, x: Any) -> tuple[np.dtype, tuple[int, ...]] | None:
        if isinstance(x, np.ndarray):
            dtype = x.dtype
            if dtype in _FLOATS:
                return dtype, x.shape
        return None

    def dtype_name(self, dtype: Any) -> str:
        return str(np.dtype(dtype))

    def public_dtype(self, dtype: Any, is_complex: bool) -> np.dtype:
        return np.result_type(dtype, np.complex64) if is_complex else np.dtype(dtype)

    def default_dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def expand_reshape(self, x: Any, shape: tuple[int, ...], new_shape: tuple[int, ...]):
        return np.broadcast_to(x, shape).reshape(new_shape)

    def view_as_real(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        parts = np.stack([x.real, x.imag], axis=-1)
        return parts.reshape(*x.shape[:-1], 2 * x.shape[-1]) if x.ndim else parts

    def view_as_complex(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x[..., 0::2] + 1j * x[..., 1::2]

    def from_values(self, values: Sequence[float], dtype: Any, like: Any = None) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    def zeros_like(self, x: Any) -> np.ndarray:
        return np.zeros_like(x)

    def sum_rows(self, x: Any) -> np.ndarray:
        return np.sum(x, axis=-2, keepdims=True)

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def all(self, cond: Any) -> bool:
        return bool(np.all(cond))

    run_reduction = staticmethod(run_plan)  # the neutral core takes NumPy arrays as they are
    warm_adapter = NUMPY


NUMPY_TOOLS = NumpyTools()


class LazyTensor(GenericLazyTensor):
    """A symbolic NumPy matrix ``K[i, j] = F(x_i, y_j)`` (KeOps's ``pykeops.numpy.LazyTensor``).

    Example:
        >>> import numpy as np
        >>> x = LazyTensor(np.arange(3.0).reshape(3, 1, 1))
        >>> y = LazyTensor(np.arange(2.0).reshape(1, 2, 1))
        >>> ((x - y) ** 2).sum(axis=1, backend="reference").ravel()
        array([1., 1., 5.])
    """

    tools = NUMPY_TOOLS


class ComplexLazyTensor(ComplexGenericLazyTensor):
    """A symbolic NumPy matrix of complex vectors (KeOps's ``ComplexLazyTensor``).

    ``LazyTensor`` of a complex array is one; so is any formula with a complex operand.

    Example:
        >>> import numpy as np
        >>> z = LazyTensor(np.array([1 + 1j, 2j]).reshape(2, 1, 1))
        >>> w = LazyTensor(np.array([1.0, 3.0]).reshape(1, 2, 1))
        >>> type(z * w).__name__, (z * w).sum(axis=1, backend="reference").ravel()
        ('ComplexLazyTensor', array([4.+4.j, 0.+8.j]))
    """

    tools = NUMPY_TOOLS


Vi, Vj, Pm = wire_front_end(LazyTensor, ComplexLazyTensor, "array")
__test__ = {"Vi": Vi, "Vj": Vj, "Pm": Pm}  # doctest: run their examples here (made elsewhere)


class KernelSolve(GenericKernelSolve):
    """Conjugate-gradient solver of ``(alpha Id + K) a = b`` for NumPy arrays (SPEC §4.3).

    Example:
        >>> import numpy as np
        >>> solver = KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(1)", "y = Vj(1)",
        ...                      "b = Vj(1)"], "b", axis=1)
        >>> x = np.array([[0.0], [1.0]])
        >>> a = solver(x, x, np.ones((2, 1)), alpha=1.0, backend="reference")
        >>> bool(np.allclose(2 * a + np.exp(-1.0) * a[::-1], 1.0))
        True
    """

    genred_class = Genred
    tools = NUMPY_TOOLS


__all__ = ["ComplexLazyTensor", "KernelSolve", "LazyTensor", "NumpyTools", "Pm", "Vi", "Vj"]
