"""The fuzz corpus: random kernels and calls through every front end, checked two ways.

A *case* is a kernel (a random formula, a reduction, a dtype, an axis) and a call (shapes,
batch dimensions, memory layouts, ranges, ``out=``, special values, a front end: NumPy or
torch, ``Genred`` or ``LazyTensor``). Each case runs on the compiled CPU backend and on the
reference backend and must end in one of two ways:

- both raise an exception of lazykernels's own (``LazyKernelsError``): "refused" (a NaN
  input, an incompatible reduction, a deliberately wrong shape...);
- both return, and the results agree: values within a tolerance relative to the column's
  magnitude (non-finite entries equal, NaN where NaN), indices equal or pointing at formula
  values that agree (near-ties may be broken either way by reassociated arithmetic).

Anything else (a foreign exception, one backend raising and not the other, a mismatch) is
a failure, reported with the case. A crash (segfault) kills the run: the count of finished
cases is the evidence.

Compiles cost ~1 s each, so the kernels come from a fixed pool (:func:`kernel_pool`; random
trees drawn once from a seeded generator) and hypothesis varies everything else; the CI
slice draws from a small subset of the pool (see ``test_fuzz.py``).

Known divergence, counted apart and not compared: the exp-family reductions (LogSumExp,
LogSumExpWeight, SumSoftMaxWeight, Max_SumShiftExp) on inputs holding infinities: where a
formula value is +inf the compiled kernels return NaN and the reference +inf (see
docs/nan-inf.md). And, on inputs holding infinities, any reduction whose formula values include
NaN (inf - inf, 0 * inf): the compiled min/max/arg kernels may pick a NaN where the reference
skips it; such a case is counted apart when it differs.
"""

from __future__ import annotations

import functools
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lazykernels.errors import LazyKernelsError
from lazykernels.formula import evaluate
from lazykernels.formula.ir import Cat, topological_order

D = 3  # dimension of the vector variables x (i) and y (j); b (j) has dimension 2
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)", "p = Pm(1)"]

VALUE_REDUCTIONS = ("Sum", "Min", "Max", "KMin", "LogSumExp", "Max_SumShiftExp")
INDEX_REDUCTIONS = ("ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax", "ArgKMin", "KMin_ArgKMin")
WEIGHT_REDUCTIONS = ("SumSoftMaxWeight", "LogSumExpWeight")
VECTOR_REDUCTIONS = ("Sum", "Min", "Max")  # for formulas of dimension > 1
EXP_FAMILY = {"LogSumExp", "LogSumExpWeight", "SumSoftMaxWeight", "Max_SumShiftExp"}
K = 2

# ------------------------------------------------------------------ random formula trees
# A tree is a tuple (op, *children); it renders to a formula string and to a LazyTensor
# expression, so Genred and LazyTensor run the same formula.

_UNARY = ("Exp", "Sin", "Cos", "Abs", "Square", "Neg")
_BINARY = ("+", "-", "*", "/")
_SCALAR = ("SqDist", "SqNorm2", "Sum")


def _tree(rng: random.Random, depth: int, vector: bool) -> tuple:
    """A random tree of dimension D (``vector``) or 1."""
    if depth == 0 or rng.random() < 0.25:
        if vector:
            return (rng.choice("xy"),)
        return ("p",) if rng.random() < 0.3 else ("Sum", (rng.choice("xy"),))
    kind = rng.random()
    if kind < 0.35:
        return (rng.choice(_UNARY), _tree(rng, depth - 1, vector))
    if kind < 0.75 or vector:
        return (rng.choice(_BINARY), _tree(rng, depth - 1, vector), _tree(rng, depth - 1, vector))
    op = rng.choice(_SCALAR)
    if op == "SqDist":
        return (op, _tree(rng, depth - 1, True), _tree(rng, depth - 1, True))
    return (op, _tree(rng, depth - 1, True))


def to_formula(tree: tuple) -> str:
    """The formula string of ``tree``."""
    op, *kids = tree
    if not kids:
        return op
    parts = [to_formula(k) for k in kids]
    if op == "/":  # a denominator kept away from 0
        return f"({parts[0]} / (Square({parts[1]}) + 1))"
    if op in _BINARY:
        return f"({parts[0]} {op} {parts[1]})"
    if op == "Neg":
        return f"(-{parts[0]})"
    return f"{op}({', '.join(parts)})"


def to_lazy(tree: tuple, leaves: dict[str, Any]) -> Any:
    """The LazyTensor of ``tree`` over ``leaves`` ({"x": LazyTensor, ...})."""
    op, *kids = tree
    if not kids:
        return leaves[op]
    a = [to_lazy(k, leaves) for k in kids]
    if op == "+":
        return a[0] + a[1]
    if op == "-":
        return a[0] - a[1]
    if op == "*":
        return a[0] * a[1]
    if op == "/":
        return a[0] / (a[1] ** 2 + 1)
    if op == "Neg":
        return -a[0]
    if op == "Square":
        return a[0] ** 2
    if op == "SqDist":
        return ((a[0] - a[1]) ** 2).sum(-1)
    if op == "SqNorm2":
        return (a[0] ** 2).sum(-1)
    if op == "Sum":
        return a[0].sum(-1)
    return getattr(a[0], op.lower())()


@dataclass(frozen=True)
class Kernel:
    """One compiled kernel: formula tree (dimension ``dim``), reduction, dtype, axis."""

    tree: tuple
    dim: int
    reduction: str
    dtype: str
    axis: int

    @property
    def formula(self) -> str:
        return to_formula(self.tree)


def kernel_pool(n_formulas: int, seed: int = 14) -> list[Kernel]:
    """Every (formula, reduction, dtype, axis) of ``n_formulas`` random formulas.

    Formulas alternate between dimension 1 (every reduction) and dimension 3 (the
    reductions defined per component: Sum, Min, Max).
    """
    rng = random.Random(seed)
    pool = []
    for index in range(n_formulas):
        vector = index % 3 == 2
        tree = _tree(rng, 3, vector)
        reductions = (
            VECTOR_REDUCTIONS if vector else VALUE_REDUCTIONS + INDEX_REDUCTIONS + WEIGHT_REDUCTIONS
        )
        for reduction in reductions:
            for dtype in ("float32", "float64"):
                for axis in (0, 1):
                    pool.append(Kernel(tree, D if vector else 1, reduction, dtype, axis))
    return pool


# ------------------------------------------------------------------ the call


@dataclass(frozen=True)
class Case:
    kernel: Kernel
    front: str  # "numpy-genred", "torch-genred", "numpy-lazy", "torch-lazy"
    m: int
    n: int
    batch: tuple[int, ...]  # () or the batch shape of x (y and b get a broadcast variant)
    layouts: tuple[str, ...]  # per input: "C", "F" (Fortran), "strided"
    special: str  # "", "inf", "-inf", "nan", "bad-shape"
    ranges: bool
    out: bool
    seed: int


_SIZES = (0, 1, 2, 3, 5, 8, 17, 33)


def cases(pool: list[Kernel]) -> st.SearchStrategy[Case]:
    """The strategy of cases over ``pool``."""
    return st.builds(
        Case,
        kernel=st.sampled_from(pool),
        front=st.sampled_from(("numpy-genred", "torch-genred", "numpy-lazy", "torch-lazy")),
        m=st.sampled_from(_SIZES),
        n=st.sampled_from(_SIZES),
        batch=st.sampled_from(((), (), (), (2,), (2, 3))),
        layouts=st.tuples(*[st.sampled_from(("C", "C", "F", "strided"))] * 4),
        special=st.sampled_from(("",) * 6 + ("inf", "-inf", "nan", "bad-shape")),
        ranges=st.booleans(),
        out=st.booleans(),
        seed=st.integers(0, 2**31 - 1),
    )


def _layout(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(array)
    if layout == "strided":  # every other row of a twice-as-long array (a view)
        big = np.repeat(array, 2, axis=-2) if array.ndim >= 2 else np.repeat(array, 2)
        return big[..., ::2, :] if array.ndim >= 2 else big[::2]
    return np.ascontiguousarray(array)


def _special_target(case: Case) -> int:
    """Which input gets the case's special values: x (0) or y (1), one the formula uses."""
    used = [k for k, name in enumerate("xy") if name in _leaves(case.kernel.tree)]
    nonempty = [k for k in used if (case.m, case.n)[k] > 0]
    return nonempty[case.seed % len(nonempty)] if nonempty else -1


def _leaves(tree: tuple) -> set[str]:
    op, *kids = tree
    return {op} if not kids else set().union(*map(_leaves, kids))


def make_inputs(case: Case) -> list[np.ndarray]:
    """x (.., M, 3), y (.., N, 3), b (.., N, 2), p (.., 1), as the case says."""
    rng = np.random.default_rng(case.seed)
    dtype = np.dtype(case.kernel.dtype)
    batch = case.batch
    y_batch = batch[:-1] + (1,) if batch else ()  # broadcast along the last batch axis
    shapes = [(*batch, case.m, D), (*y_batch, case.n, D), (*batch, case.n, 2), (*batch, 1)]
    arrays = [rng.uniform(-1, 1, shape).astype(dtype) for shape in shapes]
    arrays[2] = arrays[2] + 1.5  # positive weights: LogSumExpWeight takes their log
    if case.special in ("inf", "-inf", "nan") and _special_target(case) >= 0:
        value = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[case.special]
        target = arrays[_special_target(case)]
        flat = target.reshape(-1)
        flat[rng.integers(0, flat.size, size=1 + flat.size // 7)] = value
    if case.special == "bad-shape":
        arrays[1] = rng.uniform(-1, 1, (*y_batch, case.n, D + 1)).astype(dtype)
    return [_layout(a, lay) for a, lay in zip(arrays, case.layouts)]


def make_ranges(case: Case, rng: np.random.Generator) -> tuple[np.ndarray, ...] | None:
    """Random block-sparse ranges (KeOps's 6-tuple), for unbatched cases with M, N > 0."""
    if not case.ranges or case.batch or case.m == 0 or case.n == 0:
        return None
    from lazykernels.numpy.cluster import from_matrix

    def blocks(size: int) -> np.ndarray:
        cuts = np.unique(rng.integers(1, size, size=min(size - 1, 3))) if size > 1 else []
        edges = np.concatenate([[0], cuts, [size]]).astype(np.int64)
        return np.stack([edges[:-1], edges[1:]], axis=1)

    ranges_i, ranges_j = blocks(case.m), blocks(case.n)
    keep = rng.random((len(ranges_i), len(ranges_j))) < 0.6
    return from_matrix(ranges_i, ranges_j, keep)


# ------------------------------------------------------------------ running one case


def _call(case: Case, inputs: list[np.ndarray], backend: str, ranges: Any) -> tuple:
    """Run ``case`` on ``backend``; the results as a tuple of NumPy arrays."""
    kernel = case.kernel
    torch_front = case.front.startswith("torch")
    if torch_front:
        import torch

        args = [torch.from_numpy(a) for a in inputs]
    else:
        args = list(inputs)
    options: dict[str, Any] = {"backend": backend}
    if ranges is not None:
        options["ranges"] = tuple(torch.from_numpy(r) for r in ranges) if torch_front else ranges
    if case.front.endswith("genred"):
        routine = _genred(kernel, torch_front)
        if case.out and kernel.reduction not in ("Min_ArgMin", "Max_ArgMax", "KMin_ArgKMin"):
            probe = routine(*args, **options)
            options["out"] = probe.new_zeros(probe.shape) if torch_front else np.zeros_like(probe)
        result = routine(*args, **options)
    else:
        result = _lazy_call(case, args, options)
    results = result if isinstance(result, tuple) else (result,)
    return tuple(r.numpy() if hasattr(r, "numpy") else np.asarray(r) for r in results)


@functools.cache
def _genred(kernel: Kernel, torch_front: bool) -> Any:
    """The Genred of ``kernel`` (made once: parsing is not what is fuzzed here)."""
    if torch_front:
        from lazykernels.torch import Genred
    else:
        from lazykernels.numpy import Genred
    return Genred(
        kernel.formula,
        ALIASES,
        reduction_op=kernel.reduction,
        axis=kernel.axis,
        formula2="b" if "Weight" in kernel.reduction else None,
        **({"opt_arg": K} if "K" in kernel.reduction else {}),
    )


_LAZY_METHODS = {
    "Sum": "sum",
    "Min": "min",
    "Max": "max",
    "ArgMin": "argmin",
    "ArgMax": "argmax",
    "Min_ArgMin": "min_argmin",
    "Max_ArgMax": "max_argmax",
    "KMin": "Kmin",
    "ArgKMin": "argKmin",
    "KMin_ArgKMin": "Kmin_argKmin",
    "LogSumExp": "logsumexp",
}


def _lazy_call(case: Case, args: list[Any], options: dict[str, Any]) -> Any:
    kernel = case.kernel
    if case.front.startswith("torch"):
        from lazykernels.torch import LazyTensor
    else:
        from lazykernels.numpy import LazyTensor
    x, y, b, p = args
    nb = len(case.batch)
    leaves = {
        "x": LazyTensor(x[..., :, None, :]),
        "y": LazyTensor(y[..., None, :, :]),
        "p": LazyTensor(p[..., None, None, :]),
    }
    formula = to_lazy(kernel.tree, leaves)
    axis = nb + kernel.axis
    weight = LazyTensor(b[..., None, :, :])
    name = kernel.reduction
    if name == "SumSoftMaxWeight":
        return formula.sumsoftmaxweight(weight, axis=axis, **options)
    if name == "LogSumExpWeight":
        return formula.logsumexp(axis=axis, weight=weight, **options)
    if name not in _LAZY_METHODS:  # no named method (Max_SumShiftExp)
        return formula.reduction(name, axis=axis, **options)
    method = getattr(formula, _LAZY_METHODS[name])
    if "K" in name:
        return method(K, axis=axis, **options)
    return method(axis=axis, **options)


def run_case(case: Case, counts: Counter) -> None:
    """Run ``case`` on both backends and check it (see the module docstring).

    Raises:
        AssertionError: a foreign exception, a disagreement between the backends, or a
            result that differs from the reference.
    """
    inputs = make_inputs(case)
    ranges = make_ranges(case, np.random.default_rng(case.seed + 1))
    outcomes = []
    for backend in ("CPU", "reference"):
        try:
            outcomes.append(_call(case, inputs, backend, ranges))
        except LazyKernelsError as exc:
            outcomes.append(exc)
        except Exception as exc:  # noqa: BLE001 - the point: nothing foreign may escape
            counts["foreign exception"] += 1
            raise AssertionError(
                f"foreign exception {type(exc).__name__}: {exc}\n  {case}"
            ) from exc
    got, want = outcomes
    if isinstance(got, Exception) or isinstance(want, Exception):
        if not (isinstance(got, Exception) and isinstance(want, Exception)):
            raise AssertionError(
                f"only one backend raised: CPU {got!r}, reference {want!r}\n  {case}"
            )
        if type(got) is not type(want):
            raise AssertionError(f"different errors: CPU {got!r}, reference {want!r}\n  {case}")
        counts[f"refused: {type(got).__name__}"] += 1
        if os.environ.get("LAZYKERNELS_FUZZ_VERBOSE"):
            print(f"refused: {got}")
        return
    # (a LazyTensor takes its dimensions from the data: a wider y is no error there)
    genred = case.front.endswith("genred")
    if (case.special == "bad-shape" and genred) or (
        case.special == "nan" and _special_target(case) >= 0
    ):
        raise AssertionError(f"a {case.special} input was accepted\n  {case}")
    if case.kernel.reduction in EXP_FAMILY and case.special in ("inf", "-inf"):
        counts["ok, exp-family on infinite inputs (not compared)"] += 1
        return
    try:
        compare(case, inputs, got, want)
    except AssertionError:
        if case.special in ("inf", "-inf") and _formula_has_nan(case, inputs):
            counts["differs, NaN formula values from inf inputs (known)"] += 1
            return
        raise
    counts["ok"] += 1


def _formula_has_nan(case: Case, inputs: list[np.ndarray]) -> bool:
    """Whether some value of the (dense, float64) formula is NaN, e.g. inf - inf."""
    plan = _genred(Kernel(case.kernel.tree, case.kernel.dim, "Sum", "float64", 1), False).plan
    env = {}
    for node in topological_order(plan.formula):
        if node.op.name == "Var":
            position, _, cat = node.params
            array = inputs[position].astype(np.float64)
            env[node] = (
                array[..., :, None, :]
                if cat is Cat.I
                else array[..., None, :, :]
                if cat is Cat.J
                else array[..., None, None, :]
            )
    with np.errstate(all="ignore"):
        return bool(np.isnan(evaluate(plan.formula, env, np.float64)).any())


def _tolerance(dtype: str) -> float:
    return 2e-4 if dtype == "float32" else 1e-9


def compare(case: Case, inputs: list[np.ndarray], got: tuple, want: tuple) -> None:
    """Check CPU results ``got`` against the reference's ``want``."""
    if len(got) != len(want):
        raise AssertionError(f"{len(got)} results vs {len(want)}\n  {case}")
    tol = _tolerance(case.kernel.dtype)
    for g, w in zip(got, want):
        if g.shape != w.shape or g.dtype != w.dtype:
            raise AssertionError(f"result {g.shape} {g.dtype} vs {w.shape} {w.dtype}\n  {case}")
        if np.issubdtype(w.dtype, np.integer) or _is_index(case, g, w):
            _compare_indices(case, inputs, g, w)
            continue
        _compare_values(case, g, w, tol)


def _is_index(case: Case, g: np.ndarray, w: np.ndarray) -> bool:
    """Index outputs of ArgMin/ArgMax/ArgKMin (floats in KeOps's convention)."""
    return case.kernel.reduction in ("ArgMin", "ArgMax", "ArgKMin")


def _compare_values(case: Case, g: np.ndarray, w: np.ndarray, tol: float) -> None:
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    same_special = (
        (np.isnan(g64) == np.isnan(w64))
        & (np.isinf(g64) == np.isinf(w64))
        & np.where(np.isinf(w64), g64 == w64, True)
    )
    if not same_special.all():
        raise AssertionError(f"non-finite entries differ:\n{g}\nvs\n{w}\n  {case}")
    finite = np.isfinite(w64)
    if not finite.any():
        return
    scale = np.abs(np.where(finite, w64, 0)).max() + 1
    error = np.abs(np.where(finite, g64 - w64, 0)).max()
    if error > tol * scale:
        raise AssertionError(f"values differ by {error:.3g} (scale {scale:.3g})\n  {case}")


def _compare_indices(case: Case, inputs: list[np.ndarray], g: np.ndarray, w: np.ndarray) -> None:
    mismatched = np.argwhere(g != w)
    if not len(mismatched):
        return
    tol = _tolerance(case.kernel.dtype)
    for position in mismatched[:50]:
        *batch, row, _ = position
        a = _formula_value(case, inputs, batch, row, int(g[tuple(position)]))
        b = _formula_value(case, inputs, batch, row, int(w[tuple(position)]))
        if not (a == b or abs(a - b) <= tol * (abs(a) + abs(b) + 1)):
            raise AssertionError(
                f"indices differ at {tuple(position)}: CPU {g[tuple(position)]} (F = {a}), "
                f"reference {w[tuple(position)]} (F = {b})\n  {case}"
            )


def _formula_value(case: Case, inputs: list[np.ndarray], batch: list, row: int, col: int) -> float:
    """F at one (row, col) of one batch entry, in float64 (rows index the output)."""
    plan = _genred(Kernel(case.kernel.tree, case.kernel.dim, "Sum", "float64", 1), False).plan
    i, j = (row, col) if case.kernel.axis == 1 else (col, row)
    env = {}
    for node in topological_order(plan.formula):
        if node.op.name != "Var":
            continue
        position, _, cat = node.params
        array = inputs[position]
        lead = tuple(0 if s == 1 else k for s, k in zip(array.shape[: len(batch)], batch))
        entry = array[lead] if lead else array
        env[node] = entry[i] if cat is Cat.I else entry[j] if cat is Cat.J else entry
    return float(evaluate(plan.formula, env, np.float64)[0])
