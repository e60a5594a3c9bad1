"""Cluster utilities on NumPy arrays (KeOps's ``pykeops.numpy.cluster``, SPEC §4.7).

A thin adapter: :class:`NumpyOps` implements the primitives of
:class:`lazykernels.cluster.ArrayOps`, and the public functions are the
array-library-neutral ones of :mod:`lazykernels.cluster` bound to it
(:func:`lazykernels.cluster.front_end`).

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
from ..cluster import swap_axes  # noqa: F401 (in PUBLIC_NAMES)

__all__ = ["NumpyOps", *_core.PUBLIC_NAMES]


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
_API = _core.front_end(NUMPY, __name__, "array", "np.array")
(
    grid_cluster,
    sort_clusters,
    cluster_ranges,
    cluster_centroids,
    cluster_ranges_centroids,
    from_matrix,
) = _API
__test__ = {f.__name__: f for f in _API}  # doctest: run their examples here (made elsewhere)
