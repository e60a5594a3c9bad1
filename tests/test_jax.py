"""The JAX front end (``lazykernels.jax``): values against dense computations, derivatives
by ``jax.test_util.check_grads`` (order 2, forward and reverse), vmap against a loop, jit
against eager, lax.scan, ranges, solves and errors.

Derivative tests run on the reference backend (the rules are backend-independent and the
reference backend compiles nothing); the tests marked ``cpu`` run the compiled kernel.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from lazykernels.errors import ArgumentError, ShapeError  # noqa: E402
from lazykernels.jax import Genred, KernelSolve, LazyTensor, Vi, Vj  # noqa: E402

from .reduction_cases import REDUCTIONS, run_reduction_case  # noqa: E402

REF = "reference"


def _data(seed=0, m=5, n=6, d=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(m, d)).astype(dtype))
    y = jnp.asarray(rng.normal(size=(n, d)).astype(dtype))
    b = jnp.asarray(rng.uniform(0.5, 1.5, size=(n, 2)).astype(dtype))
    return x, y, b


def _sqd(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


@pytest.mark.parametrize("case", REDUCTIONS, ids=[c[0] for c in REDUCTIONS])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize(
    ("dtype", "batch"), [(np.float64, False), (np.float64, True), (np.float32, False)]
)
def test_every_reduction_against_dense(case, axis, dtype, batch):
    got_t, exp_t = run_reduction_case(case, axis, dtype, batch, LazyTensor, jnp.asarray)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for got, expected in zip(got_t, exp_t):
        assert isinstance(got, jax.Array)
        if np.issubdtype(expected.dtype, np.integer):
            np.testing.assert_array_equal(np.asarray(got), expected)
        else:
            assert got.dtype == dtype
            np.testing.assert_allclose(np.asarray(got), expected, rtol=tol, atol=tol)


# the smooth and the selection reductions, as functions of (x, y, b) with a dense twin
FORMS = {
    "Sum": (
        ("Exp(-SqDist(x, y)) * b", "Sum", None, None),
        lambda x, y, b: jnp.exp(-_sqd(x, y)) @ b,
    ),
    "LogSumExp": (
        ("-SqDist(x, y) + (x | y)", "LogSumExp", None, None),
        lambda x, y, b: jax.nn.logsumexp(-_sqd(x, y) + x @ y.T, axis=1)[:, None],
    ),
    "LogSumExpWeight": (
        ("-SqDist(x, y)", "LogSumExp", None, "b"),
        lambda x, y, b: jnp.log(jnp.exp(-_sqd(x, y)) @ b),
    ),
    "SumSoftMaxWeight": (
        ("-SqDist(x, y)", "SumSoftMaxWeight", None, "b * (x | y)"),
        lambda x, y, b: jax.nn.softmax(-_sqd(x, y), axis=1) @ b[None, :, :] * (x @ y.T)[:, :, None],
    ),
    "Min": (
        ("SqDist(x, y) * b", "Min", None, None),
        lambda x, y, b: (_sqd(x, y)[:, :, None] * b[None]).min(1),
    ),
    "KMin": (
        ("SqDist(x, y)", "KMin", 2, None),
        lambda x, y, b: jnp.sort(_sqd(x, y), axis=1)[:, :2],
    ),
}


def _genred(name, axis=1):
    (formula, red, k, weight) = FORMS[name][0]
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"]
    if weight is not None:
        return Genred(formula, aliases, red, axis=axis, formula2=weight)
    return Genred(formula, aliases, red, axis=axis, opt_arg=k)


def _dense_ssmw(x, y, b):  # softmax over j of F, weighted by b_j (x_i | y_j)
    w = jax.nn.softmax(-_sqd(x, y), axis=1)
    return jnp.einsum("ij,jc,ij->ic", w, b, x @ y.T)


FORMS["SumSoftMaxWeight"] = (FORMS["SumSoftMaxWeight"][0], _dense_ssmw)


@pytest.mark.parametrize("name", list(FORMS))
def test_values_and_derivatives_against_dense(name):
    g, dense = _genred(name), FORMS[name][1]
    x, y, b = _data()
    f = lambda x, y, b: g(x, y, b, backend=REF)
    np.testing.assert_allclose(f(x, y, b), dense(x, y, b), rtol=1e-12, atol=1e-12)
    loss = lambda fn: lambda x, y, b: jnp.sum(jnp.sin(fn(x, y, b)))
    for k in range(3):
        np.testing.assert_allclose(
            jax.grad(loss(f), k)(x, y, b), jax.grad(loss(dense), k)(x, y, b), atol=1e-10
        )
    hess, hess_dense = jax.hessian(loss(f), 0)(x, y, b), jax.hessian(loss(dense), 0)(x, y, b)
    np.testing.assert_allclose(hess, hess_dense, atol=1e-9)
    check_grads(f, (x, y, b), order=2, modes=["fwd", "rev"])


OTHER_AXIS = {  # the same formulas reduced over i: outputs indexed by j
    "Sum": lambda x, y, b: jnp.exp(-_sqd(x, y)).sum(0)[:, None] * b,
    "LogSumExpWeight": lambda x, y, b: jnp.log(jnp.exp(-_sqd(x, y)).sum(0)[:, None] * b),
    "SumSoftMaxWeight": lambda x, y, b: jnp.einsum(
        "ij,jc,ij->jc", jax.nn.softmax(-_sqd(x, y), axis=0), b, x @ y.T
    ),
}


@pytest.mark.parametrize("name", list(OTHER_AXIS))
def test_derivatives_over_the_other_axis(name):
    g, dense = _genred(name, axis=0), OTHER_AXIS[name]
    x, y, b = _data()
    f = lambda x, y, b: g(x, y, b, backend=REF)
    np.testing.assert_allclose(f(x, y, b), dense(x, y, b), rtol=1e-12, atol=1e-12)
    loss = lambda fn: lambda x, y, b: jnp.sum(jnp.cos(fn(x, y, b)))
    for k in range(3):
        np.testing.assert_allclose(
            jax.grad(loss(f), k)(x, y, b), jax.grad(loss(dense), k)(x, y, b), atol=1e-10
        )
    check_grads(f, (x, y, b), order=2, modes=["fwd", "rev"])


def test_log_sum_exp_weight_derivatives_run_no_extra_reduction():
    g = _genred("LogSumExpWeight")
    x, y, b = _data()
    f = lambda x: g(x, y, b, backend=REF)
    count = lambda fn, *a: str(jax.make_jaxpr(fn)(*a)).count("lazykernels_reduce")
    # the output and its tangent (normalised in one reduction: no second run at zero)
    assert count(lambda x, t: jax.jvp(f, (x,), (t,)), x, x) == 2
    # the output, the leading columns (read by the transpose and the vjp rule), the gradient
    assert count(jax.grad(lambda x: jnp.sum(f(x))), x) == 3
    t = jnp.ones_like(x)
    dense = lambda x: FORMS["LogSumExpWeight"][1](x, y, b)
    for got, want in zip(jax.jvp(f, (x,), (t,)), jax.jvp(dense, (x,), (t,))):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    ts = jnp.stack([t, x, -2 * x])  # vmap of the normalised tangent: one batched reduction
    tangent = lambda t: jax.jvp(f, (x,), (t,))[1]
    loop = jnp.stack([tangent(v) for v in ts])
    np.testing.assert_allclose(jax.vmap(tangent)(ts), loop, rtol=1e-12, atol=1e-12)


def test_parameter_gradient_and_batch_broadcast():
    g = Genred(
        "Exp(-s * SqDist(x, y)) * b", ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "s = Pm(1)"], axis=1
    )
    x, y, b = _data()
    xb = jnp.stack([x, 2 * x])  # batch of 2; y, b, s broadcast
    s = jnp.array([[0.7]])
    f = lambda xb, y, b, s: g(xb, y[None], b[None], s, backend=REF)

    def dense(xb, y, b, s):
        return jnp.stack([jnp.exp(-s[0, 0] * _sqd(xi, y)) @ b for xi in xb])

    np.testing.assert_allclose(f(xb, y, b, s), dense(xb, y, b, s), atol=1e-12)
    loss = lambda fn: lambda *a: jnp.sum(fn(*a) ** 2)
    for k in range(4):
        got = jax.grad(loss(f), k)(xb, y, b, s)
        np.testing.assert_allclose(got, jax.grad(loss(dense), k)(xb, y, b, s), atol=1e-10)
    check_grads(f, (xb, y, b, s), order=2, modes=["fwd", "rev"])


@pytest.mark.parametrize("name", ["Sum", "LogSumExp", "LogSumExpWeight", "Min", "KMin"])
def test_vmap_matches_a_loop(name):
    g = _genred(name)
    x, y, b = _data()
    xs = jnp.stack([x, x + 1.0, 0.5 * x], axis=1)  # the mapped axis in the middle
    f = lambda x, y, b: g(x, y, b, backend=REF)
    got = jax.vmap(f, in_axes=(1, None, None))(xs, y, b)
    loop = jnp.stack([f(xs[:, k], y, b) for k in range(3)])
    np.testing.assert_allclose(got, loop, atol=1e-13)
    # one batched reduction, no loop: the jaxpr holds a single reduction
    jaxpr = jax.make_jaxpr(jax.vmap(f, in_axes=(1, None, None)))(xs, y, b)
    assert str(jaxpr).count("lazykernels_reduce") == (2 if name in ("Min", "KMin") else 1)
    # and vmap of gradients
    gl = jax.vmap(jax.grad(lambda x, y, b: jnp.sum(f(x, y, b))), in_axes=(1, None, None))
    loop_g = jnp.stack([jax.grad(lambda x: jnp.sum(f(x, y, b)))(xs[:, k]) for k in range(3)])
    np.testing.assert_allclose(gl(xs, y, b), loop_g, atol=1e-12)


@pytest.mark.cpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_kernel_jit_against_eager_and_dense(dtype):
    g = _genred("LogSumExpWeight")
    x, y, b = _data(dtype=dtype)
    traces = []

    def f(x, y, b):
        traces.append(1)
        return g(x, y, b)

    jf = jax.jit(f)
    eager = f(x, y, b)
    jitted = jf(x, y, b)
    assert jitted.dtype == dtype
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    expected = FORMS["LogSumExpWeight"][1](*(a.astype(np.float64) for a in (x, y, b)))
    np.testing.assert_allclose(jitted, expected, rtol=tol, atol=tol)
    jf(x + 1, y, b)
    assert len(traces) == 2  # one eager call, one trace: compiled once per shape
    grad = jax.jit(jax.grad(lambda x: jnp.sum(g(x, y, b) ** 2)))(x)
    dense_grad = jax.grad(
        lambda x: jnp.sum(FORMS["LogSumExpWeight"][1](x, y.astype(x.dtype), b) ** 2)
    )(x.astype(np.float64))
    np.testing.assert_allclose(grad, dense_grad, rtol=10 * tol, atol=10 * tol)


def test_float32_derivatives_against_float64_dense():
    g = _genred("SumSoftMaxWeight")
    x, y, b = _data(dtype=np.float32)
    loss = lambda x: jnp.sum(g(x, y, b, backend=REF) ** 2)
    got = jax.grad(loss)(x)
    assert got.dtype == np.float32
    x64, y64, b64 = (a.astype(np.float64) for a in (x, y, b))
    expected = jax.grad(lambda x: jnp.sum(_dense_ssmw(x, y64, b64) ** 2))(x64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_sinkhorn_loop_under_jit_and_scan():
    x, y, _ = _data(m=7, n=9)
    eps = 0.5
    lse = Genred(
        "(g - SqDist(x, y) / e) ",
        ["x = Vi(3)", "y = Vj(3)", "g = Vj(1)", "e = Pm(1)"],
        "LogSumExp",
        axis=1,
    )
    lse_t = Genred(
        "(f - SqDist(x, y) / e)",
        ["x = Vi(3)", "y = Vj(3)", "f = Vi(1)", "e = Pm(1)"],
        "LogSumExp",
        axis=0,
    )
    e = jnp.array([eps])
    la, lb = -jnp.log(7.0), -jnp.log(9.0)

    def step(carry, _):
        f, g = carry
        f = -eps * (lse(x, y, g / eps + lb, e, backend=REF) + 0.0)
        g = -eps * lse_t(x, y, f / eps + la, e, backend=REF)
        return (f, g), None

    @jax.jit
    def run(x, y):
        (f, g), _ = jax.lax.scan(step, (jnp.zeros((7, 1)), jnp.zeros((9, 1))), None, length=20)
        return f, g

    f, g = run(x, y)
    C = _sqd(x, y)
    fd, gd = jnp.zeros(7), jnp.zeros(9)
    for _ in range(20):
        fd = -eps * jax.nn.logsumexp((gd[None, :] - C) / eps + lb, axis=1)
        gd = -eps * jax.nn.logsumexp((fd[:, None] - C) / eps + la, axis=0)
    np.testing.assert_allclose(f[:, 0], fd, atol=1e-12)
    np.testing.assert_allclose(g[:, 0], gd, atol=1e-12)


def test_index_dtype_follows_x64():
    g = Genred("SqDist(x, y)", ["x = Vi(3)", "y = Vj(3)"], "ArgMin", axis=1)
    x, y, _ = _data()
    assert g(x, y, backend=REF).dtype == np.int64
    expected = np.argmin(np.asarray(_sqd(x, y)), axis=1)
    with jax.enable_x64(False):
        x32, y32 = jnp.asarray(np.asarray(x, np.float32)), jnp.asarray(np.asarray(y, np.float32))
        out = jax.jit(lambda a, b: g(a, b, backend=REF))(x32, y32)
        assert out.dtype == np.int32
        np.testing.assert_array_equal(out[:, 0], expected)


def test_ranges_block_sparse_against_masked_dense():
    x, y, b = _data(m=6, n=6)
    g = _genred("Sum")
    ranges_i = np.array([[0, 3], [3, 6]])
    slices_i = np.array([1, 2])
    red_ranges_j = np.array([[0, 2], [4, 6]])
    ranges = (ranges_i, slices_i, red_ranges_j, red_ranges_j, slices_i, ranges_i)
    mask = np.zeros((6, 6))
    mask[0:3, 0:2] = 1
    mask[3:6, 4:6] = 1
    got = jax.jit(lambda x: g(x, y, b, backend=REF, ranges=ranges))(x)
    np.testing.assert_allclose(got, (jnp.exp(-_sqd(x, y)) * mask) @ b, atol=1e-13)
    dense_grad = jax.grad(lambda x: jnp.sum(((jnp.exp(-_sqd(x, y)) * mask) @ b) ** 2))(x)
    grad = jax.grad(lambda x: jnp.sum(g(x, y, b, backend=REF, ranges=ranges) ** 2))(x)
    np.testing.assert_allclose(grad, dense_grad, atol=1e-12)


def test_lazytensor_solve_and_its_gradient():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(8, 2)))
    rhs = jnp.asarray(rng.normal(size=(8, 1)))

    def solve(x, rhs):
        K = (-Vi(x).sqdist(Vj(x))).exp()
        return K.solve(Vi(rhs), alpha=0.5, eps=1e-12, backend=REF)

    def dense(x, rhs):
        return jnp.linalg.solve(jnp.exp(-_sqd(x, x)) + 0.5 * jnp.eye(8), rhs)

    np.testing.assert_allclose(solve(x, rhs), dense(x, rhs), atol=1e-9)
    np.testing.assert_allclose(jax.jit(solve)(x, rhs), dense(x, rhs), atol=1e-9)
    for k in range(2):
        got = jax.grad(lambda *a: jnp.sum(solve(*a) ** 2), k)(x, rhs)
        expected = jax.grad(lambda *a: jnp.sum(dense(*a) ** 2), k)(x, rhs)
        np.testing.assert_allclose(got, expected, atol=1e-7)
    ks = KernelSolve("Exp(-SqDist(x, y)) * b", ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)"], "b", axis=1)
    np.testing.assert_allclose(
        ks(x, x, rhs, alpha=0.5, eps=1e-12, backend=REF), dense(x, rhs), atol=1e-9
    )


def test_errors_are_ours_and_raised_at_trace_time():
    g = _genred("Sum")
    x, y, b = _data()
    with pytest.raises(ShapeError, match="'b'"):
        jax.jit(lambda x: g(x, y, b[:, :1]))(x)
    with pytest.raises(ArgumentError, match="out="):
        g(x, y, b, out=jnp.zeros((5, 2)))
    with pytest.raises(ArgumentError, match="expected 3 input arrays"):
        g(x, y)


def test_jit_lowers_to_the_ffi_custom_call_and_errors_come_back():
    g = _genred("Sum")
    x, y, b = _data()
    f = jax.jit(lambda x, y, b: g(x, y, b, backend=REF))
    assert "custom_call @lazykernels_reduce" in f.lower(x, y, b).as_text()
    with pytest.raises(Exception, match="contains NaN values"):
        f(x.at[0, 0].set(jnp.nan), y, b).block_until_ready()
    np.testing.assert_allclose(f(x, y, b), FORMS["Sum"][1](x, y, b), atol=1e-13)


def test_host_callback_lowering_matches():
    from lazykernels.jax import primitive

    g = _genred("Min")
    x, y, b = _data()
    plan = g.plan
    f = jax.jit(lambda *a: primitive._callback(*a, plan=plan, backend=REF, ranges=None))
    (values,) = f(x, y, b)
    np.testing.assert_allclose(values, FORMS["Min"][1](x, y, b), atol=1e-13)


def test_cluster_helpers_give_ranges_for_a_jitted_reduction():
    from lazykernels.jax import cluster
    from lazykernels.numpy import Genred as NumpyGenred
    from lazykernels.numpy import cluster as np_cluster

    rng = np.random.default_rng(5)
    x = jnp.asarray(np.concatenate([rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 8]))
    lab = cluster.grid_cluster(x, 4.0)
    np.testing.assert_array_equal(lab, np_cluster.grid_cluster(np.asarray(x), 4.0))
    xs, labs = cluster.sort_clusters(x, lab)
    ranges, centroids, _ = cluster.cluster_ranges_centroids(xs, labs)
    keep = ((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(-1) < 16
    ranges_ij = cluster.from_matrix(ranges, ranges, keep)
    formula, aliases = "Exp(-SqDist(x, y))", ["x = Vi(2)", "y = Vj(2)"]
    g = Genred(formula, aliases, axis=1)
    got = jax.jit(lambda x: g(x, x, backend=REF, ranges=ranges_ij))(jnp.asarray(xs))
    want = NumpyGenred(formula, aliases, axis=1)(
        np.asarray(xs), np.asarray(xs), backend=REF, ranges=ranges_ij
    )
    np.testing.assert_allclose(got, want, atol=1e-13)
    with pytest.raises(ArgumentError, match="x must be a concrete JAX array.*outside jax.jit"):
        jax.jit(lambda x: cluster.grid_cluster(x, 1.0))(x)


def test_reduction_inside_a_while_loop_under_jit():
    x, y, _ = _data(m=7, n=9)
    eps, lb = 0.5, -jnp.log(9.0)
    aliases = ["x = Vi(3)", "y = Vj(3)", "g = Vj(1)", "e = Pm(1)"]
    lse = Genred("g - SqDist(x, y) / e", aliases, "LogSumExp", axis=1)
    e = jnp.array([eps])
    g = jnp.asarray(np.random.default_rng(1).normal(size=(9, 1)))

    @jax.jit
    def soft_c_transform_until_fixed(f):  # f <- (f + softmin_j(C - g)) / 2 until it settles
        def body(state):
            f, _, k = state
            new = 0.5 * (f - eps * lse(x, y, g / eps + lb, e, backend=REF))
            return new, jnp.abs(new - f).max(), k + 1

        f, _, k = jax.lax.while_loop(lambda s: s[1] > 1e-14, body, (f, 1.0, 0))
        return f, k

    f, k = soft_c_transform_until_fixed(jnp.zeros((7, 1)))
    want = -eps * jax.nn.logsumexp((g[:, 0][None, :] - _sqd(x, y)) / eps + lb, axis=1)
    np.testing.assert_allclose(f[:, 0], want, atol=1e-12)
    assert int(k) > 5


def test_raw_shift_exp_pseudo_derivatives_through_m_plus_log_s():
    # KeOps's rule for the raw [m, s] state: m held constant, exact through m + log s
    g = Genred(
        "-SqDist(x, y)",
        ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"],
        "Max_SumShiftExpWeight",
        axis=1,
        formula2="b",
    )
    x, y, b = _data(seed=4)
    flattened = lambda x, y, b: (lambda st: st[:, :1] + jnp.log(st[:, 1:]))(g(x, y, b, backend=REF))
    dense = FORMS["LogSumExpWeight"][1]
    loss = lambda fn: lambda x, y, b: jnp.sum(jnp.sin(fn(x, y, b)))
    for k in range(3):
        np.testing.assert_allclose(
            jax.grad(loss(flattened), k)(x, y, b), jax.grad(loss(dense), k)(x, y, b), atol=1e-10
        )
    check_grads(flattened, (x, y, b), order=2, modes=["fwd", "rev"])
