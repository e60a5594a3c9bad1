"""The CUDA driver, through ``cuda.bindings.driver``: devices, modules, launches, memory.

Only the NVIDIA driver comes from the system (``libcuda``); the bindings come from the
``cuda`` extra. Without a driver or a GPU, :func:`device` raises
:class:`~lazykernels.errors.CompatibilityError` naming the problem. Each device's primary
context is used (the one PyTorch uses), and a kernel's module is loaded once per
(device, cubin).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..codegen.cuda import CudaSource
from ..errors import CompatibilityError, LazyKernelsError
from . import nvrtc
from .cubin import cubin


def _driver():
    return nvrtc.bindings("driver")


def _check(driver, result, what: str) -> None:
    if result != driver.CUresult.CUDA_SUCCESS:
        _, text = driver.cuGetErrorString(result)
        detail = text.decode(errors="replace") if isinstance(text, bytes) else str(result)
        raise LazyKernelsError(f"CUDA {what} failed: {detail}")


_INIT: list[Any] = []
_INIT_LOCK = threading.Lock()


def init():
    """The initialised driver module.

    Raises:
        CompatibilityError: cuda-bindings is missing, there is no NVIDIA driver, or the
            driver finds no GPU.
    """
    if _INIT:
        return _INIT[0]
    driver = _driver()
    with _INIT_LOCK:
        if _INIT:
            return _INIT[0]
        try:
            (result,) = driver.cuInit(0)
        except Exception as e:  # the bindings raise when libcuda.so cannot be loaded
            raise CompatibilityError(
                f"no NVIDIA driver: the CUDA driver library (libcuda) cannot be loaded ({e}); "
                "the GPU backend needs an NVIDIA GPU and its driver"
            ) from None
        if result != driver.CUresult.CUDA_SUCCESS:
            _, text = driver.cuGetErrorString(result)
            raise CompatibilityError(
                f"the CUDA driver did not initialise ({text.decode(errors='replace')}): "
                "no usable GPU"
            )
        _INIT.append(driver)
    return driver


def driver_version() -> int:
    """The driver's CUDA version as the driver API gives it (12040 for 12.4)."""
    driver = init()
    result, version = driver.cuDriverGetVersion()
    _check(driver, result, "cuDriverGetVersion")
    return int(version)


def device_count() -> int:
    """Number of GPUs the driver sees."""
    driver = init()
    result, n = driver.cuDeviceGetCount()
    _check(driver, result, "cuDeviceGetCount")
    return int(n)


def nvrtc_major_for_driver(driver_version: int, installed: tuple[int, int]) -> int:
    """The NVRTC major version to use with a driver of ``driver_version`` (12040: 12.4).

    Cubins from an NVRTC newer than the driver's CUDA version may not load, so the
    installed NVRTC (``installed``: its (major, minor)) is used only when its major is at
    most the driver's; a CUDA 12 driver needs the ``cuda12`` extra's NVRTC 12.

    Raises:
        CompatibilityError: the installed NVRTC is too new for the driver (the message
            names the extra to install), or the driver is older than CUDA 12.

    Example:
        >>> nvrtc_major_for_driver(13000, (13, 0))
        13
        >>> nvrtc_major_for_driver(12080, (12, 9))
        12
    """
    major = driver_version // 1000
    minor = (driver_version % 1000) // 10
    if major < 12:
        raise CompatibilityError(
            f"the NVIDIA driver supports CUDA {major}.{minor}; the GPU backend needs a "
            "driver for CUDA 12 or newer"
        )
    if installed[0] > major:
        raise CompatibilityError(
            f"the NVIDIA driver supports CUDA {major}.{minor}, older than the installed "
            f"NVRTC {installed[0]}.{installed[1]}; install the matching extra: "
            f"pip install 'lazykernels[cuda{major}]' (or update the driver)"
        )
    return installed[0]


@dataclass
class DeviceBuffer:
    """Device memory from ``cuMemAlloc``, freed by ``cuMemFree`` when collected."""

    ptr: int
    nbytes: int
    _device: DriverDevice

    def __del__(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            with contextlib.suppress(Exception):  # at interpreter exit the driver may be gone
                self._device.free(ptr)


@dataclass
class StreamBuffer:
    """Device memory from ``cuMemAllocAsync``, released by ``cuMemFreeAsync`` on the same
    stream when collected (after the work queued there before the release); on a GPU
    without stream-ordered allocation, from ``cuMemAlloc``, released after the stream is
    synchronised."""

    ptr: int
    nbytes: int
    _device: DriverDevice
    _stream: int
    _ordered: bool = True

    def __del__(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            with contextlib.suppress(Exception):  # at interpreter exit the driver may be gone
                self._device.free_after(ptr, self._stream, self._ordered)


class DriverDevice:
    """A GPU through the driver API (the :class:`~lazykernels.cuda.device.Device` interface)."""

    def __init__(self, ordinal: int) -> None:
        driver = init()
        n = device_count()
        if not 0 <= ordinal < n:
            raise CompatibilityError(
                f"device_id={ordinal}: the driver sees {n} GPU(s) (ids 0 to {n - 1})"
            )
        self._driver = driver
        result, self._dev = driver.cuDeviceGet(ordinal)
        _check(driver, result, "cuDeviceGet")
        result, self._ctx = driver.cuDevicePrimaryCtxRetain(self._dev)
        _check(driver, result, "cuDevicePrimaryCtxRetain")
        self.ordinal = ordinal
        result, name = driver.cuDeviceGetName(256, self._dev)
        _check(driver, result, "cuDeviceGetName")
        self.name = name.split(b"\0", 1)[0].decode(errors="replace")
        attr = driver.CUdevice_attribute
        self.capability = (
            self.attribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            self.attribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
        )
        result, self.total_memory = driver.cuDeviceTotalMem(self._dev)
        _check(driver, result, "cuDeviceTotalMem")
        self._modules: dict[bytes, Any] = {}  # cubin -> (module, function)
        self._functions: dict[CudaSource, Any] = {}
        self._lock = threading.Lock()

    @property
    def arch(self) -> str:
        """The NVRTC architecture of this GPU (``sm_90``)."""
        return f"sm_{self.capability[0]}{self.capability[1]}"

    def attribute(self, which: Any) -> int:
        """A ``CUdevice_attribute`` of this GPU."""
        result, value = self._driver.cuDeviceGetAttribute(which, self._dev)
        _check(self._driver, result, "cuDeviceGetAttribute")
        return int(value)

    def _current(self) -> None:
        _check(self._driver, self._driver.cuCtxSetCurrent(self._ctx)[0], "cuCtxSetCurrent")

    def function(self, ks: CudaSource) -> Any:
        hit = self._functions.get(ks)  # the warm path: no hashing of the cubin
        if hit is not None:
            return hit
        nvrtc_major_for_driver(driver_version(), nvrtc.version())
        image, _ = cubin(ks.source, self.arch, ks.name)
        with self._lock:
            hit = self._modules.get(image)
            if hit is not None:
                self._functions[ks] = hit
                return hit
            self._current()
            result, module = self._driver.cuModuleLoadData(image)
            _check(self._driver, result, "cuModuleLoadData")
            result, function = self._driver.cuModuleGetFunction(module, ks.name.encode())
            _check(self._driver, result, "cuModuleGetFunction")
            self._modules[image] = self._functions[ks] = (module, function)
            return module, function

    def launch(self, function: Any, grid: int, ks: CudaSource, params: list[int], stream: int):
        self._current()
        types = tuple(ctypes.c_int64 for _ in params)
        (result,) = self._driver.cuLaunchKernel(
            function[1],
            grid,
            1,
            1,
            ks.block,
            1,
            1,
            0,  # the kernel's shared memory is static
            self._driver.CUstream(stream),
            (tuple(params), types),
            0,
        )
        _check(self._driver, result, "cuLaunchKernel")

    def alloc(self, nbytes: int) -> DeviceBuffer:
        self._current()
        result, ptr = self._driver.cuMemAlloc(max(1, nbytes))
        _check(self._driver, result, "cuMemAlloc")
        return DeviceBuffer(int(ptr), nbytes, self)

    def scratch(self, nbytes: int, stream: int) -> StreamBuffer:
        self._current()
        s = self._driver.CUstream(stream)
        result, ptr = self._driver.cuMemAllocAsync(max(1, nbytes), s)
        if result == self._driver.CUresult.CUDA_ERROR_NOT_SUPPORTED:  # no memory pools
            result, ptr = self._driver.cuMemAlloc(max(1, nbytes))
            _check(self._driver, result, "cuMemAlloc")
            return StreamBuffer(int(ptr), nbytes, self, stream, False)
        _check(self._driver, result, "cuMemAllocAsync")
        return StreamBuffer(int(ptr), nbytes, self, stream)

    def free_after(self, ptr: int, stream: int, ordered: bool) -> None:
        """Release scratch memory once the work queued on ``stream`` is done with it."""
        self._current()
        s = self._driver.CUstream(stream)
        if ordered:
            self._driver.cuMemFreeAsync(ptr, s)
            return
        self._driver.cuStreamSynchronize(s)
        self._driver.cuMemFree(ptr)

    def free(self, ptr: int) -> None:
        self._current()
        self._driver.cuMemFree(ptr)

    def upload(self, array: np.ndarray, stream: int) -> DeviceBuffer:
        buffer = self.alloc(array.nbytes)
        if array.nbytes:
            self._current()
            s = self._driver.CUstream(stream)
            (result,) = self._driver.cuMemcpyHtoDAsync(
                buffer.ptr, array.ctypes.data, array.nbytes, s
            )
            _check(self._driver, result, "cuMemcpyHtoDAsync")
            _check(self._driver, self._driver.cuStreamSynchronize(s)[0], "cuStreamSynchronize")
        return buffer

    def download(self, buffer: Any, array: np.ndarray, stream: int) -> None:
        if not array.nbytes:
            return
        self._current()
        s = self._driver.CUstream(stream)
        (result,) = self._driver.cuMemcpyDtoHAsync(array.ctypes.data, buffer.ptr, array.nbytes, s)
        _check(self._driver, result, "cuMemcpyDtoHAsync")
        _check(self._driver, self._driver.cuStreamSynchronize(s)[0], "cuStreamSynchronize")


_DEVICES: dict[int, DriverDevice] = {}
_DEVICES_LOCK = threading.Lock()


def device(ordinal: int = 0) -> DriverDevice:
    """The GPU ``ordinal`` (one object per GPU for the process).

    Raises:
        CompatibilityError: no driver, no GPU, or no GPU of that index.
    """
    hit = _DEVICES.get(ordinal)
    if hit is None:
        with _DEVICES_LOCK:
            hit = _DEVICES.get(ordinal)
            if hit is None:
                hit = _DEVICES[ordinal] = DriverDevice(ordinal)
    return hit


def unavailable_reason() -> str | None:
    """Why no GPU can be used (no bindings, no driver, no GPU), or None when one can."""
    try:
        if device_count() == 0:
            return "the NVIDIA driver sees no GPU"
    except CompatibilityError as e:
        return str(e)
    except LazyKernelsError as e:
        return str(e)
    return None
