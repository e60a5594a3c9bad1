"""The NaN/inf semantics of every reduction, as documented in docs/nan-inf.md, on both
backends.

The formula is ``y + x`` (``x = 0``), so the formula's values over j are the given column;
"NaN" comes from the formula (``Log`` of a negative number), since NaN *inputs* are refused
with ``ArgumentError``. Each row is checked on the compiled CPU backend and on the reference
backend; where they differ today the table says so, and so does this test (a fix must update
both).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.errors import ArgumentError
from lazykernels.numpy import Genred

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

INF, NAN = math.inf, math.nan
COLUMNS = {
    "finite": [3.0, 1.0, 2.0],
    "+inf": [3.0, INF, 2.0],
    "-inf": [3.0, -INF, 2.0],
    "all +inf": [INF, INF, INF],
    "all -inf": [-INF, -INF, -INF],
    "NaN": [3.0, NAN, 2.0],  # made by the formula: Log(-1)
    "empty": [],
}
# reduction -> column -> (result) or {"CPU": ..., "reference": ...} where they differ.
# Results are flattened: values first, then indices. K = 2 for the KMin family; weights 1.
LSE3 = math.log(math.exp(3) + math.exp(1) + math.exp(2))
LSE_NEG = math.log(math.exp(3) + math.exp(2))
INF_DIVERGES = {"CPU": [NAN], "reference": [INF]}
TABLE: dict[str, dict[str, object]] = {
    "Sum": {"finite": [6], "+inf": [INF], "-inf": [-INF], "all +inf": [INF],
            "all -inf": [-INF], "NaN": [NAN], "empty": [0]},
    "LogSumExp": {"finite": [LSE3], "+inf": INF_DIVERGES, "-inf": [LSE_NEG],
                  "all +inf": INF_DIVERGES, "all -inf": [-INF], "NaN": [NAN], "empty": [-INF]},
    "LogSumExpWeight": {"finite": [LSE3], "+inf": INF_DIVERGES, "-inf": [LSE_NEG],
                        "all +inf": INF_DIVERGES, "all -inf": [-INF], "NaN": [NAN],
                        "empty": [-INF]},
    "SumSoftMaxWeight": {"finite": [1], "+inf": {"CPU": [0], "reference": [1]}, "-inf": [1],
                         "all +inf": {"CPU": [0], "reference": [1]}, "all -inf": [0],
                         "NaN": {"CPU": [0], "reference": [NAN]}, "empty": [0]},
    "Max_SumShiftExp": {"finite": [3, 1 + math.exp(-2) + math.exp(-1)],
                        "+inf": {"CPU": [INF, NAN], "reference": [INF, 1]},
                        "-inf": [3, 1 + math.exp(-1)],
                        "all +inf": {"CPU": [INF, NAN], "reference": [INF, 3]},
                        "all -inf": [-INF, 0], "NaN": {"CPU": [3, NAN], "reference": [NAN, NAN]},
                        "empty": [-INF, 0]},
    "Min": {"finite": [1], "+inf": [2], "-inf": [-INF], "all +inf": [INF], "all -inf": [-INF],
            "NaN": [2], "empty": [INF]},
    "Max": {"finite": [3], "+inf": [INF], "-inf": [3], "all +inf": [INF], "all -inf": [-INF],
            "NaN": [3], "empty": [-INF]},
    "ArgMin": {"finite": [1], "+inf": [2], "-inf": [1], "all +inf": [0], "all -inf": [0],
               "NaN": [2]},
    "ArgMax": {"finite": [0], "+inf": [1], "-inf": [0], "all +inf": [0], "all -inf": [0],
               "NaN": [0]},
    "Min_ArgMin": {"finite": [1, 1], "+inf": [2, 2], "-inf": [-INF, 1], "all +inf": [INF, 0],
                   "all -inf": [-INF, 0], "NaN": [2, 2]},
    "Max_ArgMax": {"finite": [3, 0], "+inf": [INF, 1], "-inf": [3, 0], "all +inf": [INF, 0],
                   "all -inf": [-INF, 0], "NaN": [3, 0]},
    "KMin": {"finite": [1, 2], "+inf": [2, 3], "-inf": [-INF, 2], "all +inf": [INF, INF],
             "all -inf": [-INF, -INF], "NaN": [2, 3]},
    "ArgKMin": {"finite": [1, 2], "+inf": [2, 0], "-inf": [1, 2], "all +inf": [0, 1],
                "all -inf": [0, 1], "NaN": [2, 0]},
    "KMin_ArgKMin": {"finite": [1, 2, 1, 2], "+inf": [2, 3, 2, 0], "-inf": [-INF, 2, 1, 2],
                     "all +inf": [INF, INF, 0, 1], "all -inf": [-INF, -INF, 0, 1],
                     "NaN": [2, 3, 2, 0]},
}  # fmt: skip


def _run(reduction: str, column: list[float], backend: str) -> list[float]:
    weighted = "Weight" in reduction
    aliases = ["x = Vi(1)", "y = Vj(1)"] + (["b = Vj(1)"] if weighted else [])
    nan = [k for k, v in enumerate(column) if math.isnan(v)]
    formula = "Log(y) + x" if nan else "y + x"
    y = np.array(column, dtype=np.float64).reshape(-1, 1)
    if nan:  # Log(e^v) = v, Log(-1) = NaN
        y = np.where(np.isnan(y), -1.0, np.exp(y))
    args = [np.zeros((1, 1)), y] + ([np.ones_like(y)] if weighted else [])
    routine = Genred(
        formula,
        aliases,
        reduction_op=reduction,
        axis=1,
        opt_arg=2 if "K" in reduction else None,
        formula2="b" if weighted else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = routine(*args, backend=backend)
    parts = result if isinstance(result, tuple) else (result,)
    return [float(v) for part in parts for v in np.ravel(part)]


CELLS = [(r, c) for r, row in TABLE.items() for c in row]


@pytest.mark.parametrize(("reduction", "column"), CELLS, ids=[f"{r}-{c}" for r, c in CELLS])
@pytest.mark.parametrize("backend", ["CPU", "reference"])
def test_documented_nan_inf_semantics(reduction, column, backend):
    expected = TABLE[reduction][column]
    if isinstance(expected, dict):
        expected = expected[backend]
    got = _run(reduction, COLUMNS[column], backend)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, equal_nan=True)


EMPTY_INDEX = {"ArgMin": [-1], "ArgMax": [-1], "Min_ArgMin": [INF, -1], "Max_ArgMax": [-INF, -1]}


@pytest.mark.parametrize("reduction", list(EMPTY_INDEX))
@pytest.mark.parametrize("backend", ["CPU", "reference"])
def test_index_reductions_of_no_index(reduction, backend):
    """An empty reduction axis has no index: -1 (with the neutral value); K > 0 is refused."""
    assert _run(reduction, [], backend) == EMPTY_INDEX[reduction]
    with pytest.raises(ArgumentError, match="K = 2 is larger than the number of reduction"):
        _run("KMin_ArgKMin", [], backend)


@pytest.mark.parametrize("reduction", ["Min", "Max", "ArgMin", "ArgMax", "KMin"])
def test_nan_values_are_skipped_in_vector_blocks_too(reduction):
    """17 indices (more than a SIMD block): a NaN anywhere is skipped by min and max."""
    for position in range(17):
        column = [float(v) for v in range(1, 18)]
        column[position] = NAN
        assert _run(reduction, column, "CPU") == _run(reduction, column, "reference")


def test_nan_inputs_are_refused():
    routine = Genred("y + x", ["x = Vi(1)", "y = Vj(1)"], reduction_op="Min", axis=1)
    for backend in ("CPU", "reference"):
        with pytest.raises(ArgumentError, match="'y' .* contains NaN values"):
            routine(np.zeros((1, 1)), np.array([[1.0], [NAN]]), backend=backend)
