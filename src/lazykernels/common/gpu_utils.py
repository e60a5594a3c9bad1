"""KeOps's ``pykeops.common.gpu_utils``."""

from __future__ import annotations


def get_gpu_number() -> int:
    """Number of GPUs lazykernels can use: 0 (CPU only; KeOps counts CUDA devices)."""
    return 0


__all__ = ["get_gpu_number"]
