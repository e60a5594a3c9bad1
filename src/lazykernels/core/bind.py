"""Validation of a call's arrays into a :class:`~lazykernels.core.plan.BoundCall`.

Everything a backend may assume is checked here, before any backend runs, and every problem
is raised with a message that names the argument (``ArgSlot.describe()``): the number of
arguments, each array's number of dimensions and last dimension, the sizes M and N, the
batch dimensions, dtypes, NaN values, ranges, K and ``out=``. Then the outputs are
allocated with the shapes of :mod:`lazykernels.reductions`.

Shapes (SPEC §3, §5.4): ``Vi(D)`` takes ``(..., M, D)``, ``Vj(D)`` takes ``(..., N, D)``,
``Pm(D)`` takes ``(..., D)``. M is read from the first i-argument and N from the first
j-argument (1 when there is none). ``nbatchdims = max(ndim) - 2`` over the i/j arguments
(``max(ndim) - 1`` over the parameters); every argument must spell all batch dimensions,
with 1 where it broadcasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ArgumentError, DtypeError, ShapeError
from ..formula.ir import Cat
from ..reductions import SPECS
from .arrays import NUMPY, ArrayAdapter, Device
from .plan import ArgSlot, BoundCall, Ranges, ReductionPlan

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def bind(
    plan: ReductionPlan,
    args: Sequence[Any],
    ranges: Sequence[Any] | None = None,
    out: Any = None,
) -> BoundCall:
    """Validate ``args`` (and ``ranges``, ``out``) against ``plan``; allocate the outputs.

    Args:
        plan: the reduction plan.
        args: one array per slot of the plan, in position order.
        ranges: KeOps's 6-tuple of block-sparse ranges, or None.
        out: preallocated output (a tuple for two-output reductions), or None. It is used
            directly when its dtype is the computation dtype; float16 outputs are computed
            in float32 and must be copied into ``out`` by the caller.

    Returns:
        The bound call, outputs allocated (not filled).

    Raises:
        ArgumentError, ShapeError, DtypeError: a message naming the faulty argument.
    """
    return bind_call(plan, args, ranges, out)[0]


def bind_call(
    plan: ReductionPlan,
    args: Sequence[Any],
    ranges: Sequence[Any] | None = None,
    out: Any = None,
    nan_check: bool = True,
    adapter: ArrayAdapter = NUMPY,
    float16: bool = False,
) -> tuple[BoundCall, np.dtype]:
    """:func:`bind`, and the user-level dtype of the inputs (float16 stays float16).

    The checks that depend only on the shapes and dtypes of the arguments are cached per
    plan and call signature (:class:`_Layout`): a warm call with the same shapes only
    checks for NaN values and allocates the outputs. ``nan_check=False`` leaves the NaN
    check to the caller (the compiled backend does it in C, see :func:`check_nan`).
    ``adapter`` answers for the array library of ``args`` (:mod:`.arrays`); the call's
    outputs are allocated by it on the inputs' device. float16 inputs are given to the
    backend as they are, outputs in float16, with ``float16=True`` or in GPU memory (the
    CUDA kernels read and write half); otherwise they are computed in float32.
    """
    if len(args) != len(plan.slots):
        names = ", ".join(s.describe() for s in plan.slots) or "none"
        raise ArgumentError(
            f"expected {len(plan.slots)} input arrays, got {len(args)}; the inputs are: {names}"
        )
    arrays, device, signature = adapter.coerce(args, plan.slots)
    table = _layouts(plan)
    layout = table.get(signature)
    if layout is None:
        shapes = [tuple(adapter.shape(a)) for a in arrays]
        layout = _layout(plan, shapes, [adapter.dtype(a) for a in arrays])
        if len(table) >= _MAX_SIGNATURES:
            table.clear()
        table[signature] = layout
    if nan_check:
        check_nan(plan.slots, arrays, adapter)
    dtype, kinds = layout.dtype, layout.outputs
    if layout.cast and (float16 or not device.is_host):  # float16 stays float16, outputs too
        dtype = layout.user_dtype
        kinds = tuple((s, dtype if k == layout.dtype else k) for s, k in kinds)
    elif layout.cast:
        arrays = [adapter.astype(a, dtype) if adapter.dtype(a) != dtype else a for a in arrays]
    call = BoundCall(plan, tuple(arrays), dtype, layout.batch_shape, layout.ni, layout.nj, None)
    if adapter is not NUMPY:  # (NumPy arrays on the host: the defaults)
        call.adapter, call.device = adapter, device
    if ranges is not None:
        call.ranges = orient_ranges(ranges, plan.output_cat, call.n_out, call.n_red)
    elif layout.k_too_large:
        axis = "j" if plan.output_cat is Cat.I else "i"
        raise ArgumentError(
            f"{plan.reduction}: K = {plan.k} is larger than the number of reduction indices "
            f"({axis}: {call.n_red})"
        )
    if out is None:
        call.outputs = tuple([adapter.empty(s, k, device) for s, k in kinds])
    else:
        call.outputs = _outputs(plan, kinds, layout.user_dtype, out, adapter, device)
    return call, layout.user_dtype


def layout_for(plan: ReductionPlan, arrays: Sequence[Any], adapter: ArrayAdapter = NUMPY):
    """:func:`layout_of` the shapes and dtypes that ``adapter`` reads from ``arrays``
    (arrays, or abstract values with a shape and a dtype, e.g. JAX tracers)."""
    return layout_of(plan, [adapter.shape(a) for a in arrays], [adapter.dtype(a) for a in arrays])


def layout_of(plan: ReductionPlan, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any]):
    """The binding checks of :func:`bind_call` on shapes and dtypes alone (abstract arrays,
    e.g. JAX tracers); the result's ``outputs`` are the ``(shape, dtype)`` of each output.

    Raises:
        ArgumentError, ShapeError, DtypeError: as :func:`bind`.
    """
    if len(shapes) != len(plan.slots):
        names = ", ".join(s.describe() for s in plan.slots) or "none"
        raise ArgumentError(
            f"expected {len(plan.slots)} input arrays, got {len(shapes)}; the inputs are: {names}"
        )
    signature = tuple([(tuple(s), np.dtype(d)) for s, d in zip(shapes, dtypes)])
    table = _layouts(plan)
    layout = table.get(signature)
    if layout is None:
        layout = _layout(plan, [s for s, _ in signature], [d for _, d in signature])
        if len(table) >= _MAX_SIGNATURES:
            table.clear()
        table[signature] = layout
    return layout


def check_nan(slots: Sequence[ArgSlot], arrays: Sequence[Any], adapter: ArrayAdapter = NUMPY):
    """Raise :func:`nan_error` for the first of ``arrays`` (one per slot) holding a NaN."""
    bad = adapter.first_nan(arrays)
    if bad >= 0:
        raise nan_error(slots[bad])


def nan_error(slot: ArgSlot) -> ArgumentError:
    """The error for NaN values in the input of ``slot``."""
    return ArgumentError(f"{slot.describe()} contains NaN values")


# Per plan (by identity; the entry holds the plan, so its id cannot be reused meanwhile):
# call signature -> layout. Bounded: cleared when full (plans built per call, e.g. by
# LazyTensors, would otherwise accumulate).
_MAX_PLANS = 512
_MAX_SIGNATURES = 64
_LAYOUTS: dict[int, tuple[ReductionPlan, dict[tuple[Any, ...], _Layout]]] = {}


@dataclass(frozen=True)
class _Layout:
    """What the shapes and dtypes of a call's arguments decide (everything but values)."""

    dtype: np.dtype  # computation dtype
    user_dtype: np.dtype  # the inputs' dtype (float16 results are cast back to it)
    cast: bool  # whether some input must be cast to ``dtype``
    batch_shape: tuple[int, ...]
    ni: int
    nj: int
    k_too_large: bool  # K > number of reduction indices (an error without ranges)
    outputs: tuple[tuple[tuple[int, ...], np.dtype], ...]  # (shape, dtype) per output


def _layouts(plan: ReductionPlan) -> dict[tuple[Any, ...], _Layout]:
    entry = _LAYOUTS.get(id(plan))
    if entry is not None and entry[0] is plan:
        return entry[1]
    if len(_LAYOUTS) >= _MAX_PLANS:
        _LAYOUTS.clear()
    table: dict[tuple[Any, ...], _Layout] = {}
    _LAYOUTS[id(plan)] = (plan, table)
    return table


def _layout(plan: ReductionPlan, shapes: Sequence[tuple[int, ...]], dtypes: Sequence[Any]):
    """Every check that depends on shapes and dtypes only, in the order errors are raised."""
    user_dtype = input_dtype(plan, dtypes)
    dtype = np.dtype(np.float32) if user_dtype == np.float16 else user_dtype
    if plan.dtype_acc == "float32" and dtype == np.float64:
        raise ArgumentError("dtype_acc='float32' cannot accumulate float64 data; use 'float64'")
    batch_shape = _check_shapes(plan.slots, shapes)
    ni = _size(plan.slots, shapes, Cat.I, "M")
    nj = _size(plan.slots, shapes, Cat.J, "N")
    n_out, n_red = (ni, nj) if plan.output_cat is Cat.I else (nj, ni)
    spec = SPECS[plan.reduction]
    k_too_large = spec.needs_k and plan.k is not None and plan.k > n_red
    weight_dim = plan.weight.dim if plan.weight is not None else 0
    tails = spec.output_tails(plan.formula.dim, weight_dim, plan.k or 0)
    kinds = [np.dtype(np.int64) if o.index else dtype for o in spec.outputs]
    outputs = tuple(((*batch_shape, n_out, *tail), kind) for tail, kind in zip(tails, kinds))
    cast = any(d != dtype for d in dtypes)
    return _Layout(dtype, user_dtype, cast, batch_shape, ni, nj, k_too_large, outputs)


def input_dtype(plan: ReductionPlan, dtypes: Sequence[Any]) -> np.dtype:
    """The common floating dtype of the inputs (float64 when there are none); ``dtypes``
    are NumPy dtypes, or an array library's dtype objects where NumPy has none.

    Raises:
        DtypeError: a complex, non-floating or unsupported dtype, or mixed dtypes.
    """
    first: tuple[ArgSlot, np.dtype] | None = None
    for slot, dt in zip(plan.slots, dtypes):
        if getattr(dt, "kind", "") == "c":
            raise DtypeError(f"{slot.describe()}: complex arrays are not supported ({dt})")
        if not isinstance(dt, np.dtype) or dt not in FLOAT_DTYPES:
            raise DtypeError(
                f"{slot.describe()}: dtype {dt} is not supported; use float16, float32 or float64"
            )
        if first is None:
            first = (slot, dt)
        elif dt != first[1]:
            raise DtypeError(
                f"all inputs must have the same dtype: {first[0].describe()} is {first[1]} "
                f"but {slot.describe()} is {dt}"
            )
    return np.dtype(np.float64) if first is None else first[1]


def _expected(slot: ArgSlot, nbatch: int) -> str:
    size = {Cat.I: "M", Cat.J: "N"}.get(slot.cat)
    dims = [f"B{k + 1}" for k in range(nbatch)] + ([size] if size else []) + [str(slot.dim)]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _check_shapes(slots: Sequence[ArgSlot], shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """Check ndim and last dims; return the broadcast batch shape."""
    nbatch, source = 0, None
    for slot, shape in zip(slots, shapes):
        extra = len(shape) - (1 if slot.cat is Cat.PARAM else 2)
        if extra > nbatch:
            nbatch, source = extra, slot
    for slot, shape in zip(slots, shapes):
        core = 1 if slot.cat is Cat.PARAM else 2
        if len(shape) != nbatch + core or shape[-1] != slot.dim:
            why = ""
            if len(shape) != nbatch + core and source is not None:
                why = f" ({source.describe()} has {nbatch} batch dimension(s))"
            raise ShapeError(
                f"{slot.describe()}: expected an array of shape {_expected(slot, nbatch)}"
                f"{why}, got shape {shape}"
            )
    batch = []
    for k in range(nbatch):
        first: tuple[ArgSlot, int] | None = None
        for slot, shape in zip(slots, shapes):
            size = shape[k]
            if size == 1:
                continue
            if first is None:
                first = (slot, size)
            elif size != first[1]:
                raise ShapeError(
                    f"batch dimension {k} does not broadcast: {first[0].describe()} has size "
                    f"{first[1]} but {slot.describe()} has size {size} (batch sizes must be "
                    f"equal or 1)"
                )
        batch.append(1 if first is None else first[1])
    return tuple(batch)


def _size(slots: Sequence[ArgSlot], shapes: Sequence[tuple[int, ...]], cat: Cat, label: str):
    """M (i) or N (j) from the first argument of ``cat``; 1 when there is none."""
    first: tuple[ArgSlot, int] | None = None
    for slot, shape in zip(slots, shapes):
        if slot.cat is not cat:
            continue
        n = shape[-2]
        if first is None:
            first = (slot, n)
        elif n != first[1]:
            raise ShapeError(
                f"inconsistent {label}: {first[0].describe()} has {first[1]} rows but "
                f"{slot.describe()} has {n}"
            )
    return 1 if first is None else first[1]


def orient_ranges(ranges: Sequence[Any], output_cat: Cat, n_out: int, n_red: int) -> Ranges:
    """Validate KeOps's 6-tuple of ranges and keep the triple for ``output_cat``.

    ``(ranges_i, slices_i, redranges_j)`` serve an i-indexed output, ``(ranges_j, slices_j,
    redranges_i)`` a j-indexed one.

    Raises:
        ArgumentError: not a 6-tuple, wrong shapes or dtypes, decreasing or inconsistent
            slices, reversed or out-of-bounds ranges.
    """
    if not isinstance(ranges, list | tuple) or len(ranges) != 6:
        raise ArgumentError(
            "ranges must be a 6-tuple (ranges_i, slices_i, redranges_j, ranges_j, slices_j, "
            "redranges_i)"
        )
    if output_cat is Cat.I:
        names, triple = ("ranges_i", "slices_i", "redranges_j"), ranges[:3]
    else:
        names, triple = ("ranges_j", "slices_j", "redranges_i"), ranges[3:]
    out_r, slices, red_r = (_int_array(name, a) for name, a in zip(names, triple))
    if out_r.ndim != 2 or out_r.shape[1] != 2:
        raise ArgumentError(f"ranges: {names[0]} must have shape (C, 2), got {out_r.shape}")
    if slices.shape != (out_r.shape[0],):
        raise ArgumentError(
            f"ranges: {names[1]} must have shape ({out_r.shape[0]},) like {names[0]}, "
            f"got {slices.shape}"
        )
    if red_r.ndim != 2 or red_r.shape[1] != 2:
        raise ArgumentError(f"ranges: {names[2]} must have shape (S, 2), got {red_r.shape}")
    if len(slices) and (
        slices[0] < 0 or np.any(np.diff(slices) < 0) or slices[-1] != red_r.shape[0]
    ):
        raise ArgumentError(
            f"ranges: {names[1]} must be non-decreasing cumulative ends in [0, "
            f"{red_r.shape[0]}] ending at len({names[2]}) = {red_r.shape[0]}"
        )
    for name, r, bound in ((names[0], out_r, n_out), (names[2], red_r, n_red)):
        if np.any(r[:, 0] > r[:, 1]) or np.any(r[:, 0] < 0) or np.any(r[:, 1] > bound):
            raise ArgumentError(
                f"ranges: every [start, end) of {name} needs 0 <= start <= end <= {bound}"
            )
    return Ranges(out_r, slices, red_r)


def _int_array(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ArgumentError(f"ranges: {name} must be an integer array, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _outputs(
    plan: ReductionPlan,
    kinds: Sequence[tuple[tuple[int, ...], np.dtype]],
    user_dtype: np.dtype,
    out: Any,
    adapter: ArrayAdapter,
    device: Device,
) -> tuple[Any, ...]:
    """The buffers a backend fills for a given ``out=``: its arrays when they have the
    computation dtype, new ones (copied into ``out`` by the caller) for float16 values."""
    spec = SPECS[plan.reduction]
    given = tuple(out) if isinstance(out, list | tuple) else (out,)
    if len(given) != len(kinds):
        raise ArgumentError(
            f"out: {plan.reduction} returns {len(kinds)} array(s), got {len(given)} in out="
        )
    buffers = []
    for o, (shape, kind), spec_out in zip(given, kinds, spec.outputs):
        want = kind if spec_out.index else user_dtype
        if not adapter.owns(o):
            raise ArgumentError(f"out: expected {adapter.noun}, got {type(o).__name__}")
        if tuple(adapter.shape(o)) != shape or adapter.dtype(o) != want:
            raise ArgumentError(
                f"out: expected shape {shape} and dtype {want}, got {tuple(adapter.shape(o))} "
                f"and {adapter.dtype(o)}"
            )
        if adapter.device(o) != device:
            raise ArgumentError(
                f"out: the output is on {adapter.device(o)}, the inputs on {device}"
            )
        if not adapter.usable_out(o):
            raise ArgumentError("out: the output array must be C-contiguous and writeable")
        buffers.append(o if want == kind else adapter.empty(shape, kind, device))
    return tuple(buffers)
