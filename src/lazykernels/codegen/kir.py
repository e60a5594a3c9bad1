"""The kernel IR: scalar SSA values, loops over a dimension, and the passes that run on it.

Lowering (:mod:`.lower`) builds, for each section of a kernel (parameters, output rows,
reduction columns, the pair loop), a list of statements:

* :class:`Let` binds an SSA value (``const``), or a mutable accumulator (``mutable``);
* :class:`Acc` (``s += e``) and :class:`Set` (``s = e``) update an accumulator;
* :class:`Loop` runs its body over ``var`` in ``[0, extent)``: loops over a dimension
  replace the unrolled scalars of large vectors;
* :class:`Store` writes an array element (the precompute of vector values);
* :class:`Array` binds a small constant-size array of values (indexed at run time).

Expressions are trees (:class:`Sym`, :class:`Lit`, :class:`Ix`, :class:`Load`,
:class:`Fmt`, :class:`Call`) in a neutral spelling: infix templates use only the operators
common to the C family, functions are named neutrally (``exp``, ``floor``) and numbers are
values. A dialect (:mod:`.dialect`) prints them. What a statement reads is read off the tree
(:func:`uses`), so dead-code removal (:func:`prune`) and common sub-expressions
(:class:`Scope`) never look at printed text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Names:
    """Per-kernel naming context: ``fresh("t")`` -> ``t0``, ``t1``... (no global counters)."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    def fresh(self, prefix: str) -> str:
        n = self._count.get(prefix, 0)
        self._count[prefix] = n + 1
        return f"{prefix}{n}"


# --- expressions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sym:
    """An SSA value (or an accumulator, or a name the skeleton defines)."""

    name: str


@dataclass(frozen=True)
class Lit:
    """A number of the kernel's scalar type (the dialect prints it: suffix, infinities)."""

    value: float


@dataclass(frozen=True)
class Ix:
    """An integer index expression over loop variables and row/column indices.

    ``vars`` are the loop variables it reads (a value reading one cannot leave that loop).
    """

    text: str
    vars: frozenset[str] = frozenset()

    def plus(self, k: int) -> Ix:
        if k == 0:
            return self
        if self.text.isdigit():
            return Ix(str(int(self.text) + k))
        return Ix(f"({self.text} + {k})", self.vars)

    def times(self, k: int) -> Ix:
        if self.text.isdigit():
            return Ix(str(int(self.text) * k))
        return self if k == 1 else Ix(f"{self.text} * {k}", self.vars)

    def combine(self, template: str, *others: Ix) -> Ix:
        """``template.format(self, *others)`` as an index (reads every operand's vars)."""
        vs = self.vars.union(*(o.vars for o in others))
        return Ix(template.format(self.text, *(o.text for o in others)), vs)

    @property
    def const(self) -> int | None:
        return int(self.text) if self.text.isdigit() else None


@dataclass(frozen=True)
class Load:
    """``array[index]`` (an input, a precomputed array, a local array)."""

    array: str
    index: Ix


@dataclass(frozen=True)
class Fmt:
    """A neutral infix template (``({0} + {1})``, ``{T}`` the scalar type) of expressions;
    ``keys`` fills named fields (``{p0}``: an op's static parameters)."""

    template: str
    args: tuple = ()
    keys: tuple = ()  # ((name, expression or int), ...)


@dataclass(frozen=True)
class Call:
    """A call of a neutral math function (``exp``) or of a helper (``lk_xlogx``)."""

    fn: str
    args: tuple = ()


Expr = Sym | Lit | Ix | Load | Fmt | Call


def expr_syms(e: Expr, out: set[str]) -> set[str]:
    """Add the names ``e`` reads (SSA values and arrays) to ``out``; return ``out``."""
    if isinstance(e, Sym):
        out.add(e.name)
    elif isinstance(e, Load):
        out.add(e.array)
    elif isinstance(e, Fmt):
        for a in e.args:
            expr_syms(a, out)
        for _, v in e.keys:
            if not isinstance(v, int | str):
                expr_syms(v, out)
    elif isinstance(e, Call):
        for a in e.args:
            expr_syms(a, out)
    return out


def expr_vars(e: Expr, out: set[str]) -> set[str]:
    """Add the loop variables ``e`` reads to ``out``."""
    if isinstance(e, Ix):
        out.update(e.vars)
    elif isinstance(e, Load):
        out.update(e.index.vars)
    elif isinstance(e, Fmt | Call):
        for a in e.args:
            expr_vars(a, out)
        if isinstance(e, Fmt):
            for _, v in e.keys:
                if not isinstance(v, int | str):
                    expr_vars(v, out)
    return out


# --- statements -------------------------------------------------------------------------


@dataclass
class Let:
    sym: Sym
    expr: Expr
    mutable: bool = False
    ctype: str = "T"


@dataclass
class Acc:
    sym: Sym
    expr: Expr


@dataclass
class Set:
    sym: Sym
    expr: Expr


@dataclass
class Store:
    array: str
    index: Ix
    expr: Expr


@dataclass
class Array:
    sym: Sym
    items: tuple


@dataclass
class Loop:
    var: str
    extent: int
    body: list = field(default_factory=list)


@dataclass
class Assign:
    """``target op expr`` for an lvalue expression (a state entry, an output element):
    ``op`` is ``"="`` or ``"+="``. Reduction programs (:mod:`.emit`) write these."""

    target: Expr
    expr: Expr
    op: str = "="


@dataclass
class If:
    """``if (cond) { then } else { orelse }`` (reduction programs, :mod:`.emit`)."""

    cond: Expr
    then: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


@dataclass
class While:
    """``while (cond) { body }`` (reduction programs, :mod:`.emit`: a loop that stops early,
    e.g. the shift of a sorted list held in memory)."""

    cond: Expr
    body: list = field(default_factory=list)


Stmt = Let | Acc | Set | Store | Array | Loop | Assign | If | While


def uses(stmt: Stmt) -> set[str]:
    """The names a statement reads (for a loop: those its body reads from outside)."""
    out: set[str] = set()
    if isinstance(stmt, Let):
        expr_syms(stmt.expr, out)
    elif isinstance(stmt, Acc | Set):
        expr_syms(stmt.expr, out)
        out.add(stmt.sym.name)
    elif isinstance(stmt, Store):
        expr_syms(stmt.expr, out)
        out.add(stmt.array)
    elif isinstance(stmt, Array):
        for e in stmt.items:
            expr_syms(e, out)
    elif isinstance(stmt, Assign):
        expr_syms(stmt.expr, out)
        expr_syms(stmt.target, out)
    elif isinstance(stmt, If):
        expr_syms(stmt.cond, out)
        for s in stmt.then + stmt.orelse:
            out |= uses(s)
    elif isinstance(stmt, While):
        expr_syms(stmt.cond, out)
        for s in stmt.body:
            out |= uses(s)
    else:
        for s in stmt.body:
            out |= uses(s)
    return out


def prune(stmts: list[Stmt], live: set[str]) -> list[Stmt]:
    """``stmts`` without what nobody reads; ``live`` (the names read later) gains what the
    kept statements read. Stores are always kept; an update is kept if its accumulator is
    live; a loop is kept if something in its body is (liveness iterated to a fixed point
    over the body, for values carried from one iteration to the next)."""
    kept: list[Stmt] = []
    for s in reversed(stmts):
        if isinstance(s, Let | Array | Acc | Set):
            if s.sym.name not in live:
                continue
        elif isinstance(s, Loop):
            # an update late in the body can feed an earlier statement of the next
            # iteration: prune until what the body reads stops growing
            inner = set(live)
            while True:
                trial = set(inner)
                body = prune(s.body, trial)
                if trial == inner:
                    break
                inner = trial
            if not body:
                continue
            live |= inner
            kept.append(Loop(s.var, s.extent, body))
            continue
        live |= uses(s)
        kept.append(s)
    return kept[::-1]


def defined(stmts: list[Stmt], out: set[str] | None = None) -> set[str]:
    """The names bound by ``stmts`` (loop bodies included)."""
    out = set() if out is None else out
    for s in stmts:
        if isinstance(s, Let | Array):
            out.add(s.sym.name)
        elif isinstance(s, Loop):
            defined(s.body, out)
    return out


def free_syms(stmts: list[Stmt], result: Expr | None = None) -> set[str]:
    """The names ``stmts`` (and ``result``) read that they do not bind."""
    out: set[str] = set()
    for s in stmts:
        out |= uses(s)
    if result is not None:
        expr_syms(result, out)
    return out - defined(stmts)


# --- scopes -----------------------------------------------------------------------------


class Scope:
    """Where statements are emitted: a section of the kernel, or the body of a loop.

    ``emit`` binds an expression once per scope (common sub-expressions), and places it in
    the outermost enclosing scope where everything it reads is defined (loop-invariant
    values leave their loops).
    """

    def __init__(self, names: Names, prefix: str, parent: Scope | None = None, var: str = ""):
        self.names, self.prefix, self.parent, self.var = names, prefix, parent, var
        self.stmts: list[Stmt] = []
        self.memo: dict[Expr, Sym] = {}
        self.owned: dict[str, Scope] = {}  # names bound here (and in enclosed loop scopes)
        self.depth = 0 if parent is None else parent.depth + 1

    def child(self, var: str) -> Scope:
        """The scope of the body of a loop over ``var``."""
        return Scope(self.names, self.prefix, self, var)

    def _home(self, e: Expr) -> Scope:
        """The outermost scope (up to this one) where ``e`` can be evaluated."""
        syms, vs = expr_syms(e, set()), expr_vars(e, set())
        home: Scope = self
        chain = []
        s: Scope | None = self
        while s is not None:
            chain.append(s)
            s = s.parent
        for cand in reversed(chain):  # outermost first
            inside = [c for c in chain if c.depth > cand.depth]
            if any(c.var in vs for c in inside):
                continue
            if any(name in c.owned for c in inside for name in syms):
                continue
            home = cand
            break
        return home

    def lookup(self, e: Expr) -> Sym | None:
        s: Scope | None = self
        while s is not None:
            if e in s.memo:
                return s.memo[e]
            s = s.parent
        return None

    def emit(self, e: Expr) -> Expr:
        """``e`` bound to a fresh value (or an existing one); atoms are returned as they are."""
        if isinstance(e, Sym | Lit | Ix):
            return e
        found = self.lookup(e)
        if found is not None:
            return found
        home = self._home(e)
        sym = Sym(self.names.fresh(home.prefix))
        home.stmts.append(Let(sym, e))
        home.memo[e] = sym
        home._own(sym.name)
        return sym

    def _own(self, name: str) -> None:
        s: Scope | None = self
        while s is not None:
            s.owned[name] = self
            s = s.parent

    def accumulator(self, init: Expr, prefix: str = "s") -> Sym:
        """A fresh mutable value ``T s = init;`` in this scope."""
        sym = Sym(self.names.fresh(prefix))
        self.stmts.append(Let(sym, init, mutable=True))
        self._own(sym.name)
        return sym

    def array(self, items: tuple) -> Sym:
        """A constant local array of ``items`` (read with a run-time index)."""
        sym = Sym(self.names.fresh("arr"))
        self.stmts.append(Array(sym, tuple(items)))
        self._own(sym.name)
        return sym

    def add(self, stmt: Stmt) -> None:
        self.stmts.append(stmt)
