"""The compiled CPU backend against the NumPy reference backend.

Every reduction x axis x dtype x layout (plain, batch dimensions, ranges, ranges + batch)
runs through ``lazykernels.cpu.run`` and ``lazykernels.reductions.reference.run`` on the
same bound call. Kernels depend only on (plan, dtype), so all the layouts of one plan share
one compiled kernel; the kernels are compiled up front, in parallel. Further tests cover the
split of the reduction range across threads, long and tiny reductions, the summation schemes,
``out=`` and non-contiguous inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.core.plan import ReductionPlan
from lazykernels.reductions import SPECS, reference

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(1)", "g = Pm(1)"]
# reduction -> (formula, formula2, K); D = 2 for the component-wise ones
CASES = {
    "Sum": ("Exp(-SqDist(x,y)*g)*(y+b)", None, None),
    "LogSumExp": ("-SqDist(x,y)*g+b", None, None),
    "LogSumExpWeight": ("-SqDist(x,y)*g", "Exp(y)", None),
    "SumSoftMaxWeight": ("-SqDist(x,y)*g", "y*b", None),
    "Max_SumShiftExp": ("-SqDist(x,y)*g+b", None, None),
    "Max_SumShiftExpWeight": ("-SqDist(x,y)*g", "y", None),
    "Min": ("Square(x-y)*g+b", None, None),
    "Max": ("Square(x-y)*g+b", None, None),
    "ArgMin": ("Square(x-y)*g+b", None, None),
    "ArgMax": ("Square(x-y)*g+b", None, None),
    "Min_ArgMin": ("Square(x-y)*g+b", None, None),
    "Max_ArgMax": ("Square(x-y)*g+b", None, None),
    "KMin": ("Square(x-y)+b", None, 3),
    "ArgKMin": ("SqDist(x,y)+b", None, 3),
    "KMin_ArgKMin": ("Square(x-y)+b", None, 3),
}
assert sorted(CASES) == sorted(SPECS)
DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
M, N = 37, 53
# (ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i): rows 25..29 (i) and
# 20..24 (j) are in no range and must get the empty-reduction values.
RANGES = (
    np.array([[0, 10], [10, 25], [30, 37]]),
    np.array([2, 3, 5]),
    np.array([[0, 20], [30, 40], [5, 53], [0, 7], [40, 53]]),
    np.array([[0, 20], [25, 53]]),
    np.array([1, 3]),
    np.array([[0, 37], [3, 9], [20, 30]]),
)
EXTRA_PLANS = {  # summation options: (reduction, dtype_acc, sum_scheme)
    "sum_kahan": ("Sum", "auto", "kahan_scheme"),
    "sum_direct": ("Sum", "auto", "direct_sum"),
    "sum_double_acc": ("Sum", "float64", "block_sum"),
    "lse_kahan": ("LogSumExp", "auto", "kahan_scheme"),
    "softmax_direct": ("SumSoftMaxWeight", "auto", "direct_sum"),
}


@cache
def plan_for(name: str, axis: int, dtype_acc: str = "auto", scheme: str = "auto") -> ReductionPlan:
    formula, formula2, k = CASES[name]
    return build_plan(
        formula,
        ALIASES,
        reduction_op=name,
        axis=axis,
        opt_arg=k,
        formula2=formula2,
        dtype_acc=dtype_acc,
        sum_scheme=scheme,
    )


def _all_kernels():
    for name in CASES:
        for axis in (0, 1):
            for dtype in DTYPES:
                yield plan_for(name, axis), dtype
    for red, acc, scheme in EXTRA_PLANS.values():
        yield plan_for(red, 1, acc, scheme), np.float32
    for dtype in DTYPES:
        yield registry_plan()[0], dtype


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Compile every kernel of this module in parallel (each compile is a subprocess)."""
    kernels = list(_all_kernels())
    kernels.sort(key=lambda pd: pd[0] is not registry_plan()[0])  # the slow ones first
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pd: cpu.prepare(*pd), kernels))


def data(dtype, m=M, n=N, batch=False, seed=0):
    rng = np.random.default_rng(seed)
    if batch:  # batch shape (2, 3), with broadcast entries
        shapes = [(2, 1, m, 2), (1, 3, n, 2), (2, 3, n, 1), (2, 1, 1)]
    else:
        shapes = [(m, 2), (n, 2), (n, 1), (1,)]
    x, y, b, g = (rng.uniform(-1, 1, size=s) for s in shapes)
    g = np.abs(g) + 0.5
    return [a.astype(dtype) for a in (x, y, b, g)]


def compare(plan, args, ranges=None, n_threads=0):
    got = bind(plan, args, ranges)
    want = bind(plan, args, ranges)
    cpu.run(got, n_threads=n_threads)
    reference.run(want)
    for g, w in zip(got.outputs, want.outputs):
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype == np.int64:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, **TOL[got.dtype.type])
    return got.outputs


@pytest.mark.parametrize("layout", ["plain", "batch", "ranges", "ranges+batch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name, axis, dtype, layout):
    plan = plan_for(name, axis)
    ranges = RANGES if "ranges" in layout else None
    outputs = compare(plan, data(dtype, batch="batch" in layout), ranges)
    if ranges is not None:  # the uncovered rows really hold the empty-reduction value
        rows = slice(25, 30) if axis == 1 else slice(20, 25)
        first = outputs[-1][..., rows, :]
        if first.dtype == np.int64:
            assert (first == -1).all()


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_reduction_range_across_threads(name):
    # 3 output rows, 20000 reduction indices: one block, so the range is cut in parts
    # computed by different threads and merged (4 threads asked, even on fewer cores).
    compare(plan_for(name, 1), data(np.float64, m=3, n=20000, seed=1), n_threads=4)
    compare(plan_for(name, 0), data(np.float32, m=20000, n=2, seed=2), n_threads=4)
    # with ranges: the parts cut through the reduction intervals of a block
    ranges_i = (np.array([[0, 2], [2, 3]]), np.array([2, 3]))
    red_j = np.array([[0, 9000], [12000, 20000], [5000, 5017]])
    ranges = (*ranges_i, red_j, np.array([[0, 1]]), np.array([1]), np.array([[0, 3]]))
    compare(plan_for(name, 1), data(np.float64, m=3, n=20000, seed=3), ranges, n_threads=4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_long_and_tiny_reductions(name):
    plan = plan_for(name, 1)
    compare(plan, data(np.float32, m=20, n=5000, seed=3))  # several tiles per row
    compare(plan, data(np.float64, m=1, n=CASES[name][2] or 1, seed=4))
    compare(plan, data(np.float64, m=9, n=4, seed=5))


NEUTRAL = {
    "Sum": [0.0],
    "LogSumExp": [-np.inf],
    "SumSoftMaxWeight": [0.0],
    "Max_SumShiftExp": [-np.inf, 0.0],
    "ArgMin": [-1],
    "KMin": [np.inf],
}


@pytest.mark.parametrize("name", sorted(NEUTRAL))
def test_empty_reduction_set_in_the_kernel(name):
    # Genred fills N == 0 itself, but the kernel alone gives the same neutral values, for
    # N == 0 and for rows whose ranges hold no reduction index.
    plan = plan_for(name, 1)
    x, y, b, g = data(np.float64, m=4, n=5)
    calls = [
        bind(
            plan, [x, y, b, g], (np.array([[0, 4]]), np.array([0]), np.zeros((0, 2), np.int64)) * 2
        )
    ]
    if name != "KMin":  # K > N is refused without ranges
        calls.append(bind(plan, [x, y[:0], b[:0], g]))
    for call in calls:
        for o in call.outputs:
            o[...] = 7
        cpu.run(call)
        out = call.outputs[0].reshape(4, -1)
        np.testing.assert_array_equal(out, np.broadcast_to(NEUTRAL[name], out.shape))


@pytest.mark.parametrize("key", sorted(EXTRA_PLANS))
def test_sum_schemes_match_reference(key):
    red, acc, scheme = EXTRA_PLANS[key]
    plan = plan_for(red, 1, acc, scheme)
    compare(plan, data(np.float32, m=11, n=3000, seed=6))
    compare(plan, data(np.float32, batch=True, seed=7), RANGES)


def test_kahan_and_double_accumulators_are_accurate():
    # F_j = 1 + b_j with one huge first term: float32 partial sums lose the small terms that
    # share a SIMD lane with it; compensated lanes and float64 accumulators do not.
    n = 2_000_000
    rng = np.random.default_rng(8)
    x = np.ones((2, 2), np.float32)
    y = np.ones((n, 2), np.float32)  # SqDist(x, y) = 0: the formula is y + b = 1 + b
    b = rng.uniform(0.0, 1.0, size=(n, 1)).astype(np.float32)
    b[0] = 3e7
    g = np.array([1.0], np.float32)
    exact = (1.0 + b.astype(np.float64)).sum()
    errors = {}
    for key, (red, acc, scheme) in EXTRA_PLANS.items():
        if red == "Sum":
            call = bind(plan_for(red, 1, acc, scheme), [x, y, b, g])
            cpu.run(call)
            errors[key] = np.abs(call.outputs[0][:, 0] - exact).max() / exact
    call = bind(plan_for("Sum", 1), [x, y, b, g])
    cpu.run(call)
    errors["block_sum"] = np.abs(call.outputs[0][:, 0] - exact).max() / exact
    assert errors["sum_kahan"] < 1e-7 and errors["sum_double_acc"] < 1e-7, errors
    # the contrast: direct sums add every term to the lane holding the huge one; block sums
    # (float32 lanes in two levels, chunks of 32 terms) lose less, but still more than Kahan
    assert errors["block_sum"] > 2e-7 and errors["sum_direct"] > 1e-6, errors


def test_out_in_place_and_out_of_place():
    plan = plan_for("Min_ArgMin", 1)
    args = data(np.float64)
    fresh = run_plan(plan, args, backend="CPU")
    out = (np.full((M, 2), 5.0), np.full((M, 2), 5, dtype=np.int64))
    given = run_plan(plan, args, backend="CPU", out=out)
    assert given[0] is out[0] and given[1] is out[1]
    np.testing.assert_array_equal(out[0], fresh[0])
    np.testing.assert_array_equal(out[1], fresh[1])
    ref = run_plan(plan, args, backend="reference")
    np.testing.assert_allclose(fresh[0], ref[0], rtol=1e-12)
    np.testing.assert_array_equal(fresh[1], ref[1])


def test_non_contiguous_inputs():
    plan = plan_for("Sum", 1)
    x, y, b, g = data(np.float64, batch=True, seed=9)
    wide = np.zeros((2, 1, M, 5))
    wide[..., ::2][..., :2] = x  # strided columns
    x_view = wide[..., 0:4:2]
    y_fortran = np.asfortranarray(y)
    tall = np.zeros((2, 6, N, 1))
    tall[:, ::2] = b  # strided batch dimension: read in place
    b_view = tall[:, ::2]
    assert not x_view.flags.c_contiguous and not b_view.flags.c_contiguous
    contiguous = bind(plan, [x, y, b, g])
    strided = bind(plan, [x_view, y_fortran, b_view, g])
    cpu.run(contiguous)
    cpu.run(strided)
    np.testing.assert_array_equal(strided.outputs[0], contiguous.outputs[0])
    compare(plan, [x_view, y_fortran, b_view, g])


def test_non_contiguous_output_buffer():
    plan = plan_for("Sum", 1)
    args = data(np.float32)
    call = bind(plan, args)
    want = call.outputs[0].copy()
    cpu.run(call)
    want[...] = call.outputs[0]
    target = np.zeros((M, 4), np.float32)[:, ::2]
    call.outputs = (target,)
    cpu.run(call)
    np.testing.assert_array_equal(target, want)


def _registry_formula():
    """Concat of every testable primitive op of the registry, on inputs mapped from [0, 1]
    into each op's test domain; one kernel compiles them all."""
    from lazykernels.formula import Cat, make, var
    from lazykernels.formula.ops import OPS

    u, v = var(0, 16, Cat.I), var(1, 16, Cat.J)
    parts = []
    for name, card in sorted(OPS.items()):
        spec = card.test
        if spec is None or card.is_sugar or (card.c is None and card.lower is None):
            continue
        if any(d > 16 for d in spec.arg_dims):
            continue
        args = []
        for k, d in enumerate(spec.arg_dims):
            src = u if k % 2 == 0 else v
            comp = make("Extract", (src,), (0, d)) if d < 16 else src
            scale = make("FloatCst", (), (float(spec.high - spec.low),))
            args.append(
                make("Add", (make("Mult", (comp, scale)), make("FloatCst", (), (spec.low,))))
            )
        parts.append((name, make(card, tuple(args), spec.params)))
    formula = parts[0][1]
    for _, node in parts[1:]:
        formula = make("Concat", (formula, node))
    return formula, parts


@cache
def registry_plan():
    from lazykernels.core.plan import ArgSlot
    from lazykernels.formula import Cat

    formula, parts = _registry_formula()
    slots = (ArgSlot(0, 16, Cat.I), ArgSlot(1, 16, Cat.J))
    return ReductionPlan(formula, "Sum", Cat.I, slots), parts


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_registry_op_compiled(dtype):
    plan, parts = registry_plan()
    assert len(parts) > 40
    rng = np.random.default_rng(10)
    x = rng.uniform(0.05, 0.95, (6, 16)).astype(dtype)
    y = rng.uniform(0.05, 0.95, (1, 16)).astype(dtype)  # N = 1: the sum is the value
    got, want = bind(plan, [x, y]), bind(plan, [x, y])
    cpu.run(got)
    reference.run(want)
    tol = {np.float32: 3e-4, np.float64: 1e-9}[dtype]
    offset = 0
    for name, node in parts:
        cols = slice(offset, offset + node.dim)
        np.testing.assert_allclose(
            got.outputs[0][:, cols], want.outputs[0][:, cols], rtol=tol, atol=tol, err_msg=name
        )
        offset += node.dim
