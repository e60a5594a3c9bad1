"""The inputs of a distributed reduction: validation, then one chunking per index.

i- and j-variables may be dask arrays ``(n, D)`` (any row chunks; the vector dimension is
made one chunk) or NumPy arrays (one chunk); parameters must be NumPy arrays. The shapes
and dtypes are checked by the single-process binding itself
(:func:`lazykernels.core.bind.bind_call`, on zero-stride stand-ins of the right shapes),
so the messages are the same as ``Genred``'s. Everything the distributed plans do not
support (batch dimensions, ``ranges``, ``out``, float16, unknown chunk sizes, a dask array
in a parameter) is refused here with an :class:`~lazykernels.errors.ArgumentError`,
:class:`~lazykernels.errors.ShapeError` or :class:`~lazykernels.errors.DtypeError` naming
the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..core.bind import bind_call
from ..core.plan import ArgSlot, ReductionPlan
from ..errors import ArgumentError, DtypeError, ShapeError
from ..formula.ir import Cat


@dataclass(frozen=True)
class Inputs:
    """A call's inputs, ready for the plans.

    Attributes:
        plan: the reduction plan.
        arrays: one entry per slot: a dask array for i/j variables (vector dimension in
            one chunk), a NumPy array for parameters.
        dtype: the common dtype.
        n_out, n_red: numbers of output rows and of reduction indices.
    """

    plan: ReductionPlan
    arrays: tuple[Any, ...]
    dtype: np.dtype
    n_out: int
    n_red: int

    def of(self, cat: Cat) -> list[int]:
        """Positions of the inputs of category ``cat``."""
        return [s.position for s in self.plan.slots if s.cat is cat]

    def chunks(self, cat: Cat) -> tuple[int, ...]:
        """Row chunks of the inputs of category ``cat`` (one chunk when there are none)."""
        positions = self.of(cat)
        if not positions:
            return (self.n_out if cat is self.plan.output_cat else self.n_red,)
        return self.arrays[positions[0]].chunks[0]

    def red_bytes(self) -> int:
        """Bytes of the reduced-index inputs (what the i-sharded plan sends to each worker)."""
        return sum(self.arrays[p].nbytes for p in self.of(self.plan.reduced_cat))


def check_inputs(plan: ReductionPlan, args: Sequence[Any]) -> Inputs:
    """Validate a distributed call's arguments and give the i (j) inputs one row chunking.

    Raises:
        ArgumentError: wrong number of arguments, a dask array in a parameter, unknown
            chunk sizes; ShapeError: not ``(n, D)`` (batch dimensions), mismatched sizes;
            DtypeError: not float32/float64, mixed dtypes.
    """
    if len(args) != len(plan.slots):
        names = ", ".join(s.describe() for s in plan.slots) or "none"
        raise ArgumentError(
            f"expected {len(plan.slots)} input arrays, got {len(args)}; the inputs are: {names}"
        )
    arrays = [_check_one(slot, a) for slot, a in zip(plan.slots, args)]
    for slot, a in zip(plan.slots, arrays):
        if a.dtype == np.float16:
            raise DtypeError(
                f"{slot.describe()}: float16 is not supported by lazykernels.dask "
                f"(partial states would be rounded to float16); use float32 or float64"
            )
    # shapes, dtypes, sizes and K, checked by the binding on stand-ins that hold no data
    stand_ins = [np.broadcast_to(np.zeros((), a.dtype), a.shape) for a in arrays]
    call, _ = bind_call(plan, stand_ins, nan_check=False)
    arrays = _one_chunking(plan, arrays, Cat.I)
    arrays = _one_chunking(plan, arrays, Cat.J)
    return Inputs(plan, tuple(arrays), call.dtype, call.n_out, call.n_red)


def _check_one(slot: ArgSlot, a: Any) -> Any:
    if slot.cat is Cat.PARAM:
        if isinstance(a, da.Array):
            raise ArgumentError(
                f"{slot.describe()}: a parameter must be a NumPy array, not a dask array (it "
                f"is sent whole to every task); compute it first, e.g. p.compute()"
            )
        a = np.asarray(a)
        if a.ndim != 1:
            raise ShapeError(
                f"{slot.describe()}: lazykernels.dask takes parameters of shape "
                f"({slot.dim},), got {a.shape}; batch dimensions are not supported"
            )
        return a
    if not isinstance(a, da.Array):
        a = np.asarray(a)
    if a.ndim != 2:
        raise ShapeError(
            f"{slot.describe()}: lazykernels.dask takes (n, {slot.dim}) arrays, got shape "
            f"{a.shape}; batch dimensions are not supported"
        )
    if isinstance(a, da.Array) and any(math.isnan(n) for n in a.shape):
        raise ArgumentError(
            f"{slot.describe()}: the dask array has unknown chunk sizes; call "
            f"x.compute_chunk_sizes() first"
        )
    return a


def _one_chunking(plan: ReductionPlan, arrays: list[Any], cat: Cat) -> list[Any]:
    """The inputs of ``cat`` as dask arrays with the row chunks of the first dask one."""
    positions = [s.position for s in plan.slots if s.cat is cat]
    lead = next((arrays[p] for p in positions if isinstance(arrays[p], da.Array)), None)
    rows = lead.chunks[0] if lead is not None else None
    out = list(arrays)
    for p in positions:
        a = arrays[p]
        if rows is None:
            rows = (a.shape[0],)
        if isinstance(a, da.Array):
            out[p] = a.rechunk((rows, -1)) if a.chunks != (rows, (a.shape[1],)) else a
        else:
            out[p] = da.from_array(a, chunks=(rows, -1))
    return out


__all__ = ["Inputs", "check_inputs"]
