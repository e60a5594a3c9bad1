"""The array adapters (core/arrays.py, torch/arrays.py) against NumPy truth: binding,
validation, output allocation and dispatch through one interface.

Every result is compared with a dense float64 NumPy computation. The torch CPU path must
never make a ``.numpy()`` view (``torch.Tensor.numpy`` is patched to raise); ``device_id``
has one validator for the NumPy and the torch CUDA path; ``backend="auto"`` picks a GPU
when the device interface reports one (a fake driver here).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lazykernels.core import backends
from lazykernels.core.arrays import HOST, NUMPY, Device, check_device_id, host_view
from lazykernels.core.bind import bind_call
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.errors import ArgumentError, BackendError, DtypeError, ShapeError

torch = pytest.importorskip("torch")
from lazykernels.torch import Genred  # noqa: E402
from lazykernels.torch.arrays import TORCH  # noqa: E402

ALIASES = ["x = Vi(3)", "y = Vj(3)", "g = Pm(1)", "b = Vj(2)"]
GAUSS = build_plan("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)
needs_cpu = pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")


def dense(x, y, g, b):
    """The Gaussian sum in float64 (batch dimensions broadcast)."""
    x, y, g, b = (np.asarray(a, dtype=np.float64) for a in (x, y, g, b))
    d = ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)
    return np.einsum("...ij,...jk->...ik", np.exp(-d * g[..., None]), b)


def inputs(rng, m=7, n=5, batch=()):
    return [
        rng.standard_normal((*batch, m, 3)),
        rng.standard_normal((*batch, n, 3)),
        np.full((*batch, 1), 0.7),
        rng.standard_normal((*batch, n, 2)),
    ]


def strided(rng):
    """Non-contiguous inputs: a transposed x, every other row of y, a column slice of b."""
    x = rng.standard_normal((3, 7)).T
    y = rng.standard_normal((10, 3))[::2]
    b = rng.standard_normal((5, 4))[:, 1:3]
    return [x, y, np.array([0.7]), b]


@pytest.fixture
def no_numpy_views(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("the torch path called Tensor.numpy()")

    monkeypatch.setattr(torch.Tensor, "numpy", refuse)


BACKENDS = ["reference", pytest.param("CPU", marks=[needs_cpu, pytest.mark.cpu])]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["contiguous", "strided", "batched"])
def test_numpy_and_torch_agree_with_numpy_truth(backend, layout, no_numpy_views):
    rng = np.random.default_rng(0)
    arrays = {
        "contiguous": lambda: inputs(rng),
        "strided": lambda: strided(rng),
        "batched": lambda: inputs(rng, batch=(2,)),
    }[layout]()
    want = dense(*arrays)
    (got,) = run_plan(GAUSS, arrays, backend=backend)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    tensors = [torch.from_numpy(a) for a in arrays]
    if layout == "batched":  # a broadcast (stride 0) batch dimension of x
        tensors[0] = tensors[0][:1].expand(2, -1, -1)
        want = dense(np.broadcast_to(arrays[0][:1], arrays[0].shape), *arrays[1:])
    (out,) = run_plan(GAUSS, tensors, backend=backend, adapter=TORCH)
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu"
    np.testing.assert_allclose(out.detach().cpu().tolist(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_genred_forward_backward_ranges_out_without_numpy_views(backend, no_numpy_views):
    rng = np.random.default_rng(1)
    x, y, g, b = (torch.tensor(a, requires_grad=True) for a in inputs(rng, 6, 4))
    genred = Genred("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)
    value = genred(x, y, g, b, backend=backend)
    (gx,) = torch.autograd.grad(value.square().sum(), [x])
    xd, yd, gd, bd = (t.detach().double().requires_grad_() for t in (x, y, g, b))
    diff = ((xd[:, None, :] - yd[None, :, :]) ** 2).sum(-1)
    truth = torch.exp(-diff * gd) @ bd
    (gx_truth,) = torch.autograd.grad(truth.square().sum(), [xd])
    torch.testing.assert_close(value, truth.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx, gx_truth, rtol=1e-10, atol=1e-10)
    ranges = [torch.tensor(r) for r in ([[0, 6]], [1], [[0, 2]], [[0, 4]], [1], [[0, 6]])]
    out = torch.empty(6, 2, dtype=torch.float64)
    with torch.no_grad():
        res = genred(x, y, g, b, backend=backend, ranges=ranges, out=out)
    assert res is out
    torch.testing.assert_close(out, (torch.exp(-diff[:, :2] * gd) @ bd[:2]).detach())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_stay_the_callers(dtype, no_numpy_views):
    arrays = [a.astype(dtype) for a in inputs(np.random.default_rng(2))]
    want = dense(*arrays)
    tol = {np.float16: 2e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    (got,) = run_plan(GAUSS, arrays, backend="reference")
    (out,) = run_plan(GAUSS, [torch.from_numpy(a) for a in arrays], "reference", adapter=TORCH)
    assert got.dtype == dtype and out.dtype == getattr(torch, np.dtype(dtype).name)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(out.double().tolist(), want, rtol=tol, atol=tol)


def test_empty_arrays_give_empty_outputs_or_the_neutral_value(no_numpy_views):
    rng = np.random.default_rng(3)
    for m, n in [(0, 5), (4, 0)]:
        arrays = inputs(rng, m, n)
        (got,) = run_plan(GAUSS, arrays, backend="reference")
        (out,) = run_plan(GAUSS, [torch.from_numpy(a) for a in arrays], adapter=TORCH)
        assert got.shape == tuple(out.shape) == (m, 2)
        np.testing.assert_array_equal(got, np.zeros((m, 2)))
        assert out.tolist() == got.tolist()


def test_outputs_are_allocated_by_the_adapter_on_the_inputs_device():
    tensors = [torch.from_numpy(a) for a in inputs(np.random.default_rng(4))]
    call, user = bind_call(GAUSS, tensors, adapter=TORCH)
    assert call.adapter is TORCH and call.device is HOST and user == np.float64
    (o,) = call.outputs
    assert isinstance(o, torch.Tensor) and o.device.type == "cpu" and o.is_contiguous()
    assert tuple(o.shape) == (7, 2) and o.dtype == torch.float64
    assert all(a is t for a, t in zip(call.arrays, tensors))  # no copies, no views
    numpy_call, _ = bind_call(GAUSS, [t.tolist() for t in tensors])  # NumPy coerces lists
    assert numpy_call.adapter is None and isinstance(numpy_call.outputs[0], np.ndarray)


def test_adapter_answers_match_the_libraries():
    array = np.arange(24.0, dtype=np.float32).reshape(4, 6)
    base = torch.tensor(array)
    views = [lambda a: a, lambda a: a[1:], lambda a: a[:, 2:], lambda a: a[::2], lambda a: a.T]
    for view in views:
        t, a = view(base), view(array)
        assert TORCH.shape(t) == NUMPY.shape(a) and TORCH.dtype(t) == NUMPY.dtype(a)
        assert TORCH.strides(t) == NUMPY.strides(a) and TORCH.sizes([t]) == NUMPY.sizes([a])
        assert TORCH.contiguous([t]) == NUMPY.contiguous([a])
        assert TORCH.pointers([t]) == [t.data_ptr()]
        host = TORCH.to_host(t)  # a view of the tensor's memory, not a copy
        np.testing.assert_array_equal(host, a)
        assert host.__array_interface__["data"][0] == t.data_ptr()
    TORCH.to_host(base)[0, 0] = 42.0
    assert base[0, 0].item() == 42.0
    assert TORCH.first_nan([base, base.clone().fill_(float("nan"))]) == 1
    assert TORCH.first_nan([base]) == -1 and NUMPY.first_nan([np.array([np.nan])]) == 0
    assert host_view(0, (0, 3), (3, 1), np.float64, None).shape == (0, 3)


def test_a_lazily_negated_tensor_is_read_as_its_values(no_numpy_views):
    rng = np.random.default_rng(5)
    x, y, g, b = inputs(rng)
    z = torch.complex(torch.from_numpy(b), torch.from_numpy(-b))
    negated = z.conj().imag  # the negative bit, not negated memory
    assert negated.is_neg()
    (out,) = run_plan(GAUSS, [torch.from_numpy(a) for a in (x, y, g)] + [negated], adapter=TORCH)
    np.testing.assert_allclose(out.tolist(), dense(x, y, g, b), rtol=1e-12)


def test_bad_inputs_raise_with_the_argument_named():
    x, y, g, b = (torch.from_numpy(a) for a in inputs(np.random.default_rng(6)))
    with pytest.raises(BackendError, match="different devices.*'x'.*cpu.*'b'.*meta"):
        run_plan(GAUSS, [x, y, g, b.to("meta")], adapter=TORCH)
    with pytest.raises(BackendError, match="only CPU and CUDA"):
        run_plan(GAUSS, [x.to("meta"), y, g, b], adapter=TORCH)
    with pytest.raises(ArgumentError, match="'y'.*expected a torch.Tensor, got ndarray"):
        run_plan(GAUSS, [x, y.numpy(force=True), g, b], adapter=TORCH)
    with pytest.raises(DtypeError, match="'x'.*bfloat16"):
        run_plan(GAUSS, [x.bfloat16(), y, g, b], adapter=TORCH)
    with pytest.raises(ShapeError, match="'y'"):
        run_plan(GAUSS, [x, y[:, :2], g, b], adapter=TORCH)
    with pytest.raises(ArgumentError, match="'b'.*NaN"):
        run_plan(GAUSS, [x, y, g, b * float("nan")], backend="reference", adapter=TORCH)
    with pytest.raises(ArgumentError, match="out: expected a torch.Tensor"):
        run_plan(GAUSS, [x, y, g, b], out=np.empty((7, 2)), adapter=TORCH)
    with pytest.raises(ArgumentError, match="C-contiguous"):
        run_plan(GAUSS, [x, y, g, b], out=torch.empty(2, 7, dtype=torch.float64).T, adapter=TORCH)


BAD_IDS = [True, 1.5, "0", -2]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_one_device_id_validator_for_numpy_and_torch_cuda(bad):
    from lazykernels.cuda.emulation import EmulatedDevice
    from lazykernels.numpy import Genred as NumpyGenred
    from lazykernels.torch.cuda import run_cuda

    match = "device_id must be"
    with pytest.raises(ArgumentError, match=match):
        check_device_id(bad)
    arrays = inputs(np.random.default_rng(7))
    with pytest.raises(ArgumentError, match=match):
        NumpyGenred("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)(
            *arrays, backend="reference", device_id=bad
        )
    tensors = [torch.from_numpy(a) for a in arrays]
    with pytest.raises(ArgumentError, match=match):  # (refused before any launch)
        run_cuda(GAUSS, tensors, device_id=bad, device=EmulatedDevice())
    with pytest.raises(ArgumentError, match=match):
        Genred("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)(*tensors, device_id=bad)
    assert check_device_id(3) == 3 and check_device_id(np.int32(0)) == 0
    with pytest.raises(ArgumentError, match="device_id=1, but the inputs are on cuda:0"):
        check_device_id(1, Device("cuda", 0))


def test_auto_picks_the_gpu_when_the_device_interface_reports_one(monkeypatch):
    monkeypatch.setattr(backends, "_GPU_PRESENT", True)
    assert backends.dispatch("auto")[0] == "GPU"
    assert backends.dispatch("AUTO")[0] == "GPU"
    assert backends.dispatch("reference")[0] == "reference"  # asked for: kept
    cuda = Device("cuda", 0)
    assert backends.dispatch("auto", cuda)[0] == backends.dispatch("GPU", cuda)[0] == "GPU"
    with pytest.raises(BackendError, match="runs on the CPU.*cuda:0.*backend='GPU'"):
        backends.dispatch("CPU", cuda)
    assert backends.dispatch("GPU_2D", cuda)[1] is backends._RUN_GPU["2D"]
    monkeypatch.setattr(backends, "_GPU_PRESENT", False)
    assert backends.dispatch("auto")[0] in ("CPU", "reference")


@pytest.mark.cpu
@needs_cpu
def test_auto_runs_numpy_and_torch_cpu_arrays_on_a_fake_gpu(monkeypatch):
    from lazykernels.cuda import device, driver, nvrtc

    if not nvrtc.available():
        pytest.skip("the cuda extra is not installed")
    from .test_cuda_driver import FakeDriver

    fake = FakeDriver()
    monkeypatch.setattr(driver, "_INIT", [fake])
    monkeypatch.setattr(driver, "_DEVICES", {})
    monkeypatch.setattr(driver, "cubin", lambda source, arch, name: (source.encode(), False))
    monkeypatch.setattr(device, "driver_library_present", lambda: True)
    monkeypatch.setattr(backends, "_GPU_PRESENT", None)
    assert device.available() and backends.gpu_present()
    arrays = inputs(np.random.default_rng(8), 9, 6)
    (got,) = run_plan(GAUSS, arrays)  # backend="auto"
    assert len(fake.launches) == 1
    np.testing.assert_allclose(got, dense(*arrays), rtol=1e-12, atol=1e-12)
    tensors = [torch.from_numpy(a) for a in arrays]
    (out,) = run_plan(GAUSS, tensors, adapter=TORCH)
    assert len(fake.launches) == 2 and isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.tolist(), dense(*arrays), rtol=1e-12, atol=1e-12)
    # a plan the CUDA kernels cannot print yet falls back to the host backend
    monkeypatch.setitem(backends._RUN_GPU, "auto", lambda call: pytest.fail("sent to the GPU"))
    from lazykernels.cuda import runner
    from lazykernels.errors import FormulaError

    def unprintable(plan, dtype, block=0):
        raise FormulaError("not printable")

    monkeypatch.setattr(runner, "kernel_source", unprintable)
    (again,) = run_plan(GAUSS, arrays)
    np.testing.assert_allclose(again, got, rtol=1e-12, atol=1e-12)


def test_the_gpu_probe_is_false_without_a_driver_library(monkeypatch):
    from lazykernels.cuda import device

    monkeypatch.setattr(device, "_DRIVER_LIBRARIES", ("liblazykernels-no-such-library.so",))
    assert device.driver_library_present() is False and device.available() is False


def test_jax_arrays_and_abstract_values_go_through_the_same_binding():
    jax = pytest.importorskip("jax")
    from lazykernels.core.bind import layout_for
    from lazykernels.jax.arrays import JAX

    arrays = inputs(np.random.default_rng(9), batch=(2,))
    jarrays = [jax.numpy.asarray(a.astype(np.float32)) for a in arrays]
    avals = [jax.core.ShapedArray(a.shape, a.dtype) for a in jarrays]
    want = layout_for(GAUSS, [a.astype(np.float32) for a in arrays])
    assert layout_for(GAUSS, avals, JAX) == layout_for(GAUSS, jarrays, JAX) == want
    assert want.outputs == (((2, 7, 2), np.dtype(np.float32)),)
    (got,) = run_plan(GAUSS, jarrays, backend="reference", adapter=JAX)
    np.testing.assert_allclose(got, dense(*jarrays), rtol=1e-5, atol=1e-6)
    with pytest.raises(ShapeError, match="'y'"):
        layout_for(GAUSS, [avals[0], jax.core.ShapedArray((2, 5, 2), np.float32), *avals[2:]], JAX)
