"""``Genred`` and the ``generic_*`` shortcuts for torch tensors (SPEC §4.2, §4.4).

The constructor, options and plan are those of the array-neutral core
(:class:`~lazykernels.core.genred.GenredCore`); a call runs
:func:`lazykernels.torch.autograd.torch_reduce`, so results are differentiable with
``torch.autograd`` (to any order) and ``torch.func``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.genred import GenredCore, generic_genred
from .autograd import torch_reduce
from .cuda import gpu_arguments


class Genred(GenredCore):
    """A generic reduction ``reduction_op_j F(x_i, y_j, p)`` on torch tensors.

    Same constructor as KeOps's ``pykeops.torch.Genred``: ``Genred(formula, aliases,
    reduction_op="Sum", axis=0, dtype=None, opt_arg=None, formula2=None, cuda_type=None,
    dtype_acc="auto", use_double_acc=False, sum_scheme="auto", enable_chunks=True,
    rec_multVar_highdim=False, use_fast_math=True)``.

    Unlike KeOps, Min, Max, KMin, Min_ArgMin, Max_ArgMax and KMin_ArgKMin are
    differentiable: the gradient flows through the selected entries (see
    :mod:`lazykernels.torch.autograd`).

    Example:
        >>> import torch
        >>> g = Genred("SqNorm2(x - y)", ["x = Vi(3)", "y = Vj(3)"], axis=1)
        >>> x = torch.arange(6.0).reshape(2, 3)
        >>> g(x, torch.zeros(1, 3), backend="reference")
        tensor([[ 5.],
                [50.]])
    """

    def __call__(
        self,
        *args: torch.Tensor,
        backend: str = "auto",
        device_id: int = -1,
        ranges: Any = None,
        out: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Reduce over the inputs ``args`` (one tensor per alias, in position order).

        Args:
            args: float16/float32/float64 tensors, all of one dtype; ``Vi(D)`` takes
                ``(..., M, D)``, ``Vj(D)`` takes ``(..., N, D)``, ``Pm(D)`` takes ``(..., D)``.
            backend: ``"auto"``, ``"CPU"``, ``"reference"``, or ``"GPU"`` / ``"GPU_1D"``
                (CUDA tensors always run on their GPU; CPU tensors are moved to the GPU
                and the results back). ``"auto"`` picks the GPU when one is present.
            device_id: the GPU of CPU inputs with a GPU backend (-1: the default); with
                CUDA inputs it must be their device.
            ranges: KeOps's 6-tuple of block-sparse ranges (int tensors or arrays).
            out: preallocated output tensor(s), filled in place and returned (only when no
                gradient is tracked).

        Returns:
            One tensor, or a tuple (values, int64 indices) for Min_ArgMin, Max_ArgMax and
            KMin_ArgKMin.

        Raises:
            BackendError: inputs on different devices, a CPU backend for CUDA tensors.
            CompatibilityError: a GPU backend without an NVIDIA driver or GPU.
        """
        args, home = gpu_arguments(args, backend, device_id)
        results = torch_reduce(self.plan, args, backend=backend, ranges=ranges, out=out)
        if home is not None:
            results = tuple(r.to(home) for r in results)
        return results[0] if len(results) == 1 else results


def _generic(reduction_op: str, formula: str, output: str, aliases: tuple[str, ...], **kwargs):
    return generic_genred(Genred, reduction_op, formula, output, aliases, **kwargs)


def generic_sum(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "Sum")`` with the axis given by the output alias.

    Example:
        >>> import torch
        >>> f = generic_sum("x * y", "out = Vi(1)", "x = Vi(1)", "y = Vj(1)")
        >>> f(torch.ones(2, 1), torch.full((3, 1), 2.0), backend="reference").ravel()
        tensor([6., 6.])
    """
    return _generic("Sum", formula, output, aliases, **kwargs)


def generic_logsumexp(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "LogSumExp")`` with the axis given by the output alias."""
    return _generic("LogSumExp", formula, output, aliases, **kwargs)


def generic_argmin(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "ArgMin")`` with the axis given by the output alias."""
    return _generic("ArgMin", formula, output, aliases, **kwargs)


def generic_argkmin(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "ArgKMin", opt_arg=K)``; K is the output alias's dim."""
    return _generic("ArgKMin", formula, output, aliases, **kwargs)
