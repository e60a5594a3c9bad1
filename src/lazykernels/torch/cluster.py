"""Cluster utilities on torch tensors (KeOps's ``pykeops.torch.cluster``, SPEC §4.7).

A thin adapter: :class:`TorchOps` implements the primitives of
:class:`lazykernels.cluster.ArrayOps` with torch operations (so results stay on the
inputs' device, and centroids are differentiable with respect to ``x`` and ``weights``),
and the public functions are those of :mod:`lazykernels.cluster` bound to it
(:func:`lazykernels.cluster.front_end`). Two differ from the NumPy version, as in KeOps:
:func:`grid_cluster` subtracts ``x.min(0)`` before binning and runs under
``torch.no_grad()``, and :func:`cluster_ranges_centroids` clamps the cluster weights to at
least ``min_weight``.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import cluster as _core
from ..cluster import swap_axes  # noqa: F401 (in PUBLIC_NAMES)

__all__ = ["TorchOps", *_core.PUBLIC_NAMES]


class TorchOps:
    """The :class:`lazykernels.cluster.ArrayOps` primitives for torch."""

    name = "torch tensor"

    def asarray(self, value: Any) -> torch.Tensor:
        return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)

    def kind(self, a: torch.Tensor) -> str:
        if a.dtype == torch.bool:
            return "bool"
        if a.dtype.is_floating_point:
            return "float"
        return "other" if a.dtype.is_complex else "int"

    def _float_dtype(self, ref: torch.Tensor) -> torch.dtype:
        return ref.dtype if ref.dtype.is_floating_point else torch.float64

    def like(self, value: Any, ref: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(value, dtype=self._float_dtype(ref), device=ref.device)

    def int64(self, a: torch.Tensor) -> torch.Tensor:
        return a.to(torch.int64).contiguous()

    def floor(self, a: torch.Tensor) -> torch.Tensor:
        return torch.floor(a)

    def all_finite(self, a: torch.Tensor) -> bool:
        return bool(torch.isfinite(a).all())

    def unique_rows_inverse(self, a: torch.Tensor) -> torch.Tensor:
        _, inverse = torch.unique(a, sorted=True, return_inverse=True, dim=0)
        return inverse.to(torch.int64)

    def argsort_stable(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sort(a, stable=True).indices

    def bincount(self, lab: torch.Tensor, n: int) -> torch.Tensor:
        return torch.bincount(lab, minlength=n).to(torch.int64)

    def segment_sum(self, values: torch.Tensor, lab: torch.Tensor, n: int) -> torch.Tensor:
        zeros = values.new_zeros((n, *values.shape[1:]))
        return zeros.index_add(0, lab, values)

    def cumsum(self, a: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(a, 0)

    def column_pairs(self, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        return torch.stack([start, end], dim=1).to(torch.int64)

    def nonzero(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        return rows, cols

    def ones(self, n: int, ref: torch.Tensor) -> torch.Tensor:
        return torch.ones(n, dtype=self._float_dtype(ref), device=ref.device)

    def divide(self, num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return num / den

    def clamp_min(self, a: torch.Tensor, low: float) -> torch.Tensor:
        return a.clamp(min=low)


TORCH = TorchOps()
_API = _core.front_end(TORCH, __name__, "tensor", "torch.tensor")
_, sort_clusters, cluster_ranges, cluster_centroids, _, from_matrix = _API  # 2 defined below
__test__ = {f.__name__: f for f in (sort_clusters, cluster_ranges, cluster_centroids, from_matrix)}


def grid_cluster(x: Any, size: Any) -> torch.Tensor:
    """Compact labels of the cubic voxels of side ``size``, counted from ``x.min(0)``.

    Runs under ``torch.no_grad()``.

    Args:
        x: (M, D) points (any D).
        size: voxel side, a positive float or a (D,) tensor.

    Returns:
        (M,) int64 labels in ``0..C-1`` (voxels numbered in lexicographic order), on x's
        device.

    Example:
        >>> grid_cluster(torch.tensor([[0.5], [3.2], [0.9], [-0.1]]), 1.0)
        tensor([0, 2, 1, 0])
    """
    with torch.no_grad():
        x = TORCH.asarray(x)
        if x.ndim == 2 and x.shape[0] > 0 and TORCH.kind(x) in ("int", "float"):
            x = x - x.min(0).values
        return _core.grid_cluster(TORCH, x, size)


def cluster_ranges_centroids(
    x: Any, lab: Any, weights: Any = None, min_weight: float = 1e-9
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ranges, centroids, weights_c)`` of the clusters ``0..max(lab)``.

    The cluster weights are clamped to at least ``min_weight`` (so an empty cluster gets a
    zero centroid rather than NaN).

    Example:
        >>> x = torch.tensor([[0.0], [2.0], [5.0]])
        >>> r, c, w = cluster_ranges_centroids(x, torch.tensor([0, 0, 1]))
        >>> r.tolist(), c.ravel().tolist(), w.tolist()
        ([[0, 2], [2, 3]], [1.0, 5.0], [2.0, 1.0])
    """
    return _core.cluster_ranges_centroids(TORCH, x, lab, weights, min_weight)
