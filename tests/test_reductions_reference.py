"""The NumPy reference backend against dense NumPy reductions written out in this file.

Plans are built from IR nodes (no parser involved). The dense references materialise the
whole (M, N, D) matrix of formula values with NumPy expressions and reduce it.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.formula import Cat, var
from lazykernels.reductions import SPECS, reference

INF = np.inf
SUMS = ("Sum",)
LSE = (
    "LogSumExp",
    "LogSumExpWeight",
    "SumSoftMaxWeight",
    "Max_SumShiftExp",
    "Max_SumShiftExpWeight",
)
WEIGHTED = ("LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExpWeight")
EXTREMA = ("Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax")
KMINS = ("KMin", "ArgKMin", "KMin_ArgKMin")
ALL = SUMS + LSE + EXTREMA + KMINS
K = 4


# --- dense NumPy references ------------------------------------------------------------


def _neutral(name: str, width: int) -> list[np.ndarray]:
    """The values of an empty row, as this test expects them (per output)."""
    row = {
        "Sum": [np.zeros(width)],
        "LogSumExp": [np.full(width, -INF)],
        "LogSumExpWeight": [np.full(width, -INF)],
        "SumSoftMaxWeight": [np.zeros(width)],
        "Max_SumShiftExp": [np.r_[-INF, np.zeros(width - 1)]],
        "Max_SumShiftExpWeight": [np.r_[-INF, np.zeros(width - 1)]],
        "Min": [np.full(width, INF)],
        "Max": [np.full(width, -INF)],
        "ArgMin": [np.full(width, -1)],
        "ArgMax": [np.full(width, -1)],
        "Min_ArgMin": [np.full(width, INF), np.full(width, -1)],
        "Max_ArgMax": [np.full(width, -INF), np.full(width, -1)],
    }
    return row[name]


def dense_reduce(name, F, G=None, k=None, mask=None):
    """Reduce F (..., n, r, D) over axis -2 (G: (..., n, r, Dg)); mask (n, r) keeps pairs."""
    if mask is None:
        mask = np.ones(F.shape[-3:-1], dtype=bool)
    if F.shape[-2] == 0:  # pad with masked-out columns: NumPy cannot reduce empty axes
        pad = max(k or 1, 1)
        F = np.concatenate([F, np.zeros((*F.shape[:-2], pad, F.shape[-1]))], axis=-2)
        if G is not None:
            G = np.concatenate([G, np.zeros((*G.shape[:-2], pad, G.shape[-1]))], axis=-2)
        mask = np.zeros((F.shape[-3], pad), dtype=bool)
    m3 = mask[..., None]
    empty = ~mask.any(-1)
    with np.errstate(all="ignore"):
        if name == "Sum":
            outs = [np.where(m3, F, 0).sum(-2)]
        elif name in LSE:
            m = np.where(m3, F, -INF).max(-2)
            shift = np.where(np.isfinite(m), m, 0)
            e = np.where(m3, np.exp(F - shift[..., None, :]), 0)
            s1 = e.sum(-2)
            sg = (e * G).sum(-2) if G is not None else None
            outs = [
                {
                    "LogSumExp": lambda: shift + np.log(s1),
                    "LogSumExpWeight": lambda: shift + np.log(sg),
                    "SumSoftMaxWeight": lambda: sg / s1,
                    "Max_SumShiftExp": lambda: np.concatenate([m, s1], -1),
                    "Max_SumShiftExpWeight": lambda: np.concatenate([m, sg], -1),
                }[name]()
            ]
        elif name in EXTREMA:
            largest = "Max" in name
            masked = np.where(m3, F, -INF if largest else INF)
            vals = masked.max(-2) if largest else masked.min(-2)
            idx = masked.argmax(-2) if largest else masked.argmin(-2)
            outs = {"Min": [vals], "Max": [vals], "ArgMin": [idx], "ArgMax": [idx]}.get(
                name, [vals, idx]
            )
        else:
            return _dense_kmin(name, F, k, mask)
    width = outs[0].shape[-1]
    for out, neutral in zip(outs, _neutral(name, width)):
        out[..., empty, :] = neutral
    return outs


def _dense_kmin(name, F, k, mask):
    masked = np.where(mask[..., None], F, INF)
    order = np.argsort(masked, axis=-2, kind="stable")[..., :k, :]
    vals = np.take_along_axis(masked, order, axis=-2)
    valid = np.take_along_axis(np.broadcast_to(mask[..., None], F.shape), order, axis=-2)
    idx = np.where(valid, order, -1)
    vals = np.where(valid, vals, INF)
    if F.shape[-1] == 1:
        vals, idx = vals[..., 0], idx[..., 0]
    return {"KMin": [vals], "ArgKMin": [idx]}.get(name, [vals, idx])


# --- the test case: F = x * y + p (integer-valued data: many ties), G = w_j + v_i ------


class Case:
    def __init__(self, name, dim, dtype, m, n, batch_i=(), batch_j=(), seed=0, wdim=3):
        rng = np.random.default_rng(seed)
        self.name, self.dtype = name, np.dtype(dtype)
        self.fdim = 1 if name in LSE else dim
        self.wdim = wdim if name in WEIGHTED else 0
        d = self.fdim
        nb = max(len(batch_i), len(batch_j))
        pb = tuple(max(a, b) for a, b in zip(batch_i, batch_j))
        if name in LSE:  # smooth real data for the exponentials
            self.x = rng.normal(size=(*batch_i, m, d))
            self.y = rng.normal(size=(*batch_j, n, d))
        else:
            self.x = rng.integers(-2, 3, size=(*batch_i, m, d)).astype(float)
            self.y = rng.integers(-2, 3, size=(*batch_j, n, d)).astype(float)
        self.p = rng.integers(-1, 2, size=(*pb, d)).astype(float)
        self.w = rng.uniform(0.5, 1.5, size=(*batch_j, n, max(self.wdim, 1)))
        self.v = rng.uniform(0.0, 0.5, size=(*batch_i, m, max(self.wdim, 1)))
        assert nb == len(pb)

    def plan(self, axis, **options):
        x, y, p = var(0, self.fdim, Cat.I), var(1, self.fdim, Cat.J), var(2, self.fdim, Cat.PARAM)
        weight = None
        if self.wdim:
            weight = var(3, self.wdim, Cat.J) + var(4, self.wdim, Cat.I)
        return build_plan(
            x * y + p,
            reduction_op=self.name,
            axis=axis,
            opt_arg=K if self.name in KMINS else None,
            formula2=weight,
            **options,
        )

    def args(self):
        arrays = [self.x, self.y, self.p] + ([self.w, self.v] if self.wdim else [])
        return [a.astype(self.dtype) for a in arrays]

    def dense(self, axis, mask=None):
        x, y, p, w, v = (a.astype(self.dtype).astype(float) for a in self.all())
        F = x[..., :, None, :] * y[..., None, :, :] + p[..., None, None, :]
        G = w[..., None, :, :] + v[..., :, None, :] if self.wdim else None
        if axis == 0:
            F = np.swapaxes(F, -3, -2)
            G = None if G is None else np.swapaxes(G, -3, -2)
        return dense_reduce(self.name, F, G, K, mask)

    def all(self):
        return self.x, self.y, self.p, self.w, self.v


def assert_matches(results, expected, dtype):
    assert len(results) == len(expected)
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 2e-6
    for got, want in zip(results, expected):
        assert got.shape == want.shape
        if want.dtype.kind in "iu":
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, want)
        else:
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


# --- tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", ALL)
def test_reduction_matches_dense(name, axis, dim, dtype):
    case = Case(name, dim, dtype, m=23, n=31, wdim=dim)
    results = run_plan(case.plan(axis), case.args(), backend="reference")
    assert_matches(results, case.dense(axis), dtype)


def test_kmin_ties_keep_the_lower_index_first():
    case = Case("KMin_ArgKMin", 1, np.float64, m=5, n=40)
    vals, idx = run_plan(case.plan(1), case.args(), backend="reference")
    assert idx.shape == (5, K)
    f = case.x * case.y.T + case.p  # (5, 40)
    for row in range(5):
        order = sorted(range(40), key=lambda j, row=row: (f[row, j], j))[:K]
        assert idx[row].tolist() == order
        assert vals[row].tolist() == [f[row, j] for j in order]
    assert np.any(np.diff(vals, axis=1) == 0)  # the data really has ties


def test_argmin_ties_take_the_first_index_across_blocks(monkeypatch):
    monkeypatch.setattr(reference, "BLOCK_BUDGET", 8)  # many tiny blocks
    case = Case("ArgMin", 2, np.float64, m=7, n=50)
    for axis in (0, 1):
        results = run_plan(case.plan(axis), case.args(), backend="reference")
        assert_matches(results, case.dense(axis), np.float64)


@pytest.mark.parametrize("name", ["Sum", "LogSumExpWeight", "Min_ArgMin", "KMin_ArgKMin"])
@pytest.mark.parametrize("axis", [0, 1])
def test_batch_dims_broadcast(name, axis):
    case = Case(name, 2, np.float64, m=9, n=11, batch_i=(2, 1), batch_j=(1, 3))
    results = run_plan(case.plan(axis), case.args(), backend="reference")
    assert results[0].shape[:3] == (2, 3, 9 if axis == 1 else 11)
    assert_matches(results, case.dense(axis), np.float64)


def _ranges(n_out, n_red, rng):
    """Random block-sparse ranges, with some output rows covered by no range."""
    cuts = np.sort(rng.choice(np.arange(1, n_out), size=3, replace=False))
    bounds = np.r_[0, cuts, n_out]
    out_ranges, slices, red, mask = [], [], [], np.zeros((n_out, n_red), dtype=bool)
    for c, (a, e) in enumerate(zip(bounds[:-1], bounds[1:])):
        if c == 1:
            continue  # rows [a, e) reduce over nothing
        out_ranges.append((a, e))
        starts = np.sort(rng.choice(n_red - 3, size=2, replace=False))
        blocks = [(starts[0], starts[0] + 2), (starts[1] + 1, min(n_red, starts[1] + 3))]
        if c == 2:
            blocks = blocks[::-1]  # reduction ranges need not be sorted
        for s, t in blocks:
            if not mask[a, s:t].any():
                red.append((s, t))
                mask[a:e, s:t] = True
        slices.append(len(red))
    return np.array(out_ranges), np.array(slices), np.array(red), mask


def _six(axis, out_r, slices, red_r):
    empty = (np.zeros((0, 2), int), np.zeros(0, int), np.zeros((0, 2), int))
    return (out_r, slices, red_r, *empty) if axis == 1 else (*empty, out_r, slices, red_r)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("axis", [0, 1])
def test_ranges(name, axis):
    rng = np.random.default_rng(3)
    m, n = 17, 13
    case = Case(name, 2, np.float64, m=m, n=n)
    n_out, n_red = (m, n) if axis == 1 else (n, m)
    out_r, slices, red_r, mask = _ranges(n_out, n_red, rng)
    results = run_plan(
        case.plan(axis), case.args(), backend="reference", ranges=_six(axis, out_r, slices, red_r)
    )
    assert_matches(results, case.dense(axis, mask), np.float64)
    assert (~mask.any(1)).sum() > 0


@pytest.mark.parametrize("name", ["Sum", "SumSoftMaxWeight", "ArgMax", "KMin"])
def test_ranges_with_batch_dims(name):
    rng = np.random.default_rng(4)
    case = Case(name, 1, np.float64, m=12, n=10, batch_i=(3,), batch_j=(1,))
    out_r, slices, red_r, mask = _ranges(12, 10, rng)
    results = run_plan(
        case.plan(1), case.args(), backend="reference", ranges=_six(1, out_r, slices, red_r)
    )
    assert results[0].shape[:2] == (3, 12)
    assert_matches(results, case.dense(1, mask), np.float64)


def test_kmin_with_fewer_candidates_than_k_under_ranges():
    case = Case("KMin_ArgKMin", 1, np.float64, m=4, n=10)
    ranges = _six(1, np.array([[0, 4]]), np.array([1]), np.array([[2, 4]]))
    vals, idx = run_plan(case.plan(1), case.args(), backend="reference", ranges=ranges)
    f = case.x * case.y.T + case.p
    for row in range(4):
        want = sorted([2, 3], key=lambda j, row=row: (f[row, j], j))
        assert idx[row].tolist() == [*want, -1, -1]
        assert vals[row, 2:].tolist() == [INF, INF]


@pytest.mark.parametrize("name", ALL)
def test_empty_reduction_axis(name):
    case = Case(name, 2, np.float64, m=5, n=0)
    if name in KMINS:
        plan = case.plan(1)
        with pytest.raises(ValueError, match="K = 4 is larger"):
            run_plan(plan, case.args(), backend="reference")
        ranges = _six(1, np.zeros((0, 2), int), np.zeros(0, int), np.zeros((0, 2), int))
        call = bind(plan, case.args(), ranges)
    else:
        call = bind(case.plan(1), case.args())
    reference.run(call)  # the backend itself, not Genred's shortcut for N == 0
    expected = case.dense(1)
    assert_matches(call.outputs, expected, np.float64)
    if name not in KMINS:
        assert_matches(
            run_plan(case.plan(1), case.args(), backend="reference"), expected, np.float64
        )
    # the neutral values of the reduction table are those the reference produces
    for out, ospec in zip(call.outputs, SPECS[name].outputs):
        first = ospec.neutral if ospec.neutral_first is None else ospec.neutral_first
        assert np.all(out[..., 1:] == ospec.neutral)
        assert np.all(out[..., 0] == first)


@pytest.mark.parametrize("name", ["Sum", "LogSumExp", "ArgMin", "KMin_ArgKMin"])
@pytest.mark.parametrize("axis", [0, 1])
def test_empty_output_axis(name, axis):
    m, n = (0, 6) if axis == 1 else (6, 0)
    case = Case(name, 3, np.float64, m=m, n=n)
    results = run_plan(case.plan(axis), case.args(), backend="reference")
    assert all(r.shape[0] == 0 for r in results)
    assert_matches(results, case.dense(axis), np.float64)


# --- accumulation options --------------------------------------------------------------


def _sum_error(values, **options):
    """Relative error of a float32 Sum of ``values`` (N, 1) under ``options``."""
    x, y = var(0, 1, Cat.I), var(1, 1, Cat.J)
    plan = build_plan(x * y, axis=1, **options)
    ones = np.ones((2, 1), dtype=np.float32)
    (got,) = run_plan(plan, [ones, values.astype(np.float32)], backend="reference")
    exact = np.sum(values.astype(np.float32).astype(np.float64))
    return abs(float(got[0, 0]) - exact) / exact


def test_sum_schemes_and_dtype_acc_change_the_accuracy_as_expected():
    values = np.full((50_000, 1), 0.1)  # each float32 addition rounds the same way
    direct = _sum_error(values, sum_scheme="direct_sum")
    block = _sum_error(values, sum_scheme="block_sum")
    kahan = _sum_error(values, sum_scheme="kahan_scheme")
    double = _sum_error(values, dtype_acc="float64", sum_scheme="direct_sum")
    double2 = _sum_error(values, use_double_acc=True)
    eps = np.finfo(np.float32).eps
    assert direct > 1000 * eps  # naive float32 summation drifts
    assert block < 2 * eps
    assert kahan <= eps and double <= eps and double2 <= eps


@pytest.mark.parametrize("scheme", ["direct_sum", "block_sum", "kahan_scheme"])
@pytest.mark.parametrize("name", ["LogSumExp", "SumSoftMaxWeight", "Max_SumShiftExpWeight"])
def test_log_sum_exp_family_under_every_scheme(name, scheme):
    case = Case(name, 1, np.float32, m=6, n=700, wdim=2)
    for acc in ("auto", "float64"):
        plan = case.plan(1, sum_scheme=scheme, dtype_acc=acc)
        results = run_plan(plan, case.args(), backend="reference")
        assert_matches(results, case.dense(1), np.float32)


def test_reference_memory_is_linear_in_the_number_of_points():
    n = 2000  # the dense (n, n, 3) float64 matrix would take 96 MB
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    plan = build_plan(((x - y) * (x - y)).exp(), axis=1)
    pts = np.random.default_rng(6).normal(size=(n, 3))
    tracemalloc.start()
    (got,) = run_plan(plan, [pts, pts], backend="reference")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 60e6
    want = np.exp((pts[:50, None, :] - pts[None, :, :]) ** 2).sum(1)
    np.testing.assert_allclose(got[:50], want, rtol=1e-12)
