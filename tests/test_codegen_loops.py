"""Kernel IR with loops: large dimensions keep the source bounded and compute the right thing;
the neutral spellings stay neutral outside the CPU dialect modules.

Above the CPU target's ``unroll_max`` a vector is looped over (``codegen.loops``): the
printed source must not grow with the dimension (checked up to the 65,536 limit without a
compiler), and the looped kernels must agree with the reference backend (compiled, at
dimensions just above the threshold, where every loop rule is exercised).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import lazykernels
from lazykernels import cpu
from lazykernels.codegen.cpp import render_cpu
from lazykernels.codegen.lower import UNROLL_MAX, lower
from lazykernels.codegen.target_cpu import CPU
from lazykernels.core.genred import build_plan
from lazykernels.formula import Cat, make, var
from lazykernels.numpy import Genred

# --- source size -------------------------------------------------------------------------

# (formula, aliases, axis) with {D} the large dimension, {D2} = D + 2, {K}^2 = D.
SIZE_CASES = {
    "gauss-weights": ("Exp(-SqDist(x, y)) * w", ["x = Vi(3)", "y = Vj(3)", "w = Vj({D})"], 1),
    "grad-x": (
        "Grad(Exp(-SqDist(x, y)) * w, x, g)",
        ["x = Vi(3)", "y = Vj(3)", "w = Vj({D})", "g = Vi({D})"],
        1,
    ),
    "grad-y": (
        "Grad(Exp(-SqDist(x, y)) * w, y, g)",
        ["x = Vi(3)", "y = Vj(3)", "w = Vj({D})", "g = Vi({D})"],
        0,
    ),
    "onehot": ("OneHot(y, {D}) * b * x", ["x = Vi(1)", "y = Vj(1)", "b = Vj(1)"], 1),
    "sum": ("Sum(v) * x", ["x = Vi(1)", "v = Vj({D})"], 1),
    "structural": (
        "Concat(Extract(v, 1, 3) * x, ExtractT(Sin(v) * Scalprod(v, w), 2, {D2}))",
        ["x = Vi(1)", "v = Vj({D})", "w = Vi({D})"],
        1,
    ),
    "tensordot": (
        "TensorDot(a, b, [{K}, {K}], [{K}], [1], [0])",
        ["a = Vi({D})", "b = Vj({K})"],
        1,
    ),
    "min-arg": ("SumT(Max(v) - Min(w), {D}) * ArgMax(v)", ["v = Vj({D})", "w = Vi({D})"], 1),
}


def _source(case: str, d: int, dtype: str = "float64") -> str:
    formula, aliases, axis = SIZE_CASES[case]
    k = int(round(d**0.5))
    fill = {"D": d, "D2": d + 2, "K": k}
    plan = build_plan(formula.format(**fill), [a.format(**fill) for a in aliases], axis=axis)
    return render_cpu(plan, dtype).source


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
def test_source_size_does_not_grow_past_the_threshold(case):
    small, large = _source(case, 33 * 33), _source(case, 256 * 256)  # K = 33 > unroll_max
    # only the printed numbers differ (digits of the dimension and of its multiples)
    assert abs(len(large) - len(small)) < 0.02 * len(small) + 200, (len(small), len(large))
    assert len(large) < 100_000


def test_unrolled_source_does_grow_below_the_threshold():
    """The check above can fail: below ``unroll_max`` the source does grow with D."""
    assert len(_source("gauss-weights", 32)) > len(_source("gauss-weights", 8)) + 1000


def test_threshold_is_the_targets():
    assert CPU.unroll_max == UNROLL_MAX
    plan = build_plan("Exp(-SqDist(x, y)) * w", ["x = Vi(3)", "y = Vj(3)", "w = Vj(16)"], axis=1)
    looped = render_cpu(plan, "float64", target=replace(CPU, unroll_max=8)).source
    unrolled = render_cpu(plan, "float64").source
    assert "for (int64_t cc = 0; cc < 16; ++cc)" in looped
    assert "cc <" not in unrolled


def test_large_vectors_become_loops_in_the_ir():
    v, x = var(0, 1000, Cat.J), var(1, 1, Cat.I)
    prog = lower([make("Sum", (make("Exp", (v,)),)) * x], "float64", Cat.I)
    text = "\n".join(prog.inner + prog.mixed)
    assert re.search(r"for \(int64_t c\d+ = 0; c\d+ < 1000; \+\+c\d+\)", text)
    assert len(text) < 1000


# --- looped kernels agree with the reference backend ---------------------------------------

D = UNROLL_MAX + 8  # 40: every vector of dimension D is looped over

COMPILED_CASES = {
    "structural": (
        "Concat(Extract(v, 3, 37) * Exp(-x), ExtractT(Sin(v), 2, 42)) * Scalprod(v, w)",
        {"x": ("i", 1), "v": ("j", D), "w": ("i", D)},
        "Sum",
        None,
    ),
    "onehot-select": (
        "OneHot(y, 40) * b + ElemT(b, 40, 5) + SumT(Max(v) - Min(w), 40)"
        " + ArgMax(v) * ArgMin(w) + Elem(v, 33)",
        {"y": ("j", 1), "b": ("j", 1), "v": ("j", D), "w": ("i", D)},
        "Sum",
        None,
    ),
    "matrix-products": (
        "MatVecMult(A, v) * VecMatMult(w, B) + TensorProd(u, z)",
        {"A": ("i", 36 * D), "v": ("j", D), "w": ("i", D), "B": ("j", 36 * D)}
        | {"u": ("i", 6), "z": ("j", 6)},
        "Sum",
        None,
    ),
    "tensordot": (
        "TensorDot(a, c, [4, 4, 4], [4, 10], [2], [0])"
        " + Sum(TensorDot(a, b, [8, 8], [8], [1], [0]))",
        {"a": ("i", 64), "c": ("j", 40), "b": ("j", 8)},
        "Sum",
        None,
    ),
    "gauss-grad-x": (
        "Grad(Exp(-SqDist(x, y)) * w, x, g)",
        {"x": ("i", 3), "y": ("j", 3), "w": ("j", D), "g": ("i", D)},
        "Sum",
        None,
    ),
    "max": ("Sin(v) * x + w", {"x": ("i", 1), "v": ("j", D), "w": ("i", D)}, "Max", None),
    "argkmin": ("Sin(v) * x + w", {"x": ("i", 1), "v": ("j", D), "w": ("i", D)}, "ArgKMin", 3),
}

pytestmark_cpu = pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler")


def _args(variables: dict, rng, n_i: int = 13, n_j: int = 57, dtype=np.float64) -> list:
    out = []
    for name, (cat, dim) in variables.items():
        rows = n_i if cat == "i" else n_j
        if name == "y" and dim == 1:  # OneHot positions, a few out of range
            out.append(rng.integers(-2, 43, (rows, 1)).astype(dtype))
        else:
            out.append(rng.uniform(-1.5, 1.5, (rows, dim)).astype(dtype))
    return out


@pytest.mark.cpu
@pytestmark_cpu
@pytest.mark.parametrize("case", sorted(COMPILED_CASES))
def test_looped_kernels_agree_with_the_reference(case, empty_cache):
    formula, variables, reduction, k = COMPILED_CASES[case]
    aliases = [f"{n} = V{cat}({dim})" for n, (cat, dim) in variables.items()]
    args = _args(variables, np.random.default_rng(len(case)))
    fn = Genred(formula, aliases, reduction_op=reduction, axis=1, opt_arg=k)
    got = fn(*args, backend="CPU")
    want = fn(*args, backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


@pytest.mark.cpu
@pytestmark_cpu
def test_looped_kernel_float32(empty_cache):
    formula, variables, _, _ = COMPILED_CASES["structural"]
    aliases = [f"{n} = V{cat}({dim})" for n, (cat, dim) in variables.items()]
    args = _args(variables, np.random.default_rng(3), dtype=np.float32)
    fn = Genred(formula, aliases, axis=1)
    got = fn(*args, backend="CPU")
    want = fn(*[a.astype(np.float64) for a in args], backend="reference")
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


# --- neutral spellings -----------------------------------------------------------------------

# The modules that print the CPU target (its dialect, skeleton, helpers, runtime, compiler).
CPU_MODULES = {
    "codegen/dialect_cpu.py",
    "codegen/cpp.py",
    "codegen/reductions_cpp.py",
    "codegen/reductions_lse_cpp.py",
    "codegen/schedule_cpp.py",
    "codegen/sqdist_cpp.py",
    "codegen/dotprod_cpp.py",
    "codegen/dotgrad_cpp.py",
    "codegen/fastmath.py",
    "codegen/prelude.py",
    "codegen/runtime.py",
    "codegen/buffer.py",
    "jit/compiler.py",
    "cuda/emulation.py",  # host C++ by design: std::thread/std::barrier stand in for CUDA
    "jax/ffi_native.py",  # the XLA FFI handler of the JAX front end: host C++ by design
}
# __restrict__ (with the trailing underscores) is CUDA's spelling, printed by codegen/cuda.py
CPU_SPELLINGS = re.compile(r"std::|#pragma|omp_|__builtin_|__restrict(?!__)")


def test_cpu_spellings_stay_in_the_cpu_dialect_modules():
    root = Path(lazykernels.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in CPU_MODULES:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if CPU_SPELLINGS.search(line):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_loop_carried_updates_survive_dead_code_removal():
    """ArgMax's running maximum is read by the comparison of the next iteration only."""
    prog = lower([make("ArgMax", (var(0, 40, Cat.J),))], "float64", Cat.I)
    updates = [line for line in prog.inner if re.match(r"\s+m\d+ = ", line)]
    assert len(updates) == 2, prog.inner  # the index and the running maximum
