"""lazykernels.dask on a real ``distributed.LocalCluster`` (2 worker processes, each with a
nanny): every reduction family on both plans against the single-process result, gradients,
CG, kNN, and a worker killed in the middle of a computation."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from lazykernels.core.genred import run_plan  # noqa: E402
from lazykernels.dask import Genred, KernelSolve, knn_graph, vjp  # noqa: E402
from lazykernels.numpy import Genred as NumpyGenred  # noqa: E402

from .partial_cases import ALIASES, CASES, IDS, assert_same, chunked, data  # noqa: E402

GAUSS = "Exp(-SqDist(x,y)*p)*b"


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"OMP_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def cluster_client(client):
    client.wait_for_workers(2, timeout=60)  # after the killed-worker test too
    return client


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_reduction_on_both_plans(cluster_client, case):
    reduction, formula, k, formula2 = case
    args = data(13, 11, seed=5)
    for axis in (0, 1):
        want_plan = NumpyGenred(formula, ALIASES, reduction, axis, opt_arg=k, formula2=formula2)
        want = want_plan(*args, backend="reference")
        g = Genred(formula, ALIASES, reduction, axis, opt_arg=k, formula2=formula2)
        lazy = [g(*chunked(args, 4, 3), plan=p, backend="reference") for p in ("i", "ij")]
        for got in cluster_client.compute(lazy, sync=True):
            assert_same(tuple(got) if isinstance(got, list | tuple) else got, want)


@pytest.mark.cpu
@pytest.mark.parametrize("plan", ["i", "ij"])
def test_compiled_kernels_match_the_single_process_run(cluster_client, plan):
    args = data(700, 900, seed=6)
    for reduction, formula, k in (("Sum", GAUSS, None), ("KMin_ArgKMin", "SqDist(x,y)", 5)):
        single = NumpyGenred(formula, ALIASES, reduction, axis=1, opt_arg=k)(*args)
        got = Genred(formula, ALIASES, reduction, axis=1, opt_arg=k)(
            *chunked(args, 160, 250), plan=plan
        )
        got = cluster_client.compute(got, sync=True)
        assert_same(tuple(got) if isinstance(got, list | tuple) else got, single, rtol=1e-6)
    x, y = args[:2]
    dense = np.exp(-2 * ((x[:, None] - y[None]) ** 2).sum(-1)) @ args[2]
    np.testing.assert_allclose(
        Genred(GAUSS, ALIASES, axis=1)(*chunked(args, 160, 250), plan=plan).compute(),
        dense,
        rtol=1e-9,
    )


def _finite_difference(plan, args, gradient, k, h=1e-6):
    """<gradient, d reduction / d args[k] . u> by central differences, for a random u."""
    u = np.random.default_rng(k).normal(size=args[k].shape)
    plus = [a + h * u if j == k else a for j, a in enumerate(args)]
    minus = [a - h * u if j == k else a for j, a in enumerate(args)]
    values = [run_plan(plan, a, backend="reference")[0] for a in (plus, minus)]
    return float(((values[0] - values[1]) * gradient).sum() / (2 * h)), u


@pytest.mark.parametrize(
    "reduction, formula, k, formula2",
    [
        ("Sum", GAUSS, None, None),
        ("LogSumExp", "-SqDist(x,y)*p", None, None),
        ("LogSumExpWeight", "-SqDist(x,y)*p", None, "Exp(b)"),  # w.r.t. y: the raw state
        ("SumSoftMaxWeight", "-SqDist(x,y)*p", None, "b"),
        ("Min", "SqDist(x,y)*b", None, None),
        ("KMin_ArgKMin", "SqDist(x,y)*p", 2, None),
    ],
)
def test_gradients_match_finite_differences(cluster_client, reduction, formula, k, formula2):
    args = data(9, 8, seed=7)
    for axis in (1, 0):
        g = NumpyGenred(formula, ALIASES, reduction, axis, opt_arg=k, formula2=formula2)
        out = g(*args, backend="reference")
        values = out[0] if isinstance(out, tuple) else out
        gradient = np.random.default_rng(axis).normal(size=values.shape)
        positions = [0, 1, 3] if "b" not in formula + (formula2 or "") else [0, 1, 2, 3]
        grads = vjp(
            g.plan,
            chunked(args, 4, 3),
            da.from_array(gradient, chunks=3),
            positions,
            backend="reference",
            sharding="ij" if axis else "i",
        )
        grads = cluster_client.compute(grads, sync=True)
        for k_in, grad in zip(positions, grads):
            assert grad.shape == args[k_in].shape
            fd, u = _finite_difference(g.plan, args, gradient, k_in)
            np.testing.assert_allclose((grad * u).sum(), fd, rtol=1e-5, atol=1e-7)


def test_kernel_solve_and_knn_on_the_cluster(cluster_client):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 2))
    b = rng.normal(size=(60, 1))
    xd = da.from_array(x, chunks=17)
    solver = KernelSolve("Exp(-SqDist(x,y))*a", ["x=Vi(2)", "y=Vj(2)", "a=Vj(1)"], "a", axis=1)
    sol = solver(xd, xd, da.from_array(b, chunks=17), alpha=0.3, eps=1e-10, backend="reference")
    dense = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1)) + 0.3 * np.eye(60)
    np.testing.assert_allclose(sol.compute(), np.linalg.solve(dense, b), atol=1e-7)
    assert sol.cg.converged and sol.cg.iterations > 1
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :4]
    for plan in ("i", "ij"):
        idx, dist = knn_graph(xd, 4, plan=plan, backend="reference")
        idx, dist = cluster_client.compute([idx, dist], sync=True)
        np.testing.assert_array_equal(idx, order)
        np.testing.assert_allclose(dist, np.sqrt(np.take_along_axis(d2, order, 1)), atol=1e-7)


def _gate(block, block_id=None, last=0):
    """The identity, except that the last chunk waits for the test's go signal."""
    if block_id[0] == last:
        distributed.Event("lazykernels-test-go").wait(timeout=120)
    return block


@pytest.mark.cpu
def test_a_worker_killed_mid_computation_is_restarted_and_the_result_is_exact(cluster_client):
    c = cluster_client
    args = data(2400, 3000, seed=9)
    x, y, b, p = args
    g = Genred(GAUSS, ALIASES, axis=1)
    single = NumpyGenred(GAUSS, ALIASES, axis=1)(*args)
    chunks = 12
    xd = da.from_array(x, chunks=(200, -1))
    undisturbed = c.compute(g(xd, y, b, p, plan="i"), sync=True)
    np.testing.assert_allclose(undisturbed, single, rtol=1e-6, atol=1e-6)

    go = distributed.Event("lazykernels-test-go")
    go.clear()
    gated = xd.map_blocks(_gate, last=chunks - 1, dtype=x.dtype)
    future = c.compute(g(gated, y, b, p, plan="i"))
    deadline = time.monotonic() + 60
    victim = None
    while victim is None:  # a worker holding finished blocks of ours
        assert time.monotonic() < deadline, "no block finished in 60 s"
        for address, keys in c.has_what().items():
            if any("lazykernels-reduce" in str(key) for key in keys):
                victim = address
        time.sleep(0.02)
    assert not future.done()  # the last block waits for the gate: we are mid-computation
    pids = c.run(os.getpid)
    os.kill(pids[victim], signal.SIGKILL)
    deadline = time.monotonic() + 60
    workers = set(pids)
    while victim in workers or len(workers) < 2:  # the nanny starts a new worker process
        assert time.monotonic() < deadline, "the nanny did not restart the worker"
        time.sleep(0.2)
        workers = set(c.scheduler_info()["workers"])
    assert pids[victim] not in c.run(os.getpid).values()
    go.set()
    result = future.result(timeout=120)
    np.testing.assert_array_equal(result, undisturbed)  # the lost blocks were recomputed
    np.testing.assert_allclose(result, single, rtol=1e-6, atol=1e-6)
