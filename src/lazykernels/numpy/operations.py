"""KeOps's ``pykeops.numpy.operations``: ``KernelSolve`` for NumPy arrays."""

from __future__ import annotations

from .lazytensor import KernelSolve

__all__ = ["KernelSolve"]
