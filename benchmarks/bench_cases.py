"""The problems of the CPU benchmark suite: inputs, lazykernels routines and independent
dense NumPy references (used both as the "dense NumPy" baseline and as correctness checks).

Gaussian sum: out_i = sum_j exp(-|x_i - y_j|^2 g) b_j with x, y in R^3, b in R^E.
Its gradient w.r.t. x against a cotangent e (E=1): grad_i = -2 g sum_j K_ij b_j e_i (x_i - y_j).
Softmin: out_i = log sum_j exp(-|x_i - y_j|^2 g). K-nearest neighbours: ArgKMin of |x_i - y_j|^2.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from lazykernels.numpy import Genred

GAUSS = "Exp(-SqDist(x,y)*g)*b"
GAMMA = 4.0  # 1 / (2 sigma^2) with sigma ~ 0.35 on the unit cube, as in the limit kernel
K_NEIGHBOURS = 10


def gauss_aliases(e: int) -> list[str]:
    return ["x = Vi(3)", "y = Vj(3)", f"b = Vj({e})", "g = Pm(1)"]


@cache
def gauss(e: int) -> Genred:
    """Gaussian kernel sum, D=3, values of dimension ``e``."""
    return Genred(GAUSS, gauss_aliases(e), reduction_op="Sum", axis=1)


@cache
def gauss_grad() -> Genred:
    """The Grad formula of the Gaussian sum (E=1) w.r.t. x, cotangent e = Vi(1)."""
    return Genred(
        f"Grad({GAUSS}, x, e)", [*gauss_aliases(1), "e = Vi(1)"], reduction_op="Sum", axis=1
    )


@cache
def softmin() -> Genred:
    """LogSumExp of -|x - y|^2 g over j (D=3)."""
    return Genred(
        "-SqDist(x,y)*g", ["x = Vi(3)", "y = Vj(3)", "g = Pm(1)"], reduction_op="LogSumExp", axis=1
    )


@cache
def knn(d: int) -> Genred:
    """Indices of the K nearest y_j of each x_i (ArgKMin of the squared distance)."""
    return Genred(
        "SqDist(x,y)",
        [f"x = Vi({d})", f"y = Vj({d})"],
        reduction_op="ArgKMin",
        opt_arg=K_NEIGHBOURS,
        axis=1,
    )


def points(rng: np.random.Generator, n: int, d: int, dtype: str) -> np.ndarray:
    """``n`` uniform points of the unit cube in R^d (generated directly in ``dtype``)."""
    return rng.random((n, d), dtype=np.dtype(dtype).type)


def gauss_inputs(
    rng: np.random.Generator, m: int, n: int, e: int, dtype: str
) -> tuple[np.ndarray, ...]:
    """(x, y, b, g) of the Gaussian sum."""
    g = np.array([GAMMA], dtype=dtype)
    return points(rng, m, 3, dtype), points(rng, n, 3, dtype), points(rng, n, e, dtype), g


def softmin_inputs(rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, ...]:
    """(x, y, g) of the softmin, float32."""
    x, y, _, g = gauss_inputs(rng, m, n, 1, "float32")
    return x, y, g


# --------------------------------------------------------------------------- dense NumPy


def sqdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The dense M x N matrix of squared distances (GEMM form, clipped at 0)."""
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * (x @ y.T)
    return np.maximum(d, 0, out=d)


def dense_gauss(x, y, b, g) -> np.ndarray:
    return np.exp(-sqdist(x, y) * g[0]) @ b


def dense_gauss_grad(x, y, b, g, e) -> np.ndarray:
    w = np.exp(-sqdist(x, y) * g[0]) * b[:, 0][None, :] * e
    return -2 * g[0] * (w.sum(1)[:, None] * x - w @ y)


def dense_softmin(x, y, g) -> np.ndarray:
    a = -sqdist(x, y) * g[0]
    top = a.max(1, keepdims=True)
    return top + np.log(np.exp(a - top).sum(1, keepdims=True))


def dense_knn(x: np.ndarray, y: np.ndarray, k: int = K_NEIGHBOURS) -> np.ndarray:
    """Indices of the k nearest neighbours, sorted by distance (argpartition, then sort)."""
    d = sqdist(x, y)
    idx = np.argpartition(d, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(d, idx, 1).argsort(1)
    return np.take_along_axis(idx, order, 1)


def exact_knn(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Float64 exact neighbours of the query rows ``rows`` (by blocks of 256 queries)."""
    x64, y64 = x[rows].astype(np.float64), y.astype(np.float64)
    out = [dense_knn(x64[s : s + 256], y64) for s in range(0, len(rows), 256)]
    return np.concatenate(out)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact k neighbours present in ``found`` (order ignored)."""
    hits = [len(np.intersect1d(f, e)) for f, e in zip(found, exact)]
    return float(np.mean(hits)) / exact.shape[1]


def close(got: np.ndarray, want: np.ndarray, dtype: str) -> bool:
    """Agreement of a kernel result with its dense reference, relative to its scale."""
    tol = 2e-3 if np.dtype(dtype) == np.float32 else 1e-7
    scale = float(np.abs(want).max()) or 1.0
    return bool(np.allclose(got, want, rtol=tol, atol=tol * scale))
