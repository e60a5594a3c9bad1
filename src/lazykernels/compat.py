"""KeOps's top-level ``pykeops`` helpers, with the same names and arguments.

``set_verbose``, ``clean_pykeops``, ``check_health``, ``get_build_folder``,
``set_build_folder``, ``test_numpy_bindings``, ``test_torch_bindings`` and
``default_device_id`` are exported by :mod:`lazykernels`, so that a script written for
``pykeops`` runs with ``import lazykernels as pykeops`` (or under
:func:`lazykernels.install_as_pykeops`). What differs, because lazykernels compiles for the
CPU and through NVRTC: there are no GPU binaries to recompile.
"""

from __future__ import annotations

import os

from . import config
from .errors import LazyKernelsError

default_device_id = 0
"""KeOps's default GPU id: the GPU used when ``device_id=-1`` and the inputs are host
arrays (set it on the package: ``lazykernels.default_device_id = 1``)."""


def set_verbose(val: bool) -> None:
    """KeOps's switch for compilation messages; lazykernels compiles silently either way.

    The value is kept in :data:`lazykernels.config.verbose`. For traces of every build (the
    source path, the compiler command and its output), set ``LAZYKERNELS_DEBUG=1``.
    """
    config.verbose = bool(val)


def get_build_folder() -> str:
    """The directory compiled kernels are cached in (see :func:`set_build_folder`)."""
    return config.get_build_folder()


def set_build_folder(path: str | os.PathLike | None = None) -> None:
    """Cache compiled kernels in ``path`` from now on; None restores the default directory.

    This sets ``LAZYKERNELS_CACHE`` for this process (and its children). Kernels already
    loaded stay loaded.
    """
    if path is None:
        os.environ.pop("LAZYKERNELS_CACHE", None)
    else:
        os.environ["LAZYKERNELS_CACHE"] = os.fspath(path)


def clean_pykeops(recompile_jit_binaries: bool = True) -> None:
    """Empty the kernel cache (KeOps's ``clean_pykeops``; there are no JIT binaries to rebuild).

    Args:
        recompile_jit_binaries: accepted for compatibility (KeOps rebuilds its GPU JIT
            helper; lazykernels has none).
    """
    from .jit import clean_cache  # import cost

    clean_cache()


def check_health() -> None:
    """Print a report of the compiler, the cache and a test kernel (``lazykernels check``)."""
    import argparse

    from .cli.check import run  # import cost

    run(argparse.Namespace(no_kernel=False))


def test_numpy_bindings() -> None:
    """Compile and run a small Gaussian sum through the NumPy front end; print the outcome.

    Raises:
        LazyKernelsError: the result differs from dense NumPy (or nothing compiles).
    """
    from .cli.check import run_test_kernel  # import cost

    reason = run_test_kernel()
    if reason:
        raise LazyKernelsError(f"lazykernels' NumPy bindings do not work: {reason}")
    print("lazykernels: the NumPy bindings work.")


def test_torch_bindings() -> None:
    """Compile and run a small Gaussian sum through the torch front end; print the outcome.

    Raises:
        LazyKernelsError: the result differs from dense torch (or nothing compiles).
    """
    import torch

    from .torch import LazyTensor  # import cost

    x = torch.linspace(0, 1, 50, dtype=torch.float64)[:, None]
    b = torch.cos(7 * x)
    K = (-((LazyTensor(x[:, None, :]) - LazyTensor(x[None, :, :])) ** 2).sum(-1)).exp()
    dense = torch.exp(-((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)) @ b
    error = float((K @ b - dense).abs().max() / dense.abs().max())
    if not error < 1e-10:
        raise LazyKernelsError(
            f"lazykernels' torch bindings do not work: relative error {error:.1e}"
        )
    print("lazykernels: the torch bindings work.")


__all__ = [
    "check_health",
    "clean_pykeops",
    "default_device_id",
    "get_build_folder",
    "set_build_folder",
    "set_verbose",
    "test_numpy_bindings",
    "test_torch_bindings",
]
