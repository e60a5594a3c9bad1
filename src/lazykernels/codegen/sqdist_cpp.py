"""The blocked squared-distance path: ``|u - v|^2`` of dimension D >= 16 as a GEMM.

Which plans: a min-type reduction (``Min``, ``ArgMin``, ``Min_ArgMin``, ``KMin``,
``ArgKMin``, ``KMin_ArgKMin``) whose formula *is* ``SqDist(u, v)`` (``Sum(Square(u - v))``
after sugar expansion; any ``Sum(Square(Add(u, w)))``) with ``u`` depending on the output
index only, ``w`` on the reduction index only, and ``D = dim(u) >=`` the target's
``gemm_min_dim`` (16). Below that dimension the per-pair loop is as fast (3 subtractions
and 3 FMAs per pair at D = 3).

How: ``|u + w|^2 = |u|^2 + |w|^2 + 2 u.w``. The norms are computed once (``|w|^2`` with the
precomputed ``w``, ``|u|^2`` per row), and the dot products of a block of ``ROWS`` rows with
a tile of ``COLS`` reduction indices by the register-tiled micro-kernel of
:mod:`.dotprod_cpp` (shared with the dot-product path): 6 rows x 2 vectors of
accumulators (12 registers on AVX2, with the ``w`` data dimension-major, so each step is 2
vector loads, 6 broadcasts and 12 FMAs), written with GCC vector extensions (32-byte
vectors, 64 bytes under AVX-512); beyond ``gemm_depth`` components the dot products
run in chunks of that many (partial sums kept in the tile buffer), so that the panel of ``u`` stays
in L1. Measured on one AVX2 core (2.45 GHz, 78 GFlop/s peak): 57 GFlop/s at D = 50, 64 at
D = 128, 49 at D = 784 for ArgKMin (K = 10), the micro-kernel itself near peak; 2.7-3.1x
the per-pair path at D = 50, and 1.75x faster than FAISS ``IndexFlatL2`` (M = N = 1e5,
D = 50, K = 10, 2 threads; recall 1.0 for both).

Exactness: the expanded form cancels. Its error is at most about ``(D + 2) eps (|u|^2 +
|w|^2)`` (eps the machine epsilon), large next to ``|u + w|^2`` for near points far from the
origin. So its values are never returned: the micro-kernel writes a *lower bound* of the
exact value, ``(1 - c)(|u|^2 + |w|^2) + 2 u.w`` with ``c = (2 D + 16) eps`` (the
expanded form's error plus the exact recomputation's, twice over), the reduction compares
it with its current threshold (the K-th best exact value, 16 values per vectorised test),
and each candidate that may win has its value recomputed exactly, in the exact path's
operation order, before it is inserted. The results are the exact path's (values and
indices, ties included, up to the last-bit differences of a different summation order);
only the speed depends on the data: points far from the origin relative to their distances
let more candidates through the filter. Assumption: ``|u|^2`` and ``|w|^2`` are finite (a
NaN bound always passes the filter, so NaN and infinite values keep their exact-path
meaning). ``render_cpu(..., sqdist_gemm=False)`` prints the per-pair path instead.

Gaussian and other kernels at high D are not routed here: their values would carry the
cancellation error (relative ``~ g (D + 2) eps (|u|^2 + |w|^2)`` in ``exp(-g d)``), with no
exact recomputation to hide it. They take the dot-product path of :mod:`.dotprod_cpp` when
the call-time bound of :mod:`lazykernels.cpu.gemm` allows (docs/gemm.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formula.ir import Cat, Node, topological_order
from ..reductions import SPECS
from ..reductions.plan import ReductionPlan
from .buffer import IndentedBuffer
from .dotprod_cpp import micro_kernel
from .emit import lvalue
from .lower import ScalarProgram
from .reductions_cpp import Access, ArgMinMaxRed, CppReduction, KMinRed, MinMaxRed, kmin_filter
from .target_cpu import CpuTarget


@dataclass(frozen=True)
class SqDistMatch:
    """``formula = |outer + inner|^2``: ``outer`` reads the output index, ``inner`` the
    reduction index (both may read parameters)."""

    outer: Node
    inner: Node
    dim: int


def _reads(node: Node) -> set[Cat]:
    cats = set()
    for n in topological_order(node):
        if n.op.name == "Var":
            cats.add(n.params[2])
    return cats


def match_sqdist(plan: ReductionPlan, min_dim: int) -> SqDistMatch | None:
    """The squared distance the plan's formula is, if the blocked path applies (see the
    module docstring; ``min_dim``: the target's smallest dimension for it), else None."""
    f = plan.formula
    if SPECS[plan.reduction].selects != "min" or plan.weight is not None or f.dim != 1:
        return None
    if f.op.name != "Sum" or f.args[0].op.name != "Square":
        return None
    add = f.args[0].args[0]
    if add.op.name != "Add" or add.dim < min_dim:
        return None
    a, c = add.args
    if a.dim != add.dim or c.dim != add.dim:
        return None
    out_cat, red_cat = plan.output_cat, plan.output_cat.opposite()
    ra, rc = _reads(a) - {Cat.PARAM}, _reads(c) - {Cat.PARAM}
    if ra == {out_cat} and rc == {red_cat}:
        return SqDistMatch(a, c, add.dim)
    if ra == {red_cat} and rc == {out_cat}:
        return SqDistMatch(c, a, add.dim)
    return None


def _var_slot(node: Node) -> int | None:
    return node.params[0] if node.op.name == "Var" else None


def _plain_vars(match: SqDistMatch) -> tuple[int | None, bool, int | None]:
    """(slot of u, whether w is negated, slot of w) when u and w are plain variables."""
    inner = match.inner
    negate = inner.op.name == "Minus"
    return _var_slot(match.outer), negate, _var_slot(inner.args[0] if negate else inner)


def usable(prog: ScalarProgram, match: SqDistMatch) -> bool:
    """Whether the blocked path can print this lowering of ``[outer, inner]``: u and w are
    plain variables (the panel and precompute are loops over the components), or their
    lowering gave one row array and one precomputed array per component (a literal
    component crosses as is and has none)."""
    u, _, w = _plain_vars(match)
    if u is not None and w is not None:
        return True
    dim = match.dim
    return not prog.vec_roots and len(prog.outer_store) == dim and len(prog.precomputed) == dim


class SqDistGemm:
    """Prints the pieces of the blocked path into the skeleton of :mod:`.cpp`.

    The precomputed arrays are the D components of ``inner`` (``ys*``, consecutive in the
    precompute buffer, the first at ``yv``) then ``(1 - c)|inner|^2`` (``yn``). Per block:
    ``xu`` (u, dimension-major), ``xp`` (2u), ``xn`` ((1 - c)|u|^2); per tile: ``tbs`` (the
    lower bounds, one row of ``COLS`` per output row).
    """

    helpers = frozenset({"lk_vec"})

    def __init__(
        self,
        match: SqDistMatch,
        prog: ScalarProgram,
        red: CppReduction,
        dtype: np.dtype,
        target: CpuTarget,
    ) -> None:
        self.d, self.prog, self.red = match.dim, prog, red
        self.rows, self.cols, self.depth = target.gemm_rows, target.gemm_cols, target.gemm_depth
        # u and w plain variables (w possibly negated, as in x - y): the panel and the
        # precompute are printed as loops over the components instead of D statements each
        # (a D = 784 kernel stays a few hundred lines, compiled at -O3)
        self.outer_var, self.negate, self.inner_var = _plain_vars(match)
        self.compact = self.outer_var is not None and self.inner_var is not None
        eps = float(np.finfo(dtype).eps)
        self.shrink = repr(1.0 - (2 * self.d + 16) * eps) + ("f" if dtype == np.float32 else "")

    def buffers(self, b: IndentedBuffer) -> None:
        d = self.d
        b.line(f"lk_buf<T> gm_v(BI * {2 * d + 1} + BI * TJ);")
        b.line("T* __restrict xu = gm_v.data();")
        b.line(f"T* __restrict xp = xu + BI * {d};")
        b.line(f"T* __restrict xn = xp + BI * {d};")
        b.line("T* __restrict tbs = xn + BI;")

    def precompute_compact(self, b: IndentedBuffer) -> None:
        """``w`` of the indices ``[jc0, jc1)`` of batch entry ``b`` and its norms, as loops."""
        d, sign = self.d, "-" if self.negate else ""
        with b.block("for (int64_t j = jc0; j < jc1; ++j)"):
            b.line("T s = 0;")
            with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
                b.line(f"const T v = {sign}a{self.inner_var}[j * {d} + c];")
                b.line("yv[c * n_rs + j] = v;")
                b.line("s += v * v;")
            b.line(f"yn[j] = {self.shrink} * s;")

    def norm_store(self, b: IndentedBuffer) -> None:
        """In the precompute loop (index j): ``yn[j] = (1 - c) |inner_j|^2``."""
        terms = " + ".join(f"{v.source} * {v.source}" for v in self.prog.precomputed)
        b.line(f"yn[j] = {self.shrink} * ({terms});")

    def panel(self, b: IndentedBuffer) -> None:
        """u, 2u and (1 - c)|u|^2 of the block's rows (rows past ``bi`` repeat the first)."""
        d, prog = self.d, self.prog
        with b.block("for (int64_t k = 0; k < BI; ++k)"):
            b.line("const int64_t i = i0 + (k < bi ? k : 0);")
            if self.compact:
                with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
                    b.line(f"xu[c * BI + k] = a{self.outer_var}[i * {d} + c];")
            else:
                b.lines(prog.outer)
                for c, (_, value) in enumerate(prog.outer_store):
                    b.line(f"xu[{c} * BI + k] = {value};")
        with b.block("for (int64_t k = 0; k < BI; ++k)"):
            b.line("xn[k] = 0;")
        with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
            b.pragma("omp simd")
            with b.block("for (int64_t k = 0; k < BI; ++k)"):
                b.line("const T u = xu[c * BI + k];")
                b.line("xp[c * BI + k] = u + u;")
                b.line("xn[k] += u * u;")
        with b.block("for (int64_t k = 0; k < BI; ++k)"):
            b.line(f"xn[k] *= {self.shrink};")

    def tile(self, b: IndentedBuffer, st: Access) -> None:
        """The lower bounds of the tile ``[j0, j1)`` for every row, then each row's fold."""
        micro_kernel(b, self.d, self.depth, "xp", "yv", "tbs", "yn", "xn")
        with b.block("for (int64_t k = 0; k < bi; ++k)"):
            b.line("const T* __restrict tr = tbs + k * TJ;")
            self._fold(b, st)

    def _exact(self) -> list[str]:
        """The exact value ``ex`` of candidate ``t``, in the exact path's order: components
        ``u + w``, squared, summed; then the card's key of it (NaN as the worst value)."""
        red = self.red
        return [
            "T ex = 0;",
            f"for (int64_t c = 0; c < {self.d}; ++c) {{",
            "  const T e = xu[c * BI + k] + yv[c * n_rs + j0 + t];",
            "  ex += e * e;",
            "}",
            f"ex = {red.text(red.program.key(red.emitter(), lvalue('ex')))};",
        ]

    def _fold(self, b: IndentedBuffer, st: Access) -> None:
        red = self.red
        if isinstance(red, KMinRed):
            b.line(f"T* kv = &{st('kval', '0')};")
            b.line(f"int64_t* ki = &{st('kind', '0')};")
            kmin_filter(b, red, "tr", "ex", self._exact())
            return
        p = red.program
        assert isinstance(red, ArgMinMaxRed | MinMaxRed) and p.order == "min"
        e, acc, ex = red.emitter(), red.access(st), lvalue("ex")
        if isinstance(red, ArgMinMaxRed):
            better = p.beats(e, acc, 0, ex)
            p.take(e, acc, 0, ex, lvalue("j0 + t"))
        else:
            better = p.better(e, ex, acc("val", 0))
            e.set(acc("val", 0), ex)
        val = st("val", "0")
        b.line(f"T thr = {val};")
        with b.block("for (int64_t t0 = 0; t0 < nc; t0 += 16)"):
            b.line("int hit = 0;")
            b.pragma("omp simd reduction(|:hit)")
            with b.block("for (int u = 0; u < 16; ++u)"):
                b.line("hit |= tr[t0 + u] > thr ? 0 : 1;")
            b.line("if (!hit) continue;")
            with b.block("for (int64_t t = t0; t < lk_min(nc, t0 + 16); ++t)"):
                b.line("if (tr[t] > thr) continue;")
                b.lines(self._exact())
                with b.block(f"if ({red.text(better)})"):
                    b.lines(e.lines())
                    b.line(f"thr = {val};")
