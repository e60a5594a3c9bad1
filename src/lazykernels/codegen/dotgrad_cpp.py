"""Gradients on the dot-product path: ``Sum_j S_ij (su u_i + sw w_j)`` as two tile products.

Which plans: a ``Sum`` (not Kahan) whose formula is a product of scalar factors ``S_ij`` and
one vector factor ``su u_i + sw w_j`` (``su = -sw``: ``x_i - y_j`` up to sign), where ``u``
and ``w`` are the variables of a squared-distance atom of ``S`` and ``S`` itself takes the
dot-product path (:func:`.dotprod_cpp.match_dotprod`). This is the form of the gradients of
``Exp(-g SqDist(x, y)) * b`` (and of the other radial kernels) with respect to ``x`` and
``y`` that :mod:`lazykernels.reductions.derivatives` generates.

How: ``Sum_j S_ij (su u_i + sw w_j) = su u_i (Sum_j S_ij) + sw Sum_j S_ij w_j``. Per block and
tile, the atoms' tiles come from :class:`.dotprod_cpp.DotGemm`; each row's ``S`` values are
evaluated on the tile (the lowering's usual pair loop) into ``St`` (tile-major: ``St[t * BI +
k]``) and summed into ``rs``; then a second register-tiled product adds ``Sum_t w[c][t]
St[t][k]`` into ``G[c * BI + k]`` (6 components x 2 vectors of rows per step). At the end of
the block's reduction range, ``su u_i rs_i + sw G_i`` is added to the row's sum. Like the
forward path, nothing larger than a tile (and one D x BI block of ``G``) is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..formula.ir import Node, const, make
from ..reductions.plan import ReductionPlan
from .buffer import IndentedBuffer
from .dotprod_cpp import DotMatch, _signed_var, match_dotprod
from .reductions_cpp import masked_store

ROWS = 6  # components per step of the second product
# Terms per first-level partial of the block's sums (Sum_j S_ij and the product): one
# running float32 sum per output over all N (3.0-3.6x dense torch's error for the gradient
# at D = 16, N = 3000-20000) becomes chunk partials added to the running sums.
CHUNK = 64


@dataclass(frozen=True)
class GradMatch:
    """``formula = S * (su u + sw w)``; ``scalar``: the dot-product match of ``S``;
    ``atom``: the index of the squared-distance atom of ``S`` reading ``u`` and ``w``."""

    scalar: DotMatch
    formula: Node  # S
    atom: int
    u: int
    w: int
    dim: int
    su: int
    sw: int


def _factors(node: Node) -> tuple[list[Node], int]:
    """The factors of a product tree (through ``Mult`` and ``Minus``) and its sign."""
    factors, sign, stack = [], 1, [node]
    while stack:
        n = stack.pop()
        if n.op.name == "Mult":
            stack.extend(n.args)
        elif n.op.name == "Minus":
            sign = -sign
            stack.append(n.args[0])
        else:
            factors.append(n)
    return factors, sign


def match_dotgrad(plan: ReductionPlan, min_dim: int) -> GradMatch | None:
    """The decomposition of the module docstring, or None."""
    f = plan.formula
    if plan.reduction != "Sum" or plan.weight is not None or plan.sum_scheme == "kahan_scheme":
        return None
    if f.dim < min_dim:
        return None
    factors, sign = _factors(f)
    vectors = [n for n in factors if n.dim > 1]
    if len(vectors) != 1 or vectors[0].op.name != "Add" or vectors[0].dim != f.dim:
        return None
    found = [_signed_var(a) for a in vectors[0].args]
    if any(x is None or x[0].dim != f.dim for x in found):
        return None
    out_cat = plan.output_cat
    by_cat = {v.params[2]: (v.params[0], s) for v, s in found}
    if set(by_cat) != {out_cat, out_cat.opposite()}:
        return None
    (u, su), (w, sw) = by_cat[out_cat], by_cat[out_cat.opposite()]
    if su != -sw:
        return None  # not a difference: centring would change it
    scalar = const(sign)
    for n in factors:
        if n.dim == 1:
            scalar = make("Mult", (scalar, n))
    match = match_dotprod(replace(plan, formula=scalar), min_dim)
    if match is None:
        return None
    for k, a in enumerate(match.atoms):
        if a.kind == "sqdist" and (a.u, a.w) == (u, w):
            return GradMatch(match, scalar, k, u, w, f.dim, su, sw)
    return None


class DotGrad:
    """Prints the gradient's pieces into the skeleton of :mod:`.cpp` (with the atoms'
    :class:`.dotprod_cpp.DotGemm`)."""

    def __init__(self, match: GradMatch) -> None:
        self.m = match
        self.dpad = (match.dim + ROWS - 1) // ROWS * ROWS

    def buffers(self, b: IndentedBuffer) -> None:
        b.line(f"lk_buf<T> gg_v(BI * TJ + BI * {self.dpad} + BI);")
        b.line("T* __restrict gs = gg_v.data();")
        b.line("T* __restrict gG = gs + BI * TJ;")
        b.line(f"T* __restrict grs = gG + BI * {self.dpad};")

    def block_start(self, b: IndentedBuffer) -> None:
        b.line(f"for (int64_t c = 0; c < BI * {self.dpad} + BI; ++c) gG[c] = 0;")

    def row(self, b: IndentedBuffer, eval_loop, value: str) -> None:
        """Row ``k``: ``S`` over the tile into ``gs`` (tile-major), summed into ``grs``."""
        eval_loop(b, "", lambda mask: [masked_store(mask, f"gs[(j - j0) * BI + k] = {value};")])
        b.line("T r = 0;")
        with b.block(f"for (int64_t t0 = 0; t0 < j1 - j0; t0 += {CHUNK})"):
            b.line("T c = 0;")
            b.line(f"const int64_t t1 = lk_min<int64_t>(j1 - j0, t0 + {CHUNK});")
            b.line("for (int64_t t = t0; t < t1; ++t) c += gs[t * BI + k];")
            b.line("r += c;")
        b.line("grs[k] += r;")

    def product(self, b: IndentedBuffer) -> None:
        """``gG[c * BI + k] += sum_t w[c][j0 + t] gs[t * BI + k]`` for the block."""
        d, m = self.m.dim, self.m
        acc = [(f"g{r}0", f"g{r}1") for r in range(ROWS)]
        b.line("const int64_t ncols = (bi + 2 * LK_L - 1) / (2 * LK_L) * (2 * LK_L);")
        with b.block(f"for (int64_t c0 = 0; c0 < {d}; c0 += {ROWS})"):
            for r in range(ROWS):
                row = f"lk_min<int64_t>(c0 + {r}, {d - 1})"
                b.line(f"const T* __restrict w{r} = dv{m.atom} + {row} * n_rs + j0;")
            with (
                b.block("for (int64_t k0 = 0; k0 < ncols; k0 += 2 * LK_L)"),
                b.block(f"for (int64_t t0 = 0; t0 < j1 - j0; t0 += {CHUNK})"),
            ):
                b.line("T* __restrict o = gG + c0 * BI + k0;")
                b.line("lk_v " + ", ".join(f"{p} = {{}}, {q} = {{}}" for p, q in acc) + ";")
                b.line(f"const int64_t t1 = lk_min<int64_t>(j1 - j0, t0 + {CHUNK});")
                with b.block("for (int64_t t = t0; t < t1; ++t)"):
                    b.line("const lk_v s0 = lk_vload(gs + t * BI + k0);")
                    b.line("const lk_v s1 = lk_vload(gs + t * BI + k0 + LK_L);")
                    for r, (p, q) in enumerate(acc):
                        b.line(f"{p} += w{r}[t] * s0;")
                        b.line(f"{q} += w{r}[t] * s1;")
                for r, (p, q) in enumerate(acc):
                    b.line(f"lk_vstore(o + {r} * BI, lk_vload(o + {r} * BI) + {p});")
                    b.line(f"lk_vstore(o + {r} * BI + LK_L, lk_vload(o + {r} * BI + LK_L) + {q});")

    def block_end(self, b: IndentedBuffer, st) -> None:
        """The block's sums: ``su u_i rs_i + sw G_i`` added to each row's state."""
        d, m = self.m.dim, self.m
        with b.block("for (int64_t k = 0; k < bi; ++k)"):
            b.line("const int64_t i = i0 + k;")
            with b.block(f"for (int64_t c = 0; c < {d}; ++c)"):
                value = f"(T){m.su} * a{m.u}[i * {d} + c] * grs[k] + (T){m.sw} * gG[c * BI + k]"
                b.line(f"{st('acc', 'c')} += {value};")
