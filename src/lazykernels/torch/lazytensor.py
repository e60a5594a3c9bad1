"""The PyTorch LazyTensor: the neutral core (:mod:`lazykernels.lazytensor`) plus torch tools.

``LazyTensor``, ``ComplexLazyTensor``, the ``Vi`` / ``Vj`` / ``Pm`` helpers and
``KernelSolve`` of ``pykeops.torch`` (SPEC §4.3, §4.5). Everything torch-specific is the
:class:`TorchTools` adapter below: reductions run through
:func:`lazykernels.torch.autograd.torch_reduce` (differentiable to any order), and
``solve`` / ``KernelSolve`` through :func:`lazykernels.torch.solve.solve_linear`
(differentiable too). CPU tensors are bound without copies; tensors on another device raise
:class:`~lazykernels.errors.BackendError` when the LazyTensor is built (no GPU backend yet).

``LazyTensor.dtype`` is the dtype's name (``"float32"``...), as in KeOps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..core.plan import ReductionPlan
from ..lazytensor import ArrayTools, ComplexGenericLazyTensor, GenericLazyTensor
from ..solve import GenericKernelSolve
from .autograd import check_device, torch_reduce
from .genred import Genred
from .solve import solve_linear

_FLOATS = (torch.float16, torch.float32, torch.float64)


class TorchTools(ArrayTools):
    """The :class:`~lazykernels.lazytensor.tools.ArrayTools` adapter of PyTorch."""

    name = "torch"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    def is_complex_array(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor) and x.is_complex()

    def is_floating(self, dtype: Any) -> bool:
        return dtype in _FLOATS

    def dtype_of(self, x: Any) -> torch.dtype:
        # Every array a LazyTensor binds passes here first: refuse other devices at once.
        check_device(x, "LazyTensor data")
        return x.dtype.to_real() if x.is_complex() else x.dtype

    def dtype_name(self, dtype: Any) -> str:
        return str(dtype).removeprefix("torch.")

    def public_dtype(self, dtype: Any, is_complex: bool) -> str:
        return self.dtype_name(dtype.to_complex() if is_complex else dtype)

    def default_dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    def view_as_real(self, x: Any) -> torch.Tensor:
        parts = torch.view_as_real(x.resolve_conj())  # (..., D, 2)
        return parts.reshape(*x.shape[:-1], 2 * x.shape[-1]) if x.ndim else parts

    def view_as_complex(self, x: Any) -> torch.Tensor:
        pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
        return torch.view_as_complex(pairs.contiguous())

    def from_values(self, values: Sequence[float], dtype: Any, like: Any = None) -> torch.Tensor:
        device = like.device if isinstance(like, torch.Tensor) else None
        return torch.tensor(values, dtype=dtype, device=device)

    def zeros_like(self, x: Any) -> torch.Tensor:
        return torch.zeros_like(x)

    def sum_rows(self, x: Any) -> torch.Tensor:
        return x.sum(dim=-2, keepdim=True)

    def where(self, cond: Any, a: Any, b: Any) -> torch.Tensor:
        return torch.where(cond, a, b)

    def all(self, cond: Any) -> bool:
        return bool(cond.all())

    def run_reduction(
        self,
        plan: ReductionPlan,
        arrays: Sequence[Any],
        backend: str = "auto",
        ranges: Any = None,
        out: Any = None,
    ) -> tuple[Any, ...]:
        return torch_reduce(plan, arrays, backend=backend, ranges=ranges, out=out)

    def solve_linear(
        self,
        apply: Callable[[Any, Sequence[Any]], Any],
        rhs: Any,
        inputs: Sequence[Any],
        eps: float,
        max_iter: int | None,
    ) -> torch.Tensor:
        return solve_linear(self, apply, rhs, inputs, eps, max_iter)


TORCH_TOOLS = TorchTools()


class LazyTensor(GenericLazyTensor):
    """A symbolic torch matrix ``K[i, j] = F(x_i, y_j)`` (KeOps's ``pykeops.torch.LazyTensor``).

    Example:
        >>> import torch
        >>> x = LazyTensor(torch.arange(3.0).reshape(3, 1, 1))
        >>> y = LazyTensor(torch.arange(2.0).reshape(1, 2, 1))
        >>> ((x - y) ** 2).sum(axis=1, backend="reference").ravel()
        tensor([1., 1., 5.])
    """

    tools = TORCH_TOOLS


class ComplexLazyTensor(ComplexGenericLazyTensor):
    """A symbolic torch matrix of complex vectors (KeOps's ``ComplexLazyTensor``)."""

    tools = TORCH_TOOLS


for _cls in (LazyTensor, ComplexLazyTensor):
    _cls._real_cls = LazyTensor
    _cls._complex_cls = ComplexLazyTensor


def _variable(x_or_ind: Any, dim: int | None, cat: int) -> GenericLazyTensor:
    if dim is None:
        return LazyTensor(x_or_ind, axis=cat)
    return LazyTensor((x_or_ind, dim, cat))


def Vi(x_or_ind: Any, dim: int | None = None) -> GenericLazyTensor:  # noqa: N802 (KeOps's name)
    """An i-indexed LazyTensor: ``Vi(x)`` for an (M, D) tensor, ``Vi(ind, dim)`` symbolic."""
    return _variable(x_or_ind, dim, 0)


def Vj(x_or_ind: Any, dim: int | None = None) -> GenericLazyTensor:  # noqa: N802
    """A j-indexed LazyTensor: ``Vj(y)`` for an (N, D) tensor, ``Vj(ind, dim)`` symbolic."""
    return _variable(x_or_ind, dim, 1)


def Pm(x_or_ind: Any, dim: int | None = None) -> GenericLazyTensor:  # noqa: N802
    """A parameter: ``Pm(p)`` for a number or a (D,) tensor, ``Pm(ind, dim)`` symbolic."""
    return _variable(x_or_ind, dim, 2)


class KernelSolve(GenericKernelSolve):
    """Conjugate-gradient solver of ``(alpha Id + K) a = b`` for torch tensors (SPEC §4.3).

    Differentiable with respect to ``b`` and the other inputs (see
    :mod:`lazykernels.torch.solve`).

    Example:
        >>> import torch
        >>> solver = KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(1)", "y = Vj(1)",
        ...                      "b = Vj(1)"], "b", axis=1)
        >>> x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
        >>> a = solver(x, x, torch.ones(2, 1, dtype=torch.float64), alpha=1.0,
        ...            backend="reference")
        >>> residual = 2 * a + torch.exp(torch.tensor(-1.0)) * a.flip(0) - 1
        >>> bool(residual.abs().max() < 1e-6)
        True
    """

    genred_class = Genred
    tools = TORCH_TOOLS


__all__ = ["ComplexLazyTensor", "KernelSolve", "LazyTensor", "Pm", "TorchTools", "Vi", "Vj"]
