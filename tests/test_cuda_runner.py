"""The GPU runner (cuda/runner.py) and the torch CUDA adapter (torch/cuda.py) on the host
emulation (cuda/emulation.py: the generated kernel text, g++, a thread per CUDA thread):
batch dimensions, block-sparse ranges, float16 storage, the launch configuration, output
allocation and the input checks, against the NumPy reference backend. No GPU is used."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.core.plan import Ranges
from lazykernels.cuda.driver import nvrtc_major_for_driver
from lazykernels.cuda.emulation import EmulatedDevice
from lazykernels.cuda.runner import batch_offsets, block_table, run
from lazykernels.errors import ArgumentError, BackendError, CompatibilityError

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ for the emulation")
ALIASES = ["x=Vi(3)", "y=Vj(3)", "g=Pm(1)", "b=Vj(2)"]
GAUSS = build_plan("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)
GAUSS_J = build_plan("Exp(-SqDist(x,y)*g)*(x|y)", ALIASES[:3], axis=0)
ARGMIN = build_plan("SqDist(x,y) - x*y*g", ALIASES[:3], reduction_op="Min_ArgMin", axis=1)
KMIN = build_plan("SqDist(x,y)", ALIASES[:2], reduction_op="KMin_ArgKMin", axis=1, opt_arg=3)
BLOCK = 32


def _inputs(rng, batch_x, batch_y, m, n, dtype=np.float64):
    x = rng.standard_normal((*batch_x, m, 3))
    y = rng.standard_normal((*batch_y, n, 3))
    g = np.full((*np.broadcast_shapes(batch_x, batch_y), 1), 0.6)
    b = rng.standard_normal((*batch_y, n, 2))
    return [a.astype(dtype) for a in (x, y, g, b)]


def _compare(plan, args, ranges=None, tol=1e-12):
    args = args[: len(plan.slots)]
    device = EmulatedDevice()
    call = bind(plan, args, ranges)
    run(call, device, block=BLOCK)
    want = run_plan(plan, args, backend="reference", ranges=ranges)
    for got, ref in zip(call.outputs, want):
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    return device


# ranges: three output ranges out of order, a gap (rows 20-39), an empty range, and
# reduction intervals that are not tile-aligned; the same for the i-reduction
R_OUT = np.array([[0, 10], [40, 70], [10, 20], [70, 70]])
SLICES = np.array([1, 3, 3, 4])
R_RED = np.array([[0, 30], [50, 61], [83, 90], [5, 9]])
RANGES = (R_OUT, SLICES, R_RED, R_OUT, SLICES, R_RED)


@needs_gxx
@pytest.mark.cpu
@pytest.mark.parametrize(
    "plan", [GAUSS, GAUSS_J, ARGMIN, KMIN], ids=["sum_i", "sum_j", "argmin", "kmin"]
)
def test_batches_and_ranges_match_the_reference(plan):
    rng = np.random.default_rng(0)
    # broadcast batch dims (2, 1) x (1, 3): six entries, offsets per input
    device = _compare(plan, _inputs(rng, (2, 1), (1, 3), 37, 50))
    grid, block, params = device.launches[-1]
    n_out = 37 if plan is not GAUSS_J else 50
    assert block == BLOCK and params[:3] == (n_out, 87 - n_out, 6)
    assert grid == 6 * -(-n_out // BLOCK) == 6 * params[3] and params[-3] != 0
    # ranges with rows outside every range (neutral values), then ranges and a batch
    device = _compare(plan, _inputs(rng, (), (), 90, 90), RANGES)
    assert device.launches[-1][0] == len(block_table(_oriented(), 90, BLOCK)[0])
    _compare(plan, _inputs(rng, (2,), (2,), 90, 90), RANGES)


def _oriented():
    return Ranges(R_OUT, SLICES, R_RED)


@needs_gxx
@pytest.mark.cpu
def test_plain_launch_passes_no_tables():
    device = _compare(GAUSS, _inputs(np.random.default_rng(1), (), (), 70, 45))
    grid, _, params = device.launches[-1]
    assert grid == 3 and params[:4] == (70, 45, 1, 3) and params[-3:] == (0, 0, 0)


def test_block_table_covers_every_row_once():
    table, reds = block_table(_oriented(), 90, 8)
    assert reds.tolist() == R_RED.tolist()  # disjoint output ranges: the call's intervals
    rows = np.concatenate([np.arange(r0, r1) for r0, r1, _, _ in table])
    assert (rows == np.arange(90)).all() and (table[:, 1] - table[:, 0] <= 8).all()
    gap = table[(table[:, 0] >= 20) & (table[:, 1] <= 40)]
    assert len(gap) and (gap[:, 2] == gap[:, 3]).all()  # no reduction intervals
    assert {tuple(t[2:]) for t in table if t[0] >= 40 and t[1] <= 70} == {(1, 3)}


def test_overlapping_output_ranges_reduce_over_every_covering_range():
    # rows 5-9 are in both ranges: their intervals are the first range's, then the second's
    overlapping = Ranges(np.array([[0, 10], [5, 12]]), np.array([1, 3]), R_RED[:3])
    table, reds = block_table(overlapping, 14, 8)
    rows = np.concatenate([np.arange(r0, r1) for r0, r1, _, _ in table])
    assert (rows == np.arange(14)).all()
    spans = {(int(r0), int(r1)): reds[s0:s1].tolist() for r0, r1, s0, s1 in table}
    assert spans[(0, 5)] == [[0, 30]]
    assert spans[(5, 10)] == [[0, 30], [50, 61], [83, 90]]
    assert spans[(10, 12)] == [[50, 61], [83, 90]] and spans[(12, 14)] == []


def test_batch_offsets_follow_broadcasting():
    off = batch_offsets([(2, 1, 5, 3), (1, 3, 4, 3), (2, 3, 1)], (2, 3))
    assert off[:6].tolist() == [0, 0, 0, 15, 15, 15]
    assert off[6:12].tolist() == [0, 12, 24, 0, 12, 24]
    assert off[12:].tolist() == [0, 1, 2, 3, 4, 5]


def test_nvrtc_major_follows_the_driver():
    assert nvrtc_major_for_driver(13000, (13, 0)) == 13
    assert nvrtc_major_for_driver(13020, (12, 9)) == 12  # a newer driver runs older cubins
    assert nvrtc_major_for_driver(12040, (12, 4)) == 12
    with pytest.raises(CompatibilityError, match=r"CUDA 12\.4.*lazykernels\[cuda12\]"):
        nvrtc_major_for_driver(12040, (13, 0))
    with pytest.raises(CompatibilityError, match="CUDA 12 or newer"):
        nvrtc_major_for_driver(11080, (12, 0))


def test_driver_errors_are_clear_without_a_gpu():
    from lazykernels.cuda import driver

    if driver.unavailable_reason() is None:
        pytest.skip("a GPU is present")
    with pytest.raises(CompatibilityError, match="NVIDIA driver|cuda-bindings|no GPU"):
        driver.device(0)
    x, y, g, b = _inputs(np.random.default_rng(2), (), (), 4, 5)
    with pytest.raises(CompatibilityError, match="NVIDIA driver|cuda-bindings|no GPU"):
        run_plan(GAUSS, [x, y, g, b], backend="GPU", device_id=0)
    with pytest.raises(ArgumentError, match="device_id must be -1 or a GPU index"):
        run_plan(GAUSS, [x, y, g, b], backend="GPU", device_id=-3)
    with pytest.raises(CompatibilityError, match="NVIDIA driver|cuda-bindings|no GPU"):
        run_plan(GAUSS, [x, y, g, b], backend="GPU_2D")


# --- the torch adapter, with CPU tensors standing for device memory -------------------


@needs_gxx
@pytest.mark.cpu
def test_torch_adapter_half_storage_batches_ranges_and_out():
    torch = pytest.importorskip("torch")
    from lazykernels.torch.cuda import run_cuda

    rng = np.random.default_rng(3)
    device = EmulatedDevice()
    args = _inputs(rng, (2,), (2,), 90, 90, np.float16)
    tensors = [torch.from_numpy(a) for a in args]
    tensors[1] = tensors[1].transpose(-1, -2).contiguous().transpose(-1, -2)  # strided
    for plan in (GAUSS, ARGMIN):
        for ranges in (None, RANGES):
            n = len(plan.slots)
            got = run_cuda(plan, tensors[:n], ranges=ranges, device=device, block=BLOCK)
            exact = [a.astype(np.float64) for a in args[:n]]  # the half inputs, exactly
            want = run_plan(plan, exact, backend="reference", ranges=ranges)
            assert got[0].dtype == torch.float16
            for g_, w in zip(got, want):
                if g_.dtype == torch.int64:  # ties aside, the same indices
                    assert (g_.numpy() == w).mean() > 0.97
                else:  # float accumulation, one rounding to half
                    np.testing.assert_allclose(g_.numpy(), w, rtol=2e-3, atol=4e-3)
    out = torch.empty(2, 90, 2, dtype=torch.float16)
    (res,) = run_cuda(GAUSS, tensors, out=out, device=device, block=BLOCK)
    assert res is out


def test_torch_adapter_checks_inputs_before_launching():
    torch = pytest.importorskip("torch")
    from lazykernels.core.arrays import Device, check_device_id
    from lazykernels.torch.cuda import run_cuda

    device = EmulatedDevice()  # nothing may be launched: every call below is refused
    x, y, g, b = (torch.from_numpy(a) for a in _inputs(np.random.default_rng(4), (), (), 4, 5))
    with pytest.raises(BackendError, match="different devices.*'y'.*meta"):
        run_cuda(GAUSS, [x, y.to("meta"), g, b], device=device)
    with pytest.raises(BackendError, match="runs on the CPU.*backend='GPU'"):
        run_cuda(GAUSS, [x, y, g, b], backend="CPU", device=device)
    with pytest.raises(ArgumentError, match="NaN"):
        run_cuda(GAUSS, [x, y, g, b * float("nan")], device=device)
    with pytest.raises(ArgumentError, match="out: expected shape"):
        run_cuda(GAUSS, [x, y, g, b], out=torch.empty(3, 2, dtype=x.dtype), device=device)
    k_plan = build_plan("SqDist(x,y)", ALIASES[:2], reduction_op="ArgMin", axis=1)
    with pytest.raises(ArgumentError, match="ranges"):
        run_cuda(k_plan, [x, y], ranges=(1, 2), device=device)
    with pytest.raises(ArgumentError, match="device_id=1, but the inputs are on cuda:0"):
        check_device_id(1, Device("cuda", 0))
    check_device_id(1, Device("cuda", 1))
    check_device_id(-1, Device("cuda", 1))
    assert device.launches == []


@needs_gxx
@pytest.mark.cpu
def test_torch_autograd_runs_its_derived_reductions_through_the_runner(monkeypatch):
    """The backward pass of a Sum runs derived reductions on the tensors' device: routed
    here to the emulated device, every one of them is a CUDA kernel the skeleton prints."""
    torch = pytest.importorskip("torch")
    from lazykernels.torch import Genred, autograd
    from lazykernels.torch.cuda import run_cuda

    device = EmulatedDevice()

    def on_device(plan, tensors, backend, ranges, out=None):
        return run_cuda(plan, tensors, "GPU", ranges, out, device=device, block=BLOCK)

    g = Genred("Exp(-SqDist(x,y)*g)*b", ALIASES, axis=1)
    rng = np.random.default_rng(5)
    args = [torch.tensor(a, requires_grad=True) for a in _inputs(rng, (), (), 40, 33)]
    want = torch.autograd.grad(g(*args, backend="reference").square().sum(), args)
    monkeypatch.setattr(autograd, "_run", on_device)
    got = torch.autograd.grad(g(*args).square().sum(), args)
    assert len(device.launches) >= 3  # forward, then one reduction per input group
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_wide_tiles_get_smaller_blocks_to_fit_shared_memory():
    from lazykernels.cuda.runner import MAX_STATIC_SHARED, kernel_source

    aliases = ["x=Vi(30)", "y=Vj(30)", "z=Vj(30)"]
    plan = build_plan("Exp(-SqDist(x,y)) + SqDist(x,z)", aliases, axis=1)
    assert kernel_source(plan, "float32").block == 128  # 60 x 128 x 4 bytes fit
    ks = kernel_source(plan, "float64")  # 60 x 128 x 8 bytes do not
    assert ks.shared_bytes <= MAX_STATIC_SHARED and ks.block == 96  # 49152 / 480 = 102


@needs_gxx
@pytest.mark.cpu
def test_lazytensor_selection_gradient_and_solve_through_the_runner(monkeypatch):
    """LazyTensor reductions, a Min's gradient (values and indices, then a Sum at the
    selected pairs) and a conjugate-gradient solve, every reduction on the emulated device."""
    torch = pytest.importorskip("torch")
    from lazykernels.torch import LazyTensor, autograd
    from lazykernels.torch.cuda import run_cuda

    device = EmulatedDevice()

    def on_device(plan, tensors, backend, ranges, out=None):
        return run_cuda(plan, tensors, "GPU", ranges, out, device=device, block=BLOCK)

    gen = torch.Generator().manual_seed(6)
    x = torch.randn(50, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.randn(40, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(50, 1, dtype=torch.float64, generator=gen)

    def compute():
        d = ((LazyTensor(x[:, None]) - LazyTensor(y[None])) ** 2).sum(-1)
        (grad,) = torch.autograd.grad(d.min(dim=1).sum(), x)
        xd = x.detach()
        k = (-((LazyTensor(xd[:, None]) - LazyTensor(xd[None])) ** 2).sum(-1)).exp()
        return grad, d.argmin(dim=1), k.solve(LazyTensor(b[:, None]), alpha=0.5)

    want = compute()
    monkeypatch.setattr(autograd, "_run", on_device)
    got = compute()
    assert len(device.launches) >= 4
    torch.testing.assert_close(got[0], want[0], rtol=1e-9, atol=1e-9)
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-5)  # CG stops at eps=1e-6
