"""Lowering: a formula DAG -> kernel IR (:mod:`.kir`), split by what each value depends on.

A vector of dimension up to the unrolling threshold becomes that many scalar SSA values; a
larger one stays a vector (:mod:`.loops`) whose consumers loop over its components. Every
interned node is lowered once (common sub-expressions), in a fixed traversal order, with
names from a per-kernel :class:`~.kir.Names` context, so the source is a pure function of
the formula.

Each node gets a :class:`~.passes.Level` from the variables it reads, and is emitted in the
matching section of the kernel:

* ``PARAM``: constants and parameters only -> computed once per batch entry;
* ``OUTER``: output-index variables (and parameters) -> once per output row, stored per row
  of a block in small arrays (``xs*``) and read into row locals (``xr*``);
* ``INNER``: reduction-index variables (and parameters) -> precomputed once per call into
  dimension-major arrays (``ys*``; an input variable of dim 1, or of a looped dimension,
  is read in place);
* ``MIXED``: the rest, evaluated in the vectorised inner loop from the above (with
  ``pairs=True``, a ``TEMP`` variable of dim 1 is a pair value, read as ``a{pos}[j]`` there:
  the dot-product path of :mod:`.dotprod_cpp` points ``a{pos}`` at a row of its tile).

Only the *frontier* of the outer and inner parts (values that a mixed node or a root reads)
crosses into the inner loop. Dead code is removed on the IR (:func:`~.kir.prune`), then a
dialect (:mod:`.dialect`; the CPU one by default) prints each section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import FormulaError
from ..formula.ir import Cat, Node, constant_value
from ..formula.opspec import MathCall
from . import passes
from .dialect import Dialect
from .dialect_cpu import CpuDialect
from .kir import (
    Array,
    Call,
    Expr,
    Fmt,
    Ix,
    Let,
    Lit,
    Load,
    Loop,
    Names,
    Scope,
    Store,
    Sym,
    expr_syms,
    free_syms,
    prune,
    uses,
)
from .loops import LOOP_RULES, ConstVec, MapVec, PreVec, VarVec, Vec
from .passes import Level

_PLAIN = {"{0}": 0, "{1}": 1, "{2}": 2}  # a template argument that is one argument as it is

UNROLL_MAX = 32
"""Default unrolling threshold (the CPU target's; measured, see :mod:`.target_cpu`)."""


class LowerCtx:
    """What an op's ``lower(ctx, arg_scalars, params)`` rule may use while it is lowered.

    Arguments and results are IR expressions (:mod:`.kir`); a rule combines them with
    :meth:`fmt` (neutral infix templates), :meth:`call` (neutral maths functions) and
    :meth:`literal`, and binds intermediate values with :meth:`emit`.

    Attributes:
        T: the placeholder of the kernel's scalar type in templates (``{T}``).
        dtype: the NumPy dtype of the kernel (float32 or float64).
    """

    T = "T"

    def __init__(self, scope: Scope, dtype: np.dtype, dialect: Dialect, helpers: set[str]):
        self.dtype, self._scope, self._dialect, self._helpers = dtype, scope, dialect, helpers

    def literal(self, value: int | float | Fraction) -> Expr:
        """A number of the kernel's scalar type."""
        return Lit(float(value))

    def emit(self, expr: Expr) -> Expr:
        """Bind ``expr`` to a fresh SSA value (atoms and known values are returned as is)."""
        return self._scope.emit(expr)

    def fmt(self, template: str, *args: Expr) -> Expr:
        """``template`` (``{0}``, ``{1}``...: the arguments; ``{T}``: the scalar type)."""
        return Fmt(template, tuple(args))

    def join(self, sep: str, items: list[Expr]) -> Expr:
        """``items`` joined by the infix operator ``sep`` (no parentheses)."""
        if len(items) == 1:
            return items[0]
        return Fmt(sep.join(f"{{{k}}}" for k in range(len(items))), tuple(items))

    def call(self, fn: str, *args: Expr) -> Expr:
        """A neutral maths function (``exp``, ``cos``, ``trunc``...) of ``args``."""
        self._helpers.update(self._dialect.call_helpers(fn))
        return Call(fn, tuple(args))

    def emit_array(self, items: list[Expr]) -> Sym:
        """Bind a small local array of ``items``; return its name."""
        return self._scope.array(tuple(items))


@dataclass
class InnerValue:
    """One value of the inner frontier.

    A scalar is read in the inner loop as ``pointer[j]`` into ``load``; ``source`` is the
    value the precompute stores, or None when ``pointer`` is a dim-1 input variable read in
    place. A vector (``width`` > 1) is ``width`` consecutive precomputed arrays, stored by
    the loop ``stores`` and read as ``pointer[c * n_rs + j]``.
    """

    pointer: str
    source: str | None
    load: str | None
    width: int = 1
    stores: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VecRoot:
    """A root formula of looped dimension: component ``cc`` is ``value`` after ``body``
    (printed with ``cc`` a loop variable, inside a loop over ``j``); ``buffered`` are the
    pair-loop scalars it reads, which a first pass stores per tile."""

    dim: int
    body: list[str]
    value: str
    buffered: list[str]


@dataclass
class ScalarProgram:
    """The lowered formula(s), section by section, printed by a dialect.

    Attributes:
        param, outer, inner, mixed: statements of each section (outer reads the row index
            ``i`` and ``xs*`` stores use ``k``; inner reads ``j``; mixed reads ``j``, and
            ``i`` when ``row_index``).
        outer_store: ``(array, value)``: ``array[k] = value`` ends the outer section.
        row_loads: ``(local, array)``: ``const T local = array[k];`` starts each row.
        inner_values: the inner frontier.
        roots: for each root formula, its scalar atoms valid inside the inner loop (empty
            for a root in ``vec_roots``).
        vec_roots: root index -> :class:`VecRoot`, for roots of looped dimension.
        helpers: helper function names the printed code needs.
        slots: positions of the input variables read, with their dim and category.
        row_index: the inner loop reads the output row index ``i``.
    """

    param: list[str] = field(default_factory=list)
    outer: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    outer_store: list[tuple[str, str]] = field(default_factory=list)
    row_loads: list[tuple[str, str]] = field(default_factory=list)
    inner_values: list[InnerValue] = field(default_factory=list)
    roots: list[list[str]] = field(default_factory=list)
    vec_roots: dict[int, VecRoot] = field(default_factory=dict)
    helpers: set[str] = field(default_factory=set)
    slots: dict[int, tuple[int, Cat]] = field(default_factory=dict)
    row_index: bool = False

    @property
    def precomputed(self) -> list[InnerValue]:
        """The inner values that need precomputed arrays (not read in place)."""
        return [v for v in self.inner_values if v.source is not None or v.width > 1]

    @property
    def n_precomputed(self) -> int:
        """Number of precomputed arrays (a vector value has one per component)."""
        return sum(v.width for v in self.precomputed)


@dataclass
class _Inner:
    pointer: str
    source: Expr | None
    load: str | None
    width: int = 1
    stores: list = field(default_factory=list)


class _Lowerer:
    def __init__(
        self,
        dtype: np.dtype,
        output_cat: Cat,
        dialect: Dialect,
        unroll_max: int,
        loop_roots,
        pairs: bool = False,
        vec_row: str = "j",
        precompute_vectors: bool = True,
    ) -> None:
        self.dtype, self.output_cat, self.dialect = dtype, output_cat, dialect
        self.pairs = pairs
        self.vec_row, self.precompute_vectors = vec_row, precompute_vectors
        self.unroll_max, self.loop_roots = unroll_max, loop_roots
        self.names = Names()
        self.scopes = {
            Level.PARAM: Scope(self.names, "p"),
            Level.OUTER: Scope(self.names, "x"),
            Level.INNER: Scope(self.names, "y"),
            Level.MIXED: Scope(self.names, "t"),
        }
        self.helpers: set[str] = set()
        self.slots: dict[int, tuple[int, Cat]] = {}
        self.local: dict[Node, list[Expr] | Vec] = {}  # values in the node's own section
        self.in_loop: dict[Node, list[Expr] | Vec] = {}  # values of frontier nodes in the loop
        self.outer_store: list[tuple[str, Expr]] = []
        self.row_loads: list[tuple[str, str]] = []
        self.inner_values: list[_Inner] = []
        self.crossed: dict[str, Expr] = {}
        self.row_index = False

    def run(self, roots: list[Node]) -> ScalarProgram:
        roots = passes.reassociate_products(roots, self.output_cat)
        if self.dialect.fuse_scaled_exp:
            roots = passes.fuse_scaled_exp(roots, self.output_cat)
        order = passes.all_nodes(roots)
        levels = passes.node_levels(order, self.output_cat, self.pairs)
        frontier = {r for r in roots if levels[r] in (Level.OUTER, Level.INNER)}
        for node in order:
            if levels[node] is Level.MIXED:
                frontier.update(a for a in node.args if levels[a] in (Level.OUTER, Level.INNER))
        for node in order:
            level = levels[node]
            args = [self._arg(a, levels[a], level) for a in node.args]
            self.local[node] = self._lower_node(node, args, level)
            if node in frontier:
                self._cross(node, level)
        mixed = self.scopes[Level.MIXED]
        root_values: list[list[Expr]] = []
        vec_bodies: dict[int, tuple[int, list, Expr]] = {}
        for k, r in enumerate(roots):
            v = self._arg(r, levels[r], Level.MIXED)
            if isinstance(v, Vec):
                if k in self.loop_roots:
                    body = mixed.child("cc")
                    value = v.at(body, Ix("cc", frozenset({"cc"})))
                    vec_bodies[k] = (v.dim, body.stmts, value)
                    root_values.append([])
                    continue
                v = [v.at(mixed, Ix(str(c))) for c in range(v.dim)]
            root_values.append(list(v))
        return self._finish(root_values, vec_bodies)

    # --- crossing sections ----------------------------------------------------------------

    def _arg(self, arg: Node, arg_level: Level, user_level: Level):
        if arg_level is not user_level and arg_level in (Level.OUTER, Level.INNER):
            return self.in_loop[arg]
        return self.local[arg]

    def _crossed(self, value: Expr, level: Level, make) -> Expr:
        """A scalar of section ``level`` as the inner loop reads it: ``make(value)`` the
        first time (literals, indices and parameter values are visible everywhere)."""
        if isinstance(value, Lit | Ix):
            return value
        if not isinstance(value, Sym) or value.name not in self.scopes[level].owned:
            return value  # a parameter value: visible everywhere
        found = self.crossed.get(value.name)
        if found is None:
            found = self.crossed[value.name] = make(value)
        return found

    def _cross_outer(self, value: Expr) -> Expr:
        """An output-row scalar, read in the inner loop from its row array."""

        def row_array(v: Expr) -> Sym:
            array, local = self.names.fresh("xs"), self.names.fresh("xr")
            self.outer_store.append((array, v))
            self.row_loads.append((local, array))
            return Sym(local)

        return self._crossed(value, Level.OUTER, row_array)

    def _cross(self, node: Node, level: Level) -> None:
        """Make a frontier node's value available inside the inner loop."""
        value = self.local[node]
        if isinstance(value, Vec):
            if level is Level.OUTER:
                self.row_index = True
                self.in_loop[node] = value.subst(self._cross_outer)
            elif isinstance(value, VarVec):
                self.in_loop[node] = value
            elif not self.precompute_vectors:  # recomputed per pair from the inputs
                self.in_loop[node] = value.subst(self._cross_inner)
            else:
                self.in_loop[node] = self._precompute_vec(value)
            return
        scalars: list[Expr] = []
        for v in value:
            if isinstance(v, Lit):  # a literal crosses as is
                scalars.append(v)
            elif level is Level.OUTER:
                scalars.append(self._cross_outer(v))
            else:
                load = self.names.fresh("yr")
                direct = node.op.name == "Var" and node.dim == 1
                pointer = f"a{node.params[0]}" if direct else self.names.fresh("ys")
                self.inner_values.append(_Inner(pointer, None if direct else v, load))
                scalars.append(Sym(load))
        self.in_loop[node] = scalars

    def _cross_inner(self, value: Expr) -> Expr:
        """A reduction-index scalar that a vector crossing unprecomputed captures: an
        inner value of its own (``precompute_vectors=False``)."""

        def inner_value(v: Expr) -> Sym:
            load = self.names.fresh("yr")
            self.inner_values.append(_Inner(self.names.fresh("ys"), v, load))
            return Sym(load)

        return self._crossed(value, Level.INNER, inner_value)

    def _precompute_vec(self, vec: Vec) -> Vec:
        """A reduction-index vector stored dimension-major by the precompute."""
        pointer = self.names.fresh("ys")
        var = self.names.fresh("c")
        inner = self.scopes[Level.INNER]
        body = inner.child(var)
        ix = Ix(var, frozenset({var}))
        body.add(Store(pointer, ix.combine("{0} * n_rs + " + self.vec_row), vec.at(body, ix)))
        self.inner_values.append(
            _Inner(pointer, None, None, vec.dim, [Loop(var, vec.dim, body.stmts)])
        )
        return PreVec(pointer, vec.dim, self.vec_row)

    # --- nodes ----------------------------------------------------------------------------

    def _spell(self, card, scal: list[Expr], keys: tuple) -> Expr:
        spelling = card.c
        if isinstance(spelling, MathCall):
            self.helpers.update(self.dialect.call_helpers(spelling.fn))
            args = tuple(
                scal[_PLAIN[t]] if t in _PLAIN else Fmt(t, tuple(scal), keys) for t in spelling.args
            )
            return Call(spelling.fn, args)
        return Fmt(spelling, tuple(scal), keys)

    def _lower_node(self, node: Node, args: list, level: Level):
        name = node.op.name
        scope = self.scopes[level]
        if name == "Var":
            return self._lower_var(node, scope)
        if name == "Zero":
            d = node.params[0]
            return ConstVec(Lit(0), d) if d > self.unroll_max else [Lit(0)] * d
        value = constant_value(node)
        if value is not None:
            return [Lit(float(value))]
        card = node.op
        self.helpers.update(card.helpers)
        looped = node.dim > self.unroll_max or any(isinstance(a, Vec) for a in args)
        templated = card.lower is None and card.c is not None
        keys = ()
        if templated:  # static parameters fill the template's named fields
            keys = tuple((f"p{k}", self._param(p, name)) for k, p in enumerate(node.params))
        if looped and templated and node.dim > self.unroll_max:
            return MapVec(lambda s, c=card, k=keys: self._spell(c, s, k), tuple(args), node.dim)
        if looped and name in LOOP_RULES:
            return LOOP_RULES[name](self, scope, args, node.params, node.dim)
        if looped:  # no loop rule: the vectors are unrolled into scalars
            args = [
                [a.at(scope, Ix(str(c))) for c in range(a.dim)] if isinstance(a, Vec) else a
                for a in args
            ]
        if card.lower is not None:
            ctx = LowerCtx(scope, self.dtype, self.dialect, self.helpers)
            out = card.lower(ctx, args, node.params)
            if len(out) != node.dim:
                raise FormulaError(f"{name}: lowering gave {len(out)} scalars, expected {node.dim}")
            return [scope.emit(e) for e in out]
        if card.c is None:
            raise FormulaError(f"{name} has no lowering (neither a template nor a rule)")
        out = []
        for c in range(node.dim):
            scal = [a[c] if len(a) > 1 else a[0] for a in args]
            out.append(scope.emit(self._spell(card, scal, keys)))
        return out

    def _lower_var(self, node: Node, scope: Scope):
        pos, dim, cat = node.params
        self.slots[pos] = (dim, cat)
        if cat is Cat.TEMP and self.pairs:  # a pair value: a{pos} points at a row of a tile
            return [scope.emit(Load(f"a{pos}", Ix("j")))]
        row = None if cat is Cat.PARAM else ("i" if cat is self.output_cat else "j")
        if dim > self.unroll_max:
            return VarVec(pos, dim, row)
        if row is None:
            return [scope.emit(Load(f"a{pos}", Ix(str(c)))) for c in range(dim)]
        if dim == 1:
            return [scope.emit(Load(f"a{pos}", Ix(row)))]
        return [scope.emit(Load(f"a{pos}", Ix(f"{row} * {dim} + {c}"))) for c in range(dim)]

    def _param(self, p: object, op: str):
        if isinstance(p, bool) or not isinstance(p, int | Fraction | float):
            raise FormulaError(f"{op}: a parameter {p!r} cannot appear in a template")
        return p if isinstance(p, int) else Lit(float(p))

    # --- dead code and printing -----------------------------------------------------------

    def _finish(self, root_values, vec_bodies) -> ScalarProgram:
        """Dead-code elimination on the IR (drop statements, loads and stores whose value
        is never read), then print every section."""
        d = self.dialect
        live: set[str] = set()
        for root in root_values:
            for e in root:
                expr_syms(e, live)
        bodies = {}
        mixed_stmts = self.scopes[Level.MIXED].stmts
        mixed_arrays = {
            s.sym.name: (n, s) for n, s in enumerate(mixed_stmts) if isinstance(s, Array)
        }
        for k, (dim, stmts, value) in vec_bodies.items():
            body_live = expr_syms(value, set())
            body = prune(stmts, body_live)
            free = free_syms(body, value)
            # A pair-loop array the component loop reads is rebuilt there from its items
            # (the tile buffers of the first pass carry scalars only).
            while local := sorted(mixed_arrays[n] for n in free if n in mixed_arrays):
                body = [a for _, a in local] + body
                free = free_syms(body, value)
            live |= free
            bodies[k] = (dim, body, value, free)
        mixed_scope = self.scopes[Level.MIXED]
        mixed = prune(mixed_scope.stmts, live)
        inner_values = [
            v for v in self.inner_values if (v.load in live if v.width == 1 else v.pointer in live)
        ]
        row_loads = [(local, array) for local, array in self.row_loads if local in live]
        arrays = {array for _, array in row_loads}
        outer_store = [(a, v) for a, v in self.outer_store if a in arrays]
        live.update(v.pointer for v in inner_values)
        inner_stmts = list(self.scopes[Level.INNER].stmts)
        for v in inner_values:
            if v.source is not None:
                expr_syms(v.source, live)
            for s in v.stores:
                live |= uses(s)
        inner = prune(inner_stmts, live)
        for _, v in outer_store:
            expr_syms(v, live)
        outer = prune(self.scopes[Level.OUTER].stmts, live)
        param = prune(self.scopes[Level.PARAM].stmts, live)
        prog = ScalarProgram(
            param=d.lines(param),
            outer=d.lines(outer),
            inner=d.lines(inner),
            mixed=d.lines(mixed),
            outer_store=[(a, d.expr(v)) for a, v in outer_store],
            row_loads=row_loads,
            roots=[[d.expr(e) for e in root] for root in root_values],
            helpers=set(self.helpers),
            slots=dict(self.slots),
            row_index=self.row_index,
        )
        for v in inner_values:
            source = None if v.source is None else d.expr(v.source)
            prog.inner_values.append(
                InnerValue(v.pointer, source, v.load, v.width, d.lines(v.stores))
            )
        in_mixed = _bound(mixed)
        for k, (dim, body, value, free) in bodies.items():
            buffered = [name for name in in_mixed if name in free]
            prog.vec_roots[k] = VecRoot(dim, d.lines(body), d.expr(value), buffered)
        return prog


def _bound(stmts) -> list[str]:
    """Scalar values bound at the top level of ``stmts``, in order."""
    return [s.sym.name for s in stmts if isinstance(s, Let)]


def lower(
    roots: list[Node],
    dtype: np.dtype | str,
    output_cat: Cat,
    dialect: Dialect | None = None,
    unroll_max: int = UNROLL_MAX,
    loop_roots: frozenset[int] = frozenset({0}),
    pairs: bool = False,
    vec_row: str = "j",
    precompute_vectors: bool = True,
) -> ScalarProgram:
    """Lower ``roots`` (the formula, then the weight formula if any) to a program.

    Args:
        roots: formulas sharing one program (common sub-expressions are computed once).
        dtype: float32 or float64.
        output_cat: the category of the output index (its variables are "outer").
        dialect: the dialect that prints the IR (default: :class:`.CpuDialect`).
        unroll_max: vectors of larger dimension are looped over instead of unrolled.
        loop_roots: the roots that may stay vectors (:attr:`ScalarProgram.vec_roots`);
            the others are unrolled.
        pairs: ``TEMP`` variables of dim 1 are pair values (read as ``a{pos}[j]`` in the
            pair loop; the dot-product path), instead of an error.
        vec_row: the name of the reduction index in the precomputed vectors' arrays
            (``pointer[c * n_rs + vec_row]``; the CUDA kernel's tile-relative index).
        precompute_vectors: reduction-index vectors of looped dimension are precomputed
            (default); False: they are recomputed per pair from the inputs (their captured
            scalars become inner values), for a kernel with no room to stage them.

    Returns:
        The :class:`ScalarProgram`.

    Raises:
        FormulaError: an op has no lowering, or a variable has an unusable category.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise FormulaError(f"kernels are generated for float32 or float64, not {dtype}")
    dialect = CpuDialect(dtype) if dialect is None else dialect
    return _Lowerer(
        dtype, output_cat, dialect, unroll_max, loop_roots, pairs, vec_row, precompute_vectors
    ).run(roots)
