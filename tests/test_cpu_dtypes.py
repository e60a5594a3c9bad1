"""The compiled CPU backend through ``lazykernels.numpy.Genred`` in float16, and the KeOps
"Sum reduction" tutorial compiled.

tests/test_cpu_backend.py checks every reduction x axis x layout (plain, batch dimensions,
ranges, ranges + batch) in float32 and float64 on bound calls; this file adds float16, and
float32 through the public ``Genred`` (the same kernels): float16 inputs are computed in
float32 and the values come back as float16 (indices as int64). So a float16 result must
equal, bit for bit, the float32 result on the same (upcast) inputs cast to float16, and must
agree with the reference backend within float16 rounding.

The formulas and aliases are those of tests/test_cpu_backend.py, so in one pytest session
both files share the compiled float32 kernels.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.numpy import Genred

from .test_cpu_backend import ALIASES, CASES

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

# the reduction cases of the bound-call tests, so both files share compiled kernels
M, N = 37, 53
# (ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i); rows 25..29 (i) and
# 20..24 (j) are in no range and hold the empty-reduction values.
RANGES = (
    np.array([[0, 10], [10, 25], [30, 37]]),
    np.array([2, 3, 5]),
    np.array([[0, 20], [30, 40], [5, 53], [0, 7], [40, 53]]),
    np.array([[0, 20], [25, 53]]),
    np.array([1, 3]),
    np.array([[0, 37], [3, 9], [20, 30]]),
)
LAYOUTS = ("plain", "batch", "ranges", "ranges+batch")


@cache
def routine(name: str, axis: int) -> Genred:
    formula, formula2, k = CASES[name]
    return Genred(formula, ALIASES, reduction_op=name, axis=axis, opt_arg=k, formula2=formula2)


# The KeOps tutorial's formula and its gradient (see test_tutorial_sum_compiled below).
TUTORIAL_FORMULA = "Square(p-a)*Exp(x+y)"
TUTORIAL_ALIASES = ["x = Vi(3)", "y = Vj(3)", "a = Vj(1)", "p = Pm(1)"]


@cache
def tutorial_routines() -> tuple[Genred, Genred]:
    forward = Genred(TUTORIAL_FORMULA, TUTORIAL_ALIASES, reduction_op="Sum", axis=1)
    gradient = Genred(
        f"Grad({TUTORIAL_FORMULA}, y, e)",
        [*TUTORIAL_ALIASES, "e = Vi(3)"],
        reduction_op="Sum",
        axis=0,
    )
    return forward, gradient


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Compile the module's kernels in parallel (each compile is a subprocess)."""
    kernels = [(routine(name, axis).plan, np.float32) for name in CASES for axis in (0, 1)]
    kernels += [(g.plan, dt) for g in tutorial_routines() for dt in (np.float32, np.float64)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pd: cpu.prepare(*pd), kernels))


def data(dtype, batch: bool, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if batch:  # batch shape (2, 3), with broadcast entries
        shapes = [(2, 1, M, 2), (1, 3, N, 2), (2, 3, N, 1), (2, 1, 1)]
    else:
        shapes = [(M, 2), (N, 2), (N, 1), (1,)]
    x, y, b, g = (rng.uniform(-1, 1, size=s) for s in shapes)
    g = np.abs(g) + 0.5
    return [a.astype(dtype) for a in (x, y, b, g)]


def as_tuple(result) -> tuple[np.ndarray, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", sorted(CASES))
def test_float16_matches_reference_and_float32(name, axis, layout):
    g = routine(name, axis)
    args = data(np.float16, batch="batch" in layout)
    ranges = RANGES if "ranges" in layout else None
    got = as_tuple(g(*args, backend="CPU", ranges=ranges))
    want = as_tuple(g(*args, backend="reference", ranges=ranges))
    args32 = [a.astype(np.float32) for a in args]
    wide = as_tuple(g(*args32, backend="CPU", ranges=ranges))
    wide_want = as_tuple(g(*args32, backend="reference", ranges=ranges))
    assert len(got) == len(want) == len(wide) == len(wide_want)
    for c, r, w, w_r in zip(got, want, wide, wide_want):
        assert c.shape == r.shape == w.shape == w_r.shape
        if r.dtype == np.int64:
            assert c.dtype == w.dtype == np.int64
            np.testing.assert_array_equal(c, r)
            np.testing.assert_array_equal(c, w)
            np.testing.assert_array_equal(w, w_r)
            continue
        assert c.dtype == r.dtype == np.float16 and w.dtype == w_r.dtype == np.float32
        # the same call in float32 through Genred agrees with the reference too
        np.testing.assert_allclose(w, w_r, rtol=1e-4, atol=1e-5)
        # computed in float32, rounded once to float16
        np.testing.assert_array_equal(c, w.astype(np.float16))
        # against the reference: both round float32 values that agree to ~1e-6, so at most
        # one float16 ulp (2^-10 relative) apart
        finite = r[np.isfinite(r)].astype(np.float64)
        scale = max(1.0, float(np.abs(finite).max(initial=0.0)))
        np.testing.assert_allclose(
            c.astype(np.float64), r.astype(np.float64), rtol=2e-3, atol=2e-3 * scale
        )
    if ranges is not None and got[-1].dtype == np.int64:  # uncovered rows: the -1 index
        rows = slice(25, 30) if axis == 1 else slice(20, 25)
        assert (got[-1][..., rows, :] == -1).all()


@pytest.mark.parametrize("name", ["Sum", "Min_ArgMin", "KMin"])
def test_float16_out_buffers(name):
    g = routine(name, 1)
    args = data(np.float16, batch=False, seed=1)
    fresh = as_tuple(g(*args, backend="CPU"))
    out = tuple(np.full(f.shape, 7, dtype=f.dtype) for f in fresh)
    given = as_tuple(g(*args, backend="CPU", out=out if len(out) > 1 else out[0]))
    for o, r, f in zip(out, given, fresh):
        assert r is o
        np.testing.assert_array_equal(o, f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tutorial_sum_compiled(dtype):
    """KeOps's "Sum reduction" tutorial (tests/test_tutorial_sum.py) with backend="CPU"."""
    rng = np.random.default_rng(0)
    m, n, d = 100, 120, 3
    x = (2 * rng.standard_normal((m, d))).astype(dtype)
    y = (2 * rng.standard_normal((n, d))).astype(dtype)
    a = rng.standard_normal((n, 1)).astype(dtype)
    p = rng.standard_normal(1).astype(dtype)
    e = rng.random((m, d)).astype(dtype)
    forward, gradient = tutorial_routines()
    c = forward(x, y, a, p, backend="CPU")
    g = gradient(x, y, a, p, e, backend="CPU")
    assert c.shape == (m, d) and g.shape == (n, d)
    assert c.dtype == g.dtype == dtype

    x64, y64, a64, p64, e64 = (v.astype(np.float64) for v in (x, y, a, p, e))
    weights = (p64[0] - a64[:, 0]) ** 2  # (N,)
    kernel = np.exp(x64[:, None, :] + y64[None, :, :])  # (M, N, D)
    c_dense = (weights[None, :, None] * kernel).sum(axis=1)
    g_dense = (e64[:, None, :] * weights[None, :, None] * kernel).sum(axis=0)
    # float32: the exp of arguments up to ~15 and 100-term sums of positive values
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(c, c_dense, rtol=rtol)
    np.testing.assert_allclose(g, g_dense, rtol=rtol)
    np.testing.assert_allclose(c, forward(x, y, a, p, backend="reference"), rtol=rtol)
    np.testing.assert_allclose(g, gradient(x, y, a, p, e, backend="reference"), rtol=rtol)
