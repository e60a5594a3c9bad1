"""The ``cuda`` tier: the GPU backend on a real GPU, against the CPU results.

Skipped without an NVIDIA driver and GPU (and, for the torch tests, without a CUDA build of
torch). The op cards' helper functions (Rsqrt, SinXDivX, XLogX, Pow...) and their gradients
run on the cases of tests/cuda_op_cases.py, against dense NumPy. ``scripts/gpu_check.sh``
runs this file and ``benchmarks/bench_gpu.py`` in one go.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.cuda import driver
from lazykernels.errors import ArgumentError, BackendError, CompatibilityError
from lazykernels.numpy import Genred as NumpyGenred

from .cuda_op_cases import CASES as OP_CASES
from .cuda_op_cases import DTYPES as OP_DTYPES
from .cuda_op_cases import aliases as op_aliases
from .cuda_op_cases import check as check_op
from .cuda_op_cases import data as op_data

_REASON = driver.unavailable_reason()
CPU = "CPU" if cpu.available() else "reference"  # the GPU machine may have no g++
pytestmark = [pytest.mark.cuda, pytest.mark.skipif(_REASON is not None, reason=f"{_REASON}")]

torch = pytest.importorskip("torch")
needs_torch_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="this torch build has no CUDA"
)
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "g = Pm(1)"]
FORMULA = "Exp(-SqDist(x, y) * g) * b"


def _data(m=1000, n=1500, dtype=np.float32, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, m, 3)).astype(dtype)
    y = rng.standard_normal((*batch, n, 3)).astype(dtype)
    b = rng.standard_normal((*batch, n, 2)).astype(dtype)
    g = np.full((*batch, 1), 0.7, dtype=dtype)
    return [x, y, b, g]


def _tol(dtype):
    return {np.float16: 3e-3, np.float32: 1e-5, np.float64: 1e-12}[np.dtype(dtype).type]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "reduction", ["Sum", "Min", "ArgMin", "Max_ArgMax", "LogSumExp", "ArgKMin", "KMin_ArgKMin"]
)
def test_numpy_gpu_backend_matches_the_cpu(reduction, dtype):
    formula = FORMULA if reduction == "Sum" else "SqDist(x, y) * g"
    aliases = ALIASES if reduction == "Sum" else [ALIASES[0], ALIASES[1], ALIASES[3]]
    k = 5 if "KMin" in reduction else None
    g = NumpyGenred(formula, aliases, reduction_op=reduction, axis=1, opt_arg=k)
    args = _data(dtype=dtype)
    args = args if reduction == "Sum" else [args[0], args[1], args[3]]
    got, want = g(*args, backend="GPU"), g(*args, backend=CPU)
    for a, b in zip(
        got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)
    ):
        np.testing.assert_allclose(a, b, rtol=_tol(dtype), atol=_tol(dtype))
    np.testing.assert_allclose(
        np.asarray(g(*args, backend="GPU_1D", device_id=0)).astype(float),
        np.asarray(got).astype(float) if not isinstance(got, tuple) else got[0].astype(float),
    )
    # the 2D scheme: column blocks of the reduction, partial states merged by a 2nd kernel
    two = g(*args, backend="GPU_2D")
    for a, b in zip(
        two if isinstance(two, tuple) else (two,), want if isinstance(want, tuple) else (want,)
    ):
        np.testing.assert_allclose(a, b, rtol=_tol(dtype) * 10, atol=_tol(dtype) * 10)


def test_device_id_errors_and_the_2d_scheme_with_a_column_tail():
    g = NumpyGenred(FORMULA, ALIASES, axis=1)
    args = _data(10, 12)
    with pytest.raises(CompatibilityError, match="device_id=99"):
        g(*args, backend="GPU", device_id=99)
    args = _data(100, 200_003, np.float64)  # "GPU" picks 2D for 100 rows, 2e5 columns
    want = g(*args, backend=CPU)
    for backend in ("GPU", "GPU_2D"):
        np.testing.assert_allclose(g(*args, backend=backend), want, rtol=1e-10, atol=1e-10)


@needs_torch_cuda
@pytest.mark.parametrize("backend", ["GPU_1D", "GPU_2D"])
def test_knn_d50_on_cuda_tensors_has_recall_one(backend):
    from lazykernels.torch import Genred

    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand(2000, 50, device="cuda", generator=gen)
    y = torch.rand(30000, 50, device="cuda", generator=gen)
    knn = Genred("SqDist(x, y)", ["x = Vi(50)", "y = Vj(50)"], "ArgKMin", axis=1, opt_arg=10)
    got = knn(x, y, backend=backend)
    exact = torch.cdist(x.double(), y.double())
    best, want = exact.topk(10, largest=False)
    assert got.shape == (2000, 10) and got.device == x.device
    recall = (got[:, :, None] == want[:, None, :]).any(-1).float().mean().item()
    # float32 distances: a neighbour may only swap with one at the same distance (~1e-6)
    torch.testing.assert_close(exact.gather(1, got), best, rtol=1e-5, atol=1e-5)
    assert recall > 0.999


@pytest.mark.parametrize(
    ("name", "dtype", "backend"),
    [(n, t, "GPU_1D") for n, t in OP_DTYPES] + [(n, "float32", "GPU_2D") for n in OP_CASES],
)
def test_helper_ops_and_their_gradients_match_dense_numpy(name, dtype, backend):
    # Rsqrt, SinXDivX, XLogX, Pow, Round, Sign, Step, Mod, the clamps: singular points
    # included (tests/cuda_op_cases.py; the same cases run in the host emulation)
    formula, _, dim, _, _ = OP_CASES[name]
    g = NumpyGenred(formula, op_aliases(dim), axis=1)
    args = op_data(np.random.default_rng(len(name)), name, 300, 1000)
    check_op(name, dtype, g(*[a.astype(dtype) for a in args], backend=backend), args)


@needs_torch_cuda
def test_torch_autograd_of_helper_ops_on_cuda():
    from lazykernels.torch import Genred

    formula = "Rsqrt(SqDist(x, y)) * b + SinXDivX(x - y) + Pow(x - y, -3) + XLogX(Abs(x - y))"
    g = Genred(formula, ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    x, y, b = op_data(np.random.default_rng(2), "grad_pow", 500, 700)[:3]  # x - y never 0
    cpu = [torch.from_numpy(a).requires_grad_() for a in (x, y, b)]
    cuda = [t.detach().cuda().requires_grad_() for t in cpu]
    want = torch.autograd.grad(g(*cpu, backend=CPU).square().sum(), cpu)
    got = torch.autograd.grad(g(*cuda).square().sum(), cuda)
    for a, w in zip(got, want):
        assert a.device == cuda[0].device
        torch.testing.assert_close(a.cpu(), w, rtol=1e-10, atol=1e-10)


def test_modules_are_loaded_once_per_device_and_cubin():
    g = NumpyGenred(FORMULA, ALIASES, axis=1)
    args = _data(50, 60)
    g(*args, backend="GPU")
    loaded = len(driver.device(0)._modules)
    g(*args, backend="GPU")
    assert len(driver.device(0)._modules) == loaded


@needs_torch_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_torch_cuda_tensors_in_place_with_batches(dtype):
    from lazykernels.torch import Genred

    g = Genred(FORMULA, ALIASES, axis=1)
    np_dtype = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
    cpu = [torch.from_numpy(a) for a in _data(300, 400, np_dtype[dtype], batch=(2, 3))]
    cuda = [t.cuda() for t in cpu]
    got = g(*cuda)
    assert got.device == cuda[0].device and got.dtype == dtype
    want = g(*[t.double() for t in cpu], backend=CPU)
    tol = _tol(np_dtype[dtype])
    torch.testing.assert_close(got.cpu().double(), want, rtol=tol * 10, atol=tol * 10)


@needs_torch_cuda
def test_torch_autograd_and_lazytensor_on_cuda():
    from lazykernels.torch import Genred, LazyTensor

    g = Genred(FORMULA, ALIASES, axis=1)
    cpu = [torch.from_numpy(a).double().requires_grad_() for a in _data(200, 300)]
    cuda = [t.detach().cuda().requires_grad_() for t in cpu]
    want = torch.autograd.grad(g(*cpu, backend=CPU).square().sum(), cpu, create_graph=True)
    got = torch.autograd.grad(g(*cuda).square().sum(), cuda, create_graph=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-10, atol=1e-10)
    # second order: the gradient's gradient also runs on the GPU
    want2 = torch.autograd.grad(want[0].sum(), cpu[1])[0]
    got2 = torch.autograd.grad(got[0].sum(), cuda[1])[0]
    torch.testing.assert_close(got2.cpu(), want2, rtol=1e-9, atol=1e-9)
    x, y = cuda[0].detach(), cuda[1].detach()
    d = ((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1)
    idx = d.argmin(dim=1)
    dense = torch.cdist(x, y).argmin(dim=1)
    assert idx.device == x.device and (idx.view(-1) == dense).all()


@needs_torch_cuda
def test_ranges_on_cuda_tensors_and_streams():
    from lazykernels.torch import Genred
    from lazykernels.torch.cluster import cluster_ranges_centroids, from_matrix, grid_cluster

    g = Genred(FORMULA, ALIASES, axis=1)
    x, y, b, p = (torch.from_numpy(a).double() for a in _data(800, 900))
    x_lab, y_lab = grid_cluster(x, 0.8), grid_cluster(y, 0.8)
    x_ranges, x_c, _ = cluster_ranges_centroids(x, x_lab)
    y_ranges, y_c, _ = cluster_ranges_centroids(y, y_lab)
    x, y, b = x[x_lab.argsort()], y[y_lab.argsort()], b[y_lab.argsort()]
    keep = ((x_c[:, None, :] - y_c[None, :, :]) ** 2).sum(-1) < 4.0
    ranges = from_matrix(x_ranges, y_ranges, keep)
    want = g(x, y, b, p, backend=CPU, ranges=ranges)
    cuda_ranges = tuple(r.cuda() for r in ranges)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # the kernel is ordered on torch's current stream
        got = g(x.cuda(), y.cuda(), b.cuda(), p.cuda(), ranges=cuda_ranges)
    side.synchronize()
    torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=1e-12)


@needs_torch_cuda
def test_torch_device_errors():
    from lazykernels.torch import Genred

    g = Genred(FORMULA, ALIASES, axis=1)
    x, y, b, p = (torch.from_numpy(a) for a in _data(10, 12))
    with pytest.raises(BackendError, match="different devices"):
        g(x.cuda(), y, b, p)
    with pytest.raises(ArgumentError, match="device_id=5"):
        g(x.cuda(), y.cuda(), b.cuda(), p.cuda(), device_id=5)
    with pytest.raises(BackendError, match="runs on the CPU"):
        g(x.cuda(), y.cuda(), b.cuda(), p.cuda(), backend="CPU")
    # CPU tensors with a GPU backend: moved to the GPU by torch, results back on the CPU
    res = g(x, y, b, p, backend="GPU", device_id=0)
    assert res.device.type == "cpu"
    torch.testing.assert_close(res, g(x, y, b, p, backend=CPU), rtol=1e-5, atol=1e-5)
