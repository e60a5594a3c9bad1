"""``jax_reduce``: a plan on JAX arrays, differentiable for every reduction that has values.

- Sum and the log-sum-exp family: :data:`~lazykernels.jax.primitive.reduce_p`, whose JVP
  and transpose rules are reductions again.
- Min, Max, KMin and their ``*_Arg*`` forms: the values and indices come from the
  reduction (no derivative), then F is re-evaluated differentiably at the selected pairs
  (the reduced-category inputs gathered with ``take_along_axis``, ``selection_plan``'s Sum
  over a dummy axis of size 1), as the torch front end does: the values returned are the
  reduction's exactly, the derivatives are those of F at the selected entries (on ties,
  at the index the reduction returned; nothing flows into empty rows).
- ArgMin, ArgMax, ArgKMin and index outputs: integers (int64 with ``jax_enable_x64``,
  else int32), zero tangents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from ..formula.ir import Cat
from ..reductions import SPECS
from ..reductions.derivatives import Derivative, derivative, selection_plan, with_index
from .primitive import reduce


def _selected_values(
    plan: ReductionPlan, arrays: Sequence[Any], index: Any, backend: str
) -> jax.Array:
    """F at the selected pairs, differentiable, shaped ``batch + (n, K, D)``."""
    dim = plan.formula.dim
    if SPECS[plan.reduction].needs_k:
        index = index[..., None] if dim == 1 else index  # (..., n, K, D)
    else:
        index = index[..., None, :]  # (..., n, 1, D)
    nb = index.ndim - 3
    batch, n, k = index.shape[:nb], index.shape[-3], index.shape[-2]
    valid = index >= 0
    # (..., K, D, n): the K and component axes become two extra batch dimensions
    order = jnp.transpose(jnp.maximum(index, 0), (*range(nb), nb + 1, nb + 2, nb))
    feeds = []
    for slot, a in zip(plan.slots, arrays):
        if slot.cat is Cat.PARAM:
            feeds.append(a[..., None, None, :])
        elif slot.cat is plan.output_cat:
            feeds.append(a[..., None, None, :, :])
        else:
            rows, width = a.shape[-2], a.shape[-1]
            source = jnp.broadcast_to(a, (*batch, rows, width))[..., None, None, :, :]
            source = jnp.broadcast_to(source, (*batch, k, dim, rows, width))
            where = jnp.broadcast_to(order[..., None], (*batch, k, dim, n, width))
            feeds.append(jnp.take_along_axis(source, where, axis=-2))
    (values,) = reduce(selection_plan(plan), feeds, backend=backend)
    # (..., K, D, n, D): component d of F with the index of component d
    values = jnp.swapaxes(jnp.diagonal(values, axis1=-3, axis2=-1), -3, -2)
    return jnp.where(valid, values, jnp.zeros((), values.dtype))


def _selection(
    plan: ReductionPlan, arrays: Sequence[Any], backend: str, ranges: Any
) -> tuple[Any, ...]:
    constants = [jax.lax.stop_gradient(a) for a in arrays]  # no derivative through these
    values, index = reduce(with_index(plan), constants, backend, ranges)
    red_rows = [a.shape[-2] for s, a in zip(plan.slots, arrays) if s.cat is plan.reduced_cat]
    if values.size and all(r > 0 for r in red_rows):
        selected = _selected_values(plan, arrays, index, backend).reshape(values.shape)
        # exactly the reduction's values, with the derivatives of F at the selected pairs
        values = values + (selected - jax.lax.stop_gradient(selected))
    if not SPECS[plan.reduction].has_index:
        return (values,)
    return (values, index)


def jax_reduce(
    plan: ReductionPlan,
    arrays: Sequence[Any],
    backend: str = "auto",
    ranges: Sequence[Any] | None = None,
    out: Any = None,
) -> tuple[Any, ...]:
    """Run ``plan`` on JAX arrays (or tracers); return its outputs as a tuple.

    Works eagerly and under ``jax.jit``, ``vmap``, ``grad``, ``jvp`` and their compositions.

    Raises:
        ArgumentError: ``out=`` (JAX arrays are immutable), or invalid inputs;
        ShapeError, DtypeError: see :mod:`lazykernels.core.bind`.

    Example:
        >>> import jax.numpy as jnp
        >>> from lazykernels.core.genred import build_plan
        >>> plan = build_plan("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
        >>> (s,) = jax_reduce(plan, [jnp.ones((2, 1)), jnp.full((3, 1), 2.0)])
        >>> s.ravel().tolist()
        [6.0, 6.0]
    """
    if out is not None:
        raise ArgumentError("out= is not supported for JAX arrays (they are immutable)")
    # jnp.asarray costs ~10 us even on a JAX array (tracers are JAX arrays too)
    arrays = [a if isinstance(a, jax.Array) else jnp.asarray(a) for a in arrays]
    if derivative(plan) is Derivative.SELECTION:
        return _selection(plan, arrays, backend, ranges)
    return tuple(reduce(plan, arrays, backend, ranges))


__all__ = ["jax_reduce"]
