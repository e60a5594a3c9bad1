"""Every bad option or input gets a clear exception, before any backend runs."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import (
    ArgumentError,
    BackendError,
    CompatibilityError,
    DimensionError,
    DtypeError,
    FormulaError,
    ShapeError,
)
from lazykernels.formula import Cat, var
from lazykernels.numpy import Genred, generic_sum

ALIASES = ["x = Vi(3)", "y = Vj(3)", "p = Pm(2)"]
X = np.ones((5, 3))
Y = np.ones((4, 3))
P = np.ones(2)


def gsum(**kw):
    kw.setdefault("axis", 1)
    return Genred("SqDist(x,y)*p", ALIASES, **kw)


def call(g, *args, **kw):
    kw.setdefault("backend", "reference")
    return g(*args, **kw)


# --- constructor options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reduction_op": "Summ"}, ArgumentError, "unknown reduction_op 'Summ'"),
        ({"reduction_op": "MinArgMin"}, ArgumentError, "did you mean 'Min_ArgMin'"),
        ({"axis": 2}, ArgumentError, "axis must be 0 .* or 1"),
        ({"reduction_op": "KMin"}, ArgumentError, "KMin needs K: pass opt_arg"),
        ({"reduction_op": "ArgKMin", "opt_arg": 0}, ArgumentError, "positive integer, got 0"),
        ({"opt_arg": 3}, ArgumentError, "Sum takes no opt_arg"),
        ({"reduction_op": "Min", "formula2": "x"}, ArgumentError, "Min takes no formula2"),
        ({"dtype_acc": "float128"}, ArgumentError, "dtype_acc must be one of"),
        (
            {"dtype_acc": "float64", "use_double_acc": True},
            ArgumentError,
            "cannot both be set",
        ),
        ({"reduction_op": "Max", "use_double_acc": True}, ArgumentError, "not to Max"),
        ({"sum_scheme": "pairwise"}, ArgumentError, "sum_scheme must be one of"),
        (
            {"reduction_op": "ArgMin", "sum_scheme": "kahan_scheme"},
            ArgumentError,
            "kahan_scheme' applies only to Sum",
        ),
    ],
)
def test_bad_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        gsum(**kwargs)


@pytest.mark.parametrize("name", ["LogSumExpWeight", "SumSoftMaxWeight", "SoftMax"])
def test_weighted_reductions_need_formula2(name):
    with pytest.raises(ArgumentError, match="needs a weight formula: pass formula2"):
        Genred("-SqDist(x,y)", ALIASES, reduction_op=name)


def test_log_sum_exp_needs_a_scalar_formula():
    with pytest.raises(DimensionError, match="formula must be scalar .*got 3"):
        Genred("x-y", ALIASES, reduction_op="LogSumExp")


def test_direct_sum_is_allowed_everywhere():
    assert gsum(reduction_op="ArgMin", sum_scheme="direct_sum").plan.sum_scheme == "direct_sum"


def test_alias_positions_must_agree_and_have_no_gaps():
    with pytest.raises(FormulaError, match="conflicts with alias 'x'"):  # the parser's check
        Genred("x*Var(0,2,1)", ["x = Vi(0, 3)"])
    with pytest.raises(FormulaError, match="position 0 is declared twice"):
        Genred(var(0, 2, Cat.J), ["x = Vi(0, 3)"])
    with pytest.raises(FormulaError, match="no alias or variable declares position 1"):
        Genred("x*y", ["x = Vi(0, 3)", "y = Vj(2, 3)"])


def test_generic_output_must_be_indexed():
    with pytest.raises(ArgumentError, match="must be Vi"):
        generic_sum("x", "out = Pm(3)", "x = Vi(3)")


# --- call arguments --------------------------------------------------------------------


def test_number_of_arguments():
    with pytest.raises(ArgumentError, match="expected 3 input arrays, got 2.*argument 'x'"):
        call(gsum(), X, Y)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.ones(5), Y, P), r"argument 'x' \(Vi\(0,3\)\): expected an array of shape \(M, 3\)"),
        (
            (X, np.ones((4, 2)), P),
            r"argument 'y' \(Vj\(1,3\)\): expected .*\(N, 3\), got shape \(4, 2\)",
        ),
        (
            (X, Y, np.ones((1, 2))),
            r"argument 'x' .*expected .*\(B1, M, 3\) \(argument 'p' .*has 1 batch dimension",
        ),
        ((X, Y, np.ones(3)), r"argument 'p' .*got shape \(3,\)"),
        (
            (np.ones((2, 5, 3)), Y, P),
            r"argument 'y' .*expected an array of shape \(B1, N, 3\) \(argument 'x'",
        ),
    ],
)
def test_shapes(args, message):
    with pytest.raises(ShapeError, match=message):
        call(gsum(), *args)


def test_inconsistent_sizes():
    g = Genred("x*z + y", ["x = Vi(3)", "y = Vj(3)", "z = Vi(3)", "w = Vj(1)"], axis=1)
    with pytest.raises(
        ShapeError, match="inconsistent M: argument 'x' .* has 5 rows but argument 'z' .* has 6"
    ):
        call(g, X, Y, np.ones((6, 3)), np.ones((4, 1)))
    with pytest.raises(
        ShapeError, match="inconsistent N: argument 'y' .* has 4 rows but argument 'w' .* has 7"
    ):
        call(g, X, Y, X, np.ones((7, 1)))


def test_batch_dims_must_broadcast():
    with pytest.raises(
        ShapeError,
        match="batch dimension 0 does not broadcast: argument 'x' "
        r"\(Vi\(0,3\)\) has size 2 but argument 'y' \(Vj\(1,3\)\) has size 3",
    ):
        call(gsum(), np.ones((2, 5, 3)), np.ones((3, 4, 3)), np.ones((1, 2)))


def test_dtypes():
    with pytest.raises(DtypeError, match="argument 'x' .*dtype int64 is not supported"):
        call(gsum(), np.ones((5, 3), dtype=np.int64), Y, P)
    with pytest.raises(DtypeError, match="argument 'y' .*complex arrays are not supported"):
        call(gsum(), X, Y.astype(complex), P)
    with pytest.raises(
        DtypeError, match="argument 'x' .* is float64 but argument 'p' .* is float32"
    ):
        call(gsum(), X, Y, P.astype(np.float32))
    with pytest.raises(ArgumentError, match="dtype_acc='float32' cannot accumulate float64"):
        call(gsum(dtype_acc="float32"), X, Y, P)


def test_nan_inputs():
    y = Y.copy()
    y[2, 1] = np.nan
    with pytest.raises(ArgumentError, match=r"argument 'y' \(Vj\(1,3\)\) contains NaN"):
        call(gsum(), X, y, P)


def test_k_larger_than_the_reduction_axis():
    g = Genred("SqDist(x,y)", ALIASES[:2], reduction_op="KMin", opt_arg=5, axis=1)
    with pytest.raises(ArgumentError, match=r"K = 5 is larger than .*\(j: 4\)"):
        call(g, X, Y)


def _ranges(out_r, slices, red_r):
    empty = (np.zeros((0, 2), int), np.zeros(0, int), np.zeros((0, 2), int))
    return (np.asarray(out_r), np.asarray(slices), np.asarray(red_r), *empty)


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ((np.zeros((1, 2), int),) * 3, "ranges must be a 6-tuple"),
        (_ranges([[0, 5, 1]], [1], [[0, 4]]), r"ranges_i must have shape \(C, 2\)"),
        (_ranges([[0, 5]], [1, 1], [[0, 4]]), r"slices_i must have shape \(1,\)"),
        (_ranges([[0, 5]], [1], [0, 4]), r"redranges_j must have shape \(S, 2\)"),
        (_ranges([[0, 2], [2, 5]], [2, 1], [[0, 4], [0, 1]]), "non-decreasing"),
        (_ranges([[0, 5]], [1], [[0, 4], [0, 1]]), "ending at len"),
        (_ranges([[3, 2]], [1], [[0, 4]]), r"ranges_i needs 0 <= start <= end <= 5"),
        (_ranges([[0, 6]], [1], [[0, 4]]), r"ranges_i needs 0 <= start <= end <= 5"),
        (_ranges([[0, 5]], [1], [[0, 5]]), r"redranges_j needs 0 <= start <= end <= 4"),
        (_ranges([[0.0, 5.0]], [1], [[0, 4]]), "ranges_i must be an integer array"),
    ],
)
def test_bad_ranges(ranges, message):
    with pytest.raises(ArgumentError, match=message):
        call(gsum(), X, Y, P, ranges=ranges)


def test_axis_zero_reads_the_j_ranges():
    good_i = _ranges([[0, 5]], [1], [[0, 4]])
    bad_j = (np.array([[0, 9]]), np.array([1]), np.array([[0, 5]]))
    with pytest.raises(ArgumentError, match=r"ranges_j needs 0 <= start <= end <= 4"):
        call(gsum(axis=0), X, Y, P, ranges=(*good_i[:3], *bad_j))


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.empty((4, 1)), r"expected shape \(5, 1\) and dtype float64, got \(4, 1\)"),
        (np.empty((5, 1), dtype=np.float32), "dtype float64, got .* and float32"),
        (np.empty((5, 2))[:, :1], "C-contiguous"),
        ((np.empty((5, 1)), np.empty((5, 1))), r"returns 1 array\(s\), got 2"),
        ([[0.0]] * 5, "expected a NumPy array, got list"),
    ],
)
def test_bad_out(out, message):
    g = Genred("SqDist(x,y)", ALIASES[:2], axis=1)
    with pytest.raises(ArgumentError, match=message):
        call(g, X, Y, out=out if not isinstance(out, list) else (out,))


def test_backends():
    with pytest.raises(BackendError, match="unknown backend 'TPU'"):
        call(gsum(), X, Y, P, backend="TPU")
    from lazykernels.cuda.driver import unavailable_reason

    if unavailable_reason() is not None:  # no GPU: the GPU backend says why
        for name in ("GPU", "gpu_1d", "GPU_2D_device"):
            with pytest.raises(CompatibilityError, match="NVIDIA driver|cuda-bindings|no GPU"):
                call(gsum(), X, Y, P, backend=name)
