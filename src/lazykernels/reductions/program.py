"""Accumulator programs: a reduction's state and its init / update / merge / finalize, neutral.

A reduction card (:class:`~.spec.ReductionSpec`) carries a :class:`Program`. For a formula
of dimension ``d`` (weight dimension ``dg``, K, sum scheme: a :class:`Shape`) it gives

* :meth:`Program.fields`: the state of one output row, each :class:`Field` initialised to
  its empty-reduction value;
* :meth:`Program.update`: the statements that fold one pair (formula values ``f``, weight
  values ``g``, reduction index ``j``) into the state;
* :meth:`Program.tile_begin` / :meth:`Program.tile_end`: statements around a tile of
  reduction indices (block sums flush their tile partials into the total);
* :meth:`Program.merge`: fold the state of a *later* part of the reduction range into an
  earlier one (split reduction ranges, the 2D schemes);
* :meth:`Program.finalize`: the user-level outputs of the row.

The statements are built through an *emitter* ``e`` that the target's code generator passes
in (:class:`lazykernels.codegen.emit.Emitter`), in the neutral spelling of the kernel IR:
infix templates with the C family's operators (``e.fmt("({0} < {1})", a, b)``), neutral
maths functions (``e.call("exp", x)``), numbers as values (``e.lit(inf)``), and statements
``e.set`` / ``e.add`` / ``e.let`` / ``e.var``, ``with e.if_(cond)`` / ``with e.else_()``,
``with e.loop(n) as r``, and ``r = e.counter(start)`` with ``with e.while_(cond)``;
:func:`select` is the branch-free ``cond ? a : b`` (lanes of a SIMD loop update that way,
under a *guard*: a target's lane mask). State entries are
lvalues ``st(field, index)``, outputs ``out(o, index)``; an index is an int or an index
expression of the emitter (``e.index(r, times, plus)``). A dialect prints the result (the
C++ library's ``exp`` or ``lk_exp`` on the CPU, ``expf`` in CUDA...), so one program serves
every target.

Beside these five, a family's program names the pieces its statements are made of (the
order of an extremum, a K-list insertion, the shifted exponential of the log-sum-exp
family...): a target whose execution model reorganises the update (the CPU's vectorised
tiles: a SIMD reduction over lanes, then a scan) prints those pieces, so that the maths of
a reduction is written once, here, for every target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Access = Callable[[str, Any], Any]  # (field name, index) -> lvalue expression
OutAccess = Callable[[int, Any], Any]  # (output number, index) -> lvalue expression
INF = float("inf")


@dataclass(frozen=True)
class Shape:
    """What a program's statements depend on: formula dim ``d``, weight dim ``dg``, K, the
    sum scheme (``"direct_sum"``, ``"block_sum"`` or ``"kahan_scheme"``)."""

    d: int
    dg: int = 0
    k: int = 0
    scheme: str = "direct_sum"


@dataclass(frozen=True)
class Field:
    """One array of a row's state.

    Attributes:
        name: identifier part (``acc``, ``val``...).
        kind: ``"value"`` (the data type T), ``"acc"`` (the accumulator type A) or
            ``"index"`` (int64).
        length: number of entries.
        init: the value of every entry before any pair is folded in.
    """

    name: str
    kind: str
    length: int
    init: float


class Program:
    """The neutral statements of one reduction family (see the module docstring)."""

    def fields(self, sh: Shape) -> list[Field]:
        raise NotImplementedError

    def update(self, e: Any, sh: Shape, st: Access, f: list, g: list, j: Any) -> None:
        raise NotImplementedError

    def tile_begin(self, e: Any, sh: Shape, st: Access) -> None:
        """Statements before a tile of reduction indices (none by default)."""

    def tile_end(self, e: Any, sh: Shape, st: Access) -> None:
        """Statements after a tile of reduction indices (none by default)."""

    def merge(self, e: Any, sh: Shape, dst: Access, src: Access) -> None:
        raise NotImplementedError

    def finalize(self, e: Any, sh: Shape, st: Access, out: OutAccess) -> None:
        raise NotImplementedError


def kahan_add(e: Any, acc: Any, comp: Any, x: Any) -> None:
    """Compensated ``acc += x`` (Kahan): ``comp`` keeps the rounding error of ``acc``."""
    y = e.let("acc", e.fmt("({0} - {1})", x, comp))
    t = e.let("acc", e.fmt("({0} + {1})", acc, y))
    e.set(comp, e.fmt("(({0} - {1}) - {2})", t, acc, y))
    e.set(acc, t)


def select(e: Any, cond: Any, a: Any, b: Any, guard: Any = None) -> Any:
    """The branch-free ``cond ? a : b``; a ``guard`` (an expression: a target's lane
    mask) must hold too: ``(guard) && cond ? a : b``."""
    if guard is None:
        return e.fmt("({0} ? {1} : {2})", cond, a, b)
    return e.fmt("(({0}) && {1} ? {2} : {3})", guard, cond, a, b)
