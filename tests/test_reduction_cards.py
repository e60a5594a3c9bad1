"""The reduction cards (reductions/): each card is complete and consistent, and its neutral
program (state, update, merge, finalize) drives the compiled CPU kernel as it stands.

The CPU target with ``vectorised_reductions=False`` prints every card through its own
statements (codegen/cpu_reductions.ProgramRed) instead of the family's vectorised fragments:
those kernels must agree with the NumPy reference (driven by the same card's accumulator),
including a reduction range split across threads (the card's merge) and ranges. The CUDA
kernels print the same programs (tests/test_cuda_emulation.py). The default vectorised
fragments print pieces of the same programs: a throwaway variant of a card changes their
kernels too."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from lazykernels import cpu
from lazykernels.codegen.cpp import render_cpu
from lazykernels.codegen.cpu_reductions import ProgramRed, cpp_reduction
from lazykernels.codegen.target_cpu import CPU
from lazykernels.core.autodiff import run_jvp, run_vjp, vjp_rules
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.reductions import SPECS, SYNTAX, Derivative, reference
from lazykernels.reductions.program import Program, Shape

ALIASES = ["x=Vi(2)", "y=Vj(2)", "b=Vj(2)", "g=Pm(1)"]


def test_every_card_is_complete():
    for name, card in SPECS.items():
        assert isinstance(card.program, Program), name
        assert SYNTAX[name] == card.syntax
        assert card.raw_name in SPECS and card.outputs
        if card.derivative is Derivative.SMOOTH:
            assert card.vjp is not None and card.jvp is not None and card.sum_type, name
        if card.derivative is Derivative.SELECTION:
            both = SPECS[card.with_index]
            assert both.has_values and both.has_index and card.selects, name
        if card.derivative is Derivative.INDEX:
            assert not card.has_values and card.has_index, name
        fields = card.program.fields(Shape(2, 2, 3, "block_sum"))
        assert fields and all(f.kind in ("value", "acc", "index") for f in fields), name


def test_the_generic_cpu_fragment_prints_the_cards_statements():
    red = cpp_reduction("KMin_ArgKMin", 2, k=3, vectorised=False)
    assert isinstance(red, ProgramRed) and red.outputs()[1].ctype == "int64_t"
    red = cpp_reduction("LogSumExp", 1, scheme="kahan_scheme", vectorised=False)
    assert red.helpers == {"lk_exp"}  # exp prints as the CPU dialect's lk_exp
    assert [f.name for f in red.fields()] == ["m", "s", "comp"]


GENERIC = replace(CPU, vectorised_reductions=False)
CASES = {
    "sum_block": ("Exp(-SqDist(x,y)*g)*b", "Sum", None, {}),
    "sum_kahan": ("Exp(-SqDist(x,y)*g)*b", "Sum", None, {"sum_scheme": "kahan_scheme"}),
    "lse_weight": ("-SqDist(x,y)*g", "LogSumExp", "b", {}),
    "softmax_kahan": ("-SqDist(x,y)*g", "SumSoftMaxWeight", "b", {"sum_scheme": "kahan_scheme"}),
    "shift_direct": ("-SqDist(x,y)", "Max_SumShiftExp", None, {"sum_scheme": "direct_sum"}),
    "min": ("x*y - g", "Min", None, {}),
    "max_argmax": ("x*y - g", "Max_ArgMax", None, {}),
    "kmin_argkmin": ("x*y - g", "KMin_ArgKMin", None, {"opt_arg": 3}),
    "argkmin": ("SqDist(x,y)", "ArgKMin", None, {"opt_arg": 4}),
}


def _plan(name: str, axis: int = 1):
    formula, red, weight, options = CASES[name]
    return build_plan(formula, ALIASES, red, axis=axis, formula2=weight, **options)


@pytest.fixture(scope="module")
def generic_cpu():
    """The CPU backend printing every card through ``ProgramRed`` (its own kernel table)."""
    if shutil.which("g++") is None and shutil.which("clang++") is None:
        pytest.skip("no C++ compiler")
    patch = pytest.MonkeyPatch()
    patch.setattr(cpu, "render_cpu", partial(render_cpu, target=GENERIC))
    patch.setattr(cpu, "_KERNELS", {})
    patch.setattr(cpu, "_BY_ID", {})
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: cpu.prepare(_plan(n), np.float64), CASES))
    yield cpu
    patch.undo()


def _data(m: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    x, y, b = rng.uniform(-1, 1, (m, 2)), rng.uniform(-1, 1, (n, 2)), rng.uniform(0, 1, (n, 2))
    return [x, y, b, np.array([0.7])]


def _compare(backend, plan, args, ranges=None, n_threads=0):
    got, want = bind(plan, args, ranges), bind(plan, args, ranges)
    backend.run(got, n_threads=n_threads)
    reference.run(want)
    for g, w in zip(got.outputs, want.outputs):
        if w.dtype == np.int64:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.cpu
@pytest.mark.parametrize("name", sorted(CASES))
def test_generic_cpu_kernel_matches_the_reference(generic_cpu, name):
    assert (
        "#pragma omp simd reduction" not in generic_cpu.kernel_source(_plan(name), "float64").source
    )
    _compare(generic_cpu, _plan(name), _data(37, 300, 1))
    # one block of rows, a long range split across threads: the card's merge joins the parts
    _compare(generic_cpu, _plan(name), _data(3, 9000, 2), n_threads=4)
    ranges = (
        np.array([[0, 2], [2, 3]]),
        np.array([2, 3]),
        np.array([[0, 4000], [5000, 9000], [100, 117]]),
        np.array([[0, 1]]),
        np.array([1]),
        np.array([[0, 3]]),
    )
    _compare(generic_cpu, _plan(name), _data(3, 9000, 3), ranges, n_threads=4)


SMOOTH = {
    "Sum": ("Exp(-SqDist(x,y)*g)*b", None),
    "LogSumExp": ("-SqDist(x,y)*g + (x|b)", None),
    "LogSumExpWeight": ("-SqDist(x,y)*g", "Exp(b)"),
    "SumSoftMaxWeight": ("-SqDist(x,y)*g", "b*b"),
}


@pytest.mark.parametrize("zeros_like", [None, np.zeros_like], ids=["plain", "tracing"])
@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_neutral_jvp_and_vjp_drivers_agree_with_finite_differences(name, zeros_like):
    formula, weight = SMOOTH[name]
    plan = build_plan(formula, ALIASES, name, axis=1, formula2=weight)
    card = SPECS[name]
    assert card.derivative is Derivative.SMOOTH
    rng = np.random.default_rng(5)
    inputs = _data(6, 7, 4)
    tangents = [rng.standard_normal(a.shape) for a in inputs]
    tangents[2] = None  # no tangent for b: its slot is left out of the Diff formula

    def reduce(p, xs):
        return run_plan(p, xs, backend="reference")[0]

    output = reduce(plan, inputs)
    got = run_jvp(plan, inputs, tangents, output, reduce, zeros_like)
    h = 1e-6
    moved = [a if t is None else (a + h * t, a - h * t) for a, t in zip(inputs, tangents)]
    plus = reduce(plan, [m[0] if isinstance(m, tuple) else m for m in moved])
    minus = reduce(plan, [m[1] if isinstance(m, tuple) else m for m in moved])
    np.testing.assert_allclose(got, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)
    # the VJP is its transpose: <G, J t> == <J^T G, t>
    gradient = rng.standard_normal(output.shape)
    wanted = [k for k, t in enumerate(tangents) if t is not None]
    grads = run_vjp(plan, vjp_rules(plan, wanted), inputs, gradient, output, reduce)
    back = sum(float(grads[k].ravel() @ tangents[k].ravel()) for k in grads)
    assert back == pytest.approx(float(gradient.ravel() @ got.ravel()), rel=1e-9)


# --- the vectorised CPU fragments print the card's maths -----------------------------------


def _variant_cases():
    """(card, its program's changed attributes, the plan, the dense reference of the
    variant's result on ``_data``): a throwaway card variant per vectorised family."""
    minmax = {"lt": ">", "order": "max", "worst": -np.inf}  # Min becomes Max

    def twice(program):  # every shifted-sum term doubled: LogSumExp + log 2
        terms = program.terms
        return {"terms": lambda e, ex, g: [e.fmt("({0} * 2)", t) for t in terms(e, ex, g)]}

    def negated(program):  # the K-list of the keys -F: KMin_ArgKMin of -F
        return {"key": lambda e, v: e.fmt("(-{0})", v)}

    return {
        "Min": (lambda p: minmax, "x*y - g", "Max", 0.0),
        "Min_ArgMin": (lambda p: minmax, "x*y - g", "Max_ArgMax", 0.0),
        "KMin_ArgKMin": (negated, "x*y - g", "KMin_ArgKMin", None),
        "LogSumExp": (twice, "-SqDist(x,y)*g", "LogSumExp", np.log(2.0)),
    }


@pytest.mark.cpu
def test_a_card_variant_changes_the_vectorised_cpu_kernel(monkeypatch):
    """The default (vectorised) CPU fragments of Min, Min_ArgMin, KMin and LogSumExp read
    the card's program: a throwaway variant of the card changes what the kernel computes
    (Min into Max, the K-list of -F, the log-sum-exp terms doubled) as the NumPy reference
    of the same change says."""
    if shutil.which("g++") is None and shutil.which("clang++") is None:
        pytest.skip("no C++ compiler")
    monkeypatch.setattr(cpu, "render_cpu", render_cpu)  # the default target (see generic_cpu)
    monkeypatch.setattr(cpu, "_KERNELS", {})
    monkeypatch.setattr(cpu, "_BY_ID", {})
    args = _data(29, 300, 7)
    cases = _variant_cases()
    plans = {}
    for name, (variant, formula, _, _) in cases.items():
        k = 3 if SPECS[name].needs_k else None
        plans[name] = build_plan(formula, ALIASES, name, axis=1, opt_arg=k)
        red = cpp_reduction(name, plans[name].formula.dim, k=k)
        assert not isinstance(red, ProgramRed), name  # a vectorised family
        for attr, value in variant(SPECS[name].program).items():
            monkeypatch.setattr(SPECS[name].program, attr, value)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda p: cpu.prepare(p, np.float64), plans.values()))
    for name, (_, formula, wanted, shift) in cases.items():
        plan = plans[name]
        assert "#pragma omp simd reduction" in cpu.kernel_source(plan, "float64").source
        got = bind(plan, args)
        cpu.run(got)
        if shift is None:  # KMin_ArgKMin of -F
            want = bind(build_plan(f"-({formula})", ALIASES, wanted, axis=1, opt_arg=3), args)
            reference.run(want)
        else:
            want = bind(build_plan(formula, ALIASES, wanted, axis=1), args)
            reference.run(want)
            want.outputs[0][...] += shift
        for g, w in zip(got.outputs, want.outputs):
            if w.dtype == np.int64:
                np.testing.assert_array_equal(g, w)
            else:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
