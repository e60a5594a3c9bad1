"""Cluster utilities on NumPy arrays (KeOps's ``pykeops.numpy.cluster``, SPEC §4.7).

A thin adapter: :class:`NumpyOps` implements the primitives of
:class:`lazykernels.cluster.ArrayOps` and each public function forwards to the
array-library-neutral implementation in :mod:`lazykernels.cluster`.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.1, 0.1], [2.5, 0.2], [0.3, 0.4], [2.2, 0.9]])
    >>> lab = grid_cluster(x, 1.0)
    >>> lab
    array([0, 1, 0, 1])
    >>> ranges, centroids, weights = cluster_ranges_centroids(x, lab)
    >>> ranges
    array([[0, 2],
           [2, 4]])
    >>> x_sorted, lab_sorted = sort_clusters(x, lab)
    >>> keep = np.array([[True, False], [True, True]])
    >>> ranges_ij = from_matrix(ranges, ranges, keep)
    >>> ranges_ij[1], ranges_ij[2]  # slices_i, redranges_j
    (array([1, 3]), array([[0, 2],
           [0, 2],
           [2, 4]]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import cluster as _core
from ..cluster import swap_axes

__all__ = [
    "NumpyOps",
    "cluster_centroids",
    "cluster_ranges",
    "cluster_ranges_centroids",
    "from_matrix",
    "grid_cluster",
    "sort_clusters",
    "swap_axes",
]


class NumpyOps:
    """The :class:`lazykernels.cluster.ArrayOps` primitives for NumPy."""

    name = "NumPy array"

    def asarray(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def kind(self, a: np.ndarray) -> str:
        return {"b": "bool", "i": "int", "u": "int", "f": "float"}.get(a.dtype.kind, "other")

    def like(self, value: Any, ref: np.ndarray) -> np.ndarray:
        dtype = ref.dtype if ref.dtype.kind == "f" else np.float64
        return np.asarray(value, dtype=dtype)

    def int64(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.int64)

    def floor(self, a: np.ndarray) -> np.ndarray:
        return np.floor(a)

    def all_finite(self, a: np.ndarray) -> bool:
        return bool(np.isfinite(a).all())

    def int_bounds(self, a: np.ndarray) -> tuple[int, int]:
        return int(a.min()), int(a.max())

    def unique_rows_inverse(self, a: np.ndarray) -> np.ndarray:
        _, inverse = np.unique(a, axis=0, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64)  # NumPy 2.0.x returned (M, 1)

    def argsort_stable(self, a: np.ndarray) -> np.ndarray:
        return np.argsort(a, kind="stable")

    def bincount(self, lab: np.ndarray, n: int) -> np.ndarray:
        return np.bincount(lab, minlength=n).astype(np.int64)

    def segment_sum(self, values: np.ndarray, lab: np.ndarray, n: int) -> np.ndarray:
        # bincount accumulates in float64, then we cast back to the data dtype
        flat = values.reshape(values.shape[0], -1)
        cols = [np.bincount(lab, weights=flat[:, k], minlength=n) for k in range(flat.shape[1])]
        out = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
        return out.reshape((n, *values.shape[1:])).astype(values.dtype, copy=False)

    def cumsum(self, a: np.ndarray) -> np.ndarray:
        return np.cumsum(a, dtype=np.int64)

    def column_pairs(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return np.stack([start, end], axis=1).astype(np.int64, copy=False)

    def nonzero(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = np.nonzero(mask)
        return rows.astype(np.int64, copy=False), cols.astype(np.int64, copy=False)

    def ones(self, n: int, ref: np.ndarray) -> np.ndarray:
        return np.ones(n, dtype=ref.dtype if ref.dtype.kind == "f" else np.float64)

    def divide(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    def clamp_min(self, a: np.ndarray, low: float) -> np.ndarray:
        return np.maximum(a, np.asarray(low, dtype=a.dtype))


NUMPY = NumpyOps()


def grid_cluster(x: Any, size: Any) -> np.ndarray:
    """Compact labels of the cubic voxels of side ``size`` containing the points ``x``.

    Args:
        x: (M, D) points (any D).
        size: voxel side, a positive float or a (D,) array.

    Returns:
        (M,) int64 labels in ``0..C-1`` (voxels numbered in lexicographic order).

    Example:
        >>> grid_cluster(np.array([[0.5], [3.2], [0.9], [-0.1]]), 1.0)
        array([1, 2, 1, 0])
    """
    return _core.grid_cluster(NUMPY, x, size)


def sort_clusters(x: Any, lab: Any) -> tuple[Any, np.ndarray]:
    """``(x_sorted, lab_sorted)``: x (an array or a tuple/list of arrays) sorted by label.

    Example:
        >>> sort_clusters(np.array([10, 11, 12]), np.array([1, 0, 1]))
        (array([11, 10, 12]), array([0, 1, 1]))
    """
    return _core.sort_clusters(NUMPY, x, lab)


def cluster_ranges(lab: Any, Nlab: Any = None) -> np.ndarray:  # noqa: N803
    """(C, 2) int64 ``[start, end)`` of each cluster in the label-sorted order.

    Example:
        >>> cluster_ranges(np.array([0, 0, 2]))
        array([[0, 2],
               [2, 2],
               [2, 3]])
    """
    return _core.cluster_ranges(NUMPY, lab, Nlab)


def cluster_centroids(
    x: Any,
    lab: Any,
    Nlab: Any = None,  # noqa: N803
    weights: Any = None,
    weights_c: Any = None,
) -> np.ndarray:
    """(C, D) weighted barycentres of the clusters (NaN for an empty cluster).

    Example:
        >>> cluster_centroids(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]))
        array([[1.],
               [5.]])
    """
    return _core.cluster_centroids(NUMPY, x, lab, Nlab, weights, weights_c)


def cluster_ranges_centroids(
    x: Any, lab: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ranges, centroids, weights_c)`` of the clusters ``0..max(lab)``.

    Example:
        >>> r, c, w = cluster_ranges_centroids(np.array([[0.0], [2.0], [5.0]]), [0, 0, 1])
        >>> r.tolist(), c.ravel().tolist(), w.tolist()
        ([[0, 2], [2, 3]], [1.0, 5.0], [2.0, 1.0])
    """
    return _core.cluster_ranges_centroids(NUMPY, x, lab, weights)


def from_matrix(ranges_i: Any, ranges_j: Any, keep: Any) -> tuple[np.ndarray, ...]:
    """KeOps's 6-tuple ``ranges`` from a (Ci, Cj) boolean mask of kept cluster pairs.

    Returns ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)``, int64.
    """
    return _core.from_matrix(NUMPY, ranges_i, ranges_j, keep)
