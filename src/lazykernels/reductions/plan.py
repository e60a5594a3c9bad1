"""The contract between ``Genred`` and the backends: a reduction plan and a bound call.

``Genred`` parses the formula and aliases once into a :class:`ReductionPlan` (what to
compute). Each call validates the user's arrays into a :class:`BoundCall` (on what, with
which output buffers). A backend is a function ``run(call: BoundCall) -> None`` that fills
``call.outputs`` with the *final* user-level results of ``plan.reduction`` (exactly what
``Genred`` returns, see :mod:`lazykernels.reductions`); every backend must agree with the
NumPy reference backend.

It sits in the reductions layer, below code generation and the core, because every layer
above reads plans (:mod:`lazykernels.core.plan` re-exports it for backends and front ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..formula.ir import Cat, Node

SUM_SCHEMES = ("direct_sum", "block_sum", "kahan_scheme")


@dataclass(frozen=True)
class ArgSlot:
    """One input of a reduction: call position, vector dimension and category."""

    position: int
    dim: int
    cat: Cat
    name: str | None = None  # the alias name, for error messages

    def describe(self) -> str:
        label = f"'{self.name}'" if self.name else f"#{self.position}"
        kind = {Cat.I: "Vi", Cat.J: "Vj", Cat.PARAM: "Pm"}[self.cat]
        return f"argument {label} ({kind}({self.position},{self.dim}))"


@dataclass(frozen=True)
class ReductionPlan:
    """What to compute: ``reduction`` over the non-output index of ``formula``.

    Attributes:
        formula: the map F(x_i, y_j, p), simplified.
        reduction: a canonical name, a key of :data:`lazykernels.reductions.SPECS`.
        output_cat: ``Cat.I`` when the output is indexed by i (the sum runs over j, KeOps
            ``axis=1``), ``Cat.J`` when it is indexed by j (KeOps ``axis=0``).
        weight: the second formula of the LogSumExpWeight / SumSoftMaxWeight /
            Max_SumShiftExpWeight reductions, else None.
        k: K of the KMin family, else None.
        slots: every input, ordered by position (``slots[p].position == p``).
        dtype_acc: accumulator dtype name ("float32"/"float64"), or None for the data dtype.
        sum_scheme: one of ``SUM_SCHEMES`` (already resolved from "auto").
        gemm: the dot-product path of high-dimensional inner products
            (``lazykernels.cpu.gemm``): "auto" (taken when the call's error bound allows),
            "on" or "off".
    """

    formula: Node
    reduction: str
    output_cat: Cat
    slots: tuple[ArgSlot, ...]
    weight: Node | None = None
    k: int | None = None
    dtype_acc: str | None = None
    sum_scheme: str = "block_sum"
    gemm: str = "auto"

    @property
    def reduced_cat(self) -> Cat:
        """The category summed over (the opposite of ``output_cat``)."""
        return self.output_cat.opposite()


@dataclass(frozen=True)
class Ranges:
    """Block-sparse ranges for the reduction actually run (already oriented for the axis).

    ``ranges_out[c] = [start, end)`` is the c-th block of output rows; the reduction indices
    of that block are the union of ``redranges[slices[c-1]:slices[c]]`` (``slices[-1] = 0``).
    With batch dimensions, indices are local to each batch entry. int64, contiguous.
    """

    ranges_out: np.ndarray  # (C, 2)
    slices: np.ndarray  # (C,)
    redranges: np.ndarray  # (S, 2)


@dataclass(frozen=True)
class Device:
    """Where a call's arrays live: ``kind`` ("cpu" or "cuda"), the GPU's ``index`` (-1 on
    the host) and the ``stream`` a GPU kernel runs on (0: the default stream)."""

    kind: str = "cpu"
    index: int = -1
    stream: int = 0

    @property
    def is_host(self) -> bool:
        return self.kind == "cpu"

    def __str__(self) -> str:
        return self.kind if self.index < 0 else f"{self.kind}:{self.index}"


HOST = Device()
"""The host (CPU memory)."""


@dataclass
class BoundCall:
    """A validated call: the plan, the inputs and the output buffers to fill.

    Attributes:
        plan: the reduction plan.
        arrays: one array per slot, dtype ``dtype``, as the array library holds it (ask
            ``adapter`` for pointers, strides, host views: :mod:`lazykernels.core.arrays`;
            :meth:`host_arrays` gives NumPy views of host memory). Shapes are
            ``batch + (n, dim)`` for i/j variables and ``batch + (dim,)`` for parameters,
            where each batch entry is 1 (broadcast) or ``batch_shape[k]``
            (``len(batch) == len(batch_shape)``).
            Arrays may be non-contiguous; backends that need contiguity copy.
        dtype: the computation dtype (float16 inputs are computed in float32 and only
            cast back by Genred, so backends see float32 or float64).
        batch_shape: broadcast batch shape (empty without batch dimensions).
        ni, nj: numbers of i and j indices.
        ranges: block-sparse ranges for this reduction, or None.
        outputs: arrays to fill, shaped ``batch_shape + (n_out, ...)`` per the reduction's
            output rule (values in ``dtype``, indices in int64), C-contiguous.
        device_id: the GPU a GPU backend runs on (KeOps's ``device_id``; -1: the default).
        adapter: the array library's adapter (``lazykernels.core.arrays.ArrayAdapter``);
            None: the arrays are NumPy arrays.
        device: where ``arrays`` and ``outputs`` live.
    """

    plan: ReductionPlan
    arrays: tuple[np.ndarray, ...]
    dtype: np.dtype
    batch_shape: tuple[int, ...]
    ni: int
    nj: int
    ranges: Ranges | None
    outputs: tuple[np.ndarray, ...] = field(default_factory=tuple)
    device_id: int = -1
    adapter: Any = None
    device: Device = HOST

    def host_arrays(self) -> tuple[np.ndarray, ...]:
        """The inputs as NumPy arrays: views of host memory (copies of device memory)."""
        if self.adapter is None:
            return self.arrays
        return tuple([self.adapter.to_host(a) for a in self.arrays])

    def host_outputs(self) -> tuple[np.ndarray, ...]:
        """The outputs as NumPy arrays; views (written in place) for host memory."""
        if self.adapter is None:
            return self.outputs
        return tuple([self.adapter.to_host(o) for o in self.outputs])

    @property
    def n_out(self) -> int:
        return self.ni if self.plan.output_cat is Cat.I else self.nj

    @property
    def n_red(self) -> int:
        return self.nj if self.plan.output_cat is Cat.I else self.ni
