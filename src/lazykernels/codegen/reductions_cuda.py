"""Per-thread reduction fragments of the CUDA kernel (:mod:`.cuda`), printed from the cards.

In the 1D scheme a thread owns one output row and folds the values of its row one pair at
a time. Its fragments are the statements of the reduction card's program
(:mod:`lazykernels.reductions.program`) printed by the CUDA dialect, with the state in
per-thread arrays ``lk_<field>`` (registers once the compiler unrolls the constant indices):

* ``state``: the declarations, initialised to the empty-reduction values;
* ``tile_begin`` / ``pair`` / ``tile_end``: statements around and inside the loop over one
  shared-memory tile (``pair`` sees ``j``, the reduction index, and the formula's atoms);
* ``finalize``: the stores of the row's outputs, through ``out(o, c)`` -> lvalue;
* ``layout`` / ``merge``: the state's arrays and the card's merge of two states (a later
  part of the reduction range into an earlier one), for a scheme that splits the reduction
  range over blocks and merges the partial states (the 2D scheme).

A formula of looped dimension (above the unrolling threshold: ``components`` > 0) runs the
card's dim-1 program once per component ``cc``, in C loops (as the CPU's ``PerComponent``):
the state is component-major (component ``cc`` of a field of per-component length ``n`` is
``[cc * n, (cc + 1) * n)``) and entry ``r`` of component ``cc`` goes to output ``r * d + cc``.
``pair`` then takes the statements that compute component ``cc`` of the formula (``body``)
and prints them inside its loop.

Every reduction with a card prints here (the semantics are the NumPy reference's: NaN never
wins a Min/Max/K-min, ties keep the lowest index, all sum schemes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import DimensionError, FormulaError
from ..reductions import SPECS
from ..reductions.program import Shape
from .dialect import Dialect
from .emit import CTYPES, Emitter, index_text, lvalue
from .kir import Names

Out = Callable[[int, int], str]  # (output, component) -> C lvalue
Access = Callable[[str, str], str]  # (state field, index text) -> C lvalue


class ThreadReduction:
    """One reduction card's program, per thread (see the module docstring)."""

    def __init__(
        self, name: str, sh: Shape, dialect: Dialect, same_acc: bool, components: int = 0
    ) -> None:
        self.card = SPECS[name]
        self.program = self.card.program
        self.sh, self.dialect, self.same = sh, dialect, same_acc
        self.comp = components
        self.fields = self.program.fields(sh)
        self._per = {f.name: f.length for f in self.fields}
        self.names = Names()  # one kernel: every fragment's locals get distinct names

    def _emitter(self) -> Emitter:
        return Emitter(self.dialect, self.same, self.names)

    def _index(self, name: str, index) -> str:
        """The entry of field ``name`` (of component ``cc`` when looped)."""
        text = index_text(index)
        return f"cc * {self._per[name]} + {text}" if self.comp else text

    def st(self, name: str, index) -> object:
        return lvalue(f"lk_{name}[{self._index(name, index)}]")

    def _looped(self, lines: list[str], body: list[str] = ()) -> list[str]:
        """``lines`` (after ``body``) inside the loop over components, when looped."""
        if not self.comp:
            return [*body, *lines]
        inner = ["  " + line for line in [*body, *lines]]
        return [f"for (int64_t cc = 0; cc < {self.comp}; ++cc) {{", *inner, "}"]

    def outputs(self) -> list[tuple[int, str]]:
        """(width, C type) of each output."""
        tails = self.card.output_tails(self.sh.d, self.sh.dg, self.sh.k)
        return [
            (int(np.prod(tail)) * max(1, self.comp), "int64_t" if o.index else "T")
            for tail, o in zip(tails, self.card.outputs)
        ]

    def state(self) -> list[str]:
        lines = []
        for name, ctype, length in self.layout():
            kind = next(f for f in self.fields if f.name == name)
            init = str(int(kind.init)) if kind.kind == "index" else self.dialect.literal(kind.init)
            lines.append(f"{ctype} lk_{name}[{length}];")
            lines.append(f"for (int c = 0; c < {length}; ++c) lk_{name}[c] = {init};")
        return lines

    def tile_begin(self) -> list[str]:
        e = self._emitter()
        self.program.tile_begin(e, self.sh, self.st)
        lines = e.lines()
        return self._looped(lines) if lines else []

    def pair(self, atoms: list[str], weights: list[str], body: list[str] = ()) -> list[str]:
        """The fold of one pair; ``body``: the statements of component ``cc`` (looped)."""
        e = self._emitter()
        f, g = [lvalue(a) for a in atoms], [lvalue(w) for w in weights]
        self.program.update(e, self.sh, self.st, f, g, lvalue("j"))
        return self._looped(e.lines(), list(body))

    def tile_end(self) -> list[str]:
        e = self._emitter()
        self.program.tile_end(e, self.sh, self.st)
        lines = e.lines()
        return self._looped(lines) if lines else []

    def layout(self) -> list[tuple[str, str, int]]:
        """(field name, C type, length) of each array of the state, in order."""
        n = max(1, self.comp)
        return [(f.name, CTYPES[f.kind], f.length * n) for f in self.fields]

    def merge(self, dst: Access, src: Access) -> list[str]:
        """The card's merge of the state ``src`` into ``dst`` (accessors: (field, index
        text) -> C lvalue, e.g. partial states in global memory)."""
        e = self._emitter()

        def wrap(acc: Access):
            return lambda name, index: lvalue(acc(name, self._index(name, index)))

        self.program.merge(e, self.sh, wrap(dst), wrap(src))
        return self._looped(e.lines())

    def finalize(self, out: Out) -> list[str]:
        e = self._emitter()
        d = self.comp

        def output(o: int, index) -> object:
            text = index_text(index)
            return lvalue(out(o, f"({text}) * {d} + cc" if d else text))

        self.program.finalize(e, self.sh, self.st, output)
        return self._looped(e.lines())


def thread_reduction(
    name: str,
    d: int,
    dg: int,
    k: int | None,
    scheme: str,
    dialect: Dialect,
    same_acc: bool,
    looped: bool = False,
) -> ThreadReduction:
    """The per-thread fragments of reduction ``name`` over a formula of dimension ``d``
    (``looped``: a formula of looped dimension, one pass of the dim-1 program per component).

    Raises:
        FormulaError: unknown reduction, or a missing K.
        DimensionError: a vector formula for a reduction of scalar formulas.
    """
    card = SPECS.get(name)
    if card is None:
        raise FormulaError(f"unknown reduction {name!r}")
    if card.needs_k and (k is None or k < 1):
        raise FormulaError(f"{name} needs K >= 1, got {k!r}")
    if card.scalar_formula and d != 1:
        raise DimensionError(f"{name}: the formula must be scalar, got dimension {d}")
    scheme = scheme if card.sum_type else "direct_sum"
    if looped:
        return ThreadReduction(name, Shape(1, dg, k or 0, scheme), dialect, same_acc, d)
    return ThreadReduction(name, Shape(d, dg, k or 0, scheme), dialect, same_acc)
