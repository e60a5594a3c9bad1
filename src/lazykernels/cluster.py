"""Cluster utilities for block-sparse reductions (SPEC §4.7), array-library neutral.

KeOps's ``ranges`` argument (SPEC §4.2) restricts a reduction to a union of rectangular
blocks of the kernel matrix. These helpers build it from point clouds:

1. :func:`grid_cluster` puts each point in a cubic voxel and returns compact labels;
2. :func:`cluster_ranges_centroids` gives, per cluster, the ``[start, end)`` range its
   points will occupy once sorted, its (weighted) centroid and its total weight;
3. :func:`sort_clusters` sorts the points (and any companion arrays) by label;
4. :func:`from_matrix` turns a boolean cluster-to-cluster mask ``keep`` (typically
   "centroids closer than a cut-off") into the 6-tuple ``ranges`` that ``Genred`` takes;
   :func:`swap_axes` exchanges its i and j halves (for a transposed kernel).

Every function here takes an :class:`ArrayOps` first: a handful of primitives (floor,
unique rows, stable argsort, bincount, segment sum...) that the NumPy and PyTorch adapters
(:mod:`lazykernels.numpy.cluster`, :mod:`lazykernels.torch.cluster`) implement in a few
lines each, so that the logic and the argument checks are written once. Labels and ranges
are int64 arrays of the caller's library (and device). :func:`front_end` binds the functions
to an adapter, giving a library's public KeOps-style functions (no ``xp`` argument), with
their docstrings.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from .errors import ArgumentError, ShapeError

Array = Any  # a NumPy array or a torch tensor, depending on the adapter

RANGE_NAMES = ("ranges_i", "slices_i", "redranges_j", "ranges_j", "slices_j", "redranges_i")


class ArrayOps(Protocol):
    """The array primitives the cluster utilities need from an array library."""

    name: str  # "NumPy array" / "torch tensor", for error messages

    def asarray(self, value: Any) -> Array:
        """``value`` as an array of this library (no copy when it already is one)."""
        ...

    def kind(self, a: Array) -> str:
        """``"bool"``, ``"int"``, ``"float"`` or ``"other"`` (e.g. complex)."""
        ...

    def like(self, value: Any, ref: Array) -> Array:
        """``value`` (scalar or sequence) as a floating array of ``ref``'s dtype/device."""
        ...

    def int64(self, a: Array) -> Array:
        """``a`` cast to a contiguous int64 array."""
        ...

    def floor(self, a: Array) -> Array: ...

    def all_finite(self, a: Array) -> bool: ...

    def unique_rows_inverse(self, a: Array) -> Array:
        """For a (M, D) int64 array, the (M,) int64 index of each row among the sorted
        distinct rows (lexicographic order)."""
        ...

    def argsort_stable(self, a: Array) -> Array: ...

    def bincount(self, lab: Array, n: int) -> Array:
        """int64 counts of each value of ``lab`` in ``0..n-1``."""
        ...

    def segment_sum(self, values: Array, lab: Array, n: int) -> Array:
        """``out[c] = sum(values[lab == c])``: shape ``(n, *values.shape[1:])``, the dtype
        of ``values``; differentiable where the library supports it."""
        ...

    def cumsum(self, a: Array) -> Array: ...

    def column_pairs(self, start: Array, end: Array) -> Array:
        """The (C, 2) int64 array ``[start, end]``."""
        ...

    def nonzero(self, mask: Array) -> tuple[Array, Array]:
        """Row and column int64 indices of the True entries of a 2D mask, row-major."""
        ...

    def ones(self, n: int, ref: Array) -> Array:
        """A (n,) array of ones with ``ref``'s dtype/device."""
        ...

    def divide(self, num: Array, den: Array) -> Array:
        """``num / den`` element-wise; 0 / 0 gives NaN quietly."""
        ...

    def clamp_min(self, a: Array, low: float) -> Array: ...


# --------------------------------------------------------------------------- checks


def _array(xp: ArrayOps, name: str, value: Any) -> Array:
    try:
        return xp.asarray(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ArgumentError(f"{name} must be a {xp.name}, got {type(value).__name__}") from err


def _points(xp: ArrayOps, name: str, value: Any) -> Array:
    """A (M, D) real array."""
    x = _array(xp, name, value)
    if x.ndim != 2:
        raise ShapeError(f"{name} must be a (M, D) array of points, got shape {tuple(x.shape)}")
    if xp.kind(x) not in ("int", "float"):
        raise ArgumentError(f"{name} must hold real numbers, got dtype {x.dtype}")
    return x


def _labels(xp: ArrayOps, value: Any, name: str = "lab", n: int | None = None) -> Array:
    """A (M,) array of non-negative integer labels, as int64."""
    lab = _array(xp, name, value)
    if lab.ndim != 1:
        raise ShapeError(f"{name} must be a 1D array of labels, got shape {tuple(lab.shape)}")
    if xp.kind(lab) != "int":
        raise ArgumentError(f"{name} must hold integer labels, got dtype {lab.dtype}")
    if n is not None and lab.shape[0] != n:
        raise ShapeError(f"{name} has {lab.shape[0]} labels but there are {n} points")
    if lab.shape[0] and int(lab.min()) < 0:
        raise ArgumentError(f"{name} must hold non-negative labels")
    return xp.int64(lab)


def _count(xp: ArrayOps, lab: Array, nlab: Any) -> int:
    """Nlab: the number of clusters, ``max(lab) + 1`` by default."""
    top = int(lab.max()) + 1 if lab.shape[0] else 0
    if nlab is None:
        return top
    try:
        n = int(nlab)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"Nlab must be an integer, got {nlab!r}") from err
    if n != nlab or n < top:
        raise ArgumentError(f"Nlab must be an integer >= max(lab) + 1 = {top}, got {nlab!r}")
    return n


def _weights(xp: ArrayOps, name: str, value: Any, n: int) -> Array:
    w = _array(xp, name, value)
    if w.ndim != 1 or w.shape[0] != n:
        raise ShapeError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    if xp.kind(w) not in ("int", "float"):
        raise ArgumentError(f"{name} must hold real numbers, got dtype {w.dtype}")
    return w


def _range_array(xp: ArrayOps, name: str, value: Any) -> Array:
    """A (C, 2) integer array of ``[start, end)`` pairs, as int64."""
    r = _array(xp, name, value)
    if r.ndim != 2 or r.shape[1] != 2:
        raise ShapeError(f"{name} must have shape (C, 2), got {tuple(r.shape)}")
    if xp.kind(r) != "int":
        raise ArgumentError(f"{name} must be an integer array, got dtype {r.dtype}")
    return xp.int64(r)


# --------------------------------------------------------------------------- functions


def grid_cluster(xp: ArrayOps, x: Any, size: Any) -> Array:
    """Label each point by the cubic voxel of side ``size`` that contains it.

    The voxel of a point is ``floor(x / size)``; the distinct voxels are numbered
    ``0..C-1`` in lexicographic order of their integer coordinates. Any dimension D works
    (KeOps stops at D = 3).

    Args:
        xp: the array adapter.
        x: (M, D) points.
        size: the voxel side, a positive float or a (D,) array of sides.

    Returns:
        (M,) int64 labels, compact: every label in ``0..C-1`` is used.

    Raises:
        ShapeError: x is not (M, D), or size is neither a scalar nor (D,).
        ArgumentError: a non-positive size, or non-finite coordinates.
    """
    x = _points(xp, "x", x)
    d = x.shape[1]
    side = _array(xp, "size", size)
    if xp.kind(side) not in ("int", "float"):
        raise ArgumentError(f"size must be a positive number or a ({d},) array of them")
    if side.ndim > 1 or (side.ndim == 1 and side.shape[0] != d):
        raise ShapeError(f"size must be a scalar or a ({d},) array, got shape {tuple(side.shape)}")
    side = xp.like(side, x)
    if not bool((side > 0).all()) or not xp.all_finite(side):
        raise ArgumentError(f"size must be positive and finite, got {size!r}")
    if not xp.all_finite(x):
        raise ArgumentError("x must hold finite coordinates (found NaN or inf)")
    if x.shape[0] == 0:
        return xp.int64(x[:, 0])
    voxels = xp.int64(xp.floor(x / side))
    return xp.unique_rows_inverse(voxels)


def sort_clusters(xp: ArrayOps, x: Any, lab: Any) -> tuple[Any, Array]:
    """Sort points (and companion arrays) by label, stably.

    Args:
        xp: the array adapter.
        x: an array whose first axis has one entry per label, or a tuple/list of such
            arrays, all permuted together.
        lab: (M,) integer labels.

    Returns:
        ``(x_sorted, lab_sorted)``; ``x_sorted`` has the container type of ``x``.

    Raises:
        ShapeError: lab is not 1D, or an array of x has a first axis other than M.
    """
    lab = _labels(xp, lab)
    perm = xp.argsort_stable(lab)
    if isinstance(x, list | tuple):
        arrays = [_array(xp, f"x[{k}]", a) for k, a in enumerate(x)]
        names = [f"x[{k}]" for k in range(len(arrays))]
    else:
        arrays, names = [_array(xp, "x", x)], ["x"]
    for name, a in zip(names, arrays):
        if a.ndim == 0 or a.shape[0] != lab.shape[0]:
            raise ShapeError(
                f"{name} must have one row per label ({lab.shape[0]}), got shape {tuple(a.shape)}"
            )
    permuted = [a[perm] for a in arrays]
    if isinstance(x, list | tuple):
        return type(x)(permuted), lab[perm]
    return permuted[0], lab[perm]


def cluster_ranges(xp: ArrayOps, lab: Any, Nlab: Any = None) -> Array:  # noqa: N803
    """The ``[start, end)`` range of each cluster in the label-sorted order.

    Args:
        xp: the array adapter.
        lab: (M,) integer labels (sorted or not: the ranges are those of the sorted order).
        Nlab: the number of clusters C (default ``max(lab) + 1``); empty clusters get
            empty ranges.

    Returns:
        (C, 2) int64 ranges.
    """
    lab = _labels(xp, lab)
    n = _count(xp, lab, Nlab)
    counts = xp.bincount(lab, n)
    ends = xp.cumsum(counts)
    return xp.column_pairs(ends - counts, ends)


def cluster_centroids(
    xp: ArrayOps,
    x: Any,
    lab: Any,
    Nlab: Any = None,  # noqa: N803
    weights: Any = None,
    weights_c: Any = None,
) -> Array:
    """The (weighted) barycentre of each cluster.

    ``c[k] = sum_{lab[m] = k} weights[m] x[m] / weights_c[k]``, with ``weights`` ones and
    ``weights_c`` the total weight of each cluster by default. Empty clusters give NaN.

    Args:
        xp: the array adapter.
        x: (M, D) points.
        lab: (M,) integer labels.
        Nlab: the number of clusters C (default ``max(lab) + 1``).
        weights: (M,) point weights.
        weights_c: (C,) cluster weights to divide by.

    Returns:
        (C, D) centroids, in x's dtype.
    """
    x = _points(xp, "x", x)
    lab = _labels(xp, lab, n=x.shape[0])
    n = _count(xp, lab, Nlab)
    w = xp.ones(x.shape[0], x) if weights is None else _weights(xp, "weights", weights, len(x))
    if weights_c is None:
        weights_c = xp.segment_sum(w, lab, n)
    else:
        weights_c = _weights(xp, "weights_c", weights_c, n)
    sums = xp.segment_sum(x * w[:, None], lab, n)
    return xp.divide(sums, weights_c[:, None])


def cluster_ranges_centroids(
    xp: ArrayOps, x: Any, lab: Any, weights: Any = None, min_weight: float | None = None
) -> tuple[Array, Array, Array]:
    """Ranges, centroids and total weights of the clusters ``0..max(lab)``.

    Args:
        xp: the array adapter.
        x: (M, D) points.
        lab: (M,) integer labels.
        weights: (M,) point weights (default ones).
        min_weight: when given, cluster weights are clamped to at least this value before
            dividing (KeOps's torch behaviour), so empty clusters get finite centroids.

    Returns:
        ``(ranges, centroids, weights_c)``: (C, 2) int64, (C, D) and (C,) arrays.
    """
    x = _points(xp, "x", x)
    lab = _labels(xp, lab, n=x.shape[0])
    n = _count(xp, lab, None)
    w = xp.ones(x.shape[0], x) if weights is None else _weights(xp, "weights", weights, len(x))
    ranges = cluster_ranges(xp, lab, n)
    weights_c = xp.segment_sum(w, lab, n)
    if min_weight is not None:
        weights_c = xp.clamp_min(weights_c, min_weight)
    centroids = cluster_centroids(xp, x, lab, n, w, weights_c)
    return ranges, centroids, weights_c


def from_matrix(xp: ArrayOps, ranges_i: Any, ranges_j: Any, keep: Any) -> tuple[Array, ...]:
    """The 6-tuple ``ranges`` of ``Genred`` from a boolean cluster-to-cluster mask.

    Block ``(ci, cj)`` of the kernel matrix, i.e. rows ``ranges_i[ci]`` times columns
    ``ranges_j[cj]``, is computed iff ``keep[ci, cj]``.

    Args:
        xp: the array adapter.
        ranges_i: (Ci, 2) ranges of the i clusters.
        ranges_j: (Cj, 2) ranges of the j clusters.
        keep: (Ci, Cj) boolean mask.

    Returns:
        ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)``, int64:
        ``redranges_j`` lists, cluster after cluster of i, the j ranges kept for it and
        ``slices_i[ci]`` is the cumulative end of cluster ci's list; ``redranges_i`` and
        ``slices_j`` are the same for the columns.

    Raises:
        ShapeError: bad shapes, or keep not (Ci, Cj).
        ArgumentError: ranges not integer, or keep not boolean.
    """
    ranges_i = _range_array(xp, "ranges_i", ranges_i)
    ranges_j = _range_array(xp, "ranges_j", ranges_j)
    mask = _array(xp, "keep", keep)
    shape = (ranges_i.shape[0], ranges_j.shape[0])
    if tuple(mask.shape) != shape:
        raise ShapeError(
            f"keep must have shape (Ci, Cj) = {shape} (one row per i cluster, one column "
            f"per j cluster), got {tuple(mask.shape)}"
        )
    if xp.kind(mask) != "bool":
        raise ArgumentError(f"keep must be a boolean mask, got dtype {mask.dtype}")
    rows, cols = xp.nonzero(mask)  # row-major: for each i cluster, its kept j clusters
    cols_t, rows_t = xp.nonzero(mask.T)  # column-major: for each j cluster, its i clusters
    slices_i = xp.cumsum(xp.bincount(rows, shape[0]))
    slices_j = xp.cumsum(xp.bincount(cols_t, shape[1]))
    return (
        ranges_i,
        slices_i,
        xp.int64(ranges_j[cols]),
        ranges_j,
        slices_j,
        xp.int64(ranges_i[rows_t]),
    )


def swap_axes(ranges: Sequence[Any] | None) -> tuple[Any, ...] | None:
    """Exchange the i and j halves of a ``ranges`` 6-tuple (for the transposed kernel).

    Args:
        ranges: ``None`` or ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j,
            redranges_i)``.

    Returns:
        ``None``, or ``(ranges_j, slices_j, redranges_i, ranges_i, slices_i, redranges_j)``.

    Example:
        >>> swap_axes(("a", "b", "c", "d", "e", "f"))
        ('d', 'e', 'f', 'a', 'b', 'c')
    """
    if ranges is None:
        return None
    if not isinstance(ranges, list | tuple) or len(ranges) != 6:
        raise ArgumentError(f"ranges must be None or a 6-tuple {RANGE_NAMES}")
    return (*ranges[3:6], *ranges[0:3])


# --------------------------------------------------------------------------- front ends


class ClusterFunctions(NamedTuple):
    """The public cluster functions of one array library, bound to its :class:`ArrayOps`."""

    grid_cluster: Callable[[Any, Any], Array]
    sort_clusters: Callable[[Any, Any], tuple[Any, Array]]
    cluster_ranges: Callable[..., Array]
    cluster_centroids: Callable[..., Array]
    cluster_ranges_centroids: Callable[..., tuple[Array, Array, Array]]
    from_matrix: Callable[[Any, Any, Any], tuple[Array, ...]]


# The public docstrings: ``{array}`` is what the library calls an array, ``{new}`` builds one
# from a list (``np.array``); doctest runs the examples in the front end's module.
_DOCS = {
    "grid_cluster": """Compact labels of the cubic voxels of side ``size`` that contain the points.

    Args:
        x: (M, D) points (any D).
        size: voxel side, a positive float or a (D,) {array}.

    Returns:
        (M,) int64 labels in ``0..C-1`` (voxels numbered in lexicographic order).

    Example:
        >>> grid_cluster({new}([[0.5], [3.2], [0.9], [-0.1]]), 1.0).tolist()
        [1, 2, 1, 0]
    """,
    "sort_clusters": """``(x_sorted, lab_sorted)``: x (one {array} or a tuple/list) sorted by label.

    Example:
        >>> x_sorted, lab_sorted = sort_clusters({new}([10, 11, 12]), {new}([1, 0, 1]))
        >>> x_sorted.tolist(), lab_sorted.tolist()
        ([11, 10, 12], [0, 1, 1])
    """,
    "cluster_ranges": """(C, 2) int64 ``[start, end)`` of each cluster in the label-sorted order.

    ``Nlab`` is the number of clusters C (default ``max(lab) + 1``).

    Example:
        >>> cluster_ranges({new}([0, 0, 2])).tolist()
        [[0, 2], [2, 2], [2, 3]]
    """,
    "cluster_centroids": """(C, D) weighted barycentres of the clusters (NaN for an empty cluster).

    ``weights`` are the (M,) point weights (default ones), ``weights_c`` the (C,) cluster
    weights to divide by (default: the total weight of each cluster).

    Example:
        >>> cluster_centroids({new}([[0.0], [2.0], [5.0]]), {new}([0, 0, 1])).tolist()
        [[1.0], [5.0]]
    """,
    "cluster_ranges_centroids": """``(ranges, centroids, weights_c)`` of clusters ``0..max(lab)``.

    Example:
        >>> x, lab = {new}([[0.0], [2.0], [5.0]]), {new}([0, 0, 1])
        >>> r, c, w = cluster_ranges_centroids(x, lab)
        >>> r.tolist(), c.ravel().tolist(), w.tolist()
        ([[0, 2], [2, 3]], [1.0, 5.0], [2.0, 1.0])
    """,
    "from_matrix": """KeOps's 6-tuple ``ranges`` from a (Ci, Cj) boolean mask of kept cluster pairs.

    Returns ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)``, int64
    {array}s.

    Example:
        >>> ranges = {new}([[0, 2], [2, 4]])
        >>> keep = {new}([[True, False], [True, True]])  # i cluster 0 skips j cluster 1
        >>> ranges_i, slices_i, redranges_j, *_ = from_matrix(ranges, ranges, keep)
        >>> slices_i.tolist(), redranges_j.tolist()
        ([1, 3], [[0, 2], [0, 2], [2, 4]])
    """,
}


_CORES: dict[str, Callable[..., Any]] = {
    "grid_cluster": grid_cluster,
    "sort_clusters": sort_clusters,
    "cluster_ranges": cluster_ranges,
    "cluster_centroids": cluster_centroids,
    "cluster_ranges_centroids": cluster_ranges_centroids,
    "from_matrix": from_matrix,
}
PUBLIC_NAMES = (*ClusterFunctions._fields, "swap_axes")  # each front end's, and its ArrayOps


def front_end(xp: ArrayOps, module: str, array: str, new: str) -> ClusterFunctions:
    """The public cluster functions of an array library: this module's, bound to ``xp``.

    Each function has the KeOps signature (no ``xp``), ``__module__`` = ``module`` and a
    docstring that names the library's arrays and whose example builds them with ``new``.
    Run the examples from ``module``'s ``__test__``: doctest skips functions defined in
    another module.

    Args:
        xp: the library's :class:`ArrayOps`.
        module: the front end module's name (``lazykernels.numpy.cluster``).
        array: what the library calls an array ("array", "tensor").
        new: the expression that builds one of its arrays from a list (``np.array``).

    Returns:
        The six functions, by name.

    Example:
        >>> import numpy as np
        >>> from lazykernels.numpy.cluster import NUMPY
        >>> api = front_end(NUMPY, "mine", "array", "np.array")
        >>> api.cluster_ranges(np.array([1, 1])).tolist(), api.cluster_ranges.__module__
        ([[0, 0], [0, 2]], 'mine')
    """
    return ClusterFunctions(
        **{
            name: _bind(core_fn, xp, module, _DOCS[name].format(array=array, new=new))
            for name, core_fn in _CORES.items()
        }
    )


def _bind(core_fn: Callable[..., Any], xp: ArrayOps, module: str, doc: str) -> Callable[..., Any]:
    """``core_fn`` with ``xp`` as its first argument: the signature without ``xp`` (nor the
    torch-only ``min_weight``), named as ``core_fn``, documented by ``doc``."""
    full = inspect.signature(core_fn)
    params = [p for p in list(full.parameters.values())[1:] if p.name != "min_weight"]
    signature = full.replace(parameters=params)

    def public(*args: Any, **kwargs: Any) -> Any:
        try:  # a TypeError that counts the caller's arguments, not core_fn's
            signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{core_fn.__name__}(): {err}") from None
        return core_fn(xp, *args, **kwargs)

    public.__name__ = public.__qualname__ = core_fn.__name__
    public.__module__ = module
    public.__doc__ = doc
    public.__signature__ = signature  # type: ignore[attr-defined]
    return public
