"""Lowering: a formula DAG -> straight-line scalar SSA, split by what each value depends on.

A dim-D vector becomes D scalar *atoms* (temporaries' names or printed literals). Every
interned node is lowered once (that is common-sub-expression elimination), in a fixed
traversal order, with names from a per-kernel :class:`Names` context, so the text is a pure
function of the formula.

Each node gets a :class:`Level` from the variables it reads, and is emitted in the matching
section of the kernel:

* ``PARAM``: constants and parameters only -> computed once per batch entry;
* ``OUTER``: output-index variables (and parameters) -> once per output row, stored per row
  of a block in small arrays (``xs*``) and read into row locals (``xr*``);
* ``INNER``: reduction-index variables (and parameters) -> precomputed once per call into
  dimension-major arrays (``ys*``; a dim-1 input variable is read in place);
* ``MIXED``: the rest, evaluated in the vectorised inner loop from the above.

Only the *frontier* of the outer and inner parts (values that a mixed node or a root reads)
crosses into the inner loop.

Before lowering, chains of products are re-associated (:func:`reassociate_products`): the
scalar factors of a product are multiplied level by level (parameters and output-index
factors together, hoisted out of the loop; reduction-index factors together, precomputed),
and a vector factor is multiplied once by the resulting scalar. A gradient such as
``-2 * (e * b * g * (x - y) * Exp(..))`` then costs 2 + D multiplications per pair instead
of 4 + 3 D. The kernels are compiled with re-association allowed anyway; this does it where
the compiler cannot (across the hoisting boundaries).
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import FormulaError
from ..formula.ir import Cat, Node, constant_value, make, topological_order
from ..formula.opspec import OpSpec, fixed_dim


class Level(enum.IntEnum):
    """What a value depends on (a bit set: OUTER | INNER == MIXED)."""

    PARAM = 0
    OUTER = 1
    INNER = 2
    MIXED = 3


class Names:
    """Per-kernel naming context: ``fresh("t")`` -> ``t0``, ``t1``... (no global counters)."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    def fresh(self, prefix: str) -> str:
        n = self._count.get(prefix, 0)
        self._count[prefix] = n + 1
        return f"{prefix}{n}"


def c_literal(value: int | float | Fraction, dtype: np.dtype | str, ctype: str = "T") -> str:
    """A C++ literal of ``value`` rounded to ``dtype`` (``repr`` + ``f`` suffix for float32).

    inf and NaN print as ``std::numeric_limits<ctype>`` constants; negative numbers are
    parenthesised, so a literal is always an atom (``-{0}`` stays valid).

    Example:
        >>> c_literal(0.1, "float32"), c_literal(-2, "float64"), c_literal(float("inf"), "float32")
        ('0.10000000149011612f', '(-2.0)', 'std::numeric_limits<T>::infinity()')
    """
    dtype = np.dtype(dtype)
    v = float(value)
    if dtype == np.float32:
        with np.errstate(over="ignore"):
            v = float(np.float32(v))
    if math.isnan(v):
        return f"std::numeric_limits<{ctype}>::quiet_NaN()"
    if math.isinf(v):
        text = f"std::numeric_limits<{ctype}>::infinity()"
        return text if v > 0 else f"(-{text})"
    text = repr(abs(v))
    if "." not in text and "e" not in text:
        text += ".0"
    if dtype == np.float32:
        text += "f"
    return f"(-{text})" if math.copysign(1.0, v) < 0 else text


class LowerCtx:
    """What an op's ``lower(ctx, arg_scalars, params)`` rule may use while it is lowered.

    Attributes:
        T: the name of the kernel's scalar type in the source (``"T"``).
        dtype: the NumPy dtype of the kernel (float32 or float64).
    """

    T = "T"

    def __init__(self, names: Names, dtype: np.dtype, prefix: str, atoms: set[str]) -> None:
        self.dtype = dtype
        self.lines: list[str] = []
        self._names = names
        self._prefix = prefix
        self._atoms = atoms

    def literal(self, value: int | float | Fraction) -> str:
        """A numeric literal of the kernel's scalar type (an atom)."""
        text = c_literal(value, self.dtype)
        self._atoms.add(text)
        return text

    def emit(self, expr: str) -> str:
        """Bind ``expr`` to a fresh ``const T`` temporary and return its name."""
        if expr in self._atoms:
            return expr
        name = self._names.fresh(self._prefix)
        self.lines.append(f"const T {name} = {expr};")
        self._atoms.add(name)
        return name

    def emit_array(self, exprs: list[str]) -> str:
        """Bind a small local array ``const T arrN[n] = {...}``; return its name."""
        name = self._names.fresh("arr")
        self.lines.append(f"const T {name}[{len(exprs)}] = {{{', '.join(exprs)}}};")
        return name

    def emit_line(self, text: str) -> None:
        """Append a raw statement (used by the lowering itself for stores)."""
        self.lines.append(text)


@dataclass
class InnerValue:
    """One scalar of the inner frontier: read in the inner loop as ``pointer[j]``.

    ``source`` is the name computed by the precompute section, or None when ``pointer`` is
    a dim-1 input variable read in place.
    """

    pointer: str
    source: str | None
    load: str  # name of the loaded value inside the inner loop


@dataclass
class ScalarProgram:
    """The lowered formula(s), section by section (see the module docstring).

    Attributes:
        param, outer, inner, mixed: statements of each section (outer reads the row index
            ``i`` and ``xs*`` stores use ``k``; inner reads ``j``; mixed reads ``j``).
        outer_store: ``(array, value)``: ``array[k] = value`` ends the outer section.
        row_loads: ``(local, array)``: ``const T local = array[k];`` starts each row.
        inner_values: the inner frontier, scalar by scalar.
        roots: for each root formula, its scalar atoms valid inside the inner loop.
        helpers: helper function names the printed templates need.
        slots: positions of the input variables read, with their dim and category.
    """

    param: list[str] = field(default_factory=list)
    outer: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)
    mixed: list[str] = field(default_factory=list)
    outer_store: list[tuple[str, str]] = field(default_factory=list)
    row_loads: list[tuple[str, str]] = field(default_factory=list)
    inner_values: list[InnerValue] = field(default_factory=list)
    roots: list[list[str]] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    slots: dict[int, tuple[int, Cat]] = field(default_factory=dict)

    @property
    def precomputed(self) -> list[InnerValue]:
        """The inner values that need a precomputed array (not read in place)."""
        return [v for v in self.inner_values if v.source is not None]


# Template overrides of the CPU printer: ops whose C library spelling does not vectorise.
CPU_OVERRIDES: dict[str, tuple[str, frozenset[str]]] = {
    "Exp": ("lk_exp({0})", frozenset({"lk_exp"})),
}


def _all_nodes(roots: list[Node]) -> list[Node]:
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        for node in topological_order(root):
            if id(node) not in seen:
                seen.add(id(node))
                order.append(node)
    return order


def _levels(order: list[Node], output_cat: Cat) -> dict[Node, Level]:
    levels: dict[Node, Level] = {}
    for node in order:
        if node.op.name == "Var":
            cat = node.params[2]
            if cat is Cat.PARAM:
                levels[node] = Level.PARAM
            elif cat in (Cat.I, Cat.J):
                levels[node] = Level.OUTER if cat is output_cat else Level.INNER
            else:
                raise FormulaError(f"{node}: a {cat.name} variable cannot be compiled")
        else:
            lv = 0
            for a in node.args:
                lv |= levels[a]
            levels[node] = Level(lv)
    return levels


def _level_of(node: Node, memo: dict[Node, Level], output_cat: Cat) -> Level:
    level = memo.get(node)
    if level is None:
        if node.op.name == "Var":
            cat = node.params[2]
            level = Level.PARAM if cat not in (Cat.I, Cat.J) else Level.OUTER
            if cat in (Cat.I, Cat.J) and cat is not output_cat:
                level = Level.INNER
        else:
            bits = 0
            for a in node.args:
                bits |= _level_of(a, memo, output_cat)
            level = Level(bits)
        memo[node] = level
    return level


def _product(factors: list[Node]) -> Node:
    out = factors[0]
    for f in factors[1:]:
        out = make("Mult", (out, f))
    return out


def reassociate_products(roots: list[Node], output_cat: Cat) -> list[Node]:
    """``roots`` with every product chain regrouped by level (see the module docstring).

    A product's factors are the operands of its ``Mult`` sub-tree, descending only into
    sub-products used once (a shared sub-product stays computed once). Scalar factors are
    grouped as (parameters and output-index ones), (reduction-index ones), then the mixed
    ones in their original order; vector factors are multiplied together first, then once by
    the scalar. Products of two factors are left as they are.
    """
    order = _all_nodes(roots)
    uses: dict[Node, int] = {}
    for node in order:
        for a in node.args:
            uses[a] = uses.get(a, 0) + 1
    for r in roots:
        uses[r] = uses.get(r, 0) + 1
    levels: dict[Node, Level] = {}
    new: dict[Node, Node] = {}

    def factors(node: Node) -> list[Node]:
        out: list[Node] = []
        for a in node.args:
            if a.op.name == "Mult" and uses.get(a, 0) == 1:
                out += factors(a)
            else:
                out.append(new[a])
        return out

    for node in order:
        args = tuple(new[a] for a in node.args)
        fs = factors(node) if node.op.name == "Mult" else []
        if len(fs) <= 2:
            new[node] = node if args == node.args else make(node.op, args, node.params)
            continue
        group: dict[Level, list[Node]] = {lv: [] for lv in Level}
        vectors = []
        for f in fs:
            if f.dim > 1:
                vectors.append(f)
            else:
                group[_level_of(f, levels, output_cat)].append(f)
        params, outer, inner = group[Level.PARAM], group[Level.OUTER], group[Level.INNER]
        hoisted = [params + outer, inner] if outer else [outer, params + inner]
        scalars = [_product(g) for g in hoisted if g] + group[Level.MIXED]
        parts = ([_product(vectors)] if vectors else []) + ([_product(scalars)] if scalars else [])
        new[node] = _product(parts)
    return [new[r] for r in roots]


EXP_SCALED = OpSpec(
    "ExpScaled",
    2,
    dim=fixed_dim(1),
    c="lk_exp_scaled({0}, {1})",
    helpers=frozenset({"lk_exp"}),
    test=None,
    doc="ExpScaled(s, c) = Exp(s * c), c hoisted (internal to the CPU lowering)",
)
"""``Exp(s * c)`` of the compiled CPU kernels, built only by :func:`fuse_scaled_exp`."""


def fuse_scaled_exp(roots: list[Node], output_cat: Cat) -> list[Node]:
    """``roots`` with every scalar ``Exp(s * c)`` or ``Exp(-(s * c))`` of the inner loop,
    ``c`` a hoisted scalar (parameters and output-index values), as ``ExpScaled(s, +-c)``.

    ``lk_exp`` first rounds its argument divided by ln 2; ``lk_exp_scaled`` rounds
    ``s * (c / ln2)`` instead, with ``c / ln2`` hoisted, so the pair's dependency chain no
    longer waits for ``s * c`` (Gaussian kernels ``Exp(-g * SqDist(x, y))``: 6 % faster in
    float64, 5 % in float32).
    """
    levels: dict[Node, Level] = {}
    new: dict[Node, Node] = {}

    def hoisted(node: Node) -> bool:
        return node.dim == 1 and _level_of(node, levels, output_cat) in (Level.PARAM, Level.OUTER)

    for node in _all_nodes(roots):
        args = tuple(new[a] for a in node.args)
        rebuilt = node if args == node.args else make(node.op, args, node.params)
        new[node] = rebuilt
        if rebuilt.op.name != "Exp" or rebuilt.dim != 1:
            continue
        if _level_of(rebuilt, levels, output_cat) is not Level.MIXED:
            continue
        inner, negated = rebuilt.args[0], False
        if inner.op.name == "Minus":
            inner, negated = inner.args[0], True
        if inner.op.name != "Mult" or inner.dim != 1:
            continue
        a, b = inner.args
        if hoisted(b) and not hoisted(a):
            s, c = a, b
        elif hoisted(a) and not hoisted(b):
            s, c = b, a
        else:
            continue
        new[node] = make(EXP_SCALED, (s, make("Minus", (c,)) if negated else c))
    return [new[r] for r in roots]


class _Lowerer:
    def __init__(self, dtype: np.dtype, output_cat: Cat, overrides: dict) -> None:
        self.dtype = dtype
        self.output_cat = output_cat
        self.overrides = overrides
        self.names = Names()
        self.atoms: set[str] = set()
        self.prog = ScalarProgram()
        self.ctx = {
            Level.PARAM: LowerCtx(self.names, dtype, "p", self.atoms),
            Level.OUTER: LowerCtx(self.names, dtype, "x", self.atoms),
            Level.INNER: LowerCtx(self.names, dtype, "y", self.atoms),
            Level.MIXED: LowerCtx(self.names, dtype, "t", self.atoms),
        }
        self.local: dict[Node, list[str]] = {}  # scalars in the node's own section
        self.in_loop: dict[Node, list[str]] = {}  # scalars of frontier nodes in the loop

    def run(self, roots: list[Node]) -> ScalarProgram:
        roots = reassociate_products(roots, self.output_cat)
        if "Exp" in self.overrides:  # the CPU spelling: lk_exp, and so lk_exp_scaled
            roots = fuse_scaled_exp(roots, self.output_cat)
        order = _all_nodes(roots)
        levels = _levels(order, self.output_cat)
        frontier = {r for r in roots if levels[r] in (Level.OUTER, Level.INNER)}
        for node in order:
            if levels[node] is Level.MIXED:
                frontier.update(a for a in node.args if levels[a] in (Level.OUTER, Level.INNER))
        for node in order:
            level = levels[node]
            args = [self._arg_scalars(a, levels[a], level) for a in node.args]
            self.local[node] = self._lower_node(node, args, self.ctx[level])
            if node in frontier:
                self._cross(node, level)
        prog = self.prog
        prog.param = self.ctx[Level.PARAM].lines
        prog.outer = self.ctx[Level.OUTER].lines
        prog.inner = self.ctx[Level.INNER].lines
        prog.mixed = self.ctx[Level.MIXED].lines
        prog.roots = [self._arg_scalars(r, levels[r], Level.MIXED) for r in roots]
        _prune(prog)
        return prog

    def _arg_scalars(self, arg: Node, arg_level: Level, user_level: Level) -> list[str]:
        if arg_level is not user_level and arg_level in (Level.OUTER, Level.INNER):
            return self.in_loop[arg]
        return self.local[arg]

    def _cross(self, node: Node, level: Level) -> None:
        """Make a frontier node's scalars available inside the inner loop."""
        names, prog = self.names, self.prog
        scalars: list[str] = []
        for value in self.local[node]:
            if value in self.atoms and not _is_name(value):  # a literal crosses as is
                scalars.append(value)
                continue
            if level is Level.OUTER:
                array, local = names.fresh("xs"), names.fresh("xr")
                prog.outer_store.append((array, value))
                prog.row_loads.append((local, array))
                scalars.append(local)
            else:
                load = names.fresh("yr")
                direct = node.op.name == "Var" and node.dim == 1
                pointer = f"a{node.params[0]}" if direct else names.fresh("ys")
                prog.inner_values.append(InnerValue(pointer, None if direct else value, load))
                scalars.append(load)
        self.atoms.update(scalars)
        self.in_loop[node] = scalars

    def _lower_node(self, node: Node, args: list[list[str]], ctx: LowerCtx) -> list[str]:
        name = node.op.name
        if name == "Var":
            return self._lower_var(node, ctx)
        if name == "Zero":
            return [ctx.literal(0)] * node.params[0]
        value = constant_value(node)
        if value is not None:
            return [ctx.literal(value)]
        card = node.op
        if name in self.overrides:
            template, helpers = self.overrides[name]
        else:
            template, helpers = card.c, card.helpers
        self.prog.helpers.update(helpers)
        if card.lower is not None and name not in self.overrides:
            out = card.lower(ctx, args, node.params)
            if len(out) != node.dim:
                raise FormulaError(f"{name}: lowering gave {len(out)} scalars, expected {node.dim}")
            return [ctx.emit(e) for e in out]
        if template is None:
            raise FormulaError(f"{name} has no C++ lowering (neither a template nor a rule)")
        fmt = {f"p{k}": self._param_text(p, name) for k, p in enumerate(node.params)}
        out = []
        for c in range(node.dim):
            scal = [a[c] if len(a) > 1 else a[0] for a in args]
            out.append(ctx.emit(template.format(*scal, T=ctx.T, **fmt)))
        return out

    def _lower_var(self, node: Node, ctx: LowerCtx) -> list[str]:
        pos, dim, cat = node.params
        self.prog.slots[pos] = (dim, cat)
        if cat is Cat.PARAM:
            return [ctx.emit(f"a{pos}[{c}]") for c in range(dim)]
        row = "i" if cat is self.output_cat else "j"
        if dim == 1:
            return [ctx.emit(f"a{pos}[{row}]")]
        return [ctx.emit(f"a{pos}[{row} * {dim} + {c}]") for c in range(dim)]

    def _param_text(self, p: object, op: str) -> str:
        if isinstance(p, bool) or not isinstance(p, int | Fraction | float):
            raise FormulaError(f"{op}: a parameter {p!r} cannot appear in a C++ template")
        if isinstance(p, int):
            return str(p)
        return c_literal(p, self.dtype)


def _is_name(atom: str) -> bool:
    return atom.isidentifier()


_DEFINED = re.compile(r"^const T (\w+)")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def _live_lines(lines: list[str], live: set[str]) -> list[str]:
    """``lines`` without the definitions nobody reads; ``live`` gains what the rest reads."""
    kept: list[str] = []
    for line in reversed(lines):
        m = _DEFINED.match(line)
        if m is not None and m.group(1) not in live:
            continue
        live.update(_IDENT.findall(line if m is None else line[m.end() :]))
        kept.append(line)
    return kept[::-1]


def _prune(prog: ScalarProgram) -> None:
    """Dead-code elimination: drop statements, loads and stores whose value is never read
    (e.g. a dim-1 reduction variable read in place, or an unused temporary of a rule)."""
    live = {a for root in prog.roots for a in root}
    prog.mixed = _live_lines(prog.mixed, live)
    prog.inner_values = [v for v in prog.inner_values if v.load in live]
    prog.row_loads = [(local, array) for local, array in prog.row_loads if local in live]
    arrays = {array for _, array in prog.row_loads}
    prog.outer_store = [(a, v) for a, v in prog.outer_store if a in arrays]
    live.update(v.pointer for v in prog.inner_values)
    live.update(v.source for v in prog.inner_values if v.source is not None)
    prog.inner = _live_lines(prog.inner, live)
    live.update(v for _, v in prog.outer_store)
    prog.outer = _live_lines(prog.outer, live)
    prog.param = _live_lines(prog.param, live)


def lower(
    roots: list[Node],
    dtype: np.dtype | str,
    output_cat: Cat,
    overrides: dict[str, tuple[str, frozenset[str]]] | None = None,
) -> ScalarProgram:
    """Lower ``roots`` (the formula, then the weight formula if any) to a scalar program.

    Args:
        roots: formulas sharing one program (common sub-expressions are computed once).
        dtype: float32 or float64.
        output_cat: the category of the output index (its variables are "outer").
        overrides: op name -> (template, helpers) replacing a card's C spelling; default
            :data:`CPU_OVERRIDES`.

    Returns:
        The :class:`ScalarProgram`.

    Raises:
        FormulaError: an op has no C++ spelling, or a variable has an unusable category.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise FormulaError(f"kernels are generated for float32 or float64, not {dtype}")
    table = CPU_OVERRIDES if overrides is None else overrides
    return _Lowerer(dtype, output_cat, table).run(roots)
