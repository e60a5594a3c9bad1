"""KMin, ArgKMin, KMin_ArgKMin: the K smallest values per component, sorted ascending.

Outputs are (n, K, D), squeezed to (n, K) when D == 1. Ties keep the lower index first;
NaN values count as +inf. Slots left unfilled (fewer than K candidates, possible only with
ranges) hold ``+inf`` and index ``-1``.
"""

from __future__ import annotations

import numpy as np

from .accumulators import NO_INDEX, Accumulator, min_keys, raw_index, rows_of
from .program import INF, Field, Program, Shape
from .spec import Derivative, OutputSpec, ReductionSpec


class KMinAccumulator(Accumulator):
    """Sorted lists of the K smallest (value, index) pairs per row and component."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = np.full((self.n, self.k, self.dim), np.inf, dtype=self.dtype)
        self.index = np.full((self.n, self.k, self.dim), NO_INDEX, dtype=np.int64)

    def update(
        self, rows: slice, values: np.ndarray, weights: np.ndarray | None, start: int
    ) -> None:
        keys = min_keys(values, largest=False)
        r, c, d = keys.shape
        indices = np.broadcast_to(
            np.arange(start, start + c, dtype=np.int64)[None, :, None], (r, c, d)
        )
        self._keep_smallest(rows, keys, indices)

    def merge(self, other: Accumulator, rows: slice | None = None) -> None:
        self._keep_smallest(rows_of(rows, self.n), other.key, other.index)

    def load_raw(self, raw: tuple[np.ndarray, ...], start: int) -> None:
        values, index = raw  # the raw reduction is KMin_ArgKMin with the same K
        shape = (self.n, self.k, self.dim)
        self.key[...] = values.reshape(shape)
        self.index[...] = raw_index(index.reshape(shape), start)

    def _keep_smallest(self, rows: slice, keys: np.ndarray, indices: np.ndarray) -> None:
        """The K smallest of (running list + candidates), ordered by (value, index)."""
        all_keys = np.concatenate([self.key[rows], keys], axis=1)
        all_indices = np.concatenate([self.index[rows], indices], axis=1)
        order = np.lexsort((all_indices, all_keys), axis=1)[:, : self.k]
        self.key[rows] = np.take_along_axis(all_keys, order, axis=1)
        self.index[rows] = np.take_along_axis(all_indices, order, axis=1)

    def finalize(self) -> tuple[np.ndarray, ...]:
        index = np.where(self.index == NO_INDEX, -1, self.index)
        out = (self.key,) if self.spec.has_values else ()
        return out + ((index,) if self.spec.has_index else ())


class KMinProgram(Program):
    """Sorted lists ``(kval, kind)`` of the K smallest pairs per component, component-major
    (entry ``r`` of component ``c`` at ``c * K + r``); an empty slot has index -1.

    A candidate ``(v, i)`` beats an entry when the entry is empty or ``(v, i)`` is smaller
    (value, then index); :meth:`insert` moves it into place. The
    CPU's vectorised tiles print the pieces: the :meth:`key` of each value, the test
    :meth:`excluded` of a whole group of keys against the last entry, then :meth:`insert`.
    """

    def __init__(self, values: bool, index: bool) -> None:
        self.values, self.index = values, index

    def fields(self, sh: Shape) -> list[Field]:
        n = sh.k * sh.d
        return [Field("kval", "value", n, INF), Field("kind", "index", n, -1)]

    def key(self, e, v):
        """The key of a value: ``v``, or ``+inf`` where it is NaN (after every finite value)."""
        return e.fmt("({0} != {0} ? {1} : {0})", v, e.lit(INF))

    @staticmethod
    def excluded(e, v, last):
        """A key ``v`` that cannot enter a list whose last value is ``last`` (an empty
        slot holds ``+inf``: nothing is excluded from a list with room)."""
        return e.fmt("({0} > {1})", v, last)

    @staticmethod
    def beats(e, v, i, kv, ki, later: bool = False):
        """``(v, i)`` goes before the entry ``(kv, ki)``. ``later``: ``i`` is known to be
        above every index held (a scan in ascending order), so a tie never beats."""
        if later:
            return e.fmt("({0} < {1} || {2} < 0)", v, kv, ki)
        return e.fmt("({0} < {2} || {3} < 0 || ({0} == {2} && {1} < {3}))", v, i, kv, ki)

    def insert(
        self, e, sh, st, c: int, v, i, shift: bool = False, last_value=None, later: bool = False
    ) -> None:
        """Insert the candidate ``(v, i)`` (``i >= 0``) into component ``c``'s list, if it
        beats the last entry (``last_value``: where a target keeps that entry's value;
        ``later``: ``i`` is above every index held, see :meth:`beats`).

        Two forms of the same insertion: by default one pass of K steps swaps it into
        place (a fixed trip count: a state held in registers, e.g. a GPU thread's);
        ``shift``: the entries it beats move one place down from the end until it finds
        its place (a loop that stops early: a state in memory, the CPU's)."""
        base, last = c * sh.k, c * sh.k + sh.k - 1
        kv_last = st("kval", last) if last_value is None else last_value

        def beats(kv, ki):
            return self.beats(e, v, i, kv, ki, later)

        with e.if_(beats(kv_last, st("kind", last))):
            if shift:
                r = e.counter(sh.k - 1)
                up = e.index(r, 1, base - 1)
                with e.while_(e.fmt("({0} > 0 && {1})", r, beats(st("kval", up), st("kind", up)))):
                    at = e.index(r, 1, base)
                    e.set(st("kval", at), st("kval", up))
                    e.set(st("kind", at), st("kind", up))
                    e.set(r, e.fmt("({0} - 1)", r))
                at = e.index(r, 1, base)
                e.set(st("kval", at), v)
                e.set(st("kind", at), i)
                return
            cv, ci = e.var("value", v), e.var("index", i)
            with e.loop(sh.k) as r:
                kv, ki = st("kval", e.index(r, 1, base)), st("kind", e.index(r, 1, base))
                with e.if_(self.beats(e, cv, ci, kv, ki)):
                    tv, ti = e.let("value", kv), e.let("index", ki)
                    e.set(kv, cv)
                    e.set(ki, ci)
                    e.set(cv, tv)
                    e.set(ci, ti)

    def update(self, e, sh, st, f, g, j) -> None:
        for c, v in enumerate(f):
            self.insert(e, sh, st, c, e.let("value", self.key(e, v)), j)

    def merge(self, e, sh, dst, src) -> None:
        for c in range(sh.d):
            with e.loop(sh.k) as r:
                si = src("kind", e.index(r, 1, c * sh.k))
                with e.if_(e.fmt("({0} >= 0)", si)):
                    sv = e.let("value", src("kval", e.index(r, 1, c * sh.k)))
                    self.insert(e, sh, dst, c, sv, e.let("index", si))

    def finalize(self, e, sh, st, out) -> None:
        d, k = sh.d, sh.k
        with e.loop(k) as r:
            for c in range(d):
                src, dst = e.index(r, 1, c * k), e.index(r, d, c)
                o = 0
                if self.values:
                    e.set(out(0, dst), st("kval", src))
                    o = 1
                if self.index:
                    e.set(out(o, dst), st("kind", src))


def _tail(d: int, dg: int, k: int) -> tuple[int, ...]:
    return (k,) if d == 1 else (k, d)


_VALUES = OutputSpec(_tail, neutral=np.inf)
_INDEX = OutputSpec(_tail, index=True, neutral=-1)


def _spec(name: str, values: bool, index: bool, doc: str) -> ReductionSpec:
    return ReductionSpec(
        name,
        outputs=((_VALUES,) if values else ()) + ((_INDEX,) if index else ()),
        accumulator=KMinAccumulator,
        program=KMinProgram(values, index),
        needs_k=True,
        raw="KMin_ArgKMin",
        derivative=Derivative.SELECTION if values else Derivative.INDEX,
        with_index="KMin_ArgKMin" if values else None,
        selects="min",
        doc=doc,
    )


CARDS = (
    _spec("KMin", True, False, "the K smallest values, (n, K[, D])"),
    _spec("ArgKMin", False, True, "indices of the K smallest values, (n, K[, D]) int64"),
    _spec("KMin_ArgKMin", True, True, "(K smallest values, their indices)"),
)
