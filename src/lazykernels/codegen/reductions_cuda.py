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

    def __init__(self, name: str, sh: Shape, dialect: Dialect, same_acc: bool) -> None:
        self.card = SPECS[name]
        self.program = self.card.program
        self.sh, self.dialect, self.same = sh, dialect, same_acc
        self.fields = self.program.fields(sh)
        self.names = Names()  # one kernel: every fragment's locals get distinct names

    def _emitter(self) -> Emitter:
        return Emitter(self.dialect, self.same, self.names)

    @staticmethod
    def st(name: str, index) -> object:
        return lvalue(f"lk_{name}[{index_text(index)}]")

    def outputs(self) -> list[tuple[int, str]]:
        """(width, C type) of each output."""
        tails = self.card.output_tails(self.sh.d, self.sh.dg, self.sh.k)
        return [
            (int(np.prod(tail)), "int64_t" if o.index else "T")
            for tail, o in zip(tails, self.card.outputs)
        ]

    def state(self) -> list[str]:
        lines = []
        for f in self.fields:
            ctype = CTYPES[f.kind]
            init = str(int(f.init)) if f.kind == "index" else self.dialect.literal(f.init)
            lines.append(f"{ctype} lk_{f.name}[{f.length}];")
            lines.append(f"for (int c = 0; c < {f.length}; ++c) lk_{f.name}[c] = {init};")
        return lines

    def tile_begin(self) -> list[str]:
        e = self._emitter()
        self.program.tile_begin(e, self.sh, self.st)
        return e.lines()

    def pair(self, atoms: list[str], weights: list[str]) -> list[str]:
        e = self._emitter()
        f, g = [lvalue(a) for a in atoms], [lvalue(w) for w in weights]
        self.program.update(e, self.sh, self.st, f, g, lvalue("j"))
        return e.lines()

    def tile_end(self) -> list[str]:
        e = self._emitter()
        self.program.tile_end(e, self.sh, self.st)
        return e.lines()

    def layout(self) -> list[tuple[str, str, int]]:
        """(field name, C type, length) of each array of the state, in order."""
        return [(f.name, CTYPES[f.kind], f.length) for f in self.fields]

    def merge(self, dst: Access, src: Access) -> list[str]:
        """The card's merge of the state ``src`` into ``dst`` (accessors: (field, index
        text) -> C lvalue, e.g. partial states in global memory)."""
        e = self._emitter()

        def wrap(acc: Access):
            return lambda name, index: lvalue(acc(name, index_text(index)))

        self.program.merge(e, self.sh, wrap(dst), wrap(src))
        return e.lines()

    def finalize(self, out: Out) -> list[str]:
        e = self._emitter()

        def output(o: int, index) -> object:
            return lvalue(out(o, index_text(index)))

        self.program.finalize(e, self.sh, self.st, output)
        return e.lines()


def thread_reduction(
    name: str, d: int, dg: int, k: int | None, scheme: str, dialect: Dialect, same_acc: bool
) -> ThreadReduction:
    """The per-thread fragments of reduction ``name`` over a formula of dimension ``d``.

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
    return ThreadReduction(name, Shape(d, dg, k or 0, scheme), dialect, same_acc)
