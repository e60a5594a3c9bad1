"""The two distributed plans of a reduction, as dask graphs (one task per block).

Notation: O is the output index (i for ``axis=1``), R the reduced one. Every task runs the
single-process engine (:func:`lazykernels.core.genred.run_plan`, any backend) on NumPy
blocks; dask (threads, processes or ``distributed``) schedules them.

- **i-sharded** (``"i"``, the O index sharded): one task per O-chunk reduces it against all
  of the R data. The R inputs are one chunk each, a single key of the graph, so a worker
  receives them once however many O-chunks it runs (``distributed`` copies a key to each
  worker that needs it, once). Exact for every reduction: nothing is merged. Memory per
  worker: all of R plus one O-chunk.
- **i x j-sharded** (``"ij"``): one task per (O-chunk, R-chunk) block runs the reduction's
  *raw* plan (:func:`lazykernels.reductions.partial.raw_plan`) and loads its outputs as a
  partial state; the states of one O-chunk are merged by a tree of fan-in
  ``split_every`` with the reduction card's own merge
  (:func:`~lazykernels.reductions.partial.merge_states`), then finalised. Memory per
  worker: one block's inputs; traffic: one partial state per block.

:func:`choose` picks a plan from the sizes and chunks (see its docstring).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
from dask import delayed

from ..core.genred import run_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from ..formula.ir import Cat
from ..reductions import SPECS
from ..reductions.partial import block_state, finalize, merge_states, raw_plan
from .inputs import Inputs

PLANS = ("auto", "i", "ij")
BROADCAST_LIMIT = 256 * 2**20
"""Reduced-index bytes up to which ``"auto"`` broadcasts them (the i-sharded plan)."""


def choose(inputs: Inputs, plan: str = "auto", broadcast_limit: int = BROADCAST_LIMIT) -> str:
    """The plan to run: ``plan`` itself unless ``"auto"``.

    ``"auto"`` takes the i-sharded plan when the reduced-index inputs are one chunk, or
    when the output index has several chunks (parallelism) and the reduced-index inputs
    hold at most ``broadcast_limit`` bytes (they are copied to every worker); otherwise
    the i x j-sharded plan.

    Raises:
        ArgumentError: an unknown plan name.
    """
    if plan not in PLANS:
        raise ArgumentError(f"plan must be one of {', '.join(PLANS)}, got {plan!r}")
    if plan != "auto":
        return plan
    red_chunks = inputs.chunks(inputs.plan.reduced_cat)
    if len(red_chunks) <= 1 or inputs.n_red == 0:
        return "i"
    out_chunks = inputs.chunks(inputs.plan.output_cat)
    if len(out_chunks) > 1 and inputs.red_bytes() <= broadcast_limit:
        return "i"
    return "ij"


def reduce(
    inputs: Inputs, backend: str = "auto", plan: str = "auto", split_every: int = 4
) -> tuple[da.Array, ...]:
    """The outputs of ``inputs.plan`` as dask arrays, chunked like the output index.

    Args:
        inputs: validated inputs (:func:`lazykernels.dask.inputs.check_inputs`).
        backend: the engine's backend on the workers (``"auto"``, ``"CPU"``,
            ``"reference"``).
        plan: ``"auto"``, ``"i"`` or ``"ij"`` (see :func:`choose`).
        split_every: fan-in of the merge tree of the i x j-sharded plan (>= 2).

    Raises:
        ArgumentError: an unknown plan, or ``split_every`` < 2.
    """
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ArgumentError(f"split_every must be an integer >= 2, got {split_every!r}")
    kind = choose(inputs, plan)
    if kind == "ij" and inputs.n_red > 0:
        return _ij_sharded(inputs, backend, split_every)
    return _i_sharded(inputs, backend)


# --- tasks (run on the workers) -------------------------------------------------------------


def _reduce_block(plan: ReductionPlan, backend: str, *arrays: np.ndarray) -> tuple:
    return tuple(run_plan(plan, arrays, backend=backend))


def _state_block(
    plan: ReductionPlan, raw: ReductionPlan, backend: str, start: int, *arrays: np.ndarray
) -> Any:
    return block_state(plan, run_plan(raw, arrays, backend=backend), start)


def _merge_task(plan: ReductionPlan, states: list) -> Any:
    return merge_states(plan, states)


def _finalize_task(plan: ReductionPlan, state: Any) -> tuple:
    return finalize(plan, state)


# --- graphs --------------------------------------------------------------------------------


def _task(fn: Callable[..., Any], *static: Any, nout: int | None = None) -> Callable[..., Any]:
    """``fn`` with its static arguments bound, as a function of delayed blocks.

    The plan travels inside the function (never tokenized or traversed) and every call
    gets a fresh key named ``lazykernels-<task>-<uuid>``, so that dashboards and logs say
    what runs.
    """
    function = delayed(partial(fn, *static), pure=False, traverse=False, nout=nout)
    label = fn.__name__.strip("_").removesuffix("_task").replace("_", "-")

    def call(*args: Any) -> Any:
        return function(*args, dask_key_name=f"lazykernels-{label}-{uuid.uuid4().hex}")

    return call


def _row_blocks(inputs: Inputs, cat: Cat) -> list[list[Any]]:
    """Per slot of category ``cat``: its row chunks as delayed NumPy blocks."""
    return [list(inputs.arrays[p].to_delayed()[:, 0]) for p in inputs.of(cat)]


def _whole(array: da.Array) -> Any:
    """``array`` as one delayed NumPy block (one key: sent once to each worker).

    Joined by our own task rather than ``rechunk``: dask names a rechunk by its input, and
    the same name reappearing with another layout in a later graph (CG iterations, a
    gradient's reductions) makes ``distributed`` warn of conflicting tasks.
    """
    blocks = list(array.to_delayed()[:, 0])
    if len(blocks) == 1:
        return blocks[0]
    return _task(_concatenate)(*blocks)


def _concatenate(*blocks: np.ndarray) -> np.ndarray:
    return np.concatenate(blocks, axis=0)


def _output_meta(inputs: Inputs) -> list[tuple[tuple[int, ...], np.dtype]]:
    plan = inputs.plan
    spec = SPECS[plan.reduction]
    weight_dim = plan.weight.dim if plan.weight is not None else 0
    tails = spec.output_tails(plan.formula.dim, weight_dim, plan.k or 0)
    kinds = [np.dtype(np.int64) if o.index else inputs.dtype for o in spec.outputs]
    return list(zip(tails, kinds))


def _assemble(inputs: Inputs, results: Sequence[Any], rows: Sequence[int]) -> tuple[da.Array, ...]:
    """Dask arrays from one delayed tuple of outputs per output chunk."""
    arrays = []
    for k, (tail, kind) in enumerate(_output_meta(inputs)):
        parts = [
            da.from_delayed(res[k], shape=(n, *tail), dtype=kind) for res, n in zip(results, rows)
        ]
        arrays.append(da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0])
    return tuple(arrays)


def _slot_args(inputs: Inputs, out_blocks: list[Any], red_blocks: list[Any]) -> list[Any]:
    """The arguments of one task in slot order: O blocks, R blocks, parameters."""
    plan = inputs.plan
    out_iter, red_iter = iter(out_blocks), iter(red_blocks)
    args = []
    for slot, array in zip(plan.slots, inputs.arrays):
        if slot.cat is Cat.PARAM:
            args.append(array)
        elif slot.cat is plan.output_cat:
            args.append(next(out_iter))
        else:
            args.append(next(red_iter))
    return args


def _i_sharded(inputs: Inputs, backend: str) -> tuple[da.Array, ...]:
    plan = inputs.plan
    rows = inputs.chunks(plan.output_cat)
    out_blocks = _row_blocks(inputs, plan.output_cat)
    red_whole = [_whole(inputs.arrays[p]) for p in inputs.of(plan.reduced_cat)]
    n_outputs = len(SPECS[plan.reduction].outputs)
    task = _task(_reduce_block, plan, backend, nout=n_outputs)
    results = []
    for b in range(len(rows)):
        args = _slot_args(inputs, [blocks[b] for blocks in out_blocks], red_whole)
        results.append(task(*args))
    return _assemble(inputs, results, rows)


def red_chunks(inputs: Inputs) -> tuple[int, ...]:
    """Reduced-index chunks of the i x j-sharded plan: the inputs' chunks without empty ones,
    small ones joined to the next so that each holds at least K indices (KMin family)."""
    least = max(1, inputs.plan.k or 1)
    chunks: list[int] = []
    pending = 0
    for n in inputs.chunks(inputs.plan.reduced_cat):
        pending += n
        if pending >= least:
            chunks.append(pending)
            pending = 0
    if pending:  # a short tail joins the last chunk
        if chunks:
            chunks[-1] += pending
        else:
            chunks.append(pending)
    return tuple(chunks)


def _ij_sharded(inputs: Inputs, backend: str, split_every: int) -> tuple[da.Array, ...]:
    plan = inputs.plan
    rows = inputs.chunks(plan.output_cat)
    cols = red_chunks(inputs)
    out_blocks = _row_blocks(inputs, plan.output_cat)
    red_positions = inputs.of(plan.reduced_cat)
    red_blocks = [
        list(inputs.arrays[p].rechunk((cols, -1)).to_delayed()[:, 0]) for p in red_positions
    ]
    starts = np.concatenate([[0], np.cumsum(cols)[:-1]]).astype(int).tolist()
    raw = raw_plan(plan)
    merge = _task(_merge_task, plan)
    done = _task(_finalize_task, plan, nout=len(SPECS[plan.reduction].outputs))
    blocks = [_task(_state_block, plan, raw, backend, start) for start in starts]
    results = []
    for b in range(len(rows)):
        out_args = [blocks_b[b] for blocks_b in out_blocks]
        states = [
            blocks[c](*_slot_args(inputs, out_args, [rb[c] for rb in red_blocks]))
            for c in range(len(cols))
        ]
        while len(states) > 1:  # the merge tree
            states = [
                merge(states[s : s + split_every]) for s in range(0, len(states), split_every)
            ]
        results.append(done(states[0]))
    return _assemble(inputs, results, rows)


__all__ = ["BROADCAST_LIMIT", "PLANS", "choose", "red_chunks", "reduce"]
