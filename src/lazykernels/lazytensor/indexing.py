"""Indexing a LazyTensor along its vector (last) axis: ``x[k]``, ``x[..., a:b:s]``.

Only the last axis of a LazyTensor can be indexed: its leading axes (batch, i, j) are the
axes that reductions run over. The key may spell them as ``...`` or as full slices ``:``
(one per axis), as NumPy and PyTorch code does (``x_i[..., 0]``, ``x[:, :, 1:3]``); a bare
``x[k]`` indexes the last axis too, as in KeOps. The last entry is an integer (negative
counts from the end) or a slice with any step. The selected components become ``Elem``
(one integer), ``Extract`` (a run of consecutive components) or a ``Concat`` of those
(other steps). In a ComplexLazyTensor each complex component is two interleaved reals.
"""

from __future__ import annotations

import numbers
from typing import Any

from ..errors import IndexingError


def last_axis_key(key: Any, naxes: int) -> Any:
    """The part of ``key`` that indexes the last of ``naxes`` axes.

    Raises:
        IndexingError: the key indexes another axis, has two ellipses or too many entries.
    """
    if not isinstance(key, tuple):
        if key is Ellipsis:
            return slice(None)
        return key
    entries = list(key)
    ellipses = sum(1 for k in entries if k is Ellipsis)
    if ellipses > 1:
        raise IndexingError("LazyTensor indexing: an index can only have a single ellipsis ('...')")
    if not entries:
        return slice(None)
    explicit = len(entries) - ellipses
    usage = (
        f"only the last axis can be indexed: x[k], x[..., k] or "
        f"x[{':, ' * (naxes - 1)}k] (k an integer or a slice)"
    )
    if explicit > naxes or (ellipses == 0 and explicit != naxes):
        raise IndexingError(
            f"LazyTensor indexing: {key!r} has {explicit} entries for a LazyTensor with "
            f"{naxes} axes; {usage}"
        )
    *leading, last = entries
    for k in leading:
        if k is not Ellipsis and not (isinstance(k, slice) and k == slice(None)):
            raise IndexingError(f"LazyTensor indexing: got {key!r}; {usage}")
    return slice(None) if last is Ellipsis else last


def selected_components(key: Any, size: int) -> list[int] | int:
    """Indices of the components of a vector of ``size`` that ``key`` selects.

    Returns an int for an integer key (the result is one component, ``Elem``), a list of
    indices for a slice.

    Raises:
        IndexingError: an out-of-range integer, an empty slice or an unsupported key.
    """
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        k = int(key)
        if not -size <= k < size:
            raise IndexingError(f"index {k} is out of range for a vector of dimension {size}")
        return k % size
    if isinstance(key, slice):
        for part in (key.start, key.stop, key.step):
            if part is not None and (
                isinstance(part, bool) or not isinstance(part, numbers.Integral)
            ):
                raise IndexingError(f"LazyTensor slices take integers, got {key!r}")
        if key.step == 0:
            raise IndexingError("LazyTensor slices: the step cannot be zero")
        indices = list(range(*key.indices(size)))
        if not indices:
            raise IndexingError(
                f"the slice {key!r} selects nothing of a vector of dimension {size}"
            )
        return indices
    raise IndexingError(
        f"LazyTensor indexing: unsupported index {key!r} (an integer or a slice of the last "
        f"axis, e.g. x[..., 0] or x[..., 1:3])"
    )


def runs(indices: list[int]) -> list[tuple[int, int]]:
    """``indices`` as (start, length) runs of consecutive ascending components."""
    out: list[tuple[int, int]] = []
    for k in indices:
        if out and out[-1][0] + out[-1][1] == k:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((k, 1))
    return out


def index_last_axis(x: Any, key: Any) -> Any:
    """``x[key]`` for a LazyTensor ``x`` (see the module docstring)."""
    key = last_axis_key(key, len(x._shape))
    width = 2 if x.is_complex else 1
    size = x.ndim // width
    chosen = selected_components(key, size)
    if isinstance(chosen, int):
        return x.elem(chosen) if width == 1 else x.extract(2 * chosen, 2)
    if chosen == list(range(size)):
        return x
    pieces = [x.extract(width * start, width * length) for start, length in runs(chosen)]
    result = pieces[0]
    for piece in pieces[1:]:
        result = result.concat(piece)
    return result


__all__ = ["index_last_axis", "last_axis_key", "runs", "selected_components"]
