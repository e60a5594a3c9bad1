"""NumPy LazyTensor reductions, ``@``, ``solve``, ``KernelSolve`` and SciPy, against dense NumPy.

Every reduction method runs the shared table :data:`tests.reduction_cases.REDUCTIONS`.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import ArgumentError, BackendError, DimensionError, DtypeError, ShapeError
from lazykernels.numpy import KernelSolve, LazyTensor, Vi, Vj
from lazykernels.numpy.lazytensor import NumpyTools

from . import reduction_cases
from .reduction_cases import BATCH, REDUCTIONS, M, N, run_reduction_case

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def make(dtype, batch: bool):
    return reduction_cases.make(dtype, batch, LazyTensor)


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("case", REDUCTIONS, ids=[c[0] for c in REDUCTIONS])
def test_reduction_against_dense(case, axis, dtype, batch):
    got_t, exp_t = run_reduction_case(case, axis, dtype, batch, LazyTensor)
    for g, e in zip(got_t, exp_t):
        if np.issubdtype(e.dtype, np.integer):
            assert g.dtype == np.int64
            np.testing.assert_array_equal(g, e)
        else:
            assert g.dtype == dtype
            np.testing.assert_allclose(g, e, **TOL[dtype])


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"dtype_acc": "float64"},
        {"use_double_acc": True},
        {"sum_scheme": "direct_sum"},
        {"sum_scheme": "kahan_scheme"},
        {"sum_scheme": "block_sum", "enable_chunks": False, "use_fast_math": False},
    ],
)
def test_accumulation_options(options):
    (K, _, _), (F, _, _) = make(np.float32, False)
    got = K.sum(axis=1, backend="reference", **options)
    np.testing.assert_allclose(got, F.sum(-2), rtol=1e-5)


def test_options_checked_when_the_reduction_is_built():
    (K, H, _), _ = make(np.float64, False)
    with pytest.raises(ArgumentError, match="dtype_acc"):
        H.min(axis=1, dtype_acc="float64", call=False)
    with pytest.raises(ArgumentError, match="sum_scheme"):
        K.sum(axis=1, sum_scheme="nope", call=False)
    with pytest.raises(TypeError, match="unexpected reduction option"):
        K.sum(axis=1, bogus=1)
    with pytest.raises(ArgumentError, match="unknown reduction_op"):
        K.reduction("MinArgMin", axis=1)


def _block_ranges():
    """Clusters i: [0,2), [2,5); j: [0,2), [2,4); keep[ci, cj] = [[1, 0], [1, 1]]."""
    ranges = (
        np.array([[0, 2], [2, 5]]),
        np.array([1, 3]),
        np.array([[0, 2], [0, 2], [2, 4]]),
        np.array([[0, 2], [2, 4]]),
        np.array([2, 3]),
        np.array([[0, 2], [2, 5], [2, 5]]),
    )
    ci = np.array([0, 0, 1, 1, 1])
    cj = np.array([0, 0, 1, 1])
    keep = np.array([[1, 0], [1, 1]], dtype=bool)
    return ranges, keep[ci][:, cj]


def test_ranges_attribute_keyword_and_transpose():
    (K, _, _), (F, _, _) = make(np.float64, False)
    ranges, mask = _block_ranges()
    dense = np.where(mask[..., None], np.exp(F), 0)
    E = K.exp()
    np.testing.assert_allclose(E.sum(axis=1, ranges=ranges, backend="reference"), dense.sum(1))
    E.ranges = ranges
    np.testing.assert_allclose(E.sum(axis=0, backend="reference"), dense.sum(0))
    np.testing.assert_allclose(E.T.sum(axis=1, backend="reference"), dense.sum(0))
    other = K * 1.0
    other.ranges = tuple(r.copy() for r in ranges[3:] + ranges[:3])
    with pytest.raises(ArgumentError, match="different ranges"):
        E + other


def test_backend_attribute_is_the_default_backend():
    (K, _, _), (F, _, _) = make(np.float64, False)
    K.backend = "TPU"
    with pytest.raises(BackendError, match="unknown backend 'TPU'"):
        K.sum(axis=1)
    np.testing.assert_allclose(K.sum(axis=1, backend="reference"), F.sum(1))
    K.backend = "reference"
    np.testing.assert_allclose(K.sum(axis=1), F.sum(1))


def test_call_false_out_and_symbolic_variables():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(M, 2)), rng.normal(size=(N, 2))
    dense = ((x[:, None] - y[None]) ** 2).sum(-1)
    red = Vi(x).sqdist(Vj(y)).sum(axis=1, call=False, backend="reference")
    assert isinstance(red, LazyTensor) and red.axis == 1
    np.testing.assert_allclose(red(), dense.sum(1, keepdims=True))
    out = np.empty((M, 1))
    assert red(out=out) is out
    np.testing.assert_allclose(out, dense.sum(1, keepdims=True))
    f = (Vi(0, 2) - Vj(1, 2)).sqnorm2().min(axis=1, backend="reference")
    np.testing.assert_allclose(f(x, y), dense.min(1, keepdims=True))
    g = (Vi(0, 2) - Vj(y)).sqnorm2().argmin(axis=1)  # symbolic and bound variables
    np.testing.assert_array_equal(g(x, backend="reference")[:, 0], dense.argmin(1))
    with pytest.raises(ArgumentError, match="symbolic variables"):
        f(x)


def test_reduced_lazytensor_attributes():
    (K, _, W), _ = make(np.float64, False)
    red = K.logsumexp(axis=0, weight=W, call=False)
    assert red.reduction_op == "LogSumExp" and red.axis == 0 and K.reduction_op is None
    assert red.formula2 is not None and "Var(" in red.formula2 and K.formula2 is None
    assert "weight:" in str(red)


@pytest.mark.cpu
def test_compiled_backend_agrees_with_reference():
    from lazykernels.core.backends import resolve

    try:
        resolve("CPU")
    except BackendError as err:
        pytest.skip(str(err))
    (K, H, W), _ = make(np.float32, True)
    for run in (
        lambda b: (K.exp() * W).sum(axis=2, backend=b),
        lambda b: K.logsumexp(axis=1, weight=W, backend=b),
        lambda b: H.argKmin(2, axis=2, backend=b),
    ):
        np.testing.assert_allclose(run("CPU"), run("reference"), rtol=1e-5, atol=1e-6)


def test_float_only_formula_and_default_dtype():
    x = np.arange(3.0).reshape(3, 1)
    res = (Vi(0, 1) * 2.5).sum(axis=1, call=False)(x.astype(np.float32), backend="reference")
    assert res.dtype == np.float32
    np.testing.assert_allclose(res, 2.5 * x)


# --- linear algebra ---------------------------------------------------------------------


def _gauss(x, y):
    return np.exp(-((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1))


def test_matmul_matvec_rmatvec():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(M, 2)), rng.normal(size=(N, 2))
    K = (-Vi(x).sqdist(Vj(y))).exp()
    K.backend = "reference"
    D = _gauss(x, y)
    v, V, u = rng.normal(size=N), rng.normal(size=(N, 3)), rng.normal(size=M)
    np.testing.assert_allclose(K @ v, D @ v)
    assert (K @ v).shape == (M,)
    np.testing.assert_allclose(K @ V, D @ V)
    np.testing.assert_allclose(K.matvec(v), D @ v)
    np.testing.assert_allclose(K.rmatvec(u), D.T @ u)
    np.testing.assert_allclose(K.T @ u, D.T @ u)
    xb, yb, Vb = rng.normal(size=(2, M, 2)), rng.normal(size=(2, N, 2)), rng.normal(size=(2, N, 3))
    Kb = (-LazyTensor(xb[:, :, None]).sqdist(LazyTensor(yb[:, None]))).exp()
    np.testing.assert_allclose(Kb.matvec(Vb, backend="reference"), _gauss(xb, yb) @ Vb)
    with pytest.raises(DimensionError, match="vector dimension 1"):
        Vi(x) * Vj(y) @ V


def _spd_problem(dtype, batch, nrhs=3):
    rng = np.random.default_rng(2)
    b = (BATCH,) if batch else ()
    x = rng.normal(size=(*b, 8, 2)).astype(dtype)
    rhs = rng.normal(size=(*b, 8, nrhs)).astype(dtype)
    return x, rhs, _gauss(x.astype(np.float64), x.astype(np.float64))


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_solve_against_numpy(dtype, batch):
    x, rhs, D = _spd_problem(dtype, batch)
    if batch:
        K = (-LazyTensor(x[:, :, None]).sqdist(LazyTensor(x[:, None]))).exp()
    else:
        K = (-Vi(x).sqdist(Vj(x))).exp()
    alpha = 0.5
    got = K.solve(rhs, alpha=alpha, eps=1e-10 if dtype == np.float64 else 1e-6, backend="reference")
    expected = np.linalg.solve(alpha * np.eye(8) + D, rhs.astype(np.float64))
    assert got.shape == rhs.shape and got.dtype == dtype
    tol = 1e-8 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_solve_with_symbolic_var_call_false_and_iteration_cap():
    x, rhs, D = _spd_problem(np.float64, False, nrhs=2)
    expected = np.linalg.solve(np.eye(8) + D, rhs)
    K = (-Vi(x).sqdist(Vj(x))).exp() * Vj(0, 2)
    got = K.solve(Vi(rhs), var=Vj(0, 2), alpha=1.0, eps=1e-10, backend="reference")
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8)
    solver = (-Vi(0, 2).sqdist(Vj(x))).exp().solve(rhs, alpha=1.0, eps=1e-10, call=False)
    np.testing.assert_allclose(solver(x, backend="reference"), expected, atol=1e-8)
    with pytest.warns(RuntimeWarning, match="not converged"):
        (-Vi(x).sqdist(Vj(x))).exp().solve(
            rhs, alpha=1e-3, eps=1e-14, max_iter=1, backend="reference"
        )


def test_kernel_solve_against_numpy():
    x, rhs, D = _spd_problem(np.float64, False)
    aliases = ["x = Vi(2)", "y = Vj(2)", "b = Vj(3)", "g = Pm(1)"]
    solver = KernelSolve("Exp(-g * SqDist(x, y)) * b", aliases, "b", axis=1)
    got = solver(x, x, rhs, np.array([1.0]), alpha=0.3, eps=1e-10, backend="reference")
    np.testing.assert_allclose(got, np.linalg.solve(0.3 * np.eye(8) + D, rhs), atol=1e-8)
    by_var = KernelSolve("Exp(-SqDist(x, y)) * Var(2,3,1)", aliases[:2], "Var(2,3,1)", axis=1)
    np.testing.assert_allclose(
        by_var(x, x, rhs, alpha=0.3, eps=1e-10, backend="reference"), got, atol=1e-8
    )
    with pytest.raises(ArgumentError, match="reduced index"):
        KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vi(3)"], "b", 1)


def test_scipy_linear_operator_eigsh():
    sla = pytest.importorskip("scipy.sparse.linalg")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 2))
    K = (-Vi(x).sqdist(Vj(x)) / 2.0).exp()
    K.backend = "reference"
    op = sla.aslinearoperator(K)
    assert op.shape == (40, 40) and op.dtype == np.float64
    vals = sla.eigsh(op, k=5, return_eigenvectors=False)
    dense = np.linalg.eigvalsh(np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 2))[-5:]
    np.testing.assert_allclose(np.sort(vals), dense, rtol=1e-8)
    np.testing.assert_allclose(op.rmatvec(np.ones(40)), K.T @ np.ones(40))


# --- errors -----------------------------------------------------------------------------


def test_mixing_dtypes_and_array_libraries_raises():
    x32, x64 = np.ones((3, 2), np.float32), np.ones((4, 2))
    with pytest.raises(DtypeError, match="float32 and float64"):
        Vi(x32) + Vj(x64)

    class OtherLazyTensor(LazyTensor):
        tools = NumpyTools()  # stands for another array library's adapter

    with pytest.raises(TypeError, match="cannot mix"):
        Vi(x64) + OtherLazyTensor(x64, axis=1)
    with pytest.raises(TypeError, match="cannot combine"):
        Vi(x64) + "text"


def test_bad_axis_raises():
    (K, _, _), _ = make(np.float64, False)
    with pytest.raises(ArgumentError, match="axis=0 .* or axis=1"):
        K.logsumexp(axis=2)
    with pytest.raises(ArgumentError, match="negative axes"):
        K.sum_reduction(axis=-2)
    with pytest.raises(TypeError, match="give axis"):
        K.logsumexp()  # KeOps raises TypeError here too (SPEC §8.10), with a clear message
    with pytest.raises(ArgumentError, match="disagree"):
        K.sum(axis=0, dim=1)
    (Kb, _, _), _ = make(np.float64, True)
    with pytest.raises(ArgumentError, match="axis=1 .* or axis=2"):
        Kb.sum(axis=0)


def test_reduced_lazytensor_cannot_be_reused():
    (K, _, _), _ = make(np.float64, False)
    red = K.sum(axis=1, call=False)
    for use in (lambda: red + 1, lambda: red.exp(), lambda: K * red, lambda: red.sum(axis=0)):
        with pytest.raises(ArgumentError, match="reduced LazyTensor"):
            use()
    with pytest.raises(TypeError, match="only a reduced LazyTensor"):
        K()


def test_construction_errors():
    with pytest.raises(ArgumentError, match="needs axis"):
        LazyTensor(np.ones((3, 2)))
    with pytest.raises(ArgumentError, match="do not give axis"):
        LazyTensor(np.ones((3, 1, 2)), axis=0)
    with pytest.raises(ShapeError, match=r"\(\.\.\., M, 1, D\)"):
        LazyTensor(np.ones((3, 4, 2)))
    with pytest.raises(DtypeError, match="float16, float32 or float64"):
        LazyTensor(np.ones((3, 1, 2), dtype=np.int64))
    with pytest.raises(ArgumentError, match="3 ints"):
        LazyTensor((0, 3))
    with pytest.raises(ShapeError, match="i-indices"):
        Vi(np.ones((3, 2))) + Vi(np.ones((4, 2)))
    with pytest.raises(ShapeError, match="batch dimensions"):
        LazyTensor(np.ones((2, 3, 1, 1))) + LazyTensor(np.ones((3, 1, 4, 1)))


def test_indexing_and_shape_method_errors():
    x = Vi(np.ones((3, 4)))
    for key in ((slice(None), 1), 4, slice(2, 2), "a"):  # steps: test_lazytensor_indexing
        with pytest.raises(IndexError):
            x[key]
    with pytest.raises(ArgumentError, match="dim must be -1"):
        x.norm(0)
    with pytest.raises(ArgumentError, match="axis -1"):
        LazyTensor.concatenate((x, x), axis=0)
    with pytest.raises(ArgumentError, match="symbolic variable"):
        x.solve(np.ones((3, 4)), var=x)
