"""The Python half of the R package (lazykernels.numpy.r_bridge), without R.

The R package's own tests (r/tests/testthat, run by .ci/run) check the whole path from R;
these check the bridge's conventions one by one against dense NumPy, on the reference
backend: the byte layout R writes and reads, 1-based indices, RKeOps's formula strings and
gradients, R's index names and errors as data.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import ArgumentError
from lazykernels.numpy import r_bridge as rb

REF = "reference"
GAUSS = "Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 0)"
GAUSS_ARGS = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "s = Pm(1)"]


def r_bytes(matrix: np.ndarray, dtype=np.float64) -> bytearray:
    """What R's writeBin writes for ``matrix``: its values in column-major order."""
    return bytearray(np.asarray(matrix, dtype=dtype).tobytes(order="F"))


def r_read(result: tuple) -> np.ndarray:
    """What the R side's readBin + dim<- makes of a :func:`rb.to_r` result."""
    buf, dim, kind = result
    dtype = {"integer": np.int32, "float32": np.float32, "float64": np.float64}[kind]
    return np.frombuffer(buf, dtype=dtype).reshape(dim, order="F")


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.random((7, 3)), rng.random((9, 3)), rng.random((9, 1)), np.array([0.4])


# --- data crossing ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (4, 1), (1, 6)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_r_reads_column_major_bytes_as_points_by_rows(shape, dtype):
    m = np.arange(np.prod(shape), dtype=dtype).reshape(shape) / 7
    got = rb.from_r(r_bytes(m, dtype), *shape, dtype)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, m)


def test_from_r_inner_row_takes_one_point_per_column_without_a_copy():
    m = np.random.default_rng(1).random((3, 8))  # D x n, as R's inner_dim = "row"
    buf = r_bytes(m)
    got = rb.from_r(buf, 3, 8, "float64", "row")
    np.testing.assert_array_equal(got, m.T)
    assert got.flags.c_contiguous and np.shares_memory(got, np.frombuffer(buf))


def test_from_r_refuses_bad_dtype_and_inner():
    with pytest.raises(ArgumentError, match="float32"):
        rb.from_r(bytearray(8), 1, 1, "float16")
    with pytest.raises(ArgumentError, match="inner_dim"):
        rb.from_r(bytearray(8), 1, 1, "float64", "diag")


def test_to_r_round_trips_floats_and_shifts_indices_to_one_based():
    m = np.random.default_rng(2).random((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(r_read(rb.to_r(m)), m)
    assert rb.to_r(m)[2] == "float32"
    idx = np.array([[0, 3], [2, 1], [4, 0]])
    got = r_read(rb.to_r(idx))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, idx + 1)
    np.testing.assert_array_equal(r_read(rb.to_r(idx, "row")), (idx + 1).T)
    cube = np.arange(24.0).reshape(2, 3, 4)  # Kmin of a D > 1 variable: n x K x D
    np.testing.assert_array_equal(r_read(rb.to_r(cube)), cube)


def test_vector_from_r():
    np.testing.assert_array_equal(rb.vector_from_r(r_bytes([1.5, 2.0]), "float64"), [1.5, 2.0])


# --- keops_kernel / keops_grad ---------------------------------------------------------------


def test_operator_runs_a_gaussian_sum_and_lists_its_inputs(data):
    x, y, b, s = data
    op = rb.kernel(GAUSS, GAUSS_ARGS)
    assert op.inputs() == [("x", "Vi", 3), ("y", "Vj", 3), ("b", "Vj", 1), ("s", "Pm", 1)]
    (out,) = op.run([x, y, b, s], REF)
    np.testing.assert_allclose(out, np.exp(-sqdist(x, y) / s) @ b, rtol=1e-13)
    (back,) = rb.run_operator(op, [x, y, b, s], "row", REF)
    np.testing.assert_allclose(r_read(back), out.T, rtol=1e-13)


def test_tag_one_reduces_over_i(data):
    x, y, _, s = data
    a = np.random.default_rng(3).random((7, 1))
    op = rb.kernel(
        "Sum_Reduction(Exp(-SqDist(x, y) / s) * a, 1)",
        ["x = Vi(3)", "y = Vj(3)", "a = Vi(1)", "s = Pm(1)"],
    )
    (out,) = op.run([x, y, a, s], REF)
    np.testing.assert_allclose(out, np.exp(-sqdist(x, y) / s).T @ a, rtol=1e-13)


def test_grad_matches_the_dense_gradient_and_finite_differences(data):
    x, y, b, s = data
    op = rb.kernel(GAUSS, GAUSS_ARGS)
    eta = np.random.default_rng(4).random((7, 1))
    w = eta * np.exp(-sqdist(x, y) / s) * b.T  # w_ij = eta_i K_ij b_j
    gx_dense = -2 / s * (w.sum(1, keepdims=True) * x - w @ y)
    dx = rb.grad(op, "x")
    assert [n for n, *_ in dx.inputs()] == ["x", "y", "b", "s", "eta"]
    np.testing.assert_allclose(dx.run([x, y, b, s, eta], REF)[0], gx_dense, rtol=1e-12)
    np.testing.assert_allclose(rb.grad(op, 1).run([x, y, b, s, eta], REF)[0], gx_dense)
    (gs,) = rb.grad(op, "s").run([x, y, b, s, eta], REF)
    h = 1e-6

    def f(t):
        return float((eta * op.run([x, y, b, np.array([t])], REF)[0]).sum())

    assert gs.shape == (1,)
    np.testing.assert_allclose(gs[0], (f(s[0] + h) - f(s[0] - h)) / (2 * h), rtol=1e-6)


def test_grad_of_logsumexp_uses_the_forward_output(data):
    x, y, _, s = data
    op = rb.kernel(
        "LogSumExp_Reduction(-SqDist(x, y) / s, 0)", ["x = Vi(3)", "y = Vj(3)", "s = Pm(1)"]
    )
    eta = np.random.default_rng(5).random((7, 1))
    k = np.exp(-sqdist(x, y) / s)
    p = k / k.sum(1, keepdims=True)
    expected = -2 / s * eta * (x - p @ y)
    grad = rb.grad(op, "x")
    np.testing.assert_allclose(grad.run([x, y, s, eta], REF)[0], expected, rtol=1e-12)
    # what R matches its arguments against: the forward inputs, then eta (i-indexed, dim 1)
    assert grad.inputs() == [("x", "Vi", 3), ("y", "Vj", 3), ("s", "Pm", 1), ("eta", "Vi", 1)]


def test_grad_refuses_bad_variables_and_a_second_grad():
    op = rb.kernel(GAUSS, GAUSS_ARGS)
    with pytest.raises(ArgumentError, match="no input named 'z'"):
        op.grad("z")
    with pytest.raises(ArgumentError, match="1-based"):
        op.grad(0)
    with pytest.raises(ArgumentError, match="1-based"):
        op.grad(5)
    with pytest.raises(ArgumentError, match="name or a position"):
        op.grad(1.5)
    with pytest.raises(ArgumentError, match="already a gradient"):
        op.grad("x").grad("y")


def test_operator_refuses_a_wrong_number_of_inputs(data):
    with pytest.raises(ArgumentError, match="takes 4 inputs"):
        rb.kernel(GAUSS, GAUSS_ARGS).run(list(data[:3]), REF)


# --- the LazyTensor entries ------------------------------------------------------------------


def test_whole_r_exponents_are_integer_powers():
    x = rb.variable(np.ones((3, 2)), "i")
    assert "Powf" in x.__pow__(2.0).formula  # what Python's own float exponent gives
    assert rb.binary("^", x, 2.0).formula == x.square().formula
    assert rb.binary("^", x, 3.0).formula == x.__pow__(3).formula
    assert "Powf" in rb.binary("^", x, 2.5).formula
    assert rb._r_exponent(2.0) == 2 and isinstance(rb._r_exponent(2.0), int)
    assert rb._r_exponent(0.5) == 0.5 and rb._r_exponent(True) is True


def test_reduce_names_the_index_reduced_over(data):
    x, y, *_ = data
    d = rb.binary("sqdist", rb.variable(x, "i"), rb.variable(y, "j"))
    dense = sqdist(x, y)
    (over_j,) = rb.reduce("argKmin", d, "j", k=3, backend=REF)
    np.testing.assert_array_equal(r_read(over_j), np.argsort(dense, 1)[:, :3] + 1)
    (over_i,) = rb.reduce("min", d, "i", backend=REF)
    np.testing.assert_allclose(r_read(over_i), dense.min(0)[:, None], rtol=1e-13)
    with pytest.raises(ArgumentError, match="index reduced over"):
        rb.reduce("sum", d, "k")


def test_elem_and_extract_are_one_based():
    m = np.arange(12.0).reshape(4, 3)
    x = rb.variable(m, "i")
    ones = np.ones((1, 1))
    (e,) = rb.matmul(rb.elem(x, 3) * rb.variable(ones, "j"), ones, REF)
    np.testing.assert_array_equal(r_read(e), m[:, 2:3])
    (ex,) = rb.reduce("sum", rb.extract(x, 2, 2) * rb.variable(ones, "j"), "j", backend=REF)
    np.testing.assert_array_equal(r_read(ex), m[:, 1:3])
    with pytest.raises(ArgumentError, match="1-based"):
        rb.elem(x, 0)
    with pytest.raises(ArgumentError, match="1-based"):
        rb.extract(x, 2, 3)


def test_solve_matches_the_dense_ridge_solution():
    z = np.random.default_rng(6).random((30, 2))
    k = rb.unary("exp", -rb.binary("sqdist", rb.variable(z, "i"), rb.variable(z, "j")) / 0.2)
    b = np.sin(5 * z[:, :1])
    (a,) = rb.solve(k, b, 0.5, 1e-12, None, REF)
    dense = np.exp(-sqdist(z, z) / 0.2) + 0.5 * np.eye(30)
    np.testing.assert_allclose(r_read(a), np.linalg.solve(dense, b), rtol=1e-8, atol=1e-10)


def test_variable_refuses_an_unknown_index():
    with pytest.raises(ArgumentError, match="index"):
        rb.variable(np.ones((2, 2)), "k")


# --- errors as data --------------------------------------------------------------------------


def test_call_returns_our_errors_as_classes_and_message_with_the_caret():
    err = rb.call("kernel", "Sum_Reduction(Exp(x) +, 0)", ["x = Vi(1)"])
    assert isinstance(err, rb.RError)
    assert err.classes[0] == "lazykernels_FormulaError"
    assert err.classes[-1] == "lazykernels_error"
    assert "^" in err.message
    assert isinstance(rb.call("kernel", GAUSS, GAUSS_ARGS), rb.Operator)


def test_call_lets_bugs_propagate():
    with pytest.raises(KeyError):
        rb.call("no such entry")
