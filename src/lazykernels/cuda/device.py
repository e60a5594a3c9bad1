"""The device interface the runner (:mod:`.runner`) launches kernels through.

Two implementations: :class:`lazykernels.cuda.driver.DriverDevice` (a GPU, through the CUDA
driver API) and :class:`lazykernels.cuda.emulation.EmulatedDevice` (the host emulation of
the CUDA execution model). Everything the runner decides (which kernel, its arguments, the
launch grid, batch offsets, the ranges' block table, output allocation) goes through these
few calls, so the host emulation tests it on a machine without a GPU.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

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
