"""NumPy front end: KeOps's ``pykeops.numpy`` API on NumPy arrays.

A thin adapter over the array-library-neutral core (:mod:`lazykernels.core.genred`): NumPy
arrays go in, NumPy arrays come out.
"""

from __future__ import annotations

from ..lazytensor.frontend import FRONT_END_API
from .genred import (  # noqa: F401 (exported: FRONT_END_API is __all__)
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)
from .lazytensor import ComplexLazyTensor, KernelSolve, LazyTensor, Pm, Vi, Vj  # noqa: F401

__all__ = list(FRONT_END_API)
