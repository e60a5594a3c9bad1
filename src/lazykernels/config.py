"""KeOps's ``pykeops.config`` for lazykernels: what this installation can do.

Scripts written for KeOps read these flags (``pykeops.config.gpu_available`` picks the
backend and the problem size). lazykernels has no GPU backend, so ``gpu_available`` is
False; the compiled CPU backend is what ``backend="auto"`` runs.
"""

from __future__ import annotations

import importlib.util

gpu_available = False
"""Whether a GPU backend is usable: never, in this version (CPU only)."""

numpy_found = importlib.util.find_spec("numpy") is not None
"""Whether NumPy is installed (always: lazykernels needs it)."""

torch_found = importlib.util.find_spec("torch") is not None
"""Whether PyTorch is installed (the :mod:`lazykernels.torch` front end needs it)."""

verbose = False
"""KeOps's verbosity flag, set by :func:`lazykernels.set_verbose`.

lazykernels prints nothing while it compiles; ``LAZYKERNELS_DEBUG=1`` traces every build.
"""


def get_build_folder() -> str:
    """The directory compiled kernels are cached in (``LAZYKERNELS_CACHE`` moves it)."""
    from .jit import cache_dir  # import cost

    return str(cache_dir())


__all__ = ["get_build_folder", "gpu_available", "numpy_found", "torch_found", "verbose"]
