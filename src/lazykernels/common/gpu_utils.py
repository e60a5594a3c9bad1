"""KeOps's ``pykeops.common.gpu_utils``."""

from __future__ import annotations

from .. import config


def get_gpu_number() -> int:
    """Number of GPUs lazykernels can use: 0 (CPU only; KeOps counts CUDA devices)."""
    return 0


def IsGpuAvailable() -> bool:  # noqa: N802 (KeOps 1.x's name)
    """KeOps 1.x's ``pykeops.numpy.utils.IsGpuAvailable()``: whether reductions can run on a
    GPU. KeOps asked GPUtil for a device; lazykernels has no GPU backend, so this is
    :data:`lazykernels.config.gpu_available` (False), and scripts take their CPU branch."""
    return bool(config.gpu_available)


__all__ = ["IsGpuAvailable", "get_gpu_number"]
