"""The LazyTensor reduction table shared by the NumPy and PyTorch LazyTensor tests.

``REDUCTIONS`` is a table (id, lazy call, dense reference): the lazy call gets the scalar
kernel ``K = -|x_i - y_j|^2``, the vector formula ``H = K * W`` and the positive weight
``W = c_i * b_j`` (dim 2), and the KeOps axis keyword; the dense reference gets the same
values as arrays ``(..., M, N, D)`` and the reduced axis (-3 over i, -2 over j).
:func:`run_reduction_case` runs one row with a front end's LazyTensor class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

M, N, BATCH = 5, 4, 2


def make(dtype, batch: bool, lazytensor: type, convert: Callable = np.asarray):
    """``(K, K * W, W)`` built with ``lazytensor`` from ``convert``-ed data, and the dense
    float64 ``(F, F * G, G)``."""
    rng = np.random.default_rng(7)
    b = (BATCH,) if batch else ()
    x = rng.normal(size=(*b, M, 1, 2)).astype(dtype)
    y = rng.normal(size=(*b, 1, N, 2)).astype(dtype)
    c = rng.uniform(0.5, 1.5, size=(*b, M, 1, 2)).astype(dtype)
    w = rng.uniform(0.5, 1.5, size=(*b, 1, N, 2)).astype(dtype)
    K = -lazytensor(convert(x)).sqdist(lazytensor(convert(y)))
    W = lazytensor(convert(c)) * lazytensor(convert(w))
    F = -((x - y) ** 2).sum(-1, keepdims=True).astype(np.float64)
    G = (c * w).astype(np.float64)
    return (K, K * W, W), (F, F * G, G)


def _kfirst(values: np.ndarray, r: int, k: int, arg: bool) -> np.ndarray:
    """The k smallest (or their indices) along r, as (..., n, k, D), squeezed when D == 1."""
    order = np.argsort(values, axis=r, kind="stable")
    out = order if arg else np.take_along_axis(values, order, axis=r)
    out = np.take(out, range(k), axis=r)
    if r == -3:
        out = np.moveaxis(out, -3, -2)
    return out[..., 0] if out.shape[-1] == 1 else out


def _lse(F, G, r):
    return np.log((np.exp(F) * G).sum(r))


REDUCTIONS = [
    ("sum", lambda K, H, W, a: K.sum(**a), lambda F, H, G, r: F.sum(r)),
    ("sum_vector", lambda K, H, W, a: H.sum(**a), lambda F, H, G, r: H.sum(r)),
    ("sum_reduction", lambda K, H, W, a: H.sum_reduction(**a), lambda F, H, G, r: H.sum(r)),
    ("logsumexp", lambda K, H, W, a: K.logsumexp(**a), lambda F, H, G, r: _lse(F, 1.0, r)),
    (
        "logsumexp_reduction",
        lambda K, H, W, a: K.logsumexp_reduction(**a),
        lambda F, H, G, r: _lse(F, 1.0, r),
    ),
    (
        "logsumexp_weight",
        lambda K, H, W, a: K.logsumexp(weight=W, **a),
        lambda F, H, G, r: _lse(F, G, r),
    ),
    (
        "logsumexp_other",
        lambda K, H, W, a: K.logsumexp(other=W, **a),
        lambda F, H, G, r: _lse(F, G, r),
    ),
    (
        "sumsoftmaxweight",
        lambda K, H, W, a: K.sumsoftmaxweight(W, **a),
        lambda F, H, G, r: (np.exp(F) * G).sum(r) / np.exp(F).sum(r),
    ),
    (
        "sumsoftmaxweight_reduction",
        lambda K, H, W, a: K.sumsoftmaxweight_reduction(weight=W, **a),
        lambda F, H, G, r: (np.exp(F) * G).sum(r) / np.exp(F).sum(r),
    ),
    ("min", lambda K, H, W, a: H.min(**a), lambda F, H, G, r: H.min(r)),
    ("max", lambda K, H, W, a: H.max(**a), lambda F, H, G, r: H.max(r)),
    ("min_reduction", lambda K, H, W, a: H.min_reduction(**a), lambda F, H, G, r: H.min(r)),
    ("max_reduction", lambda K, H, W, a: H.max_reduction(**a), lambda F, H, G, r: H.max(r)),
    ("__min__", lambda K, H, W, a: H.__min__(**a), lambda F, H, G, r: H.min(r)),
    ("__max__", lambda K, H, W, a: H.__max__(**a), lambda F, H, G, r: H.max(r)),
    ("argmin", lambda K, H, W, a: H.argmin(**a), lambda F, H, G, r: H.argmin(r)),
    ("argmax", lambda K, H, W, a: H.argmax(**a), lambda F, H, G, r: H.argmax(r)),
    (
        "argmin_reduction",
        lambda K, H, W, a: K.argmin_reduction(**a),
        lambda F, H, G, r: F.argmin(r),
    ),
    (
        "argmax_reduction",
        lambda K, H, W, a: K.argmax_reduction(**a),
        lambda F, H, G, r: F.argmax(r),
    ),
    (
        "min_argmin",
        lambda K, H, W, a: H.min_argmin(**a),
        lambda F, H, G, r: (H.min(r), H.argmin(r)),
    ),
    (
        "max_argmax",
        lambda K, H, W, a: H.max_argmax_reduction(**a),
        lambda F, H, G, r: (H.max(r), H.argmax(r)),
    ),
    ("Kmin", lambda K, H, W, a: K.Kmin(3, **a), lambda F, H, G, r: _kfirst(F, r, 3, False)),
    (
        "Kmin_vector",
        lambda K, H, W, a: H.Kmin_reduction(K=2, **a),
        lambda F, H, G, r: _kfirst(H, r, 2, False),
    ),
    ("argKmin", lambda K, H, W, a: K.argKmin(3, **a), lambda F, H, G, r: _kfirst(F, r, 3, True)),
    (
        "argKmin_reduction",
        lambda K, H, W, a: H.argKmin_reduction(K=2, **a),
        lambda F, H, G, r: _kfirst(H, r, 2, True),
    ),
    (
        "Kmin_argKmin",
        lambda K, H, W, a: K.Kmin_argKmin(2, **a),
        lambda F, H, G, r: (_kfirst(F, r, 2, False), _kfirst(F, r, 2, True)),
    ),
    (
        "Kmin_argKmin_reduction",
        lambda K, H, W, a: H.Kmin_argKmin_reduction(K=2, **a),
        lambda F, H, G, r: (_kfirst(H, r, 2, False), _kfirst(H, r, 2, True)),
    ),
    (
        "generic_reduction",
        lambda K, H, W, a: H.reduction("Sum", **a),
        lambda F, H, G, r: H.sum(r),
    ),
]


def run_reduction_case(
    case, axis: int, dtype, batch: bool, lazytensor: type, convert: Callable = np.asarray
) -> tuple[tuple[Any, ...], tuple[np.ndarray, ...]]:
    """One row of ``REDUCTIONS`` on the reference backend: ``(got, expected)`` as tuples of
    the same length (one entry, or values and indices)."""
    name, lazy, dense = case
    (K, H, W), (F, Hd, G) = make(dtype, batch, lazytensor, convert)
    nb = 1 if batch else 0
    key = "dim" if name.endswith("reduction") else "axis"  # both spellings are accepted
    got = lazy(K, H, W, {key: nb + axis, "backend": "reference"})
    expected = dense(F, Hd, G, -3 if axis == 0 else -2)
    got_t = got if isinstance(got, tuple) else (got,)
    exp_t = expected if isinstance(expected, tuple) else (expected,)
    assert len(got_t) == len(exp_t)
    return got_t, exp_t
