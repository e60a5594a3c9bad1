"""The CPU backend's fast paths against the NumPy reference: the blocked squared-distance
path (D >= 16, min-type reductions), short and odd reduction lengths (the masked last vector
of a tile), tall and wide shapes (grouped work items, split reduction ranges), and the
thread pool (concurrent callers, a forked child).

Timings are measured by the benchmarks, never asserted here.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan
from lazykernels.reductions import reference

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

K = {"KMin_ArgKMin": 4, "ArgKMin": 5}
# min-type reductions of SqDist(x, y) at D >= 16, each in one dtype and dimension (one
# kernel per axis); D = 70 runs the dot products in two depth chunks
GEMM = [("KMin_ArgKMin", np.float32, 20), ("Min_ArgMin", np.float64, 70)]
GEMM += [("Min", np.float32, 20), ("ArgKMin", np.float64, 20)]
DIMS = {name: d for name, _, d in GEMM}
TILED = {  # the per-pair loop: Sum (fused), LogSumExp (buffers), ArgKMin (the filter)
    "Sum": "Grad(Exp(-SqDist(x,y))*b, x, Exp(Sum(x)))",  # products regrouped by lower.py
    "LogSumExp": "-SqDist(x,y)+b",
    "ArgKMin": "SqDist(x,y)+b",
}


@cache
def gemm_plan(name: str, axis: int = 1):
    aliases = [f"x = Vi({DIMS[name]})", f"y = Vj({DIMS[name]})"]
    return build_plan("SqDist(x,y)", aliases, reduction_op=name, axis=axis, opt_arg=K.get(name))


@cache
def tiled_plan(name: str):
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
    return build_plan(TILED[name], aliases, reduction_op=name, axis=1, opt_arg=K.get(name))


@pytest.fixture(scope="module", autouse=True)
def compiled():
    kernels = [(gemm_plan(n, axis), dt) for (n, dt, _) in GEMM for axis in (0, 1)]
    kernels += [(tiled_plan(n), np.float32) for n in TILED]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pd: cpu.prepare(*pd), kernels))
    for plan, dtype in kernels[:2]:
        assert cpu.kernel_source(plan, dtype).path == "sqdist-gemm"


def compare(plan, args, ranges=None, n_threads=0, exact_values=False):
    got, want = bind(plan, args, ranges), bind(plan, args, ranges)
    cpu.run(got, n_threads=n_threads)
    reference.run(want)
    for g, w in zip(got.outputs, want.outputs):
        if w.dtype == np.int64:
            np.testing.assert_array_equal(g, w)
        elif exact_values:  # the same exact formula, summed in another order
            d = plan.formula.args[0].dim
            np.testing.assert_allclose(g, w, rtol=4 * d * np.finfo(w.dtype).eps, atol=0)
        else:
            tol = 2e-4 if w.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    return got.outputs


def points(m, n, dtype, seed, offset=0.0, d=20):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (m, d)) + offset
    y = rng.uniform(-1, 1, (n, d)) + offset
    return x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("name, dtype, d", GEMM)
@pytest.mark.parametrize("axis", [0, 1])
def test_sqdist_gemm_matches_reference(name, dtype, d, axis):
    plan = gemm_plan(name, axis)
    # several tiles and blocks, lengths that are not multiples of the tiles
    compare(plan, list(points(203, 301, dtype, 1, d=d)), exact_values=True)
    # far from the origin: |x|^2 + |y|^2 ~ 2e5 x the distances; the lower bounds cancel
    # badly, more candidates reach the exact recomputation, the results stay exact
    compare(plan, list(points(37, 260, dtype, 2, offset=100.0, d=d)), exact_values=True)


@pytest.mark.parametrize("name, dtype, d", GEMM)
def test_sqdist_gemm_ties_ranges_split(name, dtype, d):
    plan = gemm_plan(name, 1)
    x, y = points(30, 500, dtype, 3, d=d)
    y[250:] = y[:250]  # every distance appears twice: the lower index comes first
    x[7] = y[400]  # an exact zero distance, tied with index 150
    x[9] += 1e3  # a row far from every point: only the lower bounds' margin saves it
    out = compare(plan, [x, y], exact_values=True)
    if name == "Min_ArgMin":
        assert out[1][7, 0] == 150 and out[0][7, 0] == 0
    ranges = (
        np.array([[0, 10], [12, 30]]),
        np.array([2, 3]),
        np.array([[0, 37], [100, 291], [495, 500]]),
        np.array([[0, 500]]),
        np.array([1]),
        np.array([[0, 30]]),
    )
    compare(plan, [x, y], ranges, exact_values=True)
    # 4 threads on 3 rows: the reduction range is cut in parts, merged afterwards
    compare(plan, list(points(3, 20000, dtype, 4, d=d)), n_threads=4, exact_values=True)


@pytest.mark.parametrize("name", sorted(TILED))
@pytest.mark.parametrize("n", [1, 5, 7, 8, 9, 15, 16, 17, 31, 100, 2047, 2049, 4100])
def test_tile_tails(name, n):
    # the last vector of each tile is masked (or a plain loop when n < the vector width)
    if name == "ArgKMin" and n < 5:
        pytest.skip("K > N")
    rng = np.random.default_rng(n)
    x, y = rng.uniform(-1, 1, (5, 3)), rng.uniform(-1, 1, (n, 3))
    b = rng.uniform(-1, 1, (n, 1))
    compare(tiled_plan(name), [a.astype(np.float32) for a in (x, y, b)])


@pytest.mark.parametrize("name", sorted(TILED))
def test_tall_and_wide(name):
    rng = np.random.default_rng(5)
    for m, n in [(30000, 100), (40, 60000)]:
        x, y = rng.uniform(-1, 1, (m, 3)), rng.uniform(-1, 1, (n, 3))
        b = rng.uniform(-1, 1, (n, 1))
        args = [a.astype(np.float32) for a in (x, y, b)]
        compare(tiled_plan(name), args, n_threads=2)


def test_concurrent_callers_share_the_pool():
    # calls from several Python threads: one uses the pool, the others run alone
    plan = tiled_plan("Sum")
    rng = np.random.default_rng(6)
    calls = []
    for _ in range(6):
        x, y, b = rng.uniform(-1, 1, (300, 3)), rng.uniform(-1, 1, (3000, 3)), rng.random((3000, 1))
        calls.append([a.astype(np.float32) for a in (x, y, b)])
    errors = []

    def work(args):
        try:
            compare(plan, args, n_threads=2)
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def _child(queue):
    plan = tiled_plan("Sum")
    rng = np.random.default_rng(7)
    x, y, b = rng.uniform(-1, 1, (200, 3)), rng.uniform(-1, 1, (4000, 3)), rng.random((4000, 1))
    args = [a.astype(np.float32) for a in (x, y, b)]
    call = bind(plan, args)
    cpu.run(call, n_threads=2)
    queue.put(call.outputs[0].copy())


def test_pool_after_fork():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    plan = tiled_plan("Sum")
    ones = [np.ones(shape, np.float32) for shape in [(8, 3), (5000, 3), (5000, 1)]]
    warm = bind(plan, ones)
    cpu.run(warm, n_threads=2)  # the parent's pool has live workers
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the forked child hung or failed"
    got = queue.get(timeout=5)
    rng = np.random.default_rng(7)
    x, y, b = rng.uniform(-1, 1, (200, 3)), rng.uniform(-1, 1, (4000, 3)), rng.random((4000, 1))
    want = bind(plan, [a.astype(np.float32) for a in (x, y, b)])
    reference.run(want)
    np.testing.assert_allclose(got, want.outputs[0], rtol=2e-4)


_FIRST_JOB_SCRIPT = """
import ctypes, time
from lazykernels import cpu
run = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(cpu._pool())
slots = []
@ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)
def body(ctx, slot):
    slots.append(slot)
    time.sleep(0.2)  # releases the GIL: a worker that joins the job runs meanwhile
print(run(2, body, None), sorted(slots))
"""


@pytest.mark.cpu
def test_a_new_worker_joins_the_job_that_creates_it():
    # Regression: workers created by a job used to wait for the *next* job, so the first
    # multi-threaded call of a process ran on one thread. Fresh process: a fresh pool.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _FIRST_JOB_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 [0, 1]"
