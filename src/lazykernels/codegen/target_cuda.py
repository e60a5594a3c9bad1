"""The CUDA target: the launch and staging constants of the GPU kernels, in one object.

:func:`lazykernels.codegen.cuda.render_cuda` and the runner (:mod:`lazykernels.cuda.runner`)
read their constants from a :class:`CudaTarget` (default :data:`CUDA`), never from module
globals, so a variant is ``replace(CUDA, ...)``.

None of these numbers was measured on a GPU (no GPU was available while they were set):
they are KeOps's orders of magnitude and the CUDA limits, to be tuned by
``benchmarks/bench_gpu.py`` on hardware.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CudaTarget:
    """Constants of the CUDA kernels.

    Attributes:
        block: threads per block (rows per block, reduction indices per tile).
        shared_budget: the most static shared memory a block may declare (48 KiB, the
            CUDA limit without opt-in).
        min_tile: the smallest tile the block is shrunk to when the staged values do not
            fit ``shared_budget`` at ``block`` indices per tile; when they do not fit at
            ``min_tile`` either, reduction-side vectors of looped dimension are not staged
            in shared memory but recomputed per pair from global memory (the explicit
            choice of :func:`lazykernels.codegen.cuda.render_cuda`).
        rows_2d: ``backend="GPU"`` takes the 2D scheme when there are at most this many
            output rows over all batch entries (a 1D grid of at most ``rows_2d / block``
            blocks: 64 at the defaults, under half the SMs of an H100)...
        cols_2d: ...and at least this many reduction indices (unmeasured: KeOps's rule
            of "few rows, many columns", see :func:`choose_scheme`).
        grid_2d: the 2D scheme splits the reduction range into column blocks of whole
            tiles until the grid has about this many blocks (unmeasured: a few waves of
            blocks on a 132-SM GPU).
    """

    block: int = 128
    shared_budget: int = 48 * 1024
    min_tile: int = 32
    rows_2d: int = 8192
    cols_2d: int = 8192
    grid_2d: int = 1024


CUDA = CudaTarget()
"""The default CUDA target."""


def choose_scheme(n_rows: int, n_red: int, target: CudaTarget = CUDA) -> str:
    """``"2D"`` when there are few output rows (``n_rows``, all batch entries) for many
    reduction indices (``n_red``), else ``"1D"``: the rule of ``backend="GPU"``.

    Unmeasured on hardware: the thresholds are :attr:`CudaTarget.rows_2d` and
    :attr:`CudaTarget.cols_2d`.

    Example:
        >>> choose_scheme(1000, 10**6), choose_scheme(10**6, 10**6), choose_scheme(100, 100)
        ('2D', '1D', '1D')
    """
    return "2D" if n_rows <= target.rows_2d and n_red >= target.cols_2d else "1D"


def column_chunk(n_blocks: int, n_red: int, block: int, target: CudaTarget = CUDA) -> int:
    """Reduction indices per column block of the 2D scheme (a multiple of ``block``) for a
    grid of ``n_blocks`` row blocks and a longest reduction of ``n_red`` indices: about
    :attr:`CudaTarget.grid_2d` blocks in all, at least one tile per column block.

    Example:
        >>> column_chunk(8, 10**6, 128)
        7936
    """
    splits = max(1, target.grid_2d // max(1, n_blocks))
    per = -(-max(1, n_red) // splits)
    return max(block, -(-per // block) * block)
