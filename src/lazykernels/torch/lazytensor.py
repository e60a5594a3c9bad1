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

from collections.abc import Sequence
from typing import Any

import torch

from ..lazytensor import ArrayTools, ComplexGenericLazyTensor, GenericLazyTensor
from ..lazytensor.frontend import wire_front_end
from ..solve import GenericKernelSolve
from .arrays import TORCH
from .autograd import check_device, torch_reduce, tracked
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
        if x.is_cuda or not x.is_cpu:
            check_device(x, "LazyTensor data")
        return x.dtype.to_real() if x.is_complex() else x.dtype

    def shape(self, x: Any) -> tuple[int, ...]:
        return tuple(x.shape)  # a torch.Size is a tuple of ints

    def float_info(self, x: Any) -> tuple[torch.dtype, tuple[int, ...]] | None:
        if isinstance(x, torch.Tensor):
            dtype = x.dtype
            if dtype in _FLOATS:
                if not x.is_cpu:  # refuse other devices at once (as dtype_of)
                    check_device(x, "LazyTensor data")
                return dtype, tuple(x.shape)
        return None

    def reshape(self, x: Any, shape: tuple[int, ...]) -> torch.Tensor:
        # a view where there is one (the LazyTensor reshapes only drop or add size-1 axes):
        # half the cost of Tensor.reshape, which first asks whether a copy is needed
        try:  # (sizes as arguments: a tuple costs torch ~0.8 us more to parse)
            return x.view(*shape) if shape else x.reshape(shape)
        except RuntimeError:
            return x.reshape(shape)

    def dtype_name(self, dtype: Any) -> str:
        return str(dtype).removeprefix("torch.")

    def public_dtype(self, dtype: Any, is_complex: bool) -> str:
        return self.dtype_name(dtype.to_complex() if is_complex else dtype)

    def default_dtype(self) -> torch.dtype:
        return torch.get_default_dtype()

    def expand_reshape(self, x: Any, shape: tuple[int, ...], new_shape: tuple[int, ...]):
        return x.expand(shape).reshape(new_shape)

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

    # The torch implementations, with the ArrayTools signatures (``self`` is solve's ``tools``).
    run_reduction = staticmethod(torch_reduce)
    warm_adapter = TORCH

    def untracked(self, values: Sequence[Any]) -> bool:
        return not tracked(values)

    solve_linear = solve_linear


TORCH_TOOLS = TorchTools()


class LazyTensor(GenericLazyTensor):
    """A symbolic torch matrix ``K[i, j] = F(x_i, y_j)`` (KeOps's ``pykeops.torch.LazyTensor``).

    Its reductions are differentiable, to any order, with respect to the tensors it holds.

    Example:
        >>> import torch
        >>> x = torch.arange(3.0, requires_grad=True)
        >>> K = (LazyTensor(x.reshape(3, 1, 1)) - LazyTensor(x.reshape(1, 3, 1))) ** 2
        >>> s = K.sum(axis=1, backend="reference")
        >>> s.ravel().tolist()
        [5.0, 2.0, 5.0]
        >>> s.sum().backward()
        >>> x.grad  # d/dx_i of sum_ij (x_i - x_j)^2 = 4 (3 x_i - sum_j x_j)
        tensor([-12.,   0.,  12.])
    """

    tools = TORCH_TOOLS


class ComplexLazyTensor(ComplexGenericLazyTensor):
    """A symbolic torch matrix of complex vectors (KeOps's ``ComplexLazyTensor``).

    Its ``dtype`` is the name of the complex dtype, as in KeOps.

    Example:
        >>> import torch
        >>> z = LazyTensor(torch.tensor([1 + 1j, 2j]).reshape(2, 1, 1))
        >>> z.dtype
        'complex64'
        >>> (z * 3.0).sum(axis=1, backend="reference").ravel()
        tensor([3.+3.j, 0.+6.j])
    """

    tools = TORCH_TOOLS


Vi, Vj, Pm = wire_front_end(LazyTensor, ComplexLazyTensor, "tensor")
__test__ = {"Vi": Vi, "Vj": Vj, "Pm": Pm}  # doctest: run their examples here (made elsewhere)


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
