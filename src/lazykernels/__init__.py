"""lazykernels: symbolic kernel matrices with KeOps's API and a fast compiled CPU engine.

``K[i, j] = F(x_i, y_j)`` is never stored: a formula is reduced over one axis (sum,
log-sum-exp, min/argmin, K-nearest neighbours...) by a JIT-compiled kernel, in memory linear
in the number of points. Entry points: :mod:`lazykernels.numpy` (``Genred``).
"""

from __future__ import annotations

from .errors import (
    BackendError,
    CompileError,
    DimensionError,
    FormulaError,
    LazyKernelsError,
    ShapeError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CompileError",
    "DimensionError",
    "FormulaError",
    "LazyKernelsError",
    "ShapeError",
    "__version__",
]
