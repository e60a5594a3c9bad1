"""The dask LazyTensor: the neutral core (:mod:`lazykernels.lazytensor`) plus dask tools.

A LazyTensor built from dask arrays (``(M, 1, D)`` / ``(1, N, D)``, or ``(n, D)`` with
``axis``; NumPy arrays work too) reduces to lazy dask arrays through
:func:`lazykernels.dask.dask_reduce`; ``K @ v``, ``K.solve(b)`` and ``KernelSolve`` run
their reductions distributed, the last two by :func:`lazykernels.dask.conjugate_gradient`
(the solution's ``cg`` attribute holds the iterations and the residual). The plan
(``"i"`` / ``"ij"``) is dask's configuration ``"lazykernels.plan"``:
``with dask.config.set({"lazykernels.plan": "ij"}): ...``. Complex data and batch
dimensions are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np

from ..errors import DtypeError
from ..lazytensor import ArrayTools, ComplexGenericLazyTensor, GenericLazyTensor
from ..lazytensor.frontend import wire_front_end
from ..solve import GenericKernelSolve
from .genred import Genred, dask_reduce
from .solve import conjugate_gradient

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class DaskTools(ArrayTools):
    """The :class:`~lazykernels.lazytensor.tools.ArrayTools` adapter of dask (and NumPy)."""

    name = "dask"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, da.Array | np.ndarray)

    def is_complex_array(self, x: Any) -> bool:
        return self.is_array(x) and np.dtype(x.dtype).kind == "c"

    def is_floating(self, dtype: Any) -> bool:
        return np.dtype(dtype) in _FLOATS

    def dtype_of(self, x: Any) -> np.dtype:
        return np.dtype(x.dtype)

    def dtype_name(self, dtype: Any) -> str:
        return str(np.dtype(dtype))

    def public_dtype(self, dtype: Any, is_complex: bool) -> np.dtype:
        return np.dtype(dtype)

    def default_dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def expand_reshape(self, x: Any, shape: tuple[int, ...], new_shape: tuple[int, ...]):
        return da.broadcast_to(x, shape).reshape(new_shape)

    def view_as_real(self, x: Any) -> Any:
        raise DtypeError("lazykernels.dask does not support complex data")

    view_as_complex = view_as_real

    def from_values(self, values: Sequence[float], dtype: Any, like: Any = None) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    def zeros_like(self, x: Any) -> Any:
        return da.zeros_like(x)

    def sum_rows(self, x: Any) -> Any:
        return x.sum(axis=-2, keepdims=True)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return da.where(cond, a, b)

    def all(self, cond: Any) -> bool:
        return bool(np.all(np.asarray(cond)))

    def run_reduction(
        self,
        plan: Any,
        arrays: Sequence[Any],
        backend: str = "auto",
        ranges: Any = None,
        out: Any = None,
    ) -> tuple[Any, ...]:
        return dask_reduce(plan, arrays, backend=backend, ranges=ranges, out=out)

    def solve_linear(
        self,
        apply: Callable[[Any, Sequence[Any]], Any],
        rhs: Any,
        inputs: Sequence[Any],
        eps: float,
        max_iter: int | None,
    ) -> Any:
        result = conjugate_gradient(lambda a: apply(a, inputs), rhs, eps, max_iter)
        solution = result.x
        solution.cg = result  # the iterations and residual travel with the solution
        return solution


DASK_TOOLS = DaskTools()


class LazyTensor(GenericLazyTensor):
    """A symbolic matrix ``K[i, j] = F(x_i, y_j)`` over dask arrays; reductions are lazy.

    Example:
        >>> import numpy as np
        >>> x = LazyTensor(da.from_array(np.arange(3.0).reshape(3, 1, 1), chunks=2))
        >>> y = LazyTensor(np.arange(2.0).reshape(1, 2, 1))
        >>> ((x - y) ** 2).sum(axis=1, backend="reference").compute().ravel()
        array([1., 1., 5.])
    """

    tools = DASK_TOOLS


class ComplexLazyTensor(ComplexGenericLazyTensor):
    """Complex LazyTensors are not supported on dask arrays (wired for the front end only)."""

    tools = DASK_TOOLS


Vi, Vj, Pm = wire_front_end(LazyTensor, ComplexLazyTensor, "dask array")
__test__ = {"Vi": Vi, "Vj": Vj, "Pm": Pm}


class KernelSolve(GenericKernelSolve):
    """``(alpha Id + K) a = b`` by conjugate gradient with a distributed matvec.

    The solution is a dask array whose ``cg`` attribute is the
    :class:`~lazykernels.dask.CGResult` (iterations, residual).

    Example:
        >>> import numpy as np
        >>> solver = KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(1)", "y = Vj(1)",
        ...                      "b = Vj(1)"], "b", axis=1)
        >>> x = da.from_array(np.array([[0.0], [1.0]]), chunks=1)
        >>> a = solver(x, x, da.ones((2, 1), chunks=1), alpha=1.0, backend="reference")
        >>> bool(np.allclose(2 * a.compute() + np.exp(-1.0) * a.compute()[::-1], 1.0))
        True
        >>> a.cg.iterations, bool(a.cg.converged)
        (1, True)
    """

    genred_class = Genred
    tools = DASK_TOOLS


__all__ = ["ComplexLazyTensor", "DaskTools", "KernelSolve", "LazyTensor", "Pm", "Vi", "Vj"]
