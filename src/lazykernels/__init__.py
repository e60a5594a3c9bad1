"""lazykernels: symbolic kernel matrices with KeOps's API and a fast compiled CPU engine.

``K[i, j] = F(x_i, y_j)`` is never stored: a formula is reduced over one axis (sum,
log-sum-exp, min/argmin, K-nearest neighbours...) by a JIT-compiled kernel, in memory linear
in the number of points. Entry points: :mod:`lazykernels.numpy` (``Genred``).
"""

from __future__ import annotations

from .errors import (
    ArgumentError,
    BackendError,
    CacheError,
    CompileError,
    DimensionError,
    DtypeError,
    FormulaError,
    LazyKernelsError,
    ShapeError,
)
from .jit import cache_info, clean_cache

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BackendError",
    "CacheError",
    "CompileError",
    "DimensionError",
    "DtypeError",
    "FormulaError",
    "LazyKernelsError",
    "ShapeError",
    "__version__",
    "cache_info",
    "clean_cache",
]
