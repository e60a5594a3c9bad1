"""Edges of the index reductions and of sizes: indices past float32's exact integers
(2^24), and input offsets past 2^31 elements.

- ArgMin / ArgMax / Min_ArgMin / ArgKMin with one output row and 2^24 + 5 reduction indices,
  the extremum held by the last index (2^24 + 4) or by 2^24 + 3 (odd: no float32 holds it):
  an index kept in a float32 accumulator would come back rounded.
- Ties go to the first index (as ``numpy.argmin``), however far apart the tied indices are.
- A batched input whose second batch entry starts 2^31 + 16 elements after the first: a
  32-bit offset would wrap. The array is a strided view of a sparse memory-mapped file, so
  only the pages the kernel reads are ever touched (a few kB of memory and disk).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.numpy import Genred

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

BIG = 2**24 + 5
ALIASES = ["x = Vi(1)", "y = Vj(1)"]


def _long_axis(dtype: str, axis: int, holder: int, value: float) -> tuple[np.ndarray, ...]:
    """(x, y) with 1 output row and BIG reduction indices, index ``holder`` set to ``value``
    (the formula is ``x * y``, ``x = 1``: F = the long variable)."""
    long = np.ones((BIG, 1), dtype=dtype)
    long[holder] = value
    short = np.ones((1, 1), dtype=dtype)
    return (short, long) if axis == 1 else (long, short)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("holder", [BIG - 1, BIG - 2], ids=["last", "2^24+3"])
@pytest.mark.parametrize("axis", [1, 0])
def test_index_reductions_past_2_to_the_24(dtype, holder, axis):
    formula = "x * y"
    for reduction, value in (("ArgMin", 0.0), ("ArgMax", 2.0)):
        args = _long_axis(dtype, axis, holder, value)
        got = Genred(formula, ALIASES, reduction_op=reduction, axis=axis)(*args, backend="CPU")
        assert got.shape == (1, 1)
        assert int(got[0, 0]) == holder, (reduction, got)
        assert float(got[0, 0]) == holder  # exact, in the output's own dtype

    args = _long_axis(dtype, axis, holder, -3.0)
    values, indices = Genred(formula, ALIASES, reduction_op="Min_ArgMin", axis=axis)(
        *args, backend="CPU"
    )
    assert values[0, 0] == -3.0 and indices.dtype == np.int64 and indices[0, 0] == holder

    # the three smallest at the very end, in increasing order of value: -1 at BIG - 1
    args = _long_axis(dtype, axis, BIG - 1, -1.0)
    long = args[1] if axis == 1 else args[0]
    long[BIG - 2], long[BIG - 3] = 0.0, 0.5
    routine = Genred(formula, ALIASES, reduction_op="KMin_ArgKMin", axis=axis, opt_arg=3)
    values, indices = routine(*args, backend="CPU")
    assert values.ravel().tolist() == [-1.0, 0.0, 0.5]
    assert indices.ravel().tolist() == [BIG - 1, BIG - 2, BIG - 3]
    arg = Genred(formula, ALIASES, reduction_op="ArgKMin", axis=axis, opt_arg=3)(
        *args, backend="CPU"
    )
    assert arg.ravel().tolist() == [BIG - 1, BIG - 2, BIG - 3]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ties_go_to_the_first_index(dtype):
    x, y = _long_axis(dtype, 1, 7, 0.0)
    y[BIG - 1] = 0.0  # tied with index 7, 2^24 indices later
    for reduction in ("ArgMin", "Min_ArgMin"):
        routine = Genred("x * y", ALIASES, reduction_op=reduction, axis=1)
        got, want = routine(x, y, backend="CPU"), routine(x, y, backend="reference")
        got_index = got[1] if isinstance(got, tuple) else got
        want_index = want[1] if isinstance(want, tuple) else want
        assert int(got_index[0, 0]) == int(want_index[0, 0]) == 7 == int(np.argmin(y))
    routine = Genred("x * y", ALIASES, reduction_op="ArgKMin", axis=1, opt_arg=2)
    assert routine(x, y, backend="CPU").ravel().tolist() == [7, BIG - 1]


OFFSET = 2**31 + 16  # elements from the first batch entry to the second


def _far_apart(tmp_path, dtype: str, rows: int, dim: int, start: int, rng) -> np.ndarray:
    """A (2, rows, dim) view whose second batch entry lies OFFSET elements after the first,
    in a sparse file; filled with random values."""
    item = np.dtype(dtype).itemsize
    path = tmp_path / f"far-{start}.bin"
    total = start + OFFSET + rows * dim
    mapped = np.memmap(path, dtype=dtype, mode="w+", shape=(total,))
    view = np.lib.stride_tricks.as_strided(
        mapped[start:], shape=(2, rows, dim), strides=(OFFSET * item, dim * item, item)
    )
    view[...] = rng.uniform(-1, 1, view.shape).astype(dtype)
    return view


@pytest.mark.skipif(sys.maxsize < 2**40, reason="needs a 64-bit address space")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_offsets_past_2_to_the_31_elements(tmp_path, dtype):
    rng = np.random.default_rng(31)
    x = _far_apart(tmp_path, dtype, 5, 3, 0, rng)  # Vi: batch 1 starts at element 2^31 + 16
    y = _far_apart(tmp_path, dtype, 7, 3, 12345, rng)  # Vj: at 12345 + 2^31 + 16
    assert x.strides[0] // x.itemsize > 2**31 and not x.flags.c_contiguous
    compact_x, compact_y = np.array(x), np.array(y)  # the same values, a few bytes
    dense = ((compact_x[:, :, None, :] - compact_y[:, None, :, :]) ** 2).sum(-1)
    aliases = ["x = Vi(3)", "y = Vj(3)"]
    tol = 1e-5 if dtype == "float32" else 1e-12

    got = Genred("SqDist(x, y)", aliases, reduction_op="Sum", axis=1)(x, y, backend="CPU")
    np.testing.assert_allclose(got[..., 0], dense.sum(-1), rtol=tol)
    got = Genred("SqDist(x, y)", aliases, reduction_op="ArgMin", axis=0)(x, y, backend="CPU")
    assert got[..., 0].tolist() == dense.argmin(1).tolist()
