"""k-nearest-neighbour graphs of dask point clouds."""

from __future__ import annotations

from typing import Any

import dask.array as da

from ..core.genred import build_plan
from ..errors import ArgumentError
from .genred import dask_reduce


def knn_graph(
    x: Any,
    k: int,
    y: Any = None,
    backend: str = "auto",
    plan: str | None = None,
    split_every: int | None = None,
) -> tuple[da.Array, da.Array]:
    """The ``k`` nearest points of ``y`` (default: ``x`` itself) to each point of ``x``.

    An ``ArgKMin`` of the squared Euclidean distance, distributed like any reduction (the
    i-sharded plan broadcasts ``y``; the i x j-sharded one merges per-block K-best lists).
    With ``y`` omitted every point is its own first neighbour (distance 0; on exact ties
    the lower index comes first).

    Args:
        x: ``(M, D)`` dask or NumPy array (float32 or float64).
        k: number of neighbours (at most the number of points of ``y``).
        y: ``(N, D)`` array of candidates, or None for ``x``.
        backend, plan, split_every: as for :class:`lazykernels.dask.Genred`.

    Returns:
        ``(indices, distances)``: ``(M, k)`` int64 indices into ``y`` and the Euclidean
        distances, sorted ascending, dask arrays chunked like ``x``.

    Example:
        >>> import numpy as np
        >>> x = da.from_array(np.array([[0.0], [1.0], [3.0]]), chunks=2)
        >>> idx, dist = knn_graph(x, 2, backend="reference")
        >>> idx.compute().tolist(), dist.compute().tolist()
        ([[0, 1], [1, 0], [2, 1]], [[0.0, 1.0], [0.0, 1.0], [0.0, 2.0]])
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ArgumentError(f"knn_graph: k must be a positive integer, got {k!r}")
    y = x if y is None else y
    d = x.shape[-1] if getattr(x, "ndim", 0) == 2 else 1
    reduction = build_plan(
        "SqDist(x, y)", [f"x = Vi({d})", f"y = Vj({d})"], "KMin_ArgKMin", axis=1, opt_arg=k
    )
    values, indices = dask_reduce(
        reduction, [x, y], backend=backend, sharding=plan, split_every=split_every
    )
    distances = da.sqrt(da.maximum(values, 0))  # rounding may make a SqDist slightly < 0
    return indices, distances


__all__ = ["knn_graph"]
