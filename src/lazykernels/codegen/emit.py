"""The emitter a reduction card's program writes its statements through (kernel IR).

A card's :class:`~lazykernels.reductions.program.Program` builds its init / update / merge
/ finalize statements by calling an :class:`Emitter` (the API is described in
:mod:`lazykernels.reductions.program`): expressions and statements of the kernel IR
(:mod:`.kir`), which the target's dialect prints. The skeleton of each target decides where
the state lives (registers of a CUDA thread, the per-row arrays of the CPU kernel) by the
accessors it passes to the program.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .dialect import Dialect
from .kir import Assign, Call, Expr, Fmt, If, Ix, Let, Lit, Loop, Names, Stmt, Sym, While

CTYPES = {"value": "T", "acc": "A", "index": "int64_t"}
"""C type of each kind of state field."""


class Emitter:
    """Collects the statements a reduction program writes (see the module docstring).

    Args:
        dialect: prints the statements (:meth:`lines`).
        same_acc: the accumulator type is the data type (no casts).
        names: the naming context of the locals it declares (``lk_v0, lk_v1...``); pass
            the same one to every emitter whose statements share a scope.
    """

    def __init__(self, dialect: Dialect, same_acc: bool, names: Names | None = None) -> None:
        self.dialect = dialect
        self.same_acc = same_acc
        self.names = names or Names()
        self.helpers: set[str] = set()
        self._blocks: list[list[Stmt]] = [[]]

    # --- expressions -------------------------------------------------------------------

    def lit(self, value: float) -> Expr:
        return Lit(float(value))

    def fmt(self, template: str, *args: Any) -> Expr:
        return Fmt(template, tuple(args))

    def call(self, fn: str, *args: Any) -> Expr:
        self.helpers |= self.dialect.call_helpers(fn)
        return Call(fn, tuple(args))

    def acc(self, x: Expr) -> Expr:
        """``x`` in the accumulator type."""
        return x if self.same_acc else Fmt("(A)({0})", (x,))

    def val(self, x: Expr) -> Expr:
        """``x`` in the data type."""
        return x if self.same_acc else Fmt("(T)({0})", (x,))

    def index(self, r: Ix, times: int = 1, plus: int = 0) -> Ix:
        """The index expression ``r * times + plus``."""
        return r.times(times).plus(plus)

    # --- statements --------------------------------------------------------------------

    def _add(self, stmt: Stmt) -> None:
        self._blocks[-1].append(stmt)

    def set(self, target: Expr, x: Expr) -> None:
        self._add(Assign(target, x))

    def add(self, target: Expr, x: Expr) -> None:
        self._add(Assign(target, x, "+="))

    def let(self, kind: str, x: Expr) -> Sym:
        """A new constant local of ``kind`` (``"value"``, ``"acc"``, ``"index"``)."""
        sym = Sym(self.names.fresh("lk_v"))
        self._add(Let(sym, x, ctype=CTYPES[kind]))
        return sym

    def var(self, kind: str, x: Expr) -> Sym:
        """A new mutable local of ``kind``."""
        sym = Sym(self.names.fresh("lk_v"))
        self._add(Let(sym, x, mutable=True, ctype=CTYPES[kind]))
        return sym

    def counter(self, start: int) -> Ix:
        """A new mutable integer local starting at ``start``, usable as an index."""
        v = self.names.fresh("lk_v")
        self._add(Let(Sym(v), Ix(str(int(start))), mutable=True, ctype=CTYPES["index"]))
        return Ix(v)

    @contextmanager
    def _block(self) -> Iterator[list[Stmt]]:
        body: list[Stmt] = []
        self._blocks.append(body)
        try:
            yield body
        finally:
            self._blocks.pop()

    @contextmanager
    def if_(self, cond: Expr) -> Iterator[None]:
        with self._block() as body:
            yield
        self._add(If(cond, body))

    @contextmanager
    def else_(self) -> Iterator[None]:
        """The else branch of the ``if_`` just closed."""
        last = self._blocks[-1][-1]
        if not isinstance(last, If):
            raise TypeError("else_ must follow an if_")
        with self._block() as body:
            yield
        last.orelse = body

    @contextmanager
    def while_(self, cond: Expr) -> Iterator[None]:
        """``while (cond) { ... }``: a loop that stops as soon as ``cond`` fails."""
        with self._block() as body:
            yield
        self._add(While(cond, body))

    @contextmanager
    def loop(self, extent: int) -> Iterator[Ix]:
        v = self.names.fresh("lk_v")
        with self._block() as body:
            yield Ix(v, frozenset({v}))
        self._add(Loop(v, extent, body))

    # --- output ------------------------------------------------------------------------

    def take(self) -> list[Stmt]:
        """The statements written so far (and forget them)."""
        out, self._blocks[0] = self._blocks[0], []
        return out

    def lines(self) -> list[str]:
        """The statements written so far, printed by the dialect (and forgotten)."""
        return self.dialect.lines(self.take())


def lvalue(text: str) -> Sym:
    """A C lvalue the skeleton spelled (``st_acc[k * 3 + 1]``) as an IR expression."""
    return Sym(text)


def index_text(index: Any) -> str:
    """An entry index of a program (int or :class:`~.kir.Ix`) as source text."""
    return index.text if isinstance(index, Ix) else str(int(index))
