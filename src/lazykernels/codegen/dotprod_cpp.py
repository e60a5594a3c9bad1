"""The blocked dot-product path: formulas of high-dimensional inner products at GEMM speed.

Which plans: any reduction whose formula (and weight formula) reads its high-dimensional
variables only through *atoms* of dimension D >= the target's ``gemm_min_dim``, each an
inner product of an output-index variable ``u`` and a reduction-index variable ``w``:

* ``SqDist(u, w)`` (``Sum(Square(u - w))``, or ``u + w``): ``|u|^2 + |w|^2 - 2 u.w``;
* ``WeightedSqDist(s, u, w)`` with a parameter diagonal weight ``s`` (dim D or 1):
  ``Sum(s u^2) + Sum(s w^2) - 2 Sum(s u w)``;
* ``(u|w)``, ``Sum(u * w)`` (either operand possibly negated): ``+-u.w``.

``u`` and ``w`` are plain variables (``Var``, possibly under ``Minus``). The rest of the
formula (exponentials, weights ``b_j``, low-dimensional variables...) is unrestricted:
:func:`match_dotprod` replaces each atom by a *pair variable* (``Var(n_slots + a, 1,
Cat.TEMP)``), which the lowering (:mod:`.lower`) reads as ``a{pos}[j]`` in the pair loop.

How: per block of ``ROWS`` output rows and tile of ``COLS`` reduction indices, the
register-tiled micro-kernel (:func:`micro_kernel`: 6 rows x 2 vectors of accumulators,
the ``w`` data dimension-major, the panel of ``u`` in L1, chunks of ``gemm_depth``
components) writes the tile of atom values ``rn_k + cn_t + sum_c P[c][k] Q[c][t]``
(``P``: the scaled panel of ``u``, ``Q``: ``w``; ``rn``/``cn``: the weighted squared norms
of squared distances, clamped at 0 afterwards). Then, row by row, the reduction's usual
tile fragment (:mod:`.reductions_cpp`: Sum, LogSumExp, SumSoftMaxWeight, Min/ArgMin,
KMin...) runs over the rest of the formula with ``a{pos}`` pointing at the row of the
tile. Nothing larger than a tile is ever stored.

Accuracy: the dot products are those of the per-pair path (another summation order), but a
squared distance expanded this way cancels. Which calls may take the path is decided at
call time by :mod:`lazykernels.core.gemm` (data centred, error bound); this module only
prints the kernel.
"""

from __future__ import annotations

from contextlib import nullcontext as _nothing
from dataclasses import dataclass

from ..formula.ir import Cat, Node, substitute, topological_order, var
from ..reductions.plan import ReductionPlan
from .buffer import IndentedBuffer
from .target_cpu import CpuTarget

MICRO_ROWS = 6  # rows of the register tile (x 2 vectors of columns)
DOT_KINDS = ("sqdist", "dot")


@dataclass(frozen=True)
class Atom:
    """One inner product of the formula.

    Attributes:
        kind: "sqdist" (``|u + sign w|^2``, weighted by ``weight``) or "dot"
            (``sign u.w``).
        u, w: input slots of the output-index and reduction-index variables.
        dim: their dimension D.
        sign: +1 or -1 (``u - w`` / ``-(u|w)``: -1).
        weight: slot of the parameter diagonal weight, or None; ``weight_dim``: its dim.
        node: the atom in the formula.
    """

    kind: str
    u: int
    w: int
    dim: int
    sign: int
    node: Node
    weight: int | None = None
    weight_dim: int = 0


@dataclass(frozen=True)
class DotMatch:
    """The atoms of a plan and its roots with each atom ``a`` replaced by the pair
    variable ``Var(first + a, 1, Cat.TEMP)``."""

    atoms: tuple[Atom, ...]
    roots: tuple[Node, ...]
    first: int

    def pair_slot(self, a: int) -> int:
        return self.first + a


def _signed_var(node: Node) -> tuple[Node, int] | None:
    """``(Var, sign)`` when ``node`` is a variable or its negation."""
    sign = 1
    while node.op.name == "Minus":
        node, sign = node.args[0], -sign
    return (node, sign) if node.op.name == "Var" else None


def _pair(a: Node, c: Node, out_cat: Cat, dim: int):
    """``(u, w, sign)``: ``a`` and ``c`` are +-``u`` (output index) and +-``w``."""
    sa, sc = _signed_var(a), _signed_var(c)
    if sa is None or sc is None or a.dim != dim or c.dim != dim:
        return None
    (va, ga), (vc, gc) = sa, sc
    cats = (va.params[2], vc.params[2])
    if cats == (out_cat, out_cat.opposite()):
        return va, vc, ga * gc
    if cats == (out_cat.opposite(), out_cat):
        return vc, va, ga * gc
    return None


def _atom(node: Node, out_cat: Cat, min_dim: int) -> Atom | None:
    """The atom ``node`` is, if any (see the module docstring)."""
    name = node.op.name
    if node.dim != 1 or name not in ("Sum", "Scalprod"):
        return None
    if name == "Scalprod":
        a, c = node.args
        found = _pair(a, c, out_cat, a.dim) if a.dim >= min_dim else None
        if found is None:
            return None
        u, w, sign = found
        return Atom("dot", u.params[0], w.params[0], u.dim, sign, node)
    body = node.args[0]
    if body.dim < min_dim:
        return None
    weight = None
    if body.op.name == "Mult":  # Sum(s * Square(u - w)) or Sum(u * w)
        a, c = body.args
        if a.op.name != "Square" and c.op.name == "Square":
            a, c = c, a
        if a.op.name == "Square" and c.op.name == "Var" and c.params[2] is Cat.PARAM:
            body, weight = a, c
        else:
            found = _pair(a, c, out_cat, body.dim)
            if found is None:
                return None
            u, w, sign = found
            return Atom("dot", u.params[0], w.params[0], u.dim, sign, node)
    if body.op.name != "Square" or body.args[0].op.name != "Add":
        return None
    add = body.args[0]
    found = _pair(add.args[0], add.args[1], out_cat, add.dim)
    if found is None:
        return None
    u, w, sign = found
    if weight is None:
        return Atom("sqdist", u.params[0], w.params[0], u.dim, sign, node)
    if weight.dim not in (1, u.dim):
        return None
    return Atom("sqdist", u.params[0], w.params[0], u.dim, sign, node, *weight.params[:2])


def match_dotprod(plan: ReductionPlan, min_dim: int) -> DotMatch | None:
    """The atoms of ``plan`` if its high-dimensional variables are read only through them
    (see the module docstring), else None.

    Every variable of an atom must have dimension >= ``min_dim`` and appear nowhere else
    than in atoms; variables of lower dimension may appear anywhere.
    """
    roots = [plan.formula] + ([plan.weight] if plan.weight is not None else [])
    out_cat = plan.output_cat
    atoms: dict[Node, Atom] = {}
    for root in roots:
        for node in topological_order(root):
            if node not in atoms:
                found = _atom(node, out_cat, min_dim)
                if found is not None:
                    atoms[node] = found
    if not atoms:
        return None
    first = len(plan.slots)
    mapping = {n: var(first + k, 1, Cat.TEMP) for k, n in enumerate(atoms)}
    new_roots = tuple(substitute(r, mapping) for r in roots)
    used = {a.u for a in atoms.values()} | {a.w for a in atoms.values()}
    for root in new_roots:
        for node in topological_order(root):
            var_node = node.op.name == "Var" and node.params[2] is not Cat.TEMP
            if var_node and node.params[0] in used:
                return None  # an atom's variable is also read outside the atoms
    return DotMatch(tuple(atoms.values()), new_roots, first)


def micro_kernel(
    b: IndentedBuffer,
    d: int,
    depth: int,
    panel: str,
    cols: str,
    out: str,
    col_init: str | None,
    row_add: str | None,
) -> None:
    """``out[k * TJ + t] = row_add[k] + col_init[j0 + t] + sum_c panel[c * BI + k] *
    cols[c * n_rs + j0 + t]`` for the block's rows (rounded up to ``MICRO_ROWS``) and the
    tile's columns (rounded up to two vectors; ``cols`` is padded): 6 x 2 vectors of
    accumulators, ``depth`` components per pass (later passes add to ``out``). The loop over
    pairs of column vectors is outside the loop over rows, so the ``depth`` rows of ``cols``
    it reads stay in L1 (packing them contiguously was measured slower)."""
    r = MICRO_ROWS
    acc = [(f"a{k}0", f"a{k}1") for k in range(r)]
    chunked = d > depth
    b.line(f"const int64_t nc = j1 - j0, bip = (bi + {r - 1}) / {r} * {r};")
    with b.block(f"for (int64_t d0 = 0; d0 < {d}; d0 += {depth})") if chunked else _nothing():
        if chunked:
            b.line(f"const int64_t d1 = lk_min<int64_t>({d}, d0 + {depth});")
        with b.block("for (int64_t c0 = 0; c0 < nc; c0 += 2 * LK_L)"):
            b.line(f"const T* __restrict yc = {cols} + j0 + c0;")
            if col_init is not None:
                b.line(f"const lk_v n0 = lk_vload({col_init} + j0 + c0);")
                b.line(f"const lk_v n1 = lk_vload({col_init} + j0 + c0 + LK_L);")
            else:
                b.line("const lk_v n0 = {}, n1 = {};")
            with b.block(f"for (int64_t r0 = 0; r0 < bip; r0 += {r})"):
                b.line(f"T* __restrict o = {out} + r0 * TJ + c0;")
                if chunked:  # later depth chunks add to the partial sums of the tile
                    inits = [
                        f"{p} = d0 == 0 ? n0 : lk_vload(o + {k} * TJ), "
                        f"{q} = d0 == 0 ? n1 : lk_vload(o + {k} * TJ + LK_L)"
                        for k, (p, q) in enumerate(acc)
                    ]
                else:
                    inits = [f"{p} = n0, {q} = n1" for p, q in acc]
                b.line("lk_v " + ", ".join(inits) + ";")
                loop = (
                    "for (int64_t c = d0; c < d1; ++c)"
                    if chunked
                    else f"for (int64_t c = 0; c < {d}; ++c)"
                )
                with b.block(loop):
                    b.line("const lk_v y0 = lk_vload(yc + c * n_rs);")
                    b.line("const lk_v y1 = lk_vload(yc + c * n_rs + LK_L);")
                    b.line(f"const T* __restrict xc = {panel} + c * BI + r0;")
                    for k, (p, q) in enumerate(acc):
                        b.line(f"{p} += xc[{k}] * y0;")
                        b.line(f"{q} += xc[{k}] * y1;")
                if chunked:
                    b.line(f"const bool last = d1 == {d};")
                for k, (p, q) in enumerate(acc):
                    if row_add is None:
                        add = ""
                    elif chunked:
                        add = f" + (last ? {row_add}[r0 + {k}] : (T)0)"
                    else:
                        add = f" + {row_add}[r0 + {k}]"
                    b.line(f"lk_vstore(o + {k} * TJ, {p}{add});")
                    b.line(f"lk_vstore(o + {k} * TJ + LK_L, {q}{add});")


class DotGemm:
    """Prints the pieces of the dot-product path into the skeleton of :mod:`.cpp`.

    Atom ``a``'s precomputed arrays (after the lowering's own): ``w`` (D arrays, the first
    at ``dv{a}``), then for squared distances its weighted squared norm (``dn{a}``). Per
    block: ``dp{a}`` (the scaled panel of ``u``, dimension-major) and ``dr{a}`` (the row
    norms); per tile: ``dt{a}`` (the atom values, one row of ``TJ`` per output row, after
    ``LEAD`` zeros: the masked last vector of a row may read before the row).
    """

    helpers = frozenset({"lk_vec"})
    LEAD = 64

    def __init__(self, match: DotMatch, target: CpuTarget, n_pre_prog: int) -> None:
        self.match, self.atoms = match, match.atoms
        self.rows, self.cols, self.depth = target.gemm_rows, target.dot_cols, target.gemm_depth
        self.offsets: list[int] = []
        m = n_pre_prog
        for a in self.atoms:
            self.offsets.append(m)
            m += a.dim + (1 if a.kind == "sqdist" else 0)
        self.n_pre = m - n_pre_prog

    def pair_slots(self) -> set[int]:
        return {self.match.pair_slot(k) for k in range(len(self.atoms))}

    def input_slots(self) -> set[int]:
        """The inputs the atoms read."""
        slots = {a.u for a in self.atoms} | {a.w for a in self.atoms}
        return slots | {a.weight for a in self.atoms if a.weight is not None}

    def pointers(self) -> list[tuple[str, int]]:
        """(name, index of its first precomputed array)."""
        named = []
        for k, (a, m) in enumerate(zip(self.atoms, self.offsets)):
            named.append((f"dv{k}", m))
            if a.kind == "sqdist":
                named.append((f"dn{k}", m + a.dim))
        return named

    def buffers(self, b: IndentedBuffer) -> None:
        for k, a in enumerate(self.atoms):
            size = f"BI * {a.dim + 1} + {self.LEAD} + BI * TJ"
            b.line(f"lk_buf<T> dg{k}_v({size});")
            b.line(f"T* __restrict dp{k} = dg{k}_v.data();")
            b.line(f"T* __restrict dr{k} = dp{k} + BI * {a.dim};")
            b.line(f"T* __restrict dt{k} = dr{k} + BI + {self.LEAD};")
            b.line(f"for (int64_t t = -{self.LEAD}; t < 0; ++t) dt{k}[t] = 0;")

    def _weight(self, a: Atom, c: str) -> str:
        if a.weight is None:
            return ""
        return f"a{a.weight}[{c if a.weight_dim > 1 else '0'}] * "

    def precompute(self, b: IndentedBuffer) -> None:
        """``w`` of the indices ``[jc0, jc1)`` of batch entry ``b``, and its norms."""
        for k, a in enumerate(self.atoms):
            d = a.dim
            with b.block("for (int64_t j = jc0; j < jc1; ++j)"):
                if a.kind == "sqdist":
                    b.line("T s = 0;")
                with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
                    b.line(f"const T v = a{a.w}[j * {d} + c];")
                    b.line(f"dv{k}[c * n_rs + j] = v;")
                    if a.kind == "sqdist":
                        b.line(f"s += {self._weight(a, 'c')}v * v;")
                if a.kind == "sqdist":
                    b.line(f"dn{k}[j] = s;")

    def panel(self, b: IndentedBuffer) -> None:
        """The scaled ``u`` of the block's rows (rows past ``bi`` repeat the first) and,
        for squared distances, their weighted squared norms."""
        for k, a in enumerate(self.atoms):
            d, scale = a.dim, (2 if a.kind == "sqdist" else 1) * a.sign
            with b.block("for (int64_t kk = 0; kk < BI; ++kk)"):
                b.line("const int64_t i = i0 + (kk < bi ? kk : 0);")
                b.line("T s = 0;")
                with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
                    b.line(f"const T u = a{a.u}[i * {d} + c];")
                    b.line(f"const T su = {self._weight(a, 'c')}u;")
                    b.line(f"dp{k}[c * BI + kk] = (T){scale} * su;")
                    b.line("s += su * u;")
                b.line(f"dr{k}[kk] = s;")

    def tile(self, b: IndentedBuffer) -> None:
        """The tiles of atom values of ``[j0, j1)`` for every row of the block."""
        for k, a in enumerate(self.atoms):
            sq = a.kind == "sqdist"
            with b.block():
                micro_kernel(
                    b,
                    a.dim,
                    self.depth,
                    f"dp{k}",
                    f"dv{k}",
                    f"dt{k}",
                    f"dn{k}" if sq else None,
                    f"dr{k}" if sq else None,
                )
            if sq:  # the expanded form may round below 0
                with b.block("for (int64_t kk = 0; kk < bi; ++kk)"):
                    b.line(f"T* __restrict tr = dt{k} + kk * TJ;")
                    b.pragma("omp simd")
                    with b.block("for (int64_t t = 0; t < j1 - j0; ++t)"):
                        b.line("tr[t] = tr[t] < (T)0 ? (T)0 : tr[t];")

    def row_pointers(self, b: IndentedBuffer) -> None:
        """In the row loop (row ``k``): the pair variables read ``a{pos}[j]``."""
        for k in range(len(self.atoms)):
            pos = self.match.pair_slot(k)
            b.line(f"const T* __restrict a{pos} = dt{k} + k * TJ - j0;")
