"""Prepared calls (:mod:`lazykernels.core.prepared`): the warm CPU path of ``run_plan``.

Behaviour only: a prepared call serves exactly the layout it was made for (shapes, dtypes,
strides, adapter, backend), reads the inputs' current values, still checks for NaN every
call, leaves ``out=`` / ``ranges`` / float16 calls to the full path, and the memo stays
bounded. Every result is compared with a dense NumPy or torch computation.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lazykernels.core import genred as core_genred  # noqa: E402
from lazykernels.core import prepared  # noqa: E402
from lazykernels.core.genred import build_plan, run_plan  # noqa: E402
from lazykernels.errors import ArgumentError  # noqa: E402
from lazykernels.numpy import LazyTensor  # noqa: E402
from lazykernels.torch import LazyTensor as TorchLazyTensor  # noqa: E402
from lazykernels.torch.arrays import TORCH  # noqa: E402

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"]
FORMULA = "Exp(-SqDist(x, y)) * b"
RNG = np.random.default_rng(11)


def dense(x, y, b):
    """Sum_j exp(-|x_i - y_j|^2) b_j in float64."""
    x, y, b = (np.asarray(a, dtype=np.float64) for a in (x, y, b))
    return np.exp(-((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)) @ b


def inputs(m, n, dtype=np.float64):
    return [RNG.standard_normal(s).astype(dtype) for s in ((m, 3), (n, 3), (n, 2))]


@pytest.fixture
def plan():
    prepared.clear()
    return build_plan(FORMULA, ALIASES, axis=1)


@pytest.fixture
def binds(monkeypatch):
    """How many calls went through the full binding (not a prepared call)."""
    count = []
    real = core_genred.bind_call
    monkeypatch.setattr(core_genred, "bind_call", lambda *a: count.append(1) or real(*a))
    return count


def check(plan, args, tol=1e-12, **kw):
    (got,) = run_plan(plan, args, backend="CPU", **kw)
    np.testing.assert_allclose(np.asarray(got), dense(*args), rtol=tol, atol=tol)
    return got


def test_warm_calls_are_prepared_and_exact(plan, binds):
    args = inputs(7, 5)
    check(plan, args)
    check(plan, args)
    check(plan, args)
    assert len(binds) == 1 and prepared.size() == 1


def test_alternating_shapes_dtypes_and_layouts(plan, binds):
    a64, b64, a32 = inputs(7, 5), inputs(4, 9), inputs(7, 5, np.float32)
    x, y, b = inputs(6, 8)
    strided = [np.asfortranarray(x), y[::-1], b]  # non-contiguous: copied by the full path
    base = np.zeros((6, 6))
    base[:, :3] = x
    sliced = [base[:, :3], y, b]  # rows strided: the full path too
    for _ in range(3):
        for args, tol in ((a64, 1e-12), (b64, 1e-12), (a32, 1e-5), (strided, 1e-12)):
            got = check(plan, args, tol)
            assert got.dtype == args[0].dtype and got.shape == (len(args[0]), 2)
        check(plan, sliced)
    # one full binding per layout seen, then prepared calls (non-contiguous: full each time)
    assert prepared.size() == 5
    assert len(binds) == 3 + 3 * 2


def test_batched_calls(plan):
    x, y, b = (RNG.standard_normal(s) for s in ((2, 1, 5, 3), (1, 3, 4, 3), (2, 3, 4, 2)))
    for _ in range(2):
        (got,) = run_plan(plan, [x, y, b], backend="CPU")
        np.testing.assert_allclose(got, dense(x, y, b), rtol=1e-12, atol=1e-12)


def test_in_place_edits_and_new_arrays_are_read(plan):
    args = inputs(6, 4)
    check(plan, args)
    args[0] += 0.5
    args[2][1] = 3.0
    check(plan, args)
    check(plan, [a.copy() * 0.5 for a in args])  # other buffers, same layout


def test_read_only_and_broadcast_inputs(plan):
    x, y, b = inputs(6, 4)
    x.flags.writeable = False
    wide = np.broadcast_to(b[:1], b.shape)  # zero strides: another layout, not contiguous
    for _ in range(2):
        check(plan, [x, y, b])
        check(plan, [x, y, wide])


def test_nan_raises_on_a_warm_call(plan):
    args = inputs(6, 4)
    check(plan, args)
    check(plan, args)
    args[1][2, 1] = np.nan
    with pytest.raises(ArgumentError, match="y.*NaN"):
        run_plan(plan, args, backend="CPU")
    args[1][2, 1] = 0.0
    check(plan, args)


def test_out_and_ranges_still_honoured(plan):
    x, y, b = args = inputs(6, 5)
    check(plan, args)
    out = np.full((6, 2), -1.0)
    (got,) = run_plan(plan, args, backend="CPU", out=out)
    assert got is out
    np.testing.assert_allclose(out, dense(*args), rtol=1e-12, atol=1e-12)
    # rows 0..2 see columns 0..1, rows 3..5 see columns 2..4
    ranges = (
        np.array([[0, 3], [3, 6]]),
        np.array([1, 2]),
        np.array([[0, 2], [2, 5]]),
        np.array([[0, 5]]),
        np.array([1]),
        np.array([[0, 6]]),
    )
    (got,) = run_plan(plan, args, backend="CPU", ranges=ranges)
    expected = np.concatenate([dense(x[:3], y[:2], b[:2]), dense(x[3:], y[2:], b[2:])])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    check(plan, args)


def test_float16_is_not_prepared(plan):
    args = inputs(6, 5, np.float16)
    for _ in range(2):
        (got,) = run_plan(plan, args, backend="CPU")
        assert got.dtype == np.float16
        np.testing.assert_allclose(got, dense(*args), rtol=2e-2, atol=2e-2)
    assert prepared.size() == 0


def test_many_layouts_evict(plan, monkeypatch, binds):
    monkeypatch.setattr(prepared, "MAX_PREPARED", 4)
    sets = [inputs(m, 3) for m in range(1, 9)]
    for _ in range(2):
        for args in sets:
            check(plan, args)
            assert prepared.size() <= 4
    assert len(binds) == 16  # LRU of 4, 8 layouts in turn: every call misses
    for _ in range(3):
        check(plan, sets[-1])
    assert len(binds) == 16


def test_torch_tensors(plan, binds):
    x, y, b = (torch.from_numpy(a) for a in inputs(6, 5))
    for args in ([x, y, b], [x.float(), y.float(), b.float()], [x, y.t().contiguous().t(), b]):
        for _ in range(2):
            (got,) = run_plan(plan, args, backend="CPU", adapter=TORCH)
            assert isinstance(got, torch.Tensor) and got.dtype == args[0].dtype
            tol = 1e-5 if args[0].dtype == torch.float32 else 1e-12
            np.testing.assert_allclose(got.numpy(), dense(*args), rtol=tol, atol=tol)
    assert prepared.size() == 3
    # NumPy arrays of the same layout are another key (adapter)
    check(plan, [x.numpy(), y.numpy(), b.numpy()])
    assert prepared.size() == 4


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_lazytensor_warm_reduction(library):
    x, y, b = inputs(30, 20)
    if library == "torch":
        x, y, b = (torch.from_numpy(a) for a in (x, y, b))
        lt = TorchLazyTensor
    else:
        lt = LazyTensor
    for _ in range(3):
        x_i, y_j = lt(x[:, None, :]), lt(y[None, :, :])
        got = (-((x_i - y_j) ** 2).sum(-1)).exp() @ b
        np.testing.assert_allclose(np.asarray(got), dense(x, y, b), rtol=1e-12, atol=1e-12)
    x[0, 0] = np.nan
    with pytest.raises(ArgumentError, match="NaN"):
        (-((lt(x[:, None, :]) - lt(y[None, :, :])) ** 2).sum(-1)).exp() @ b
