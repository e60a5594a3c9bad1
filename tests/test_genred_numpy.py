"""``lazykernels.numpy.Genred`` and the ``generic_*`` shortcuts, from formula strings."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from lazykernels.core.backends import resolve
from lazykernels.formula import Cat
from lazykernels.numpy import (
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)

RNG = np.random.default_rng(0)
M, N = 37, 29
X = RNG.normal(size=(M, 3))
Y = RNG.normal(size=(N, 3))
B = RNG.normal(size=(N, 2))
SIGMA = np.array([0.7])
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"]


def sqdist():
    return ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)  # (M, N)


def gauss():
    return np.exp(-sqdist() / SIGMA[0] ** 2)


def test_gaussian_kernel_sum_over_j():
    g = Genred("Exp(-SqDist(x,y)/(s*s))*b", ALIASES, reduction_op="Sum", axis=1)
    got = g(X, Y, B, SIGMA, backend="reference")
    np.testing.assert_allclose(got, gauss() @ B, rtol=1e-12)
    assert g.nargs == 4


def test_default_axis_reduces_over_i():
    g = Genred("Exp(-SqDist(x,y)/(s*s))", ALIASES[:2] + ["s = Pm(2, 1)"])
    got = g(X, Y, SIGMA, backend="reference")
    assert got.shape == (N, 1)
    np.testing.assert_allclose(got[:, 0], gauss().sum(0), rtol=1e-12)


def test_auto_backend_agrees_with_reference():
    g = Genred("SqDist(x,y)*b", ALIASES[:3], reduction_op="Sum", axis=1)
    name, _ = resolve("auto")
    assert name in ("CPU", "reference")
    got = g(X, Y, B)
    np.testing.assert_allclose(got, sqdist() @ B, rtol=1e-10)


def test_logsumexp_and_its_weighted_forms():
    f = "-SqDist(x,y)/(s*s)"
    F = -sqdist() / SIGMA[0] ** 2
    m = F.max(1, keepdims=True)
    e = np.exp(F - m)
    lse = Genred(f, ALIASES, reduction_op="LogSumExp", axis=1)(X, Y, B, SIGMA, backend="reference")
    np.testing.assert_allclose(lse, m + np.log(e.sum(1, keepdims=True)), rtol=1e-12)
    # "LogSumExp" with formula2 is LogSumExpWeight; B is shifted to be positive
    w = Genred(f, ALIASES, reduction_op="LogSumExp", axis=1, formula2="Exp(b)")
    got = w(X, Y, B, SIGMA, backend="reference")
    np.testing.assert_allclose(got, m + np.log(e @ np.exp(B)), rtol=1e-12)
    # "SoftMax" is the old name of SumSoftMaxWeight
    for name in ("SoftMax", "SumSoftMaxWeight"):
        sm = Genred(f, ALIASES, reduction_op=name, axis=1, formula2="b")
        want = (e @ B) / e.sum(1, keepdims=True)
        np.testing.assert_allclose(sm(X, Y, B, SIGMA, backend="reference"), want, rtol=1e-12)
    raw = Genred(f, ALIASES, reduction_op="Max_SumShiftExp", axis=1)(
        X, Y, B, SIGMA, backend="reference"
    )
    np.testing.assert_allclose(raw, np.c_[m, e.sum(1)], rtol=1e-12)


def test_argmin_kmin_and_tuples():
    d2 = sqdist()
    g = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="Min_ArgMin", axis=1)
    vals, idx = g(X, Y, backend="reference")
    assert vals.shape == idx.shape == (M, 1) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[:, 0], d2.argmin(1))
    np.testing.assert_allclose(vals[:, 0], d2.min(1), rtol=1e-12)
    knn = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="KMin_ArgKMin", axis=0, opt_arg=3)
    kv, ki = knn(X, Y, backend="reference")
    assert kv.shape == ki.shape == (N, 3)  # D == 1: squeezed
    np.testing.assert_array_equal(ki, np.argsort(d2.T, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(kv, np.sort(d2.T, axis=1)[:, :3], rtol=1e-12)
    kmin3 = Genred("x-y", ALIASES[:2], reduction_op="KMin", axis=1, opt_arg=2)
    diff = X[:, None, :] - Y[None, :, :]
    np.testing.assert_allclose(
        kmin3(X, Y, backend="reference"), np.sort(diff, axis=1)[:, :2, :], rtol=1e-12
    )


def test_heterogeneous_aliases_and_inline_variables():
    # explicit positions out of order, plus Var(3,1,1) used directly in the formula
    g = Genred("p * SqDist(x,y) * Var(3,1,1)", ["p=Pm(0,1)", "x=Vi(1,3)", "y=Vj(2,3)"], axis=1)
    c = RNG.normal(size=(N, 1))
    got = g(np.array([2.0]), X, Y, c, backend="reference")
    np.testing.assert_allclose(got[:, 0], 2.0 * sqdist() @ c[:, 0], rtol=1e-12)


def test_formula_without_j_variables_has_n_equal_to_one():
    g = Genred("x * s", ["x = Vi(3)", "s = Pm(1)"], reduction_op="Sum", axis=1)
    np.testing.assert_allclose(g(X, np.array([3.0]), backend="reference"), 3.0 * X)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_inputs(dtype):
    g = Genred("SqDist(x,y)*b", ALIASES[:3], reduction_op="Sum", axis=1)
    args = [a.astype(dtype) for a in (X, Y, B)]
    got = g(*args, backend="reference")
    assert got.dtype == dtype
    x, y, b = (a.astype(np.float64) for a in args)
    want = ((x[:, None] - y[None]) ** 2).sum(-1) @ b
    np.testing.assert_allclose(got, want, rtol=2e-3 if dtype == np.float16 else 1e-5, atol=1e-2)


def test_out_is_filled_in_place():
    g = Genred("SqDist(x,y)*b", ALIASES[:3], reduction_op="Sum", axis=1)
    out = np.empty((M, 2))
    res = g(X, Y, B, backend="reference", out=out)
    assert res is out
    np.testing.assert_allclose(out, sqdist() @ B, rtol=1e-12)
    out16 = np.empty((M, 2), dtype=np.float16)
    args16 = [a.astype(np.float16) for a in (X, Y, B)]
    assert g(*args16, backend="reference", out=out16) is out16
    np.testing.assert_allclose(out16, sqdist() @ B, rtol=1e-2, atol=0.1)
    pair = (np.empty((M, 1)), np.empty((M, 1), dtype=np.int64))
    g2 = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="Min_ArgMin", axis=1)
    assert g2(X, Y, backend="reference", out=pair) == pair
    np.testing.assert_array_equal(pair[1][:, 0], sqdist().argmin(1))


def test_ranges_through_genred():
    g = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="Sum", axis=1)
    ranges_i = np.array([[0, 10], [10, M]])
    slices_i = np.array([1, 2])
    redranges_j = np.array([[0, 5], [5, N]])
    unused = (np.zeros((0, 2), int), np.zeros(0, int), np.zeros((0, 2), int))
    got = g(X, Y, backend="reference", ranges=(ranges_i, slices_i, redranges_j, *unused))
    d2 = sqdist()
    np.testing.assert_allclose(got[:10, 0], d2[:10, :5].sum(1), rtol=1e-12)
    np.testing.assert_allclose(got[10:, 0], d2[10:, 5:].sum(1), rtol=1e-12)


def test_batch_dims_through_genred():
    xb = RNG.normal(size=(2, 1, 5, 3))
    yb = RNG.normal(size=(1, 4, 6, 3))
    g = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="Max", axis=0)
    got = g(xb, yb, backend="reference")
    d2 = ((xb[..., :, None, :] - yb[..., None, :, :]) ** 2).sum(-1)
    assert got.shape == (2, 4, 6, 1)
    np.testing.assert_allclose(got[..., 0], d2.max(-2), rtol=1e-12)


def test_constructor_options_and_deprecations():
    with pytest.warns(DeprecationWarning, match="dtype= is deprecated"):
        Genred("x", ["x = Vi(1)"], dtype="float32")
    with pytest.warns(DeprecationWarning, match="cuda_type= is deprecated"):
        Genred("x", ["x = Vi(1)"], cuda_type="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = Genred(
            "x*y",
            ["x = Vi(1)", "y = Vj(1)"],
            enable_chunks=False,
            rec_multVar_highdim=True,
            use_fast_math=False,
            use_double_acc=True,
            sum_scheme="kahan_scheme",
        )
    assert g.plan.dtype_acc == "float64" and g.plan.sum_scheme == "kahan_scheme"
    x, y = np.ones((3, 1)), np.arange(4.0)[:, None]
    np.testing.assert_allclose(g(x, y, backend="reference", device_id=0), np.full((4, 1), 3.0) * y)


def test_genred_pickles():
    g = Genred("Exp(-SqDist(x,y)/(s*s))*b", ALIASES, reduction_op="Sum", axis=1)
    h = pickle.loads(pickle.dumps(g))
    assert h.plan == g.plan
    np.testing.assert_array_equal(
        h(X, Y, B, SIGMA, backend="reference"), g(X, Y, B, SIGMA, backend="reference")
    )


def test_generic_shortcuts():
    s = generic_sum("SqDist(x,y)*b", "out = Vi(2)", *ALIASES[:3])
    assert s.plan.output_cat is Cat.I
    np.testing.assert_allclose(s(X, Y, B, backend="reference"), sqdist() @ B, rtol=1e-12)
    lse = generic_logsumexp("-SqDist(x,y)", "out = Vj(1)", *ALIASES[:2])
    want = np.log(np.exp(-sqdist()).sum(0))
    np.testing.assert_allclose(lse(X, Y, backend="reference")[:, 0], want, rtol=1e-12)
    am = generic_argmin("SqDist(x,y)", "ind = Vi(1)", *ALIASES[:2])
    np.testing.assert_array_equal(am(X, Y, backend="reference")[:, 0], sqdist().argmin(1))
    ak = generic_argkmin("SqDist(x,y)", "ind = Vi(4)", *ALIASES[:2])
    assert ak.plan.k == 4
    np.testing.assert_array_equal(
        ak(X, Y, backend="reference"), np.argsort(sqdist(), axis=1, kind="stable")[:, :4]
    )
