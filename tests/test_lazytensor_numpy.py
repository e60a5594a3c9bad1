"""NumPy LazyTensor: every formula-building method and operator against dense NumPy.

The method table ``CASES`` lives in :mod:`tests.lazytensor_cases` (shared with the PyTorch
LazyTensor tests): each formula is reduced with a Sum over j on the reference backend and
compared with the dense values summed over j, in float32 and float64, with and without a
batch dimension.
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.numpy import LazyTensor, Pm, Vi, Vj

from .lazytensor_cases import CASES, TOL, run_case


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_method_against_dense(case, dtype, batch):
    got, expected = run_case(case, dtype, batch, LazyTensor, np.asarray)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, **TOL[dtype])


def test_cases_cover_distinct_ids():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# --- construction and properties --------------------------------------------------------


def test_construction_categories_and_shapes():
    x = np.zeros((5, 3))
    xi = LazyTensor(x, axis=0)
    yj = LazyTensor(np.zeros((4, 3)), axis=1)
    p = LazyTensor(np.zeros(3))
    assert (xi.axis, yj.axis, p.axis) == (0, 1, 2)
    assert (xi.ni, xi.nj, yj.ni, yj.nj) == (5, None, None, 4)
    K = xi.sqdist(yj)
    assert K.shape == (5, 4) and K._shape == (5, 4, 1) and K.ndim == 1 and K.dim() == 3
    assert (xi * yj).shape == (5, 4, 3)
    assert K.dtype == np.float64 and K.dtype == "float64"
    b = LazyTensor(np.zeros((2, 1, 4, 3)))
    assert b.batchdims == (2,) and b.nbatchdims == 1 and b.nj == 4 and b.axis == 1
    assert (b + xi.sqdist(xi)).shape == (2, 5, 4, 3) and (b + 1).shape == (2, 1, 4, 3)
    bp = LazyTensor(np.zeros((2, 1, 1, 3)))
    assert bp.axis == 2 and bp.batchdims == (2,)
    assert Vi(x).axis == 0 and Vj(x).axis == 1 and Pm(np.ones(2)).axis == 2
    assert LazyTensor(np.float32(2.0)).axis == 2  # a NumPy scalar becomes a parameter
    assert LazyTensor(np.array(2.0)).ndim == 1  # a 0-d array too
    assert LazyTensor(np.ones(4), axis=0).ni == 4  # a 1-D array along i
    assert LazyTensor(np.ones((3, 2)), axis=2).batchdims == (3,)
    assert LazyTensor([1.0, 2.0]).ndim == 2


def test_symbolic_variables_and_properties():
    xs, ys = Vi(0, 3), Vj(1, 3)
    assert xs.symbolic_variables == ((0, 3, 0),)
    K = (xs - ys).sqnorm2()
    assert K.symbolic_variables == ((0, 3, 0), (1, 3, 1))
    x = np.ones((2, 3))
    bound = Vi(x) * 2.0
    assert bound.variables() == bound.variables and len(bound.variables) == 2
    assert bound.variables[0] is x and bound.variables[1] == 2.0
    assert LazyTensor((0, 2, 1)).axis == 1
    text = str(K)
    assert "Var(0,3,0)" in text and "symbolic variables: Vi(0,3), Vj(1,3)" in text


def test_str_shows_formula_and_reduction():
    x = Vi(np.ones((3, 2)))
    assert "formula: Exp(Var(0,2,0))" in str(x.exp())
    red = x.exp().sum(axis=0, call=False)
    assert "reduction: Sum (axis=0)" in str(red)


def test_shortcuts():
    x, y = Vi(np.ones((3, 2))), Vj(np.ones((4, 2)))
    assert x + 0 is x and 0 + x is x and x - 0 is x and x * 1 is x and 1 * x is x and x / 1 is x
    assert x * 0 == 0 and isinstance(x * 0, int) and 0 * x == 0 and 0 / x == 0
    assert (-1 * x).node.op.name == "Minus" and (0 - x).node.op.name == "Minus"
    assert (1 / x).node.op.name == "Inv"
    assert (x == y).node.op.name == "Equal" and (x != y).node.op.name == "NotEqual"
    assert LazyTensor.__hash__ is None
    assert (x**2).node.op.name == "Square" and (x**0.5).node.op.name == "Sqrt"
    assert (x.clamp(0, 1)).node.op.name == "ClampInt"
    assert (x.clamp(0.0, 1)).node.op.name == "Clamp"
    assert x[:, :, 1].node is x[1].node


def test_ndarray_operand_dispatches_to_lazytensor():
    x = Vi(np.arange(6.0).reshape(3, 2))
    res = np.ones(2) + x  # __array_ufunc__ = None: NumPy defers to the LazyTensor
    assert isinstance(res, LazyTensor)
    np.testing.assert_allclose(
        res.sum(axis=1, backend="reference"), np.arange(6.0).reshape(3, 2) + 1
    )


def test_float_parameter_takes_the_dtype_of_the_arrays():
    x = np.arange(3, dtype=np.float32).reshape(3, 1)
    res = (Vi(x) * 0.1).sum(axis=1, backend="reference")
    assert res.dtype == np.float32
    np.testing.assert_allclose(res, x * np.float32(0.1), rtol=1e-6)


def test_transpose_swaps_i_and_j():
    rng = np.random.default_rng(3)
    x, y, b = rng.normal(size=(5, 2)), rng.normal(size=(4, 2)), rng.normal(size=(5, 1))
    K = (-Vi(x).sqdist(Vj(y))).exp()
    dense = np.exp(-((x[:, None] - y[None]) ** 2).sum(-1))
    assert K.T.shape == (4, 5) and K.t().ni == 4
    np.testing.assert_allclose(K.T.sum(axis=1, backend="reference")[:, 0], dense.sum(0))
    np.testing.assert_allclose((K.T * Vj(b)).sum(axis=1, backend="reference"), dense.T @ b)
    sym = (Vi(0, 2) - Vj(1, 2)).sqnorm2().T
    assert sym.symbolic_variables == ((0, 2, 1), (1, 2, 0))


def test_batch_dims_broadcast_with_unbatched_operands():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 1, 3))
    y = rng.normal(size=(4, 3))
    p = rng.normal(size=(2, 1, 1, 1))
    K = LazyTensor(x).sqdist(Vj(y)) * LazyTensor(p)
    assert K.batchdims == (2,)
    dense = ((x - y[None, None]) ** 2).sum(-1) * p[..., 0]
    np.testing.assert_allclose(K.sum(axis=2, backend="reference")[..., 0], dense.sum(-1))
