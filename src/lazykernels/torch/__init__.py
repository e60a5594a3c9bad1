"""PyTorch front end: KeOps's ``pykeops.torch`` API on torch tensors.

A thin adapter over the array-library-neutral core (:mod:`lazykernels.core`): the torch
array adapter (:mod:`.arrays`) hands CPU tensors to the backends by pointer (no copies, no
NumPy views) and CUDA tensors to the GPU runner in place; results come back as tensors on
the inputs' device, and :mod:`.autograd` makes every reduction differentiable (its
derivatives are reductions too, built by :mod:`lazykernels.reductions.derivatives`).
``lazykernels.torch.cluster`` holds the cluster utilities.
"""

from __future__ import annotations

from .autograd import GenredFunction, torch_reduce
from .genred import (
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)
from .lazytensor import ComplexLazyTensor, KernelSolve, LazyTensor, Pm, Vi, Vj

# KeOps's pykeops.torch names, then the autograd entry points (tests/test_front_end_names.py)
__all__ = [
    "ComplexLazyTensor",
    "Genred",
    "KernelSolve",
    "LazyTensor",
    "Pm",
    "Vi",
    "Vj",
    "generic_argkmin",
    "generic_argmin",
    "generic_logsumexp",
    "generic_sum",
    "GenredFunction",
    "torch_reduce",
]
