"""KeOps's ``pykeops.common.gpu_utils``."""

from __future__ import annotations

from ..numpy.utils import IsGpuAvailable  # defined where KeOps 1.x had it


def get_gpu_number() -> int:
    """Number of GPUs lazykernels can use: 0 (CPU only; KeOps counts CUDA devices)."""
    return 0


__all__ = ["IsGpuAvailable", "get_gpu_number"]
