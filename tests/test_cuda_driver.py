"""The driver device (cuda/driver.py) against a fake ``cuda.bindings.driver``: host memory
for device memory, the host emulation for launches (the "cubin" is the kernel's source).

This runs every line of the driver glue that a GPU would run — device discovery, the
primary context, module loading once per (device, cubin), argument passing, copies, frees,
error codes — on a machine without a GPU. It cannot show that the real bindings behave as
the fake does; tests/test_cuda_gpu.py does that on a GPU.
"""

from __future__ import annotations

import ctypes
import enum
import gc
import shutil

import numpy as np
import pytest

from lazykernels.core.genred import build_plan, run_plan
from lazykernels.cuda import driver, emulation, nvrtc, runner
from lazykernels.errors import CompatibilityError, LazyKernelsError

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ for the emulation"),
    pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed"),
]
GAUSS = build_plan("Exp(-SqDist(x,y)*g)*b", ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(2)"], axis=1)


class FakeDriver:
    """The calls driver.py makes, with the bindings' conventions: result tuples."""

    class CUresult(enum.Enum):
        CUDA_SUCCESS = 0
        CUDA_ERROR_OUT_OF_MEMORY = 2
        CUDA_ERROR_NOT_SUPPORTED = 801

    class CUdevice_attribute(enum.Enum):  # noqa: N801 (the bindings' name)
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76

    CUstream = int

    def __init__(self, version: int = 13000, init: int = 0) -> None:
        self.version, self.init = version, init
        self.memory: dict[int, np.ndarray] = {}
        self.loads: list[bytes] = []
        self.launches: list[tuple] = []
        self.fail_alloc = False
        self.pools = True  # stream-ordered allocation (cuMemAllocAsync) supported
        self.async_frees: list[tuple[int, int]] = []
        self.ok = self.CUresult.CUDA_SUCCESS

    def cuInit(self, flags):
        return (self.CUresult(self.init),)

    def cuGetErrorString(self, result):
        return self.ok, f"fake {result.name}".encode()

    def cuDriverGetVersion(self):
        return self.ok, self.version

    def cuDeviceGetCount(self):
        return self.ok, 1

    def cuDeviceGet(self, ordinal):
        return self.ok, ordinal

    def cuDevicePrimaryCtxRetain(self, dev):
        return self.ok, f"ctx{dev}"

    def cuCtxSetCurrent(self, ctx):
        assert ctx == "ctx0"
        return (self.ok,)

    def cuDeviceGetName(self, length, dev):
        return self.ok, b"Fake GPU".ljust(length, b"\0")

    def cuDeviceGetAttribute(self, which, dev):
        return self.ok, {75: 9, 76: 0}[which.value]

    def cuDeviceTotalMem(self, dev):
        return self.ok, 80 << 30

    def cuModuleLoadData(self, image):
        self.loads.append(image)
        return self.ok, image

    def cuModuleGetFunction(self, module, name):
        return self.ok, (module, name)

    def cuLaunchKernel(self, f, gx, gy, gz, bx, by, bz, shared, stream, params, extra):
        values, types = params
        assert (gy, gz, by, bz, shared, extra) == (1, 1, 1, 1, 0, 0)
        assert all(t is ctypes.c_int64 for t in types) and len(types) == len(values)
        source = f[0].decode()
        kernels = [*runner._SOURCES.values(), *(k.merge for k in runner._SOURCES.values())]
        (ks,) = {k for k in kernels if k is not None and k.source == source}
        assert bx == ks.block and f[1] == ks.name.encode()
        self.launches.append((gx, values))
        emulation.launch(emulation._library(ks, "g++"), gx, list(values))
        return (self.ok,)

    def cuMemAlloc(self, nbytes):
        if self.fail_alloc:
            return self.CUresult.CUDA_ERROR_OUT_OF_MEMORY, 0
        array = np.zeros(nbytes, dtype=np.uint8)
        self.memory[array.ctypes.data] = array
        return self.ok, array.ctypes.data

    def cuMemFree(self, ptr):
        del self.memory[ptr]
        return (self.ok,)

    def cuMemAllocAsync(self, nbytes, stream):
        if not self.pools:
            return self.CUresult.CUDA_ERROR_NOT_SUPPORTED, 0
        return self.cuMemAlloc(nbytes)

    def cuMemFreeAsync(self, ptr, stream):
        self.async_frees.append((ptr, stream))
        return self.cuMemFree(ptr)

    def cuMemcpyHtoDAsync(self, dst, src, nbytes, stream):
        ctypes.memmove(dst, src, nbytes)
        return (self.ok,)

    def cuMemcpyDtoHAsync(self, dst, src, nbytes, stream):
        ctypes.memmove(dst, src, nbytes)
        return (self.ok,)

    def cuStreamSynchronize(self, stream):
        return (self.ok,)


@pytest.fixture
def fake(monkeypatch):
    bindings = FakeDriver()
    monkeypatch.setattr(driver, "_INIT", [bindings])
    monkeypatch.setattr(driver, "_DEVICES", {})
    monkeypatch.setattr(driver, "cubin", lambda source, arch, name: (source.encode(), False))
    return bindings


def _args(rng, batch=()):
    x, y = rng.standard_normal((*batch, 70, 3)), rng.standard_normal((*batch, 45, 3))
    return [x, y, np.full((*batch, 1), 0.5), rng.standard_normal((*batch, 45, 2))]


def test_the_driver_device_runs_the_runner(fake):
    gpu = driver.device(0)
    assert (gpu.name, gpu.arch, gpu.total_memory) == ("Fake GPU", "sm_90", 80 << 30)
    assert driver.device(0) is gpu and driver.unavailable_reason() is None
    with pytest.raises(CompatibilityError, match="device_id=3: the driver sees 1 GPU"):
        driver.device(3)
    rng = np.random.default_rng(0)
    for batch in [(), (2,)]:
        args = _args(rng, batch)
        (got,) = run_plan(GAUSS, args, backend="GPU", device_id=0)
        (want,) = run_plan(GAUSS, args, backend="reference")
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert len(fake.loads) == 1 and len(fake.launches) == 2  # one module for both calls
    assert fake.launches[1][0] == 2 * 1  # two batch entries of one 128-row block
    gc.collect()
    assert fake.memory == {}  # every device buffer freed


@pytest.mark.parametrize("pools", [True, False])
def test_the_2d_scheme_allocates_scratch_on_the_stream(fake, pools):
    fake.pools = pools
    args = _args(np.random.default_rng(3))
    (got,) = run_plan(GAUSS, args, backend="GPU_2D", device_id=0)
    (want,) = run_plan(GAUSS, args, backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert len(fake.launches) == 2  # the partial states, then their merge
    assert [gx for gx, _ in fake.launches] == [1, 1]  # 45 columns: one column block
    gc.collect()
    assert fake.memory == {}  # the scratch array freed with the rest
    assert len(fake.async_frees) == (1 if pools else 0)  # released in stream order


def test_driver_errors_name_the_call(fake):
    fake.fail_alloc = True
    with pytest.raises(LazyKernelsError, match="CUDA cuMemAlloc failed: fake CUDA_ERROR_OUT"):
        run_plan(GAUSS, _args(np.random.default_rng(1)), backend="GPU")


def test_a_driver_older_than_nvrtc_is_refused(fake):
    fake.version = 12040
    if nvrtc.version()[0] <= 12:
        pytest.skip("the installed NVRTC is a CUDA 12 one")
    with pytest.raises(CompatibilityError, match=r"CUDA 12\.4.*lazykernels\[cuda12\]"):
        run_plan(GAUSS, _args(np.random.default_rng(2)), backend="GPU")


def test_a_failed_cuinit_is_a_compatibility_error(monkeypatch):
    bindings = FakeDriver(init=2)
    monkeypatch.setattr(driver, "_INIT", [])
    monkeypatch.setattr(driver, "_driver", lambda: bindings)
    with pytest.raises(CompatibilityError, match="did not initialise.*no usable GPU"):
        driver.init()
