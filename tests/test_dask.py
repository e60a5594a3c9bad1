"""lazykernels.dask without a cluster: plan choice, errors, the LazyTensor and solver API
(dask's threaded scheduler, reference backend), and ``import lazykernels`` without dask."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lazykernels import ArgumentError, DtypeError, ShapeError

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from lazykernels.dask import Genred, KernelSolve, LazyTensor, knn_graph  # noqa: E402
from lazykernels.dask.inputs import check_inputs  # noqa: E402
from lazykernels.dask.plans import choose, red_chunks  # noqa: E402
from lazykernels.numpy import Genred as NumpyGenred  # noqa: E402

from .partial_cases import ALIASES, assert_same, chunked, data  # noqa: E402

GAUSS = "Exp(-SqDist(x,y)*p)*b"


@pytest.fixture(autouse=True)
def _threads():
    with dask.config.set(scheduler="threads"):
        yield


def test_plan_choice_follows_chunks_and_sizes():
    g = Genred(GAUSS, ALIASES, axis=1)
    args = data(8, 10)
    assert choose(check_inputs(g.plan, chunked(args, 4, 10))) == "i"  # j in one chunk
    assert choose(check_inputs(g.plan, chunked(args, 4, 5))) == "i"  # small j: broadcast
    assert choose(check_inputs(g.plan, chunked(args, 8, 5))) == "ij"  # one i chunk
    assert choose(check_inputs(g.plan, chunked(args, 4, 5)), broadcast_limit=10) == "ij"


def test_kmin_blocks_hold_at_least_k_indices():
    g = Genred("SqDist(x,y)", ALIASES, "ArgKMin", axis=1, opt_arg=3)
    x, y, b, p = data(4, 9)
    yd = da.from_array(y, chunks=((1, 2, 0, 4, 2), 2))
    inputs = check_inputs(g.plan, [x, yd, da.from_array(b, chunks=((1, 2, 0, 4, 2), 2)), p])
    assert red_chunks(inputs) == (3, 6)


@pytest.mark.parametrize("plan", ["i", "ij"])
def test_uneven_one_row_and_empty_chunks(plan):
    args = data(13, 12, seed=3)
    x, y, b, p = args
    xd = da.from_array(x, chunks=((1, 5, 0, 7), 2))
    yd = da.from_array(y, chunks=((3, 0, 1, 8), 2))
    bd = da.from_array(b, chunks=((6, 6), 2))  # rechunked like y
    for reduction, k in (("Sum", None), ("KMin_ArgKMin", 2), ("LogSumExp", None)):
        formula = "-SqDist(x,y)*p" if reduction == "LogSumExp" else GAUSS
        g = Genred(formula, ALIASES, reduction, axis=1, opt_arg=k)
        want = NumpyGenred(formula, ALIASES, reduction, axis=1, opt_arg=k)(
            *args, backend="reference"
        )
        got = dask.compute(g(xd, yd, bd, p, plan=plan, backend="reference"))[0]
        assert_same(got, want)
        assert (got[0] if isinstance(got, tuple) else got).shape[0] == 13


@pytest.mark.parametrize("plan", ["i", "ij"])
def test_empty_axes_give_empty_or_neutral_outputs(plan):
    x, y, b, p = data(5, 0)
    g = Genred(GAUSS, ALIASES, axis=1)
    out = g(da.from_array(x, chunks=2), y, b, p, plan=plan, backend="reference").compute()
    np.testing.assert_array_equal(out, np.zeros((5, 2)))
    x, y, b, p = data(0, 4)
    out = g(x, da.from_array(y, chunks=2), b, p, plan=plan, backend="reference").compute()
    assert out.shape == (0, 2)


def test_unsupported_mixes_raise_clear_errors():
    x, y, b, p = data(6, 5)
    g = Genred(GAUSS, ALIASES, axis=1)
    xd = da.from_array(x, chunks=3)
    with pytest.raises(ArgumentError, match="parameter must be a NumPy array, not a dask"):
        g(xd, y, b, da.from_array(p))
    with pytest.raises(ShapeError, match="batch dimensions are not supported"):
        g(xd[None], y, b, p)
    with pytest.raises(ArgumentError, match="ranges"):
        g(xd, y, b, p, ranges=(np.zeros((1, 2)),) * 6)
    with pytest.raises(ArgumentError, match="out="):
        g(xd, y, b, p, out=np.zeros((6, 2)))
    with pytest.raises(ArgumentError, match="plan must be one of"):
        g(xd, y, b, p, plan="rows")
    with pytest.raises(ArgumentError, match="split_every"):
        g(xd, y, b, p, split_every=1)
    with pytest.raises(DtypeError, match="float16"):
        g(xd.astype(np.float16), y.astype(np.float16), b.astype(np.float16), p.astype(np.float16))
    with pytest.raises(ShapeError, match="y"):  # the single-process binding's message
        g(xd, y[:, :1], b, p)
    with pytest.raises(ArgumentError, match="unknown chunk sizes"):
        g(xd[xd[:, 0] > 0], y, b, p)
    with pytest.raises(ArgumentError, match="K = 7 is larger"):
        Genred("SqDist(x,y)", ALIASES, "ArgKMin", axis=1, opt_arg=7)(xd, y, b, p)


def test_lazytensor_matmul_argkmin_and_solve():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    b = rng.normal(size=(30, 1))
    xd = da.from_array(x, chunks=7)
    x_i = LazyTensor(xd[:, None, :])
    x_j = LazyTensor(xd[None, :, :])
    K = (-x_i.sqdist(x_j)).exp()
    dense = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1))
    np.testing.assert_allclose(K.__matmul__(b, backend="reference").compute(), dense @ b)
    nn = x_i.sqdist(x_j).argKmin(4, dim=1, backend="reference").compute()
    np.testing.assert_array_equal(
        nn, np.argsort(((x[:, None] - x[None]) ** 2).sum(-1), axis=1, kind="stable")[:, :4]
    )
    a = K.solve(da.from_array(b, chunks=7), alpha=0.5, eps=1e-10, backend="reference")
    np.testing.assert_allclose(a.compute(), np.linalg.solve(dense + 0.5 * np.eye(30), b), atol=1e-7)
    assert a.cg.converged and 0 < a.cg.iterations <= 30 and a.cg.residual.max() < 1e-10


def test_kernelsolve_reports_iterations_and_residual():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(25, 1))
    b = rng.normal(size=(25, 2))
    solver = KernelSolve(
        "Exp(-SqDist(x,y))*a", ["x = Vi(1)", "y = Vj(1)", "a = Vj(2)"], "a", axis=1
    )
    xd = da.from_array(x, chunks=10)
    sol = solver(xd, xd, da.from_array(b, chunks=10), alpha=0.1, eps=1e-9, backend="reference")
    dense = np.exp(-((x - x.T) ** 2)) + 0.1 * np.eye(25)
    np.testing.assert_allclose(sol.compute(), np.linalg.solve(dense, b), atol=1e-6)
    assert sol.cg.iterations > 1 and sol.cg.residual.shape == (2,)
    with pytest.warns(RuntimeWarning, match="not converged"):
        short = solver(xd, xd, b, alpha=0.1, eps=1e-12, max_iter=2, backend="reference")
    assert short.cg.iterations == 2 and not short.cg.converged


def test_knn_graph_argument_check():
    with pytest.raises(ArgumentError, match="positive integer"):
        knn_graph(da.zeros((4, 2)), 0)


def test_import_lazykernels_without_dask():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["dask"] = None  # import dask now fails, as when it is not installed
        import lazykernels, lazykernels.numpy
        assert not any(m.startswith("dask") and sys.modules[m] for m in sys.modules)
        try:
            import lazykernels.dask
        except ImportError as err:
            assert "lazykernels[dask]" in str(err), err
        else:
            raise AssertionError("lazykernels.dask imported without dask")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
