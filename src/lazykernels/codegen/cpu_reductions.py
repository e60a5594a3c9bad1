"""Which C++ fragments print a reduction card on the CPU, and the two generic ones.

:func:`cpp_reduction` picks, for a card's program, the vectorised fragments of its family
(:mod:`.reductions_cpp`, :mod:`.reductions_lse_cpp`: fused ``omp simd`` reductions, tile
buffers, K-min filters around the pieces of the card's program), or :class:`ProgramRed`,
which prints the card's own neutral statements (:mod:`lazykernels.reductions.program`)
through the CPU dialect, pair by pair: a card with a new kind of program runs on the CPU
without any code here. :class:`PerComponent` runs the dim-1 fragments once per component of
a formula of looped dimension.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormulaError
from ..reductions import SPECS
from ..reductions.kmin import KMinProgram
from ..reductions.logsumexp import ShiftExpProgram
from ..reductions.minmax import ExtremumProgram
from ..reductions.sums import SumProgram
from .buffer import IndentedBuffer
from .emit import Emitter
from .kir import Names, Sym
from .reductions_cpp import (
    Access,
    ArgMinMaxRed,
    CppReduction,
    Field,
    KMinRed,
    MinMaxRed,
    Output,
    SumRed,
    TileCtx,
    masked_store,
)
from .reductions_lse_cpp import ShiftExpRed


class ProgramRed(CppReduction):
    """Any card's program as scalar code (the cards without vectorised fragments here, or
    every card on a target with ``vectorised_reductions=False``): the tile's formula and
    weight values go to buffers in the vectorised loop, then the card's update statements
    fold them in pair by pair, printed by the CPU dialect (:mod:`.emit`); the state, merge
    and finalize are the card's (:class:`.CppReduction`)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        # the helpers the statements call (the skeleton prints them before the kernel)
        e = Emitter(self.dialect, True, Names())
        st = self.access(lambda name, idx: name)
        self.program.update(e, self.sh, st, [Sym("f")] * self.d, [Sym("g")] * self.dg, Sym("j"))
        self.program.merge(e, self.sh, st, st)
        self.program.finalize(e, self.sh, st, lambda o, idx: Sym("o"))
        self.helpers = frozenset(e.helpers)

    def n_buffers(self) -> int:
        return self.d + self.dg

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        atoms = tc.f + tc.g
        tc.eval_loop(
            b,
            "",
            lambda mask: [masked_store(mask, f"tb{c}[j - j0] = {a};") for c, a in enumerate(atoms)],
        )
        e, st = self.emitter(tc._same), self.access(tc.st)
        self.program.tile_begin(e, self.sh, st)
        b.lines(e.lines())
        with b.block("for (int64_t t = 0; t < j1 - j0; ++t)"):
            b.line("const int64_t j = j0 + t;")
            f = [Sym(f"tb{c}[t]") for c in range(self.d)]
            g = [Sym(f"tb{self.d + c}[t]") for c in range(self.dg)]
            self.program.update(e, self.sh, st, f, g, Sym("j"))
            b.lines(e.lines())
        self.program.tile_end(e, self.sh, st)
        b.lines(e.lines())


class PerComponent(CppReduction):
    """A reduction of a formula of looped dimension ``d``: the scalar fragments of ``inner``
    (its dim-1 version) run once per component ``cc``, in C loops.

    Every family keeps its state component-major (component ``c`` of a field of per-component
    length ``n`` is ``[c * n, (c + 1) * n)``) and writes output ``r * d + c`` for entry ``r``
    of component ``c``, so a component's state and outputs are slices of the whole.
    """

    def __init__(self, inner: CppReduction, d: int) -> None:
        super().__init__(inner.name, d, inner.dg, inner.k, inner.scheme)
        self.inner = inner
        self.helpers = inner.helpers
        self.fused = inner.fused
        self._per = {f.name: f.length for f in inner.fields()}

    def fields(self) -> list[Field]:
        return [Field(f.name, f.ctype, f.length * self.d, f.init) for f in self.inner.fields()]

    def outputs(self) -> list[Output]:
        return [Output(o.width * self.d, o.ctype) for o in self.inner.outputs()]

    def n_buffers(self) -> int:
        return self.inner.n_buffers()

    def n_acc_buffers(self) -> int:
        return self.inner.n_acc_buffers()

    def _shift(self, acc: Access) -> Access:
        return lambda name, idx: acc(name, f"cc * {self._per[name]} + {idx}")

    def _loop(self, b: IndentedBuffer):
        return b.block(f"for (int64_t cc = 0; cc < {self.d}; ++cc)")

    def tile(self, b: IndentedBuffer, tc: TileCtx) -> None:
        """``tc.f`` is component ``cc`` of the formula, ``tc.eval_loop`` its pass."""
        with self._loop(b):
            inner = tc.with_state(self._shift(tc.st))
            self.inner.tile(b, inner)

    def merge(self, b: IndentedBuffer, dst: Access, src: Access) -> None:
        with self._loop(b):
            self.inner.merge(b, self._shift(dst), self._shift(src))

    def finalize(self, b: IndentedBuffer, st: Access, out: list[Access]) -> None:
        d = self.d

        def column(o: Access) -> Access:
            return lambda name, idx: o(name, f"({idx}) * {d} + cc")

        with self._loop(b):
            self.inner.finalize(b, self._shift(st), [column(o) for o in out])


def _family(program, vectorised: bool) -> type[CppReduction]:
    """The vectorised CPU fragments of a card's program (by the program's family), or the
    card's statements printed as they are."""
    if not vectorised:
        return ProgramRed
    if isinstance(program, SumProgram):
        return SumRed
    if isinstance(program, ExtremumProgram):
        return ArgMinMaxRed if program.index else MinMaxRed
    if isinstance(program, KMinProgram):
        return KMinRed
    if isinstance(program, ShiftExpProgram):
        return ShiftExpRed
    return ProgramRed


def cpp_reduction(
    name: str,
    d: int,
    dg: int = 0,
    k: int | None = None,
    scheme: str = "block_sum",
    dtype: np.dtype | str = "float64",
    vectorised: bool = True,
) -> CppReduction:
    """The fragments of reduction ``name`` for a formula of dim ``d`` (weight dim ``dg``),
    data of type ``dtype``; ``vectorised=False``: the card's statements as they are.

    Raises:
        FormulaError: unknown reduction, missing K, or a non-scalar log-sum-exp formula.
    """
    card = SPECS.get(name)
    if card is None:
        raise FormulaError(f"unknown reduction {name!r}")
    if card.needs_k and (k is None or k < 1):
        raise FormulaError(f"{name} needs K >= 1, got {k!r}")
    if not card.sum_type:
        scheme = "direct_sum"  # sum schemes only concern sum-type reductions
    return _family(card.program, vectorised)(name, d, dg, k or 0, scheme, dtype)
