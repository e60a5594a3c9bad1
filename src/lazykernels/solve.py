"""Kernel linear systems by conjugate gradient: :mod:`lazykernels.lazytensor.solve`.

The solver lives with the LazyTensor it solves with (``LazyTensor.solve`` calls it); this
module keeps its public path for the front ends (``KernelSolve``) and KeOps's
``pykeops.common.operations``.
"""

from __future__ import annotations

from .lazytensor.solve import GenericKernelSolve, conjugate_gradient, lazy_solve

__all__ = ["GenericKernelSolve", "conjugate_gradient", "lazy_solve"]
