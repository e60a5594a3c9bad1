"""The device interface the runner (:mod:`.runner`) launches kernels through.

Two implementations: :class:`lazykernels.cuda.driver.DriverDevice` (a GPU, through the CUDA
driver API) and :class:`lazykernels.cuda.emulation.EmulatedDevice` (the host emulation of
the CUDA execution model). Everything the runner decides (which kernel, its arguments, the
launch grid, batch offsets, the ranges' block table, output allocation) goes through these
few calls, so the host emulation tests it on a machine without a GPU.
"""

from __future__ import annotations

import ctypes
import sys
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import LazyKernelsError

if TYPE_CHECKING:  # (the probe below must stay light: it runs on a call without a GPU)
    from ..codegen.cuda import CudaSource

MAX_GRID = 2**31 - 1
"""The most blocks of a one-dimensional CUDA grid."""


class Buffer(Protocol):
    """Device memory: its address (``ptr``); freed when the object goes away."""

    ptr: int
    nbytes: int


class Device(Protocol):
    """A CUDA device as the runner sees it.

    Attributes:
        ordinal: the device's index (``device_id``).
        name: a readable name.
        capability: the compute capability ``(major, minor)``.
    """

    ordinal: int
    name: str
    capability: tuple[int, int]

    def function(self, ks: CudaSource) -> Any:
        """The loaded kernel of ``ks`` (compiled and loaded once per device and source)."""

    def launch(self, function: Any, grid: int, ks: CudaSource, params: list[int], stream: int):
        """Launch ``grid`` blocks of ``ks.block`` threads with the 64-bit ``params`` on
        ``stream`` (0: the default stream); asynchronous on a GPU."""

    def alloc(self, nbytes: int) -> Buffer:
        """``nbytes`` of device memory (at least one byte is allocated)."""

    def scratch(self, nbytes: int, stream: int) -> Buffer:
        """``nbytes`` of uninitialised device memory for the intermediate results of work
        queued on ``stream`` (the 2D scheme's partial states); dropping it right after the
        launches is safe (its release is ordered on ``stream``)."""

    def upload(self, array: np.ndarray, stream: int) -> Buffer:
        """A device copy of the C-contiguous ``array``."""

    def download(self, buffer: Buffer, array: np.ndarray, stream: int) -> None:
        """Copy ``buffer`` into the C-contiguous ``array`` (complete when this returns)."""


_DRIVER_LIBRARIES = {"win32": ("nvcuda.dll",)}.get(sys.platform, ("libcuda.so.1", "libcuda.so"))


def driver_library_present() -> bool:
    """Whether the NVIDIA driver library loads (a millisecond; no CUDA import)."""
    for name in _DRIVER_LIBRARIES:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def available() -> bool:
    """Whether a GPU is usable: the driver library is there, and the driver
    (:mod:`.driver`) initialises and counts at least one GPU.

    ``backend="auto"`` asks it (once per process) to pick the GPU as KeOps does.
    """
    if not driver_library_present():
        return False
    from .driver import device_count  # the bindings load only when a driver is there

    try:
        return device_count() > 0
    except LazyKernelsError:  # CompatibilityError included: no bindings, no usable GPU
        return False
