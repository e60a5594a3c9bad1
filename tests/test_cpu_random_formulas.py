"""Random formulas drawn from the op registry, compiled, against the reference backend.

Hypothesis builds random formula trees (depth <= 3) over i-, j-variables and parameters of
dimensions 1 and 3. Every node is a registry card applied as its ``test`` spec says
(argument dimensions, static parameters; element-wise cards get dimensions 1 or 3 with
broadcasting), and every argument is mapped into the card's test domain: a variable (data in
(0.05, 0.95)) by an affine map, any other sub-formula by ``low + (high - low) *
(1/2 + Atan(f) / pi)``. So every op is evaluated where it is defined, and values stay
moderate (no overflow, no 0/0) however the ops are nested.

A compile costs seconds, so one kernel checks many formulas at once: the formulas are
``Concat``-ed into one vector formula and each one's columns are compared separately (the
failure message names the sub-formula). Both backends run the same plan; the result is also
compared with a dense NumPy evaluation of the *unsimplified* formula, so that a simplifier
bug cannot hide behind the shared plan.

Tolerance (float64): ``rtol = atol / scale = 1e-9``. The kernels' ``exp`` is a polynomial
with ~2.5 ulp error, fast-math flags allow reassociation and contraction, and nesting three
ops with bounded derivatives amplifies that by at most ~10^3 (max error seen: 1e-14); the
absolute part, relative to the column's magnitude, covers sums that cancel to ~0.
Discontinuous ops (Floor, Sign, Step, comparisons, Mod, OneHot...) only disagree when an
argument lies within an ulp of a jump; the data are fixed (seeded), so the test is
deterministic.

Shrinking is disabled: every shrink step would recompile a kernel; the failure message names
the sub-formulas that disagree instead.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lazykernels import cpu
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan
from lazykernels.core.plan import ReductionPlan
from lazykernels.formula import Cat, Node, evaluate, make, parse_aliases, to_string
from lazykernels.formula.ops import OPS
from lazykernels.reductions import reference

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

ALIASES = parse_aliases(
    ["x = Vi(0,1)", "X = Vi(1,3)", "y = Vj(2,1)", "Y = Vj(3,3)", "p = Pm(4,1)", "P = Pm(5,3)"]
)
VARS = tuple(a.node for a in ALIASES)
NAMES = {a.node: a.name for a in ALIASES}

# Cards left out of the random trees, and why.
LEFT_OUT = {
    "TensorDot": "24- and 20-dimensional test arguments",
    "BSpline": "7-knot recursions make the kernel source huge",
    "DiffBSpline": "7-knot recursions make the kernel source huge",
    "SoftDTW_SqDist": "dynamic-programming tables make the kernel source huge",
    "GradSoftDTW_SqDist": "dynamic-programming tables make the kernel source huge",
    "HvpSoftDTW_SqDist": "dynamic-programming tables make the kernel source huge",
}
CARDS = tuple(
    card
    for name, card in OPS.items()
    if card.test is not None and card.arity > 0 and name not in LEFT_OUT
)
DEPTH = 3
M, N = 13, 21  # more than one SIMD width, and not a multiple of one
RTOL = 1e-9

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _cst(value: float) -> Node:
    return make("FloatCst", (), (float(value),))


def _into_domain(node: Node, low: float, high: float, raw: bool) -> Node:
    """``node`` mapped into [low, high]: affinely for data in (0, 1), else through Atan."""
    unit = node if raw else make("Atan", (node,)) * _cst(1 / math.pi) + _cst(0.5)
    return unit * _cst(high - low) + _cst(low)


class _Builder:
    """Draws one random formula tree; ``salt`` varies the choices from node to node, so that
    even Hypothesis's simplest example (every draw 0) is not one op repeated."""

    def __init__(self, draw: st.DrawFn):
        self.draw = draw
        self.salt = 0

    def pick(self, options: tuple) -> object:
        self.salt += 7  # a step that cycles through the options (coprime with their counts)
        k = self.draw(st.integers(0, len(options) - 1))
        return options[(k + self.salt) % len(options)]

    def fit(self, node: Node, dim: int) -> Node:
        """``node`` padded with variables (Concat) or cut (Extract) to dimension ``dim``."""
        while node.dim < dim:
            node = make("Concat", (node, self.pick(VARS)))
        if node.dim > dim:
            start = self.draw(st.integers(0, node.dim - dim))
            node = make("Extract", (node,), (start, dim))
        return node

    def tree(self, depth: int, root: object = None) -> tuple[Node, bool]:
        """A formula of dimension 1 or 3, and whether it is a bare variable."""
        if root is None and (depth == 0 or self.pick((False, False, False, False, True))):
            return self.pick(VARS), True
        card = root if root is not None else self.pick(CARDS)
        spec = card.test
        dims = list(spec.arg_dims)
        if card.elementwise:  # dimension 1 or 3, some arguments broadcast from dimension 1
            wide = self.pick((1, 3))
            dims = [1 if d == 1 else self.pick((wide, wide, 1)) for d in dims]
        args = []
        for dim in dims:
            sub, raw = self.tree(depth - 1)
            fitted = self.fit(sub, dim)
            args.append(_into_domain(fitted, spec.low, spec.high, raw and fitted is sub))
        node = make(card, tuple(args), spec.params)
        if node.dim not in (1, 3):
            node = self.fit(node, self.pick((1, 3)))
        return node, False


@st.composite
def formula_lists(draw: st.DrawFn, count: int) -> list[Node]:
    """``count`` random formulas whose root ops are ``count`` distinct registry cards."""
    roots = draw(st.permutations(CARDS))[:count]
    builder = _Builder(draw)
    return [builder.tree(DEPTH, root)[0] for root in roots]


def concat(nodes: list[Node]) -> Node:
    out = nodes[0]
    for node in nodes[1:]:
        out = make("Concat", (out, node))
    return out


def data(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(M, 1), (M, 3), (N, 1), (N, 3), (1,), (3,)]
    return [rng.uniform(0.05, 0.95, size=s) for s in shapes]


def dense(root: Node, args: list[np.ndarray]) -> np.ndarray:
    """F(x_i, y_j, p) on the whole (M, N) grid, NumPy float64: shape (M, N, dim)."""
    env = {}
    for node, array in zip(VARS, args):
        cat = node.params[2]
        env[node] = array[:, None] if cat is Cat.I else array[None] if cat is Cat.J else array
    return np.broadcast_to(evaluate(root, env, np.float64), (M, N, root.dim))


def run_both(plan: ReductionPlan, args: list[np.ndarray]) -> tuple[tuple, tuple]:
    got, want = bind(plan, args), bind(plan, args)
    cpu.run(got)
    reference.run(want)
    return got.outputs, want.outputs


def compile_all(plans: list[ReductionPlan]) -> None:
    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        list(pool.map(lambda plan: cpu.prepare(plan, np.float64), plans))


def close_columns(got, want, parts, what, rtol=RTOL):
    """Compare column blocks (one per formula of ``parts``); name the formulas that differ."""
    assert got.shape == want.shape, (got.shape, want.shape)
    bad, offset = [], 0
    for node in parts:
        cols = slice(offset, offset + node.dim)
        offset += node.dim
        g, w = got[..., cols], want[..., cols]
        scale = max(1.0, float(np.abs(w[np.isfinite(w)]).max(initial=0.0)))
        if not np.allclose(g, w, rtol=rtol, atol=rtol * scale, equal_nan=False):
            err = float(np.nanmax(np.abs(g - w))) / scale
            bad.append(f"{to_string(node, NAMES)}  (max error {err:.3g} x {scale:.3g})")
    assert offset == got.shape[-1]
    assert not bad, f"{what}: {len(bad)} formula(s) differ:\n" + "\n".join(bad)


@settings(SETTINGS, max_examples=4)
@given(formula_lists(50))
def test_random_formulas_sum_both_axes(parts):
    formula = concat(parts)
    plans = [build_plan(formula, ALIASES, "Sum", axis=axis) for axis in (0, 1)]
    compile_all(plans)
    args = data(seed=len(parts))
    values = dense(formula, args)
    for axis, plan in zip((0, 1), plans):
        got, want = run_both(plan, args)
        assert np.isfinite(want[0]).all()
        close_columns(got[0], want[0], parts, f"axis={axis}: CPU vs reference")
        close_columns(want[0], values.sum(axis=axis), parts, f"axis={axis}: dense NumPy")


def scalar_sums(parts: list[Node]) -> list[Node]:
    return [make("Sum", (node,)) if node.dim > 1 else node for node in parts]


def check_selection(values, got_values, got_index, want_index, k, what):
    """Min/KMin values, and tie-robust indices: each index must point at a value equal to the
    selected one; where the K smallest are separated by more than the tolerance, the index
    must equal the reference's."""
    n_out = values.shape[0]
    scale = np.maximum(1.0, np.abs(values).max(axis=1, keepdims=True))  # (n_out, 1, dim)
    ordered = np.sort(values, axis=1)[:, : k + 1]  # (n_out, k + 1, dim)
    np.testing.assert_allclose(got_values, ordered[:, :k], rtol=RTOL, atol=RTOL, err_msg=what)
    picked = np.take_along_axis(values, got_index, axis=1)
    tol = 1e-9 * scale
    assert (np.abs(picked - ordered[:, :k]) <= tol).all(), what
    separated = (np.diff(ordered, axis=1) > tol).all(axis=1, keepdims=True)
    separated = np.broadcast_to(separated, got_index.shape)
    np.testing.assert_array_equal(got_index[separated], want_index[separated], err_msg=what)
    assert separated.mean() > 0.25, f"{what}: too many ties to check the indices"
    assert got_index.shape[0] == n_out


@settings(SETTINGS, max_examples=1)
@given(formula_lists(25))
def test_random_formulas_min_kmin_logsumexp(parts):
    # Each formula is summed to a scalar s_k; the reductions run on S = Concat(s_k), the
    # K-min on its first 12 components (its insertion steps are costly to compile).
    sums = scalar_sums(parts)
    formula, few = concat(sums), concat(sums[:12])
    mean = make("Sum", (formula,)) * _cst(1 / len(sums))
    # LogSumExp with weight Exp(S - mean) = log sum exp(mean) exp(S - mean): LSE of each s_k.
    weight = make("Exp", (formula - mean,))
    k = 3
    plans = {
        "Min_ArgMin": build_plan(formula, ALIASES, "Min_ArgMin", axis=0),
        "KMin_ArgKMin": build_plan(few, ALIASES, "KMin_ArgKMin", axis=1, opt_arg=k),
        "LogSumExp": build_plan(mean, ALIASES, "LogSumExp", axis=1),
        "LogSumExpWeight": build_plan(mean, ALIASES, "LogSumExp", axis=0, formula2=weight),
    }
    compile_all(list(plans.values()))
    args = data(seed=100)
    grid = dense(formula, args)  # (M, N, 25)
    by_i, by_j = grid.transpose(1, 0, 2), grid  # (n_out, n_red, 25) for axis 0 and axis 1

    got, want = run_both(plans["Min_ArgMin"], args)
    close_columns(got[0], want[0], sums, "Min: CPU vs reference")
    check_selection(by_i, got[0][:, None], got[1][:, None], want[1][:, None], 1, "Min_ArgMin")

    got, want = run_both(plans["KMin_ArgKMin"], args)
    close_columns(got[0], want[0], sums[:12], "KMin: CPU vs reference")
    check_selection(by_j[..., :12], got[0], got[1], want[1], k, "KMin_ArgKMin")

    def lse(values: np.ndarray) -> np.ndarray:
        top = values.max(axis=1)
        return top + np.log(np.exp(values - top[:, None]).sum(axis=1))

    got, want = run_both(plans["LogSumExp"], args)
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(got[0], lse(by_j.mean(axis=2, keepdims=True)), rtol=RTOL)

    got, want = run_both(plans["LogSumExpWeight"], args)
    close_columns(got[0], want[0], sums, "LogSumExpWeight: CPU vs reference")
    close_columns(got[0], lse(by_i), sums, "LogSumExpWeight: dense NumPy")
