"""When a call may take the dot-product path: data centring and a call-time error bound.

The dot-product path (:mod:`lazykernels.codegen.dotprod_cpp`) evaluates squared distances
as ``|u|^2 + |w|^2 - 2 u.w``, which cancels for near points far from the origin. For each
call with ``gemm="auto"`` (the default) this module

1. *centres* the data: the variables of squared-distance atoms (which appear nowhere else
   in the formula) are translated by one common mean per group of variables compared with
   each other (computed and subtracted in float64, then rounded): distances are unchanged,
   norms shrink to the spread of the data;
2. bounds the cancellation error: for an atom of dimension D, with ``R_u``, ``R_w`` the
   largest (weighted) norms of the centred rows, the expanded value has an absolute error at
   most ``delta = gamma(D + 2) (R_u + R_w)^2`` (``gamma(n) = n u / (1 - n u)``, ``u`` the
   unit roundoff of the computation's dtype; Higham's dot-product bound and
   Cauchy-Schwarz);
3. turns it into the relative error of each term of the reduction through the formula's
   sensitivity to the atom: ``rho = exp(sum_a |c_a| delta_a) - 1`` when the atom enters
   only through exponents ``c_a * t + ...`` (``Exp(-g * SqDist(x, y)) * b`` summed, or the
   formula of a log-sum-exp / soft-max family, with ``c_a`` built from parameters and
   constants, evaluated from the call's parameters);
4. takes the path when ``rho <= gamma_32(D + n_acc)``: the float32 worst-case error of one
   kernel value of unit exponent by the per-pair path (``D`` roundings) plus its float32
   accumulation (``n_acc`` roundings: the block sum of the call's ``N`` terms).

Formulas whose atoms are all inner products ``(u|w)`` (no cancellation: the same products
as the per-pair path, summed in another order) take the path whenever it applies. Any other
use of a squared-distance atom (its sensitivity unknown) keeps the per-pair path under
"auto"; ``gemm=True`` forces the path (still centred), ``gemm=False`` never takes it.
See docs/gemm.md.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import numpy as np

from ..codegen.dotgrad_cpp import match_dotgrad
from ..codegen.dotprod_cpp import DotMatch, match_dotprod
from ..codegen.target_cpu import CPU
from ..core.plan import BoundCall, ReductionPlan
from ..formula.evaluate import evaluate
from ..formula.ir import Cat, Node, const, make, substitute, topological_order, var, zero

_EXPONENT_FAMILY = frozenset(
    {
        "LogSumExp",
        "LogSumExpWeight",
        "SumSoftMaxWeight",
        "Max_SumShiftExp",
        "Max_SumShiftExpWeight",
    }
)
_U32 = float(np.finfo(np.float32).eps) / 2


def gamma(n: int, u: float) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)`` (inf when ``n u >= 1``)."""
    nu = n * u
    return math.inf if nu >= 1 else nu / (1 - nu)


@dataclass(frozen=True)
class Analysis:
    """What a plan's calls need: its atoms, the groups of slots to centre, and for each
    squared-distance atom the coefficient bounding its sensitivity (None: unknown)."""

    match: DotMatch
    groups: tuple[tuple[int, ...], ...]
    coefficients: tuple[Node | None, ...]  # per atom (None for dot atoms and unknowns)
    known: bool  # every squared-distance atom has a coefficient


def _mentions(node: Node, t: Node) -> bool:
    return any(n is t for n in topological_order(node))


def _is_param(node: Node) -> bool:
    return node.dim == 1 and all(
        n.params[2] is Cat.PARAM for n in topological_order(node) if n.op.name == "Var"
    )


def _coefficient(node: Node, t: Node) -> Node | None:
    """``c`` with ``node = c * t + (terms without t)``, c of parameters and constants."""
    if node is t:
        return const(1)
    name = node.op.name
    if name == "Minus":
        return _coefficient(node.args[0], t)
    if name == "Add":
        a, b = node.args
        if _mentions(a, t) and _mentions(b, t):
            return None
        return _coefficient(a if _mentions(a, t) else b, t)
    if name == "Mult" and node.dim == 1:
        a, b = node.args
        if _mentions(b, t):
            a, b = b, a
        if _mentions(b, t) or not _is_param(b):
            return None
        c = _coefficient(a, t)
        return None if c is None else make("Mult", (c, b))
    return None


def _exp_coefficient(root: Node, t: Node) -> Node | None:
    """The sum of ``|c|`` over the ``Exp(c * t + ...)`` nodes of ``root``, when ``t``
    appears nowhere else (a relative error ``|c| delta`` per term)."""
    found = []
    for node in topological_order(root):
        if node.op.name == "Exp" and _mentions(node, t):
            c = _coefficient(node.args[0], t)
            if c is None:
                return None
            found.append(node)
    if not found:
        return None
    outer = [n for n in found if not any(n is not m and _mentions(m, n) for m in found)]
    if _mentions(substitute(root, {n: zero(1) for n in outer}), t):
        return None
    total = None
    for n in outer:
        c = make("Abs", (_coefficient(n.args[0], t),))
        total = c if total is None else make("Add", (total, c))
    return total


def _sensitivity(plan: ReductionPlan, roots: tuple[Node, ...], t: Node) -> Node | None:
    formula = roots[0]
    weight = roots[1] if len(roots) > 1 else None
    if plan.reduction == "Sum":
        return _exp_coefficient(formula, t)
    if plan.reduction in _EXPONENT_FAMILY:
        parts = []
        if _mentions(formula, t):
            c = _coefficient(formula, t)
            if c is None:
                return None
            parts.append(make("Abs", (c,)))
        if weight is not None and _mentions(weight, t):
            c = _exp_coefficient(weight, t)
            if c is None:
                return None
            parts.append(c)
        total = parts[0] if parts else None
        for p in parts[1:]:
            total = make("Add", (total, p))
        return total
    return None


def _groups(atoms) -> tuple[tuple[int, ...], ...]:
    """Slots compared by squared-distance atoms, grouped; slots of dot atoms excluded."""
    parent: dict[int, int] = {}

    def find(s: int) -> int:
        while parent.setdefault(s, s) != s:
            s = parent[s]
        return s

    for a in atoms:
        if a.kind == "sqdist":
            parent[find(a.u)] = find(a.w)
    dotted = {s for a in atoms if a.kind == "dot" for s in (a.u, a.w)}
    groups: dict[int, list[int]] = {}
    for s in parent:
        groups.setdefault(find(s), []).append(s)
    return tuple(tuple(sorted(g)) for g in groups.values() if not any(s in dotted for s in g))


def analyse(plan: ReductionPlan) -> Analysis | None:
    """The analysis of ``plan``, or None when the dot-product path does not apply."""
    match = match_dotprod(plan, CPU.gemm_min_dim)
    if match is None:  # a gradient S (u - w): S's analysis (the difference is centred too)
        grad = match_dotgrad(plan, CPU.gemm_min_dim)
        return None if grad is None else analyse(replace(plan, formula=grad.formula))
    coefficients = []
    for k, a in enumerate(match.atoms):
        if a.kind != "sqdist":
            coefficients.append(None)
            continue
        t = next(
            n
            for root in match.roots
            for n in topological_order(root)
            if n.op.name == "Var" and n.params[2] is Cat.TEMP and n.params[0] == match.pair_slot(k)
        )
        coefficients.append(_sensitivity(plan, match.roots, t))
    known = all(c is not None for c, a in zip(coefficients, match.atoms) if a.kind == "sqdist")
    return Analysis(match, _groups(match.atoms), tuple(coefficients), known)


_ANALYSES: dict[int, tuple[ReductionPlan, Analysis | None, ReductionPlan]] = {}
_MAX_ANALYSES = 4096
_LOCK = threading.Lock()


def _entry(plan: ReductionPlan) -> tuple[Analysis | None, ReductionPlan]:
    """(the analysis of ``plan``, ``plan`` with ``gemm="on"``), remembered by the plan's
    identity (the entry holds the plan, so its id cannot be reused meanwhile)."""
    hit = _ANALYSES.get(id(plan))
    if hit is None or hit[0] is not plan:
        with _LOCK:
            on = plan if plan.gemm == "on" else replace(plan, gemm="on")
            hit = (plan, analyse(plan), on)
            if len(_ANALYSES) >= _MAX_ANALYSES:
                _ANALYSES.clear()
            _ANALYSES[id(plan)] = hit
    return hit[1], hit[2]


@dataclass(frozen=True)
class Decision:
    """The outcome for one call: the plan to run (``gemm="on"``: the path; the call's own
    plan otherwise, whose kernel is the per-pair one), its arrays (centred where the path
    is taken), and the bound (``rho``) and threshold (``tau``) compared."""

    plan: ReductionPlan
    arrays: tuple[np.ndarray, ...]
    rho: float
    tau: float


def _centre(call: BoundCall, groups) -> list[np.ndarray]:
    """The call's arrays with each group of slots translated by one common vector ``m``: the
    group's mean (accumulated in float64) rounded to the computation's dtype. ``x - m`` is
    then one subtraction of two numbers of that dtype, rounded once relative to the centred
    value itself; every slot of the group gets the same ``m``, so distances are unchanged."""
    arrays = list(call.host_arrays())
    for group in groups:
        flat = [arrays[s].reshape(-1, arrays[s].shape[-1]) for s in group]
        total = sum(f.shape[0] for f in flat)
        if total == 0:
            continue
        mean = sum(f.sum(axis=0, dtype=np.float64) for f in flat) / total
        m = mean.astype(call.dtype)
        for s in group:
            arrays[s] = np.subtract(arrays[s], m, dtype=call.dtype)
    return arrays


def _norm(array: np.ndarray, weight: np.ndarray | None, u: float) -> float:
    """An upper bound of the largest (weighted: ``sqrt(sum |s| a^2)``) norm of the rows of
    ``array``: computed in its dtype, inflated by that computation's error bound."""
    flat = array.reshape(-1, array.shape[-1])
    if flat.shape[0] == 0:
        return 0.0
    w = None if weight is None else np.abs(weight.reshape(-1)).astype(flat.dtype)
    sq = np.einsum("ij,ij->i", flat, flat) if w is None else np.einsum("ij,j,ij->i", flat, w, flat)
    best = float(sq.max()) * (1 + gamma(flat.shape[1] + 2, u))
    return math.sqrt(best)


def _params_env(plan: ReductionPlan, arrays) -> dict[Node, np.ndarray]:
    env = {}
    for slot in plan.slots:
        if slot.cat is Cat.PARAM:
            value = np.asarray(arrays[slot.position], dtype=np.float64)
            env[var(slot.position, slot.dim, Cat.PARAM)] = value.reshape(-1, slot.dim)
    return env


def bound(call: BoundCall, analysis: Analysis, arrays) -> float:
    """``rho``: the bound of the relative error that the expansion adds to each term
    (see the module docstring); 0 without squared-distance atoms."""
    u = float(np.finfo(call.dtype).eps) / 2
    env = _params_env(call.plan, arrays)
    exponent = 0.0
    for a, c in zip(analysis.match.atoms, analysis.coefficients):
        if a.kind != "sqdist":
            continue
        if c is None:
            return math.inf
        w = None if a.weight is None else np.asarray(arrays[a.weight])
        r = _norm(arrays[a.u], w, u) + _norm(arrays[a.w], w, u)
        scale = float(np.max(np.abs(evaluate(c, env, np.float64))))
        exponent += scale * gamma(a.dim + 2, u) * r * r
    return math.expm1(exponent) if exponent < 700 else math.inf


def threshold(call: BoundCall, analysis: Analysis, block: int = 256, lanes: int = 8) -> float:
    """``tau = gamma_32(D + n_acc)``: float32's worst-case error of one kernel value by the
    per-pair path plus its block-sum accumulation over the call's ``N`` terms
    (``block / lanes`` per lane, ``log2(lanes)`` to join the lanes, one per block)."""
    d = max(a.dim for a in analysis.match.atoms)
    n_acc = block // lanes + int(math.log2(lanes)) + math.ceil(max(call.n_red, 1) / block)
    return gamma(d + n_acc, _U32)


def decide(call: BoundCall) -> Decision:
    """The plan and arrays to run ``call`` with (the plan itself and ``call.arrays`` when
    the path does not apply; NumPy arrays, centred, when it does)."""
    plan = call.plan
    if plan.gemm == "off":
        return Decision(plan, call.arrays, math.inf, 0.0)
    analysis, on = _entry(plan)
    if analysis is None or (plan.gemm == "auto" and not analysis.known):
        return Decision(plan, call.arrays, math.inf, 0.0)
    arrays = tuple(_centre(call, analysis.groups))
    rho = bound(call, analysis, arrays)
    tau = threshold(call, analysis)
    if plan.gemm == "on" or rho <= tau:
        return Decision(on, arrays, rho, tau)
    return Decision(plan, call.arrays, rho, tau)
