"""The CPU target: the tiling and scheduling constants of the CPU skeleton, in one object.

:func:`lazykernels.codegen.cpp.render_cpu` prints a kernel for a :class:`CpuTarget`
(default :data:`CPU`); the skeleton (:mod:`.cpp`) and the blocked squared-distance path
(:mod:`.sqdist_cpp`) read their constants from it, never from module globals, so a
variant (e.g. for a benchmark of the unrolling threshold) is ``replace(CPU, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lower import UNROLL_MAX


@dataclass(frozen=True)
class CpuTarget:
    """Constants of the CPU kernels (see :mod:`.cpp` for how each is used).

    Attributes:
        block_rows: output rows per block (``BI``).
        tile_fused: reduction indices per tile of the fused simd reductions (``TJ``).
        tile_buffer_bytes: budget of the tile buffers of the buffered reductions.
        pad: zeros after each precomputed array (whole-vector reads past the end).
        pre_chunk: reduction indices per precompute work item.
        item_pairs: fewest pairs per work item before blocks are grouped.
        items_per_thread: work items wanted per thread (load balance on busy machines).
        min_split: fewest reduction indices per part when the range is split.
        pre_limit: precomputed scalars per batch chunk.
        pairs_per_thread: automatic thread count: at least this many pairs per thread.
        short_red: sums over at most this many indices put the block's rows in the lanes.
        sum_lane_terms: float32 sums on the tiled path: terms per SIMD lane of the
            first-level partials (chunks of ``sum_lane_terms`` vectors), added lane by lane
            into the tile's lane totals; 0: one partial per lane for the whole tile.
        unroll_max: vectors of larger dimension are looped over, not unrolled. Measured
            by ``benchmarks/bench_large_dims.py --cases threshold`` (Gaussian matvec with a
            D-dim weight, float64, M = N = 3000, busy 2-core machine): unrolled vs looped
            per call 44 vs 116 ms at D = 16, 87 vs 364 ms at 32, 265 vs 1250 ms at 64;
            compile 1.6 / 3.2 / 5.2 s unrolled (50 / 86 / 159 kB) vs 0.4-0.9 s looped
            (17 kB). Unrolling stays faster per call, so the threshold is set by compile
            time and source size: 32 keeps compiles near 3 s and sources under 100 kB.
        gemm_min_dim: smallest dimension of the blocked squared-distance path.
        gemm_rows, gemm_cols, gemm_depth: its block rows, tile columns and components per
            pass (the panel of ``u`` stays in L1).
        vectorised_reductions: print each card through its family's vectorised fragments
            (:mod:`.reductions_cpp`); False prints every card's own statements
            (:class:`.cpu_reductions.ProgramRed`) and skips the blocked path (tests).
        dot_cols: fewest tile columns of the dot-product path (:mod:`.dotprod_cpp`; its rows
            and depth are ``gemm_rows`` and ``gemm_depth``); the reduction's own tile length
            when larger (Sum: ``tile_fused``). A/B runs of 256 against 2048 on the busy 2-core
            VM (load 8) were within the noise.
    """

    block_rows: int = 8
    tile_fused: int = 2048
    tile_buffer_bytes: int = 16384
    pad: int = 64
    pre_chunk: int = 8192
    item_pairs: int = 1 << 16
    items_per_thread: int = 16
    min_split: int = 2048
    pre_limit: int = 1 << 24
    pairs_per_thread: int = 1 << 18
    short_red: int = 256
    sum_lane_terms: int = 32
    unroll_max: int = UNROLL_MAX
    gemm_min_dim: int = 16
    gemm_rows: int = 96
    gemm_cols: int = 128
    gemm_depth: int = 64
    vectorised_reductions: bool = True
    dot_cols: int = 256


CPU = CpuTarget()
"""The default CPU target."""
