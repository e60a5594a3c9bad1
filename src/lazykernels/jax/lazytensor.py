"""The JAX LazyTensor: the neutral core (:mod:`lazykernels.lazytensor`) plus JAX tools.

``LazyTensor``, ``ComplexLazyTensor``, ``Vi`` / ``Vj`` / ``Pm`` and ``KernelSolve`` on JAX
arrays. Everything JAX-specific is the :class:`JaxTools` adapter below: reductions run
through :func:`lazykernels.jax.reduce.jax_reduce` (jit, vmap, grad...), and solves through
``jax.scipy.sparse.linalg.cg``, which is jittable and differentiable (implicitly, with
respect to the right-hand side and the kernel's inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..lazytensor import ComplexGenericLazyTensor, GenericLazyTensor
from ..lazytensor.frontend import wire_front_end
from ..numpy.lazytensor import NumpyTools
from ..solve import GenericKernelSolve
from .genred import Genred
from .reduce import jax_reduce


class JaxTools(NumpyTools):
    """The :class:`~lazykernels.lazytensor.tools.ArrayTools` adapter of JAX (dtypes are
    NumPy dtypes, as in the NumPy adapter; everything that touches arrays is jax.numpy,
    so it works on tracers)."""

    name = "jax"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, jax.Array)

    def is_complex_array(self, x: Any) -> bool:
        return isinstance(x, jax.Array) and np.dtype(x.dtype).kind == "c"  # not iscomplexobj: 6 us

    def dtype_of(self, x: Any) -> np.dtype:
        dtype = np.dtype(x.dtype)
        return np.empty(0, dtype).real.dtype if dtype.kind == "c" else dtype

    def default_dtype(self) -> np.dtype:
        return np.dtype(jnp.zeros(()).dtype)  # float64 under jax_enable_x64, else float32

    def expand_reshape(self, x: Any, shape: tuple[int, ...], new_shape: tuple[int, ...]):
        return jnp.broadcast_to(x, shape).reshape(new_shape)

    def view_as_real(self, x: Any) -> jax.Array:
        parts = jnp.stack([x.real, x.imag], axis=-1)
        return parts.reshape(*x.shape[:-1], 2 * x.shape[-1]) if x.ndim else parts

    def view_as_complex(self, x: Any) -> jax.Array:
        return x[..., 0::2] + 1j * x[..., 1::2]

    def from_values(self, values: Sequence[float], dtype: Any, like: Any = None) -> jax.Array:
        return jnp.asarray(values, dtype=dtype)

    def zeros_like(self, x: Any) -> jax.Array:
        return jnp.zeros_like(x)

    def sum_rows(self, x: Any) -> jax.Array:
        return jnp.sum(x, axis=-2, keepdims=True)

    def where(self, cond: Any, a: Any, b: Any) -> jax.Array:
        return jnp.where(cond, a, b)

    def all(self, cond: Any) -> bool:
        return bool(jnp.all(cond))

    run_reduction = staticmethod(jax_reduce)

    def solve_linear(
        self,
        apply: Callable[[Any, Sequence[Any]], Any],
        rhs: Any,
        inputs: Sequence[Any],
        eps: float,
        max_iter: int | None,
    ) -> Any:
        """Conjugate gradient by ``jax.scipy.sparse.linalg.cg``: one system over every
        batch entry and column, stopped when the residual's norm is below
        ``sqrt(n) * eps`` (so each column meets the NumPy solver's ``n * eps**2``)."""
        linop = lambda a: apply(a, inputs)
        shape = jax.eval_shape(linop, rhs).shape  # broadcast batch dims: the output's shape
        b = jnp.broadcast_to(rhs, shape)
        n = shape[-2]
        steps = 10 * n + 100 if max_iter is None else max_iter
        a, _ = jax.scipy.sparse.linalg.cg(linop, b, tol=0.0, atol=math.sqrt(n) * eps, maxiter=steps)
        return a


JAX_TOOLS = JaxTools()


class LazyTensor(GenericLazyTensor):
    """A symbolic JAX matrix ``K[i, j] = F(x_i, y_j)`` (KeOps's LazyTensor on JAX arrays).

    Its reductions work under ``jax.jit`` and ``vmap`` and are differentiable to any order.

    Example:
        >>> import jax.numpy as jnp
        >>> x = LazyTensor(jnp.arange(3.0).reshape(3, 1, 1))
        >>> y = LazyTensor(jnp.arange(2.0).reshape(1, 2, 1))
        >>> ((x - y) ** 2).sum(axis=1, backend="reference").ravel().tolist()
        [1.0, 1.0, 5.0]
    """

    tools = JAX_TOOLS


class ComplexLazyTensor(ComplexGenericLazyTensor):
    """A symbolic JAX matrix of complex vectors (KeOps's ``ComplexLazyTensor``)."""

    tools = JAX_TOOLS


Vi, Vj, Pm = wire_front_end(LazyTensor, ComplexLazyTensor, "array")


class KernelSolve(GenericKernelSolve):
    """Conjugate-gradient solver of ``(alpha Id + K) a = b`` for JAX arrays (SPEC §4.3).

    Example:
        >>> import jax.numpy as jnp
        >>> solver = KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(1)", "y = Vj(1)",
        ...                      "b = Vj(1)"], "b", axis=1)
        >>> x = jnp.array([[0.0], [1.0]])
        >>> a = solver(x, x, jnp.ones((2, 1)), alpha=1.0, backend="reference")
        >>> bool(jnp.allclose(2 * a + jnp.exp(-1.0) * a[::-1], 1.0, atol=1e-5))
        True
    """

    genred_class = Genred
    tools = JAX_TOOLS


__all__ = ["ComplexLazyTensor", "JaxTools", "KernelSolve", "LazyTensor", "Pm", "Vi", "Vj"]
