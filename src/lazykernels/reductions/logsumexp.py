"""The log-sum-exp family: LogSumExp, LogSumExpWeight, SumSoftMaxWeight, Max_SumShiftExp*.

All of them accumulate a running maximum ``m`` of the scalar formula F and the shifted sums
``s = sum_j exp(F_j - m) G_j`` (``G = 1`` without a weight); when ``m`` grows, ``s`` is
rescaled by ``exp(m_old - m_new)``. Only the final step differs:

- LogSumExp: ``m + log(s)``, (n, 1); LogSumExpWeight: ``m + log(s)``, (n, Dg);
- SumSoftMaxWeight: ``sum_j exp(F_j - m) G_j / sum_j exp(F_j - m)``, (n, Dg);
- Max_SumShiftExp: the raw ``[m, s]``, (n, 2); Max_SumShiftExpWeight: ``[m, s_1..s_Dg]``.
"""

from __future__ import annotations

import numpy as np

from ..formula.ir import Cat, Node, const, make
from ..formula.simplify import simplify
from .accumulators import Accumulator, RunningSum, rows_of
from .derived import (
    DerivedPlan,
    Extra,
    Feed,
    concat,
    derived,
    fenced,
    gradient_target,
    new_var,
    nonzero,
    slot_var,
    tangents,
    zero_gradient,
)
from .plan import ArgSlot, ReductionPlan
from .program import INF, Field, Program, Shape, kahan_add
from .spec import Derivative, OutputSpec, ReductionSpec


class ShiftExpAccumulator(Accumulator):
    """Running max ``m`` (data dtype) and shifted sums ``s`` (accumulator dtype)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        spec = self.spec
        self.unit = spec.unit_sum and spec.needs_weight  # weights: Concat(1, G)
        self.finish = spec.program.finish
        width = int(spec.unit_sum) + (self.weight_dim if spec.needs_weight else 0)
        self.m = np.full((self.n, 1), -np.inf, dtype=self.dtype)
        self.s = RunningSum(self.n, width, self.acc_dtype, self.scheme, self.period)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        if weights is not None and self.unit:
            weights = np.concatenate([np.ones_like(weights[..., :1]), weights], axis=-1)
        self._fold(rows, values, weights)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        # a partial state (m', s') is one more term: value m', weight s'
        self._fold(rows_of(rows, self.n), other.m[:, None, :], other.s.total[:, None, :])

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        # the raw reduction is Max_SumShiftExp(Weight): [m, s] (SumSoftMaxWeight: its
        # weight is Concat(1, G), so s holds the denominator first)
        pairs = raw[0].reshape(self.n, -1)
        self.m[...] = pairs[:, :1]
        self.s.total[...] = pairs[:, 1:]

    def _fold(self, rows: slice, values: np.ndarray, weights: np.ndarray | None) -> None:
        """Add ``exp(values) * weights`` (columns in turn) to the shifted sums of ``rows``."""
        with np.errstate(all="ignore"):
            m_old = self.m[rows]
            m_new = np.maximum(m_old, values.max(axis=1))
            # equal maxima (both -inf or both +inf included) mean no rescaling
            factor = np.where(m_old == m_new, 1.0, np.exp(m_old - m_new)).astype(self.dtype)
            shifted = np.where(values == m_new[:, None, :], 1.0, np.exp(values - m_new[:, None, :]))
            shifted = np.where(np.isneginf(values), 0.0, shifted).astype(self.dtype)
            if weights is not None:
                shifted = shifted * weights
        self.m[rows] = m_new
        self.s.scale(rows, factor)  # merge: bring the running sums to the new maximum
        self.s.add(rows, shifted)

    def finalize(self) -> tuple[np.ndarray, ...]:
        s = self.s.total
        with np.errstate(all="ignore"):
            if self.finish == "log":
                out = self.m + np.log(s)
            elif self.finish == "softmax":
                den = s[:, :1]
                out = np.where(den == 0, 0.0, s[:, 1:] / np.where(den == 0, 1.0, den))
            else:
                out = np.concatenate([self.m.astype(s.dtype), s], axis=1)
        return (out.astype(self.dtype),)


class ShiftExpProgram(Program):
    """State ``(m, s[ns])`` with ``sum_j e^(F_j - m) w_j = s``: a running maximum ``m`` and the
    shifted sums of the weights ``w`` (``[1]``, ``G`` or ``[1, G]``), rescaled by
    ``e^(m_old - m_new)`` when the maximum grows; block sums keep a tile partial ``part``
    (rescaled alike), Kahan sums a compensation ``comp``.

    Its pieces (the CPU's vectorised tiles print them: a SIMD max of the tile, one
    :meth:`raise_max`, then a SIMD sum of the :meth:`terms`): :meth:`grows`,
    :meth:`totals`, :meth:`factor`, :meth:`rescale`, :meth:`adds`, :meth:`shifted`, :meth:`terms`,
    :meth:`add`.

    Attributes:
        unit: the first weight is 1 (LogSumExp, Max_SumShiftExp, SumSoftMaxWeight).
        weighted: the weight formula G follows.
        finish: ``"log"`` (``m + log s``), ``"softmax"`` (``s[1:] / s[0]``) or ``"raw"``
            (``[m, s]``).
        order: ``"max"``: the associative operation giving a tile's maximum.
    """

    order = "max"

    def __init__(self, unit: bool, weighted: bool, finish: str) -> None:
        self.unit, self.weighted, self.finish = unit, weighted, finish

    def n_sums(self, sh: Shape) -> int:
        """Number of shifted sums ``ns``."""
        return int(self.unit) + (sh.dg if self.weighted else 0)

    @staticmethod
    def totals(sh: Shape) -> list[str]:
        """The fields that hold the running shifted sums (and their compensation)."""
        return ["s", "comp"] if sh.scheme == "kahan_scheme" else ["s"]

    def sum_fields(self, sh: Shape) -> list[str]:
        """Every field that holds shifted sums (rescaled together inside a tile)."""
        return self.totals(sh) + (["part"] if sh.scheme == "block_sum" else [])

    def fields(self, sh: Shape) -> list[Field]:
        ns = self.n_sums(sh)
        fields = self.sum_fields(sh)
        return [Field("m", "acc", 1, -INF)] + [Field(n, "acc", ns, 0.0) for n in fields]

    @staticmethod
    def grows(e, v, m):
        """The maximum ``m`` grows to ``v``."""
        return e.fmt("({0} > {1})", v, m)

    @staticmethod
    def adds(e, v):
        """A value ``v`` adds a term (``-inf`` adds nothing: ``e^-inf = 0``)."""
        return e.fmt("({0} > {1})", v, e.lit(-INF))

    @staticmethod
    def factor(e, m_old, m_new):
        """The rescaling of the sums when the maximum moves from ``m_old`` to ``m_new``."""
        return e.call("exp", e.fmt("({0} - {1})", m_old, m_new))

    @staticmethod
    def shifted(e, v, m):
        """``e^(v - m)``, branch-free (NaN at ``v = m = +inf``: the update guards that case,
        a SIMD lane does not, see docs/nan-inf.md)."""
        return e.call("exp", e.fmt("({0} - {1})", v, m))

    def terms(self, e, ex, g) -> list:
        """The terms of the shifted sums for a pair with ``ex = e^(F - m)``, weights ``g``."""
        weights = ([None] if self.unit else []) + (list(g) if self.weighted else [])
        return [ex if w is None else e.fmt("({0} * {1})", ex, e.acc(w)) for w in weights]

    def rescale(self, e, st, sc, fields: list[str], entries) -> None:
        """Multiply the ``entries`` (indices) of the sum ``fields`` by ``sc``."""
        for name in fields:
            for c in entries:
                e.set(st(name, c), e.fmt("({0} * {1})", st(name, c), sc))

    def entries(self, sh: Shape, each=None):
        """``each(e, body)``, calling ``body(indices)`` over the entries of the sums: by
        default the ``ns`` entries of the card's state, one by one; a target may pass a
        loop over its own layout (lanes)."""
        if each is not None:
            return each
        return lambda e, body: body(range(self.n_sums(sh)))

    def raise_max(self, e, sh, st, v, fields=None, each=None) -> None:
        """``m = max(m, v)``, the sums rescaled when it grows. ``fields`` (default: every
        sum field) and ``each`` (see :meth:`entries`) say where a target keeps the sums."""
        m = st("m", 0)
        with e.if_(self.grows(e, v, m)):
            sc = e.let("acc", self.factor(e, m, v))
            fields = self.sum_fields(sh) if fields is None else fields
            self.entries(sh, each)(e, lambda cs: self.rescale(e, st, sc, fields, cs))
            e.set(m, v)

    def add(self, e, sh, st, c: int, term, total: bool = False) -> None:
        """``s[c] += term`` (into the tile partial under block sums, unless ``total``)."""
        if sh.scheme == "kahan_scheme":
            kahan_add(e, st("s", c), st("comp", c), term)
        else:
            e.add(st("part" if sh.scheme == "block_sum" and not total else "s", c), term)

    def tile_begin(self, e, sh, st) -> None:
        if sh.scheme == "block_sum":
            for c in range(self.n_sums(sh)):
                e.set(st("part", c), e.lit(0))

    def tile_end(self, e, sh, st) -> None:
        if sh.scheme == "block_sum":
            for c in range(self.n_sums(sh)):
                e.add(st("s", c), st("part", c))

    def update(self, e, sh, st, f, g, j) -> None:
        m = st("m", 0)
        fv = e.let("acc", e.acc(f[0]))
        self.raise_max(e, sh, st, fv)
        with e.if_(self.adds(e, fv)):
            ex = e.let(
                "acc", e.fmt("({0} == {1} ? {2} : {3})", fv, m, e.lit(1), self.shifted(e, fv, m))
            )
            for c, term in enumerate(self.terms(e, ex, g)):
                self.add(e, sh, st, c, term)

    def merge(self, e, sh, dst, src, each=None) -> None:
        """(``each``: see :meth:`entries`.)"""
        dm, sm = dst("m", 0), src("m", 0)
        each = self.entries(sh, each)

        def fold(scale) -> None:
            def body(entries) -> None:
                for c in entries:
                    term = src("s", c)
                    if sh.scheme == "kahan_scheme":
                        term = e.fmt("({0} - {1})", term, src("comp", c))
                    term = term if scale is None else e.fmt("({0} * {1})", scale, term)
                    self.add(e, sh, dst, c, term, total=True)

            each(e, body)

        with e.if_(self.grows(e, sm, dm)):
            sc = e.let("acc", self.factor(e, dm, sm))
            each(e, lambda cs: self.rescale(e, dst, sc, self.totals(sh), cs))
            fold(None)
            e.set(dm, sm)
        with e.else_(), e.if_(self.adds(e, sm)):
            fold(e.let("acc", self.factor(e, sm, dm)))

    def finalize(self, e, sh, st, out) -> None:
        m, ns = st("m", 0), self.n_sums(sh)
        if self.finish == "raw":
            e.set(out(0, 0), e.val(m))
            for c in range(ns):
                e.set(out(0, c + 1), e.val(st("s", c)))
        elif self.finish == "log":
            for c in range(ns):
                e.set(out(0, c), e.val(e.fmt("({0} + {1})", m, e.call("log", st("s", c)))))
        else:  # softmax: s0 is the sum of the softmax weights
            s0 = st("s", 0)
            for c in range(1, ns):
                ratio = e.fmt("({0} > 0 ? {1} / {0} : 0)", s0, st("s", c))
                e.set(out(0, c - 1), e.val(ratio))


# --- derivative rules (see :mod:`.derivatives` for the notation) -------------------------


NORMALISED_MAX_DIM = 8
"""The widest weight whose log-sum-exp gradient w.r.t. output-category inputs is normalised
in the pass (``E (1 + W)`` sums for inputs of total width W); wider ones take the
``Exp(F - o)`` rule."""


def _out_dim(plan: ReductionPlan) -> int:
    """The weight's width, or 1: a log-sum-exp's output width, a raw state's number of s."""
    return 1 if plan.weight is None else plan.weight.dim


def vjp_lse(plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]) -> DerivedPlan:
    """LogSumExp(Weight): normalised in the pass where it can be, else
    ``dv = Sum Grad(Sum(G * w), v, 1)`` with the softmax weights ``w = Exp(Fence(F) - o)``
    (o the saved output, a constant input) or, with a weight g,
    ``w = Exp(Fence(F) - m) * g / s`` from the raw state ``[m, s]`` (an auxiliary
    ``Max_SumShiftExpWeight``)."""
    target = gradient_target(plan, slots)
    dim = _out_dim(plan)
    if target is plan.output_cat and dim <= NORMALISED_MAX_DIM:
        return _normalised_lse_vjp(plan, positions, slots)
    extra: list[ArgSlot] = []
    feeds = [Feed(Extra.GRADIENT)]
    g_in = new_var(plan, extra, dim, plan.output_cat, "G")
    auxiliary = None
    if plan.weight is None:
        feeds.append(Feed(Extra.OUTPUT))
        o = new_var(plan, extra, 1, plan.output_cat, "out")
        softmax = (fenced(plan.formula) - o).exp()
    else:
        # o = m + log s is rounded to |o| eps; with a weight, log s ~ log g is not 0 where one
        # term dominates a row, and Exp(F - o) * g would keep that rounding in every weight
        feeds.append(Feed(Extra.AUXILIARY))
        auxiliary = derived(
            plan, plan.formula, "Max_SumShiftExpWeight", plan.output_cat, (), plan.weight
        )
        state = new_var(plan, extra, 1 + dim, plan.output_cat, "state")
        m, s = _state_parts(state)
        softmax = (fenced(plan.formula) - m).exp() * plan.weight / s
    summed = make("Sum", (g_in * softmax,))
    return _sum_of_grads(plan, positions, slots, summed, extra, feeds, auxiliary)


def _state_parts(state: Node) -> tuple[Node, Node]:
    """The maximum m and the shifted sums s of a raw ``[m, s]`` state."""
    return make("Elem", (state,), (0,)), make("Extract", (state,), (1, state.dim - 1))


def _sum_of_grads(
    plan: ReductionPlan,
    positions: tuple[int, ...],
    slots: list[ArgSlot],
    summed: Node,
    extra: list[ArgSlot],
    feeds: list[Feed],
    auxiliary: ReductionPlan | None = None,
) -> DerivedPlan:
    """``dv = Sum Grad(summed, v, 1)`` for the inputs v at ``positions``, reduced as for Sum."""
    target = gradient_target(plan, slots)
    parts = {p: make("Grad", (summed, slot_var(s), const(1))) for p, s in zip(positions, slots)}
    kept = nonzero(parts)
    if not kept:
        return zero_gradient(plan, slots, target, extra, feeds)
    return DerivedPlan(
        plan=derived(plan, concat(kept), "Sum", target, tuple(extra)),
        feeds=tuple(feeds),
        sum_rows=slots[0].cat is Cat.PARAM,
        auxiliary=auxiliary,
        parts=tuple(kept),
    )


def vjp_raw(plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]) -> DerivedPlan:
    """Max_SumShiftExp(Weight), as in KeOps: a pseudo-gradient, exact only for a function of
    ``m + log s`` (a log-sum-exp, a softmax), such as the rules above build. m is held
    constant: ``dv = Sum Grad(Sum(G_s * Exp(Fence(F) - m) * g), v, 1)``, G_s the incoming
    gradient of s (that of m is dropped)."""
    width = 1 + _out_dim(plan)
    extra: list[ArgSlot] = []
    feeds = [Feed(Extra.GRADIENT), Feed(Extra.OUTPUT)]
    g_in = new_var(plan, extra, width, plan.output_cat, "G")
    m, _ = _state_parts(new_var(plan, extra, width, plan.output_cat, "out"))
    g_s = _state_parts(g_in)[1]
    g = plan.weight if plan.weight is not None else const(1)
    summed = make("Sum", (g_s * (fenced(plan.formula) - m).exp() * g,))
    return _sum_of_grads(plan, positions, slots, summed, extra, feeds)


def jvp_raw(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """The pseudo-derivative of :func:`vjp_raw` in forward mode:
    ``d[m, s] = [0, Sum Exp(Fence(F) - m) (g dF + dg)]``, m from the saved output."""
    extra, feeds, df, dg = tangents(plan, positions)
    feeds.append(Feed(Extra.OUTPUT))
    m, _ = _state_parts(new_var(plan, extra, 1 + _out_dim(plan), plan.output_cat, "out"))
    ds = simplify(df if plan.weight is None else plan.weight * df + dg)
    shifted = (fenced(plan.formula) - m).exp() * ds
    formula = make("Concat", (make("Zero", (), (1,)), shifted))
    return DerivedPlan(
        plan=derived(plan, formula, "Sum", plan.output_cat, tuple(extra)),
        feeds=tuple(feeds),
        zero=ds.op.name == "Zero",
    )


def _normalised_lse_vjp(
    plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]
) -> DerivedPlan:
    """The gradient of a log-sum-exp w.r.t. output-category inputs and parameters, as a
    softmax-weighted sum normalised in the pass, component by component of the weight.

    ``dv = sum_c G_c sum_R w (g_c dF + dg_c) / sum_R w g_c`` with ``w = e^F`` (one
    component, g = 1, without a weight): a ``SumSoftMaxWeight`` of F with the weight
    ``[g_1..g_E, h_1, ..., h_E]``, ``h_c = [Grad(F, v, g_c) + Grad(g_c, v, 1)]`` over the
    inputs v (``[Grad(F, v, 1)]`` without a weight), whose output the adapter cuts into
    ``E`` blocks, divides each by its leading column and sums times G
    (``DerivedPlan.denominator``, ``times_gradient``).
    """
    f, g = plan.formula, plan.weight
    dim = _out_dim(plan)
    comps = (
        [None] if g is None else [g if dim == 1 else make("Elem", (g,), (c,)) for c in range(dim)]
    )

    def block(v: Node, gc: Node | None) -> Node:
        if gc is None:
            return make("Grad", (f, v, const(1)))
        return make("Grad", (f, v, gc)) + make("Grad", (gc, v, const(1)))

    blocks = [
        nonzero({p: block(slot_var(s), gc) for p, s in zip(positions, slots)}) for gc in comps
    ]
    kept = sorted(set().union(*blocks), key=positions.index)
    if not kept:
        return zero_gradient(plan, slots, plan.output_cat, [], [])
    zero = {p: make("Zero", (), (plan.slots[p].dim,)) for p in kept}
    joined = concat(dict(enumerate(b.get(p, zero[p]) for b in blocks for p in kept)))
    if g is not None:
        joined = make("Concat", (g, joined))
    return DerivedPlan(
        plan=derived(plan, f, "SumSoftMaxWeight", plan.output_cat, (), joined),
        feeds=(),
        sum_rows=slots[0].cat is Cat.PARAM,
        parts=tuple(kept),
        denominator=0 if g is None else dim,
        times_gradient=True,
    )


def vjp_softmax(
    plan: ReductionPlan, positions: tuple[int, ...], slots: list[ArgSlot]
) -> DerivedPlan:
    """SumSoftMaxWeight: ``h = Grad(F, v, Sum(G * (g - o))) + Grad(g, v, G)``; v of the
    output category gets the SumSoftMaxWeight of (F, h), v of the reduced one
    ``Sum Exp(F - L) * h`` with ``L = LogSumExp F`` (an auxiliary reduction)."""
    out_cat = plan.output_cat
    target = gradient_target(plan, slots)
    extra: list[ArgSlot] = []
    feeds = [Feed(Extra.GRADIENT), Feed(Extra.OUTPUT)]
    g_in = new_var(plan, extra, _out_dim(plan), out_cat, "G")
    o = new_var(plan, extra, _out_dim(plan), out_cat, "out")
    f, g = plan.formula, plan.weight
    spread = make("Sum", (g_in * (g - o),))
    parts = {
        p: make("Grad", (f, slot_var(s), spread)) + make("Grad", (g, slot_var(s), g_in))
        for p, s in zip(positions, slots)
    }
    kept = nonzero(parts)
    if not kept:
        return zero_gradient(plan, slots, target, extra, feeds)
    joined = concat(kept)
    auxiliary = None
    if target is out_cat:
        rule = derived(plan, f, "SumSoftMaxWeight", target, tuple(extra), joined)
    else:
        feeds.append(Feed(Extra.AUXILIARY))
        lse = new_var(plan, extra, 1, out_cat, "lse")
        auxiliary = derived(plan, f, "LogSumExp", out_cat, ())
        rule = derived(plan, (fenced(f) - lse).exp() * joined, "Sum", target, tuple(extra))
    return DerivedPlan(
        plan=rule,
        feeds=tuple(feeds),
        sum_rows=slots[0].cat is Cat.PARAM,
        auxiliary=auxiliary,
        parts=tuple(kept),
    )


def _softmax_jvp(plan: ReductionPlan, extra, feeds, weight: Node, denominator: int = 0):
    rule = derived(plan, plan.formula, "SumSoftMaxWeight", plan.output_cat, tuple(extra), weight)
    return DerivedPlan(
        plan=rule,
        feeds=tuple(feeds),
        zero=rule.weight.op.name == "Zero",  # type: ignore[union-attr]
        denominator=denominator,
    )


def jvp_lse(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """``do = SumSoftMaxWeight(F, dF)`` (normalised in the pass, not ``exp(F - o)`` with o
    saved: see :mod:`.derivatives`, "accuracy"); with a weight,
    ``[sum w g, sum w (g dF + dg)] / sum w`` (w = e^F)."""
    extra, feeds, df, dg = tangents(plan, positions)
    if plan.weight is None:
        return _softmax_jvp(plan, extra, feeds, df)
    g = plan.weight
    numerator = simplify(g * df + dg)
    if numerator.op.name == "Zero":
        return _softmax_jvp(plan, extra, feeds, numerator)
    return _softmax_jvp(plan, extra, feeds, make("Concat", (g, numerator)), g.dim)


def jvp_softmax(plan: ReductionPlan, positions: tuple[int, ...]) -> DerivedPlan:
    """``do = SumSoftMaxWeight(F, dg + (g - o) dF)``, o the saved output."""
    extra, feeds, df, dg = tangents(plan, positions)
    feeds.append(Feed(Extra.OUTPUT))
    o = new_var(plan, extra, _out_dim(plan), plan.output_cat, "out")
    return _softmax_jvp(plan, extra, feeds, dg + (plan.weight - o) * df)


def _spec(name: str, tail, weighted: bool, neutral: float, first: float | None, doc: str, **kw):
    # The log-sum-exps (and their raw block states), whose outputs the reduced-category rules
    # subtract from the formula (``Exp(Fence(F) - o)``), evaluate it as written;
    # SumSoftMaxWeight, whose weights the rules w.r.t. y recompute as ``Exp(Fence(F) - L)``,
    # passes "no-contraction" (as written, its kernels, which also run the x-derivatives of
    # the family, lost accuracy: LogSumExp's Hessian w.r.t. x 0.78 -> 2.37x dense torch's
    # error, seed 0). See :mod:`lazykernels.codegen.exact`.
    kw.setdefault("formula_rounding", "as-written")
    return ReductionSpec(
        name,
        outputs=(OutputSpec(tail, neutral=neutral, neutral_first=first),),
        accumulator=ShiftExpAccumulator,
        sum_type=True,
        needs_weight=weighted,
        scalar_formula=True,
        doc=doc,
        **kw,
    )


_RAW = {"raw": "Max_SumShiftExp"}
_RAW_W = {"raw": "Max_SumShiftExpWeight"}

CARDS = (
    _spec(
        "LogSumExp",
        lambda d, dg, k: (1,),
        False,
        -np.inf,
        None,
        "log sum_j exp F, (n, 1)",
        program=ShiftExpProgram(unit=True, weighted=False, finish="log"),
        unit_sum=True,
        derivative=Derivative.SMOOTH,
        vjp=vjp_lse,
        jvp=jvp_lse,
        formula2="optional",
        **_RAW,
    ),
    _spec(
        "LogSumExpWeight",
        lambda d, dg, k: (dg,),
        True,
        -np.inf,
        None,
        "log sum_j exp(F) G, (n, Dg)",
        program=ShiftExpProgram(unit=False, weighted=True, finish="log"),
        derivative=Derivative.SMOOTH,
        vjp=vjp_lse,
        jvp=jvp_lse,
        **_RAW_W,
    ),
    _spec(
        "SumSoftMaxWeight",
        lambda d, dg, k: (dg,),
        True,
        0.0,
        None,
        "sum_j exp(F) G / sum_j exp(F), (n, Dg)",
        program=ShiftExpProgram(unit=True, weighted=True, finish="softmax"),
        unit_sum=True,
        derivative=Derivative.SMOOTH,
        vjp=vjp_softmax,
        jvp=jvp_softmax,
        **_RAW_W,
        formula_rounding="no-contraction",
    ),
    _spec(
        "Max_SumShiftExp",
        lambda d, dg, k: (2,),
        False,
        0.0,
        -np.inf,
        "raw [m, sum_j exp(F - m)], (n, 2)",
        program=ShiftExpProgram(unit=True, weighted=False, finish="raw"),
        unit_sum=True,
        derivative=Derivative.SMOOTH,
        vjp=vjp_raw,
        jvp=jvp_raw,
    ),
    _spec(
        "Max_SumShiftExpWeight",
        lambda d, dg, k: (1 + dg,),
        True,
        0.0,
        -np.inf,
        "raw [m, sum_j exp(F - m) G], (n, 1 + Dg)",
        program=ShiftExpProgram(unit=False, weighted=True, finish="raw"),
        formula2="optional",
        derivative=Derivative.SMOOTH,
        vjp=vjp_raw,
        jvp=jvp_raw,
    ),
)
