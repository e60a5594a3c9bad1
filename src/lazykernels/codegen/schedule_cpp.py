"""The CPU kernel's schedule: its constants, thread count, row blocks and work items.

Printed by the skeleton (:mod:`.cpp`) at the top of ``lk_kernel``; the numbers come from
the target (:mod:`.target_cpu`), the per-row state fields from the reduction's fragments.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .buffer import IndentedBuffer
from .cpu_reductions import PerComponent
from .lower import ScalarProgram
from .reductions_cpp import CppReduction, Field, LaneSums, SumRed
from .target_cpu import CpuTarget

SHORT_CHUNK = 16  # indices per first-level partial of the short sums (a power of 2)


def prologue(b: IndentedBuffer, t: CpuTarget, bi: int, tj: int, n_pre: int) -> None:
    """The kernel's constants and its thread count (``n_threads``, or automatic)."""
    b.lines(
        [
            f"const int64_t BI = {bi}, TJ = {tj}, NPRE = {n_pre}, "
            f"VW = LK_VBYTES / (int64_t)sizeof(T), PAD = {t.pad};",
            "if (n_out <= 0 || n_batch <= 0) return 0;",
            "int nt = (int)n_threads;",
            "if (nt <= 0) {",
            "  #ifdef _OPENMP",
            "  nt = omp_get_max_threads();",
            "  #else",
            "  nt = (int)sysconf(_SC_NPROCESSORS_ONLN);",
            "  #endif",
            "  const double pairs = (double)n_batch * (double)n_out * (double)n_red;",
            f"  nt = (int)lk_max(1.0, lk_min((double)nt, pairs / {t.pairs_per_thread}.0));",
            "}",
            "if (pool == nullptr) nt = 1;",
        ]
    )


def allocations(b: IndentedBuffer, t: CpuTarget, fields: list[Field]) -> None:
    """The row blocks (with ranges), batch chunks, work items and split-state buffers."""
    b.line("// blocks of output rows: (first row, end row, range or -1)")
    b.line("int64_t n_blk = n_ranges < 0 ? (n_out + BI - 1) / BI : 0;")
    with b.block("for (int64_t r = 0; r < n_ranges; ++r)"):
        clipped_range(b)
        b.line("if (lo0 < hi0) n_blk += (hi0 - lo0 + BI - 1) / BI;")
    b.line("lk_buf<int64_t> blk(3 * n_blk, false);")
    b.line("const int64_t r_end = n_ranges < 0 ? 0 : n_ranges;  // r = -1: no ranges")
    with b.block("for (int64_t ib = 0, r = n_ranges < 0 ? -1 : 0; r < r_end; ++r)"):
        b.line("int64_t lo0 = 0, hi0 = n_out;")
        with b.block("if (r >= 0)"):
            clipped_range(b, declare=False)
        with b.block("for (int64_t lo = lo0; lo < hi0; lo += BI, ++ib)"):
            b.line("blk[3 * ib] = lo;")
            b.line("blk[3 * ib + 1] = lk_min(hi0, lo + BI);")
            b.line("blk[3 * ib + 2] = r;")
    b.line("const int64_t n_rs = lk_max<int64_t>(n_red, 0) + PAD;  // precomputed stride")
    b.line("// batch entries per chunk: bounded memory for the precomputed inner values")
    b.line("int64_t bc = n_batch;")
    b.line(
        f"if (NPRE > 0) bc = lk_max<int64_t>(1, lk_min<int64_t>(n_batch, "
        f"{t.pre_limit} / (NPRE * n_rs)));"
    )
    b.line("// work items: G consecutive blocks x one of q parts of the reduction range")
    b.line(f"const int64_t want = {t.items_per_thread} * (int64_t)nt;")
    b.line(f"int64_t G = lk_max<int64_t>(1, {t.item_pairs} / lk_max<int64_t>(1, BI * n_red));")
    b.line("if (nt > 1) G = lk_min(G, lk_max<int64_t>(1, bc * n_blk / want));")
    b.line("const int64_t n_grp = (n_blk + G - 1) / G;")
    b.line("int64_t q = 1;")
    with b.block(f"if (nt > 1 && bc * n_grp < want && n_red >= {2 * t.min_split})"):
        b.line("q = (want + bc * n_grp - 1) / (bc * n_grp);")
        b.line(f"q = lk_max<int64_t>(1, lk_min<int64_t>(q, n_red / {t.min_split}));")
    b.line("lk_buf<T> pre(NPRE > 0 ? bc * NPRE * n_rs : 0, false);  // uninitialised")
    b.line("const int64_t n_part = q > 1 ? bc * n_blk * q * BI : 0;")
    for f in fields:
        b.line(f"lk_buf<{f.ctype}> part_{f.name}(n_part * {f.length});")


def clipped_range(b: IndentedBuffer, declare: bool = True) -> None:
    """``[lo0, hi0)``: the output range ``r`` clipped to ``[0, n_out)``."""
    q = "const int64_t " if declare else ""
    b.line(f"{q}lo0 = lk_max<int64_t>(0, ranges_out[2 * r]);")
    b.line(f"{q}hi0 = lk_min(n_out, ranges_out[2 * r + 1]);")


def tile_len(
    red: CppReduction, dtype: np.dtype, acc_dtype: np.dtype, target: CpuTarget, extra: int = 0
) -> int:
    """Reduction indices per tile: the tile buffers (``extra`` more of type T) fit the
    target's budget."""
    n_t = red.n_buffers() + extra
    row_bytes = n_t * dtype.itemsize + red.n_acc_buffers() * acc_dtype.itemsize
    if row_bytes == 0:
        return target.tile_fused
    tj = target.tile_buffer_bytes // row_bytes
    tj = 1 << (max(tj, 1).bit_length() - 1)
    return max(64, min(target.tile_fused, tj))


def lane_terms(red: CppReduction, dtype: np.dtype, acc_dtype: np.dtype, t: CpuTarget) -> int:
    """``t.sum_lane_terms`` for the float32 block sums of the tiled path (:func:`lane_sums`),
    else 0: float64 sums, direct and Kahan sums keep their one partial per lane."""
    inner = red.inner if isinstance(red, PerComponent) else red
    block = isinstance(inner, SumRed) and inner.scheme == "block_sum"
    return t.sum_lane_terms if block and dtype == acc_dtype == np.float32 else 0


def short_sum(
    b: IndentedBuffer, prog: ScalarProgram, bi: int, same: bool, acc: Callable[[int], str]
) -> None:
    """A short interval ``[ja, jb)`` of a sum (tall problems: M x 100): the ``omp simd``
    loop runs over the block's ``BI`` rows (one vector of lanes, rows past ``bi`` are
    duplicates and discarded) for each index, so there is no per-row horizontal sum,
    loop set-up or masked last vector; the interval's partial sums are then added to the
    row accumulators ``acc(c)`` (component ``c``).

    Two-level block sum: the terms go to partials ``pc`` that are added to ``pv`` and
    reset every ``SHORT_CHUNK`` indices (one sequential float32 sum of 100 terms was
    1.1-2.6x dense torch's error, tests/test_accuracy.py). The flush is a branch in the
    one loop over ``j``: a nested chunk loop re-broadcast the formula's constants per
    chunk (5-11% slower at M x 100)."""
    f = prog.roots[0]
    n, last = len(f), SHORT_CHUNK - 1
    b.line("A " + ", ".join(f"pv{c}[{bi}] = {{}}, pc{c}[{bi}] = {{}}" for c in range(n)) + ";")
    with b.block("for (int64_t j = ja; j < jb; ++j)"):
        for v in prog.inner_values:
            b.line(f"const T {v.load} = {v.pointer}[j];")
        b.pragma("omp simd")
        with b.block("for (int64_t k = 0; k < BI; ++k)"):
            for local, array in prog.row_loads:
                b.line(f"const T {local} = {array}[k];")
            b.lines(prog.mixed)
            for c, atom in enumerate(f):
                b.line(f"pc{c}[k] += {atom if same else f'(A){atom}'};")
        with b.block(f"if (((j - ja) & {last}) == {last} || j == jb - 1)"):
            b.pragma("omp simd")
            with b.block("for (int64_t k = 0; k < BI; ++k)"):
                for c in range(n):
                    b.line(f"pv{c}[k] += pc{c}[k];")
                    b.line(f"pc{c}[k] = 0;")
    with b.block("for (int64_t k = 0; k < bi; ++k)"):
        for c in range(n):
            b.line(f"{acc(c)} += pv{c}[k];")
    b.line("continue;")


def whole_vectors(
    b: IndentedBuffer,
    pragma: str,
    stmts: Callable[[str | None], list[str]],
    lanes: LaneSums | None,
    body: Callable[[IndentedBuffer, list[str]], None],
) -> None:
    """The whole vectors ``[j0, jm)`` of a tile: one ``omp simd`` loop of ``stmts(None)``,
    or a float32 sum's :func:`lane_sums`; ``body(b, stmts)`` prints the formula at ``j``."""
    if lanes is not None:
        lane_sums(b, lanes, "j0", "jm", body)
        return
    b.pragma(pragma)
    with b.block("for (int64_t j = j0; j < jm; ++j)"):
        body(b, stmts(None))


def lane_sums(
    b: IndentedBuffer,
    lanes: LaneSums,
    lo: str,
    hi: str,
    body: Callable[[IndentedBuffer, list[str]], None],
) -> None:
    """The whole vectors ``[lo, hi)`` of a float32 tile sum, summed per lane in two
    levels: each chunk of ``lanes.terms`` vectors into fresh per-lane partials ``pq``
    (one register per component: the ``omp simd`` loop covers one vector), which are then
    added into the tile's lane totals ``pv`` (vectors ``lk_v``, T = A = float; read by
    ``LK_LANES``, constant indices, so ``pq`` stays a register); the lanes' totals go to
    ``lanes.totals`` at the end. ``body(b, stmts)`` prints the formula at index ``j``.

    One lane summing a whole tile (256 terms) sequentially made float32 sums over N = 3000
    1.3-3.3x less accurate than dense torch (tests/test_accuracy.py). A simd reduction per
    chunk (a horizontal sum and the loop's set-up per chunk) was about 10% slower than the
    one per tile, ``pq`` read by ``lk_vload`` or a vectorised loop 10-17% (GCC then kept it
    in memory); this form keeps the speed (benchmarks/README.md, "float32 accuracy")."""
    n = len(lanes.totals)
    length = f"{lanes.terms} * VW"
    b.line("lk_v " + ", ".join(f"pv{c} = {{}}" for c in range(n)) + ";")
    with b.block(f"for (int64_t jc = {lo}; jc < {hi}; jc += {length})"):
        b.line(f"const int64_t je = lk_min({hi}, jc + {length});")
        b.line("A " + ", ".join(f"pq{c}[VW] = {{}}" for c in range(n)) + ";")
        with b.block("for (int64_t jv = jc; jv < je; jv += VW)"):
            b.pragma("omp simd")
            with b.block("for (int64_t u = 0; u < VW; ++u)"):
                b.line("const int64_t j = jv + u;")
                body(b, [f"pq{c}[u] += {v};" for c, v in enumerate(lanes.values)])
        b.lines([f"pv{c} += LK_LANES(pq{c});" for c in range(n)])
    with b.block("for (int64_t u = 0; u < VW; ++u)"):
        b.lines([f"{t} += pv{c}[u];" for c, t in enumerate(lanes.totals)])
