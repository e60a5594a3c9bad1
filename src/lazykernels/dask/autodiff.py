"""Gradients of distributed reductions, through the engine's VJP rules.

:func:`vjp` returns the gradient of ``sum <G, reduction(args)>`` with respect to some
inputs, as lazy dask arrays:

- smooth reductions (Sum, the log-sum-exp family): the derived reductions of
  :func:`lazykernels.reductions.derivatives.vjp_group_rule` (one per group of inputs), fed
  by :func:`lazykernels.core.autodiff.derived_inputs` and run by the same distributed
  plans as any reduction (a gradient w.r.t. a j-variable is a reduction over i);
- Min, Max, KMin and their ``*_Arg*`` forms: the values are F at the selected pairs, so
  the gradient flows through them (on ties, through the index the reduction returned). One
  task per output chunk gathers the selected rows of the reduced inputs (sent whole to each
  worker, as in the i-sharded plan), runs the gradient reductions of
  :func:`~lazykernels.reductions.derivatives.selection_plan` on the chunk and scatter-adds
  the reduced inputs' gradients; those partial gradients are summed by a tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from ..core.autodiff import run_vjp, vjp_rules
from ..core.genred import run_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from ..formula.ir import Cat
from ..reductions.derivatives import (
    Derivative,
    Extra,
    derivative,
    selection_plan,
    with_index,
)
from .genred import dask_reduce, options
from .inputs import check_inputs
from .plans import _row_blocks, _task, _whole


def vjp(
    plan: ReductionPlan | Any,
    args: Sequence[Any],
    gradient: Any,
    wrt: Sequence[int],
    backend: str = "auto",
    sharding: str | None = None,
    split_every: int | None = None,
) -> list[Any]:
    """The gradients of ``sum <gradient, reduction(args)>`` w.r.t. the inputs ``wrt``.

    Args:
        plan: a reduction plan, or a ``Genred`` (its ``plan``).
        args: the reduction's inputs (dask or NumPy arrays, as for ``Genred``).
        gradient: the incoming gradient, shaped like the (values) output.
        wrt: input positions.
        backend, sharding, split_every: as for :func:`lazykernels.dask.dask_reduce`.

    Returns:
        One gradient per position of ``wrt``, shaped like that input (dask arrays; NumPy
        arrays of zeros where the formula does not depend on the input).

    Raises:
        ArgumentError: no such input, or the reduction has no gradient (ArgMin...).

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> from lazykernels.dask import Genred
        >>> g = Genred("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
        >>> x = da.ones((3, 1), chunks=2)
        >>> (gy,) = vjp(g, [x, np.full((2, 1), 2.0)], da.ones((3, 1), chunks=2), [1],
        ...             backend="reference")
        >>> gy.compute().ravel().tolist()
        [3.0, 3.0]
    """
    plan = getattr(plan, "plan", plan)
    args = list(args)
    wrt = [int(k) for k in wrt]
    for k in wrt:
        if not 0 <= k < len(plan.slots):
            raise ArgumentError(f"vjp: no input {k}; the reduction has {len(plan.slots)} inputs")
    sharding, split_every = options(sharding, split_every)
    run = dict(backend=backend, sharding=sharding, split_every=split_every)
    kind = derivative(plan)
    if kind is Derivative.INDEX:
        raise ArgumentError(f"{plan.reduction} returns integer indices: it has no gradient")
    if kind is Derivative.SELECTION:
        return _selection_vjp(plan, args, gradient, wrt, run)
    rules = vjp_rules(plan, list(dict.fromkeys(wrt)))
    reduce = lambda p, a: dask_reduce(p, a, **run)[0]
    fed = {f.kind for r in rules for f in r.feeds}
    output = reduce(plan, args) if Extra.OUTPUT in fed else None
    grads = run_vjp(plan, rules, args, gradient, output, reduce)
    return [grads[k] if k in grads else _zeros(args[k]) for k in wrt]


def _zeros(a: Any) -> Any:
    return da.zeros_like(a) if isinstance(a, da.Array) else np.zeros_like(np.asarray(a))


# --- Min / Max / KMin: through the selected pairs -----------------------------------------------


def _selection_block(
    plan: ReductionPlan,
    wrt: tuple[int, ...],
    backend: str,
    index: np.ndarray,
    gradient: np.ndarray,
    *arrays: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """One output chunk's gradient contributions, one array per position of ``wrt``:
    its rows for output-index inputs, full partial sums for reduced-index inputs and
    parameters."""
    n, dim = index.shape[0], plan.formula.dim
    shape = (n, -1, dim)  # (n, K, D); K = 1 for Min / Max
    index, gradient = index.reshape(shape), gradient.reshape(shape)
    sel = selection_plan(plan)
    rules = vjp_rules(sel, wrt)
    reduce = lambda p, a: run_plan(p, a, backend=backend)[0]
    out: dict[int, np.ndarray] = {k: np.zeros_like(arrays[k]) for k in wrt}
    red = [s.position for s in plan.slots if s.cat is plan.reduced_cat]
    for kk in range(index.shape[1]):
        for d in range(dim):
            chosen = index[:, kk, d]
            valid = chosen >= 0
            rows = np.where(valid, chosen, 0)
            feeds = [arrays[p][rows] if p in red else arrays[p] for p in range(len(plan.slots))]
            cot = np.zeros((n, dim), dtype=gradient.dtype)
            cot[:, d] = np.where(valid, gradient[:, kk, d], 0.0)
            parts = run_vjp(sel, rules, feeds, cot, None, reduce)
            for k, part in parts.items():
                if k in red:
                    np.add.at(out[k], rows[valid], part[valid])
                else:
                    out[k] += part
    return tuple(out[k] for k in wrt)


def _sum_task(parts: list) -> np.ndarray:
    return np.sum(parts, axis=0)


def _selection_vjp(
    plan: ReductionPlan,
    args: list[Any],
    gradient: Any,
    wrt: list[int],
    run: dict[str, Any],
) -> list[Any]:
    backend, split_every = run["backend"], run["split_every"]
    full = with_index(plan)
    inputs = check_inputs(full, args)
    _, index = dask_reduce(full, args, **run)
    rows = inputs.chunks(plan.output_cat)
    index = index.rechunk((rows, *index.shape[1:]))
    gradient = da.asarray(gradient).rechunk((rows, *index.shape[1:]))
    index_blocks = index.to_delayed().reshape(len(rows), -1)[:, 0]
    grad_blocks = gradient.to_delayed().reshape(len(rows), -1)[:, 0]
    out_blocks = _row_blocks(inputs, plan.output_cat)
    whole = {p: _whole(inputs.arrays[p]) for p in inputs.of(plan.reduced_cat)}
    order = tuple(dict.fromkeys(wrt))
    task = _task(_selection_block, plan, order, backend, nout=len(order))
    results = []
    for b in range(len(rows)):
        out_iter = iter([blocks[b] for blocks in out_blocks])
        block_args = [
            inputs.arrays[s.position]
            if s.cat is Cat.PARAM
            else (next(out_iter) if s.cat is plan.output_cat else whole[s.position])
            for s in plan.slots
        ]
        results.append(task(index_blocks[b], grad_blocks[b], *block_args))
    total = _task(_sum_task)
    grads: dict[int, Any] = {}
    for j, k in enumerate(order):
        slot, array = plan.slots[k], inputs.arrays[k]
        if slot.cat is plan.output_cat:
            parts = [
                da.from_delayed(r[j], shape=(n, slot.dim), dtype=inputs.dtype)
                for r, n in zip(results, rows)
            ]
            grads[k] = da.concatenate(parts, axis=0)
            continue
        partials = [r[j] for r in results]
        while len(partials) > 1:
            partials = [
                total(partials[s : s + split_every]) for s in range(0, len(partials), split_every)
            ]
        grads[k] = da.from_delayed(partials[0], shape=array.shape, dtype=inputs.dtype)
    return [grads[k] for k in wrt]


__all__ = ["vjp"]
