"""The NumPy reference backend: a tiled map-reduce that needs no compiler.

For each batch entry, the (output rows x reduction indices) plane is cut into blocks of at
most :data:`BLOCK_BUDGET` formula values (pairs x the widest node of the formula), so memory
stays linear in the number of points. Each block's values are computed with
:func:`lazykernels.formula.evaluate` and folded into the reduction family's accumulator
(:mod:`lazykernels.reductions.accumulators`). With ranges, only the blocks inside the
declared (row range x reduction range) rectangles are visited, inside every batch entry.

It is slow (Python loops over blocks) but simple, and it is the oracle every other backend
is tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ..formula.evaluate import evaluate
from ..formula.ir import Cat, Node, topological_order, var
from . import SPECS
from .partial import accumulator
from .plan import BoundCall, Ranges, ReductionPlan

BLOCK_BUDGET = 1 << 20
"""Most formula values (pairs x widest formula node) evaluated at once."""

_KAHAN_COLUMNS = 256  # Kahan sums loop over columns in Python: few columns, many rows


def run(call: BoundCall) -> None:
    """Fill ``call.outputs`` with the reduction of ``call.plan`` over ``call.arrays``."""
    plan = call.plan
    spec = SPECS[plan.reduction]
    n_out, n_red = call.n_out, call.n_red
    if n_out == 0:
        return
    scheme = plan.sum_scheme if spec.sum_type else "direct_sum"
    period = max(1, math.isqrt(n_red))
    rows_block, cols_block = _block_shape(plan, scheme, n_out, n_red, period)
    nodes = [var(s.position, s.dim, s.cat) for s in plan.slots]
    nbatch = len(call.batch_shape)
    inputs, outputs = call.host_arrays(), call.host_outputs()  # NumPy views of host memory
    for b in np.ndindex(*call.batch_shape):
        arrays = [a[_entry(a, b, nbatch)] for a in inputs]
        acc = accumulator(plan, n_out, call.dtype, period)
        for rows, c0, c1 in _blocks(n_out, n_red, call.ranges, rows_block, cols_block):
            env = _block_env(plan, nodes, arrays, rows, c0, c1)
            shape = (rows.stop - rows.start, c1 - c0)
            values = _evaluate_block(plan.formula, env, call.dtype, shape)
            weights = None
            if plan.weight is not None:
                weights = _evaluate_block(plan.weight, env, call.dtype, shape)
            acc.update(rows, values, weights, c0)
        for out, result in zip(outputs, acc.finalize()):
            out[b] = result.reshape(out[b].shape)


def _entry(array: np.ndarray, b: tuple[int, ...], nbatch: int) -> tuple[int, ...]:
    """Index of batch entry ``b`` in an array whose batch dims may be broadcast (size 1)."""
    return tuple(bk if array.shape[k] != 1 else 0 for k, bk in enumerate(b[:nbatch]))


def _widest(plan: ReductionPlan) -> int:
    roots = [plan.formula] if plan.weight is None else [plan.formula, plan.weight]
    return max(n.dim for root in roots for n in topological_order(root)) + 1


def _block_shape(
    plan: ReductionPlan, scheme: str, n_out: int, n_red: int, period: int
) -> tuple[int, int]:
    width = _widest(plan)
    if scheme == "kahan_scheme":
        cols = _KAHAN_COLUMNS
        rows = max(1, BLOCK_BUDGET // (width * cols))
    else:
        rows = max(1, min(n_out, 512))
        cols = max(1, BLOCK_BUDGET // (width * rows))
    if scheme == "block_sum" and cols < n_red:
        cols = max(period, cols // period * period)  # blocks start on flush boundaries
    return rows, cols


def _blocks(
    n_out: int, n_red: int, ranges: Ranges | None, rows_block: int, cols_block: int
) -> Iterator[tuple[slice, int, int]]:
    """(output rows, first and last+1 reduction index) of every block, in reduction order."""
    if ranges is None:
        segments = [((0, n_out), [(0, n_red)])]
    else:
        segments = []
        lo = 0
        for (a, e), hi in zip(ranges.ranges_out.tolist(), ranges.slices.tolist()):
            segments.append(((a, e), ranges.redranges[lo:hi].tolist()))
            lo = hi
    for (a, e), reds in segments:
        for r0 in range(a, e, rows_block):
            rows = slice(r0, min(e, r0 + rows_block))
            for s0, s1 in reds:
                for c0 in range(s0, s1, cols_block):
                    yield rows, c0, min(s1, c0 + cols_block)


def _block_env(
    plan: ReductionPlan,
    nodes: list[Node],
    arrays: list[np.ndarray],
    rows: slice,
    c0: int,
    c1: int,
) -> dict[Node, np.ndarray]:
    env: dict[Node, np.ndarray] = {}
    for slot, node, array in zip(plan.slots, nodes, arrays):
        if slot.cat is Cat.PARAM:
            env[node] = array
        elif slot.cat is plan.output_cat:
            env[node] = array[rows][:, None, :]
        else:
            env[node] = array[c0:c1][None, :, :]
    return env


def _evaluate_block(
    root: Node, env: dict[Node, np.ndarray], dtype: np.dtype, shape: tuple[int, int]
) -> np.ndarray:
    values = evaluate(root, env, dtype)
    return np.broadcast_to(values, (*shape, root.dim))
