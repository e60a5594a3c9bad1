"""lazykernels: symbolic kernel matrices with KeOps's API and a fast compiled CPU engine.

``K[i, j] = F(x_i, y_j)`` is never stored: a formula is reduced over one axis (sum,
log-sum-exp, min/argmin, K-nearest neighbours...) by a JIT-compiled kernel, in memory linear
in the number of points. Entry points: :mod:`lazykernels.numpy` and :mod:`lazykernels.torch`
(``Genred``, ``LazyTensor``, ``Vi`` / ``Vj`` / ``Pm``, ``KernelSolve``).

KeOps's top-level helpers have the same names here (``set_verbose``, ``clean_pykeops``,
``get_build_folder``..., see :mod:`.compat`), and so do its module paths (``config``,
``common.gpu_utils``, ``numpy.utils``, ``torch.operations``...).
:func:`install_as_pykeops` runs code that imports ``pykeops`` on lazykernels.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import config
from .compat import (
    check_health,
    clean_pykeops,
    default_device_id,
    get_build_folder,
    set_build_folder,
    set_verbose,
    test_numpy_bindings,
    test_torch_bindings,
)
from .errors import (
    ArgumentError,
    BackendError,
    CacheError,
    CompatibilityError,
    CompileError,
    DenseSizeError,
    DimensionError,
    DtypeError,
    FormulaError,
    IndexingError,
    LazyKernelsError,
    ShapeError,
)
from .jit import cache_info, clean_cache
from .pykeops_hook import install_as_pykeops
from .version import __version__

__all__ = [
    "ArgumentError",
    "BackendError",
    "CompatibilityError",
    "CacheError",
    "CompileError",
    "DenseSizeError",
    "DimensionError",
    "DtypeError",
    "FormulaError",
    "IndexingError",
    "LazyKernelsError",
    "ShapeError",
    "__version__",
    "cache_info",
    "check_health",
    "clean_cache",
    "clean_pykeops",
    "config",
    "default_device_id",
    "get_build_folder",
    "install_as_pykeops",
    "set_build_folder",
    "set_verbose",
    "test_numpy_bindings",
    "test_torch_bindings",
]

# ``import pykeops`` makes ``pykeops.numpy`` / ``pykeops.torch`` attributes available, as
# KeOps imports both front ends; here they are imported when first used (torch is optional)
_LAZY_SUBMODULES = ("common", "numpy", "torch")


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
