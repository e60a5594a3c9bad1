"""KeOps's ``pykeops.torch.operations``: ``KernelSolve`` for torch tensors."""

from __future__ import annotations

from .lazytensor import KernelSolve

__all__ = ["KernelSolve"]
