"""The CPU lowering of ``lazykernels.jax`` through its two XLA FFI handlers, and complex data.

The native handler (C++ built by our JIT against jaxlib's FFI headers) and the ctypes one
run the same compiled kernel: their results must be identical, and equal to dense
``jax.numpy``; the lowering picks the native one for the compiled backend and the ctypes
one for the rest. Complex arrays go through ComplexLazyTensor (real pairs); Genred refuses
them as the NumPy and torch front ends do.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from lazykernels.errors import ArgumentError, CompileError, DtypeError  # noqa: E402
from lazykernels.jax import ComplexLazyTensor, Genred, LazyTensor, Vi, Vj, ffi_native  # noqa: E402

from . import test_lazytensor_complex as complex_cases  # noqa: E402

NATIVE, CTYPES = "custom_call @lazykernels_reduce(", "custom_call @lazykernels_reduce_py("


def _sqd(x, y):
    return ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)


def _ranges():
    ranges_i, slices_i = np.array([[0, 3], [3, 6]]), np.array([1, 2])
    red_j = np.array([[0, 2], [4, 6]])
    mask = np.zeros((6, 6))
    mask[0:3, 0:2] = mask[3:6, 4:6] = 1
    return (ranges_i, slices_i, red_j, red_j, slices_i, ranges_i), jnp.asarray(mask)


def _case_sum(dtype):
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"]
    g = Genred("Exp(-s * SqDist(x, y)) * b", aliases, axis=1)
    rng = np.random.default_rng(1)
    # batch (2, 3): x, y and b broadcast over one batch dimension each, s over both
    x = rng.normal(size=(2, 1, 5, 3)).astype(dtype)
    y = rng.normal(size=(1, 3, 6, 3)).astype(dtype)
    b = rng.normal(size=(2, 3, 6, 2)).astype(dtype)
    s = np.full((1, 1, 1), 0.7, dtype)
    dense = lambda x, y, b, s: jnp.exp(-s[..., None] * _sqd(x, y)) @ b
    return g, (x, y, b, s), dense


def _case_argkmin(dtype):
    g = Genred("SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)"], "KMin_ArgKMin", axis=1, opt_arg=3)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 2)).astype(dtype), rng.normal(size=(9, 2)).astype(dtype)

    def dense(x, y):
        d = _sqd(x, y)
        order = jnp.argsort(d, axis=1)[:, :3]
        return jnp.take_along_axis(d, order, axis=1), order

    return g, (x, y), dense


def _case_ranges(dtype):
    g = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    ranges, mask = _ranges()
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 2)).astype(dtype), rng.normal(size=(6, 2)).astype(dtype)
    b = rng.normal(size=(6, 1)).astype(dtype)
    dense = lambda x, y, b: (jnp.exp(-_sqd(x, y)) * mask) @ b
    return lambda *a: g(*a, ranges=ranges), (x, y, b), dense


def _case_lse_weight(dtype):
    g = Genred(
        "-SqDist(x, y)", ["x = Vi(2)", "y = Vj(2)", "b = Vi(2)"], "LogSumExp", 0, formula2="b"
    )
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(4, 2)).astype(dtype), rng.normal(size=(5, 2)).astype(dtype)
    b = rng.uniform(0.5, 1.5, size=(4, 2)).astype(dtype)  # over i: output indexed by j
    dense = lambda x, y, b: jnp.log(jnp.exp(-_sqd(x, y)).T @ b)
    return g, (x, y, b), dense


CASES = {"sum": _case_sum, "argkmin": _case_argkmin, "ranges": _case_ranges}
CASES["lse_weight"] = _case_lse_weight


def _lowered(fn, args):
    """The lowered text of a fresh jit of ``fn`` (jit caches its lowerings per function)."""
    return jax.jit(lambda *a: fn(*a)).lower(*args).as_text()


def _run_both(fn, args, monkeypatch):
    """(native results, ctypes results), each from a fresh jit (lowered anew)."""
    assert NATIVE in _lowered(fn, args)
    native = jax.jit(lambda *a: fn(*a))(*args)
    with monkeypatch.context() as m:
        m.setenv("LAZYKERNELS_JAX_FFI", "ctypes")
        text = _lowered(fn, args)
        assert CTYPES in text and NATIVE not in text
        other = jax.jit(lambda *a: fn(*a))(*args)
    return native, other


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.cpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_native_handler_equals_ctypes_handler_and_dense(name, dtype, monkeypatch):
    fn, data, dense = CASES[name](dtype)
    args = [jnp.asarray(a) for a in data]
    native, other = _run_both(fn, args, monkeypatch)
    eager = fn(*args)  # eager: the same handler, through a one-reduction XLA program
    want = dense(*[a.astype(np.float64) for a in args])
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for got, ctypes_got, eager_got, expected in zip(
        _outputs(native), _outputs(other), _outputs(eager), _outputs(want)
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(ctypes_got))
        np.testing.assert_array_equal(np.asarray(got), np.asarray(eager_got))
        if got.dtype.kind == "i":
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, expected)
        else:
            assert got.dtype == dtype
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.cpu
def test_native_handler_narrows_indices_to_int32():
    fn, data, dense = _case_argkmin(np.float32)
    with jax.enable_x64(False):
        args = [jnp.asarray(a) for a in data]
        assert NATIVE in _lowered(fn, args)
        values, index = jax.jit(fn)(*args)
        assert index.dtype == np.int32
        eager_values, eager_index = fn(*args)
    want_values, want_index = dense(*[np.asarray(a, np.float64) for a in data])
    np.testing.assert_array_equal(index, want_index)
    np.testing.assert_array_equal(eager_index, want_index)
    np.testing.assert_allclose(values, want_values, rtol=2e-5, atol=2e-6)
    np.testing.assert_array_equal(eager_values, values)


@pytest.mark.cpu
def test_native_handler_reports_nan_inputs_and_gradients_run_natively():
    g = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    rng = np.random.default_rng(5)
    x, y, b = (jnp.asarray(rng.normal(size=s)) for s in ((4, 2), (5, 2), (5, 1)))
    f = jax.jit(lambda x, y, b: g(x, y, b))
    with pytest.raises(Exception, match=r"ArgumentError: argument 'y' .*contains NaN values"):
        f(x, y.at[1, 0].set(jnp.nan), b).block_until_ready()
    with pytest.raises(ArgumentError, match="argument 'b' .*contains NaN values"):
        g(x, y, b.at[0, 0].set(jnp.nan), backend="reference")
    loss = lambda x: jnp.sum(jnp.sin(g(x, y, b)))
    grad = jax.jit(jax.grad(loss))
    assert jax.jit(jax.grad(loss)).lower(x).as_text().count(NATIVE) >= 2
    dense = lambda x: jnp.sum(jnp.sin(jnp.exp(-_sqd(x, y)) @ b))
    np.testing.assert_allclose(grad(x), jax.grad(dense)(x), atol=1e-12)
    np.testing.assert_allclose(jax.grad(loss)(x), jax.grad(dense)(x), atol=1e-12)


@pytest.mark.cpu
def test_other_calls_take_the_ctypes_handler():
    g = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], axis=1)
    rng = np.random.default_rng(6)
    x, y, b = (rng.normal(size=s) for s in ((4, 2), (5, 2), (5, 1)))
    reference = lambda *a: g(*a, backend="reference")
    assert CTYPES in _lowered(reference, (x, y, b))
    half = [jnp.asarray(a, jnp.float16) for a in (x, y, b)]
    assert CTYPES in _lowered(g, half)
    got = jax.jit(g)(*half)
    assert got.dtype == jnp.float16
    want = jnp.exp(-_sqd(*[h.astype(np.float64) for h in half[:2]])) @ half[2].astype(np.float64)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-2, atol=1e-2)
    empty = (jnp.asarray(x), jnp.zeros((0, 2)), jnp.zeros((0, 1)))
    assert CTYPES in _lowered(g, empty)
    np.testing.assert_array_equal(jax.jit(g)(*empty), np.zeros((4, 1)))


@pytest.mark.cpu
def test_a_handler_that_cannot_be_built_falls_back_with_a_warning(monkeypatch):
    def missing():
        raise CompileError("the XLA FFI headers of jaxlib are missing: (test)")

    monkeypatch.setattr(ffi_native, "_STATE", {})
    monkeypatch.setattr(ffi_native, "_KEYS", {})
    monkeypatch.setattr(ffi_native, "_headers", missing)
    g = Genred("SqDist(x, y) * 2", ["x = Vi(2)", "y = Vj(2)"], "Min", axis=1)
    x, y = jnp.ones((3, 2)), jnp.zeros((4, 2))
    with pytest.warns(RuntimeWarning, match="ctypes handler runs instead.*headers"):
        text = _lowered(g, (x, y))
    assert CTYPES in text and NATIVE not in text
    np.testing.assert_array_equal(jax.jit(g)(x, y), np.full((3, 1), 4.0))


@pytest.mark.cpu
def test_native_handler_from_several_threads():
    g = Genred("Exp(-SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"], axis=1)
    rng = np.random.default_rng(7)
    y, b = jnp.asarray(rng.normal(size=(300, 3))), jnp.asarray(rng.normal(size=(300, 1)))
    xs = [jnp.asarray(rng.normal(size=(200, 3))) for _ in range(4)]
    f = jax.jit(lambda x: g(x, y, b))
    want = [np.asarray(jnp.exp(-_sqd(x, y)) @ b) for x in xs]
    got: dict[int, list] = {}

    def work(k):
        got[k] = [np.asarray(f(xs[(k + r) % 4])) for r in range(20)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        for r, value in enumerate(got[k]):
            np.testing.assert_allclose(value, want[(k + r) % 4], atol=1e-12)


def test_genred_refuses_complex_arrays_like_numpy():
    g = Genred("x * y", ["x = Vi(2)", "y = Vj(2)"], axis=1)
    z = jnp.ones((3, 2), jnp.complex128)
    for call in (lambda: g(z, z, backend="reference"), lambda: jax.jit(g)(z, z)):
        with pytest.raises(DtypeError, match=r"argument 'x' .*complex arrays are not supported"):
            call()


COMPLEX = complex_cases.CASES[::3]


@pytest.mark.parametrize("case", COMPLEX, ids=[c[0] for c in COMPLEX])
def test_complex_lazytensor_under_jit_against_dense(case):
    _, lazy, dense = case
    data = complex_cases.make_data(np.float64, batch=True)

    def formula(arrays):
        L = {name: LazyTensor(v) for name, v in arrays.items()}
        L["ZR"] = ComplexLazyTensor(arrays["S"])  # real data in a complex LazyTensor
        return lazy(L)

    arrays = {k: jnp.asarray(v) for k, v in data.items()}
    shape = formula(arrays)
    reduce = lambda arrays: formula(arrays).sum(axis=shape.nbatchdims + 1, backend="reference")
    got = jax.jit(reduce)(arrays)
    full = (*shape.batchdims, shape.ni or 1, shape.nj or 1, shape._shape[-1])
    expected = np.broadcast_to(dense(data), full).sum(-2)
    assert got.dtype == (np.complex128 if shape.is_complex else np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reduce(arrays), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.cpu
def test_complex_lazytensor_compiled_jitted_and_its_gradient():
    rng = np.random.default_rng(8)
    z = jnp.asarray(rng.normal(size=(4, 2)) + 1j * rng.normal(size=(4, 2)))
    u = jnp.asarray(rng.normal(size=(3, 2)) + 1j * rng.normal(size=(3, 2)))
    lazy = lambda z, u: (Vi(z) * Vj(u)).exp().sum(axis=1)
    dense = lambda z, u: jnp.exp(z[:, None] * u[None]).sum(1)
    assert NATIVE in _lowered(lazy, (z, u))
    got = jax.jit(lazy)(z, u)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, dense(z, u), rtol=1e-12)
    np.testing.assert_allclose(lazy(z, u), dense(z, u), rtol=1e-12)
    real = lambda fn: lambda z: jnp.sum(fn(z, u).real ** 2)
    np.testing.assert_allclose(
        jax.jit(jax.grad(real(lazy)))(z), jax.grad(real(dense))(z), rtol=1e-10, atol=1e-12
    )
