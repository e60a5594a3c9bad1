"""``LazyTensor.dense()``: the matrix ``K[..., i, j, :] = F(x_i, y_j)`` as an array.

KeOps users ask for it to debug a formula or to hand a small kernel matrix to a dense
solver (KeOps #126, #271, #429). The values are computed by the compiled engine, as one
``Sum`` over a single dummy index of a formula whose rows are the (i, j) *pairs*: every i
variable is repeated N times and every j variable tiled M times, so that row ``i * N + j``
sees ``(x_i, y_j)``. The result is therefore exactly what every reduction of ``K`` sums, it
has the reductions' autograd (torch, any order), and the memory it needs is the output plus
the repeated inputs, which :func:`dense_bytes` counts before anything is allocated.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.genred import build_plan
from ..errors import ArgumentError, DenseSizeError
from ..formula.aliases import Alias
from ..formula.ir import Cat, substitute, var
from .reductions import call_arrays

if TYPE_CHECKING:
    from .core import GenericLazyTensor

_FALLBACK_LIMIT = 8 << 30  # when the physical memory cannot be read


def default_max_bytes() -> int:
    """Half the machine's physical memory (8 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_LIMIT


def _check_materialisable(lt: GenericLazyTensor) -> None:
    if lt._reduction is not None:
        raise ArgumentError(
            "dense(): this LazyTensor is already reduced; call dense() on the LazyTensor "
            "before its reduction"
        )
    symbolic = lt._symbolic_vars()
    if symbolic:
        names = ", ".join(str((v.params[0], v.dim, v.params[2].value)) for v in symbolic)
        raise ArgumentError(
            f"dense(): the LazyTensor has symbolic variables (ind, dim, cat) = {names}, which "
            f"have no values; build it from arrays (LazyTensor(x[:, None, :])) to make it dense"
        )


def dense_bytes(lt: GenericLazyTensor) -> tuple[int, int]:
    """Bytes that :func:`materialise` allocates: (the dense output, the repeated inputs)."""
    pairs = math.prod(lt.batchdims) * (lt.ni or 1) * (lt.nj or 1)
    itemsize = np.dtype(lt.tools.dtype_name(lt._dtype or lt.tools.default_dtype())).itemsize
    inputs = sum(v.dim for v in lt._bindings if v.params[2] is not Cat.PARAM)
    return pairs * lt.node.dim * itemsize, pairs * inputs * itemsize


def materialise(lt: GenericLazyTensor, max_bytes: int | None = None) -> Any:
    """The dense array of ``lt``, of shape ``lt.shape`` (see :meth:`GenericLazyTensor.dense`).

    Raises:
        ArgumentError: ``lt`` is reduced or has symbolic variables.
        DenseSizeError: the dense array (with the repeated inputs) exceeds ``max_bytes``.
    """
    _check_materialisable(lt)
    limit = default_max_bytes() if max_bytes is None else int(max_bytes)
    output, inputs = dense_bytes(lt)
    if output + inputs > limit:
        raise DenseSizeError(
            f"dense(): a LazyTensor of shape {lt.shape} needs {_size(output + inputs)} "
            f"({_size(output)} for the dense array, {_size(inputs)} for its inputs repeated "
            f"per (i, j) pair), more than the limit of {_size(limit)}; reduce it instead, or "
            f"pass max_bytes= to raise the limit"
        )
    tools = lt.tools
    order, mapping = lt._layout()
    arrays = call_arrays(lt, (), [])  # the bound values, batch dims padded, in ``order``
    nb = lt.nbatchdims
    m, n = lt.ni or 1, lt.nj or 1
    rows: dict = {}
    pair_arrays = []
    for position, (v, array) in enumerate(zip(order, arrays)):
        cat = v.params[2]
        if cat is Cat.PARAM:
            rows[mapping[v]] = mapping[v]
            pair_arrays.append(array)
            continue
        rows[mapping[v]] = var(position, v.dim, Cat.I)
        shape = tools.shape(array)
        batch, d = shape[:nb], shape[-1]
        spread = (*batch, m, 1, d) if cat is Cat.I else (*batch, 1, n, d)
        pair_arrays.append(
            tools.expand_reshape(
                tools.reshape(array, spread), (*batch, m, n, d), (*batch, m * n, d)
            )
        )
    dummy = var(len(order), 1, Cat.J)  # the one index summed over
    like = arrays[0] if arrays else None
    dtype = lt._dtype if lt._dtype is not None else tools.default_dtype()
    pair_arrays.append(tools.reshape(tools.from_values([0.0], dtype, like), (1,) * nb + (1, 1)))
    formula = substitute(substitute(lt.node, mapping), rows)
    plan = build_plan(
        formula, [*(Alias(None, rows[mapping[v]]) for v in order), Alias(None, dummy)], "Sum", 1
    )
    (out,) = tools.run_reduction(plan, pair_arrays, backend=lt.backend or "auto")
    out = tools.reshape(out, (*tools.shape(out)[:-2], m, n, lt.node.dim))
    if lt.is_complex:
        out = tools.view_as_complex(out)
    shape = tools.shape(out)
    return tools.reshape(out, shape[:-1]) if shape[-1] == 1 else out  # lt.shape's convention


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
