"""NumPy front end: KeOps's ``pykeops.numpy`` API on NumPy arrays.

A thin adapter over the array-library-neutral core (:mod:`lazykernels.core.genred`): NumPy
arrays go in, NumPy arrays come out.
"""

from __future__ import annotations

from .genred import (
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)
from .lazytensor import ComplexLazyTensor, KernelSolve, LazyTensor, Pm, Vi, Vj

# KeOps's pykeops.numpy names (tests/test_front_end_names.py)
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
]
