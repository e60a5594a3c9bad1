"""Vectors of large dimension in the kernel IR: values read component by component in loops.

Below the unrolling threshold a dim-D value is D scalars (each an SSA value of the IR).
Above it, a value is a :class:`Vec`: a rule that gives component ``ix`` (a run-time index
expression, usually a loop variable) as IR emitted in the scope that asks for it. Consumers
loop over the components: ``Sum`` and ``Scalprod`` accumulate, ``MatVecMult`` and
``TensorDot`` loop over their contraction, a reduction of a large formula runs one pass per
component (:mod:`.cpp`). The source size is then independent of the dimension.

:data:`LOOP_RULES` gives, for the structural ops, the rule that consumes and produces
vectors (element-wise ops are generic: :class:`MapVec`); an op without one gets its
vector arguments unrolled into scalars (correct, but the source grows with the dimension).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..formula.ops.tensor import tensordot_axes, tensordot_layout
from .kir import Acc, Call, Expr, Fmt, Ix, Lit, Load, Loop, Scope, Set


class Vec:
    """A vector value of dimension ``dim`` whose components are produced on demand."""

    dim: int

    def at(self, scope: Scope, ix: Ix) -> Expr:
        raise NotImplementedError

    def scalars(self) -> list[Expr]:
        """The scalar values it captures (what must cross into another kernel section)."""
        return []

    def subst(self, f: Callable[[Expr], Expr]) -> Vec:
        """The same vector with its captured scalars mapped by ``f``."""
        return self


def component(v: Any, scope: Scope, ix: Ix) -> Expr:
    """Component ``ix`` of a vector or of a list of scalars (a dim-1 list broadcasts)."""
    if isinstance(v, Vec):
        return v.at(scope, ix)
    if len(v) == 1:
        return v[0]
    k = ix.const
    if k is not None:
        return v[k]
    return ListVec(tuple(v)).at(scope, ix)


def _map_items(items: tuple, f: Callable[[Expr], Expr]) -> tuple:
    return tuple(i.subst(f) if isinstance(i, Vec) else tuple(f(e) for e in i) for i in items)


def _items_scalars(items: tuple) -> list[Expr]:
    out: list[Expr] = []
    for i in items:
        out += i.scalars() if isinstance(i, Vec) else list(i)
    return out


@dataclass(frozen=True, eq=False)
class VarVec(Vec):
    """An input variable read in place: ``a{pos}[row * dim + ix]`` (``row`` None: a parameter)."""

    pos: int
    dim: int
    row: str | None

    def at(self, scope: Scope, ix: Ix) -> Expr:
        index = ix if self.row is None else ix.combine(f"{self.row} * {self.dim} + {{0}}")
        return scope.emit(Load(f"a{self.pos}", index))


@dataclass(frozen=True, eq=False)
class PreVec(Vec):
    """A precomputed reduction-index vector, dimension-major: ``pointer[ix * n_rs + j]``
    (``row``: the name of the index ``j`` in the arrays, e.g. a tile-relative one)."""

    pointer: str
    dim: int
    row: str = "j"

    def at(self, scope: Scope, ix: Ix) -> Expr:
        return scope.emit(Load(self.pointer, ix.combine("{0} * n_rs + " + self.row)))


@dataclass(frozen=True, eq=False)
class ListVec(Vec):
    """Scalars read at a run-time index through a local array."""

    items: tuple

    @property
    def dim(self) -> int:
        return len(self.items)

    def at(self, scope: Scope, ix: Ix) -> Expr:
        k = ix.const
        if k is not None:
            return self.items[k]
        home = scope._home(Fmt("", self.items))
        key = ("array", self.items)
        arr = home.memo.get(key)
        if arr is None:
            arr = home.array(self.items)
            home.memo[key] = arr
        return scope.emit(Load(arr.name, ix))

    def scalars(self) -> list[Expr]:
        return list(self.items)

    def subst(self, f):
        return ListVec(tuple(f(e) for e in self.items))


@dataclass(frozen=True, eq=False)
class MapVec(Vec):
    """An element-wise op: ``build(components of args)`` (dim-1 arguments broadcast)."""

    build: Callable[[list[Expr]], Expr]
    args: tuple  # Vec or list of scalars
    dim: int

    def at(self, scope: Scope, ix: Ix) -> Expr:
        return scope.emit(self.build([component(a, scope, ix) for a in self.args]))

    def scalars(self):
        return _items_scalars(self.args)

    def subst(self, f):
        return MapVec(self.build, _map_items(self.args, f), self.dim)


@dataclass(frozen=True, eq=False)
class ConstVec(Vec):
    """One scalar repeated (``SumT``, ``Zero``)."""

    value: Expr
    dim: int

    def at(self, scope: Scope, ix: Ix) -> Expr:
        return self.value

    def scalars(self):
        return [self.value]

    def subst(self, f):
        return ConstVec(f(self.value), self.dim)


@dataclass(frozen=True, eq=False)
class ShiftVec(Vec):
    """Components ``start, start + 1, ...`` of ``base`` (``Extract``)."""

    base: Any
    start: int
    dim: int

    def at(self, scope: Scope, ix: Ix) -> Expr:
        return component(self.base, scope, ix.plus(self.start))

    def scalars(self):
        return _items_scalars((self.base,))

    def subst(self, f):
        return ShiftVec(_map_items((self.base,), f)[0], self.start, self.dim)


def _clamp(ix: Ix, lo: int, hi: int) -> Ix:
    """``ix`` clamped to ``[lo, hi]`` (reads stay in bounds on the branch not taken)."""
    return ix.combine(f"lk_min<int64_t>(lk_max<int64_t>({{0}}, {lo}), {hi})")


@dataclass(frozen=True, eq=False)
class PadVec(Vec):
    """``base`` at components ``[start, start + base.dim)`` of a zero vector (``ExtractT``,
    ``ElemT``), or ``base`` then ``tail`` (``Concat``: ``tail`` given)."""

    base: Any
    start: int
    dim: int
    tail: Any = None

    def at(self, scope: Scope, ix: Ix) -> Expr:
        n = self.base.dim if isinstance(self.base, Vec) else len(self.base)
        k = ix.const
        if self.tail is not None:
            if k is not None:
                return component(
                    self.base if k < n else self.tail, scope, Ix(str(k if k < n else k - n))
                )
            m = self.dim - n
            head = component(self.base, scope, _clamp(ix, 0, n - 1))
            rest = component(self.tail, scope, _clamp(ix.plus(-n), 0, m - 1))
            return scope.emit(Fmt("({0} < {1} ? {2} : {3})", (ix, Ix(str(n)), head, rest)))
        zero = Lit(0)
        if k is not None:
            inside = self.start <= k < self.start + n
            return component(self.base, scope, Ix(str(k - self.start))) if inside else zero
        inner = component(self.base, scope, _clamp(ix.plus(-self.start), 0, n - 1))
        cond = Fmt("({0} >= {1} && {0} < {2})", (ix, Ix(str(self.start)), Ix(str(self.start + n))))
        return scope.emit(Fmt("({0} ? {1} : {2})", (cond, inner, zero)))

    def scalars(self):
        return _items_scalars((self.base,) + ((self.tail,) if self.tail is not None else ()))

    def subst(self, f):
        tail = None if self.tail is None else _map_items((self.tail,), f)[0]
        return PadVec(_map_items((self.base,), f)[0], self.start, self.dim, tail)


@dataclass(frozen=True, eq=False)
class OneHotVec(Vec):
    """1 at the component equal to ``index`` (a scalar of the kernel type), else 0."""

    index: Expr
    dim: int

    def at(self, scope: Scope, ix: Ix) -> Expr:
        k = ix.const
        pos = Lit(k) if k is not None else Fmt("({T}){0}", (ix,))
        return scope.emit(Fmt("({0} == {1} ? {2} : {3})", (self.index, pos, Lit(1), Lit(0))))

    def scalars(self):
        return [self.index]

    def subst(self, f):
        return OneHotVec(f(self.index), self.dim)


@dataclass(frozen=True, eq=False)
class ContractVec(Vec):
    """``out[ix] = sum_t a[ia(ix, t)] * b[ib(ix, t)]`` over ``t < n_terms`` (matrix-vector
    products, outer products, tensor contractions); ``index(ix, t) -> (ia, ib)`` builds the
    index expressions."""

    a: Any
    b: Any
    dim: int
    n_terms: int
    index: Callable[[Ix, Ix], tuple[Ix, Ix]]
    unroll_max: int = field(default=0)

    def at(self, scope: Scope, ix: Ix) -> Expr:
        def term(sc: Scope, t: Ix) -> Expr:
            ia, ib = self.index(ix, t)
            return Fmt("{0} * {1}", (component(self.a, sc, ia), component(self.b, sc, ib)))

        return sum_over(scope, self.n_terms, term, self.unroll_max)

    def scalars(self):
        return _items_scalars((self.a, self.b))

    def subst(self, f):
        a, b = _map_items((self.a, self.b), f)
        return ContractVec(a, b, self.dim, self.n_terms, self.index, self.unroll_max)


def sum_over(scope: Scope, n: int, term: Callable[[Scope, Ix], Expr], unroll_max: int) -> Expr:
    """``sum_{t < n} term(t)``: unrolled (one expression) up to ``unroll_max`` terms, else an
    accumulator and a loop."""
    if n <= unroll_max:
        terms = [term(scope, Ix(str(t))) for t in range(n)]
        if len(terms) == 1:
            return scope.emit(terms[0])
        return scope.emit(Fmt("(" + " + ".join(f"{{{t}}}" for t in range(n)) + ")", tuple(terms)))
    acc = scope.accumulator(Lit(0))
    var = scope.names.fresh("c")
    body = scope.child(var)
    body.add(Acc(acc, term(body, Ix(var, frozenset({var})))))
    scope.add(Loop(var, n, body.stmts))
    return acc


# --- loop rules of the structural ops ---------------------------------------------------


def _sum(lw, scope, args, params, dim):
    (a,) = args
    return [sum_over(scope, a.dim, lambda sc, t: component(a, sc, t), 0)]


def _scalprod(lw, scope, args, params, dim):
    f, g = args
    n = max(x.dim if isinstance(x, Vec) else len(x) for x in args)

    def term(sc, t):
        return Fmt("{0} * {1}", (component(f, sc, t), component(g, sc, t)))

    return [sum_over(scope, n, term, 0)]


def _select(strict_op: str, want_index: bool):
    """Inner Min/Max/ArgMin/ArgMax of a vector: a running comparison (the first wins)."""

    def rule(lw, scope, args, params, dim):
        (a,) = args
        best = scope.accumulator(component(a, scope, Ix("0")), "m")
        index = scope.accumulator(Lit(0), "m") if want_index else None
        var = scope.names.fresh("c")
        body = scope.child(var)
        v = component(a, body, Ix(var, frozenset({var})))
        better = body.emit(Fmt(f"{{0}} {strict_op} {{1}}", (v, best)))
        if index is not None:
            pos = Fmt("({T}){0}", (Ix(var, frozenset({var})),))
            body.add(Set(index, Fmt("({0} ? {1} : {2})", (better, pos, index))))
        body.add(Set(best, Fmt("({0} ? {1} : {2})", (better, v, best))))
        scope.add(Loop(var, a.dim, body.stmts))
        return [index if want_index else best]

    return rule


def _vector_or_list(lw, scope, vec: Vec, dim: int):
    """A rule's vector result: kept as a vector above the threshold, else its components."""
    if dim > lw.unroll_max:
        return vec
    return [vec.at(scope, Ix(str(c))) for c in range(dim)]


def _elem(lw, scope, args, params, dim):
    return [component(args[0], scope, Ix(str(params[0])))]


def _extract(lw, scope, args, params, dim):
    return _vector_or_list(lw, scope, ShiftVec(args[0], params[0], params[1]), dim)


def _extractt(lw, scope, args, params, dim):
    return _vector_or_list(lw, scope, PadVec(args[0], params[0], params[1]), dim)


def _elemt(lw, scope, args, params, dim):
    n, m = params
    return _vector_or_list(lw, scope, PadVec(args[0], m, n), dim)


def _concat(lw, scope, args, params, dim):
    return _vector_or_list(lw, scope, PadVec(args[0], 0, dim, args[1]), dim)


def _onehot(lw, scope, args, params, dim):
    index = scope.emit(
        Call("trunc", (Fmt("{0} + {1}", (component(args[0], scope, Ix("0")), Lit(0.5))),))
    )
    return _vector_or_list(lw, scope, OneHotVec(index, dim), dim)


def _sumt(lw, scope, args, params, dim):
    return _vector_or_list(lw, scope, ConstVec(component(args[0], scope, Ix("0")), dim), dim)


def _contract(lw, scope, a, b, dim, n_terms, index):
    vec = ContractVec(a, b, dim, n_terms, index, lw.unroll_max)
    return _vector_or_list(lw, scope, vec, dim)


def _matvec(lw, scope, args, params, dim):
    mat, vec = args
    p = vec.dim if isinstance(vec, Vec) else len(vec)
    return _contract(
        lw, scope, mat, vec, dim, p, lambda i, k: (i.times(p).combine("{0} + {1}", k), k)
    )


def _vecmat(lw, scope, args, params, dim):
    vec, mat = args
    q = vec.dim if isinstance(vec, Vec) else len(vec)
    p = dim
    return _contract(
        lw, scope, mat, vec, dim, q, lambda i, k: (k.times(p).combine("{0} + {1}", i), k)
    )


def _tensorprod(lw, scope, args, params, dim):
    f, g = args
    q = g.dim if isinstance(g, Vec) else len(g)
    return _contract(
        lw, scope, f, g, dim, 1, lambda i, t: (i.combine(f"{{0}} / {q}"), i.combine(f"{{0}} % {q}"))
    )


def _strides(shape) -> list[int]:
    out, s = [], 1
    for n in reversed(shape):
        out.append(s)
        s *= n
    return out[::-1]


def _tensordot(lw, scope, args, params, dim):
    layout = tensordot_layout(params)
    dimsfa, dimsfb, contfa, out_shape = layout[0], layout[1], layout[2], layout[7]
    cont_shape = [dimsfa[a] for a in contfa]
    n_terms = 1
    for s in cont_shape:
        n_terms *= s
    sa, sb = _strides(dimsfa), _strides(dimsfb)
    so, sc = _strides(out_shape), _strides(cont_shape)

    def digits(ix: Ix, strides, shape) -> list[Ix]:
        k = ix.const
        if k is not None:
            return [Ix(str(k // st % n)) for st, n in zip(strides, shape)]
        return [ix.combine(f"({{0}} / {st} % {n})") for st, n in zip(strides, shape)]

    def ravel(parts: list[tuple[Ix, int]]) -> Ix:
        consts = sum(p.const * s for p, s in parts if p.const is not None)
        out = Ix(str(consts))
        for p, s in parts:
            if p.const is None:
                out = out.combine("{0} + {1}", p.times(s)) if out.text != "0" else p.times(s)
        return out

    def index(ix: Ix, t: Ix) -> tuple[Ix, Ix]:
        o, c = digits(ix, so, out_shape), digits(t, sc, cont_shape)
        pa, pb = tensordot_axes(layout, o, c)
        return ravel(list(zip(pa, sa))), ravel(list(zip(pb, sb)))

    return _contract(lw, scope, args[0], args[1], dim, n_terms, index)


LoopRule = Callable[[Any, Scope, list, tuple, int], "list[Expr] | Vec"]

LOOP_RULES: dict[str, LoopRule] = {
    "Sum": _sum,
    "Scalprod": _scalprod,
    "Min": _select("<", False),
    "Max": _select(">", False),
    "ArgMin": _select("<", True),
    "ArgMax": _select(">", True),
    "Elem": _elem,
    "Extract": _extract,
    "ExtractT": _extractt,
    "ElemT": _elemt,
    "Concat": _concat,
    "OneHot": _onehot,
    "SumT": _sumt,
    "MatVecMult": _matvec,
    "VecMatMult": _vecmat,
    "TensorProd": _tensorprod,
    "TensorDot": _tensordot,
}
"""Structural ops that take or give vectors above the threshold without unrolling them."""
