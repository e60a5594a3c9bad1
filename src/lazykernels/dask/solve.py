"""Conjugate gradients whose matvec is a distributed reduction.

:func:`conjugate_gradient` keeps the iterates as dask arrays persisted in memory (on the
cluster with ``distributed``) and computes only the per-column dot products on the client:
two small round trips per iteration. It solves one system per column of ``b`` with the
stopping rule of :func:`lazykernels.solve.conjugate_gradient` (per column,
``sum(r**2) < n * eps**2``), and reports the iterations and the residual
(:class:`CGResult`); ``KernelSolve`` and ``LazyTensor.solve`` of :mod:`lazykernels.dask` use
it and attach that report to the solution (its ``cg`` attribute).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

LOG = logging.getLogger("lazykernels.dask")


@dataclass
class CGResult:
    """What a conjugate-gradient solve did.

    Attributes:
        x: the solution (a persisted dask array).
        iterations: iterations run (matvecs after the first residual).
        residual: per column, the root-mean-square residual ``sqrt(sum(r**2) / n)``.
        converged: every column met ``residual < eps``.
    """

    x: da.Array
    iterations: int
    residual: np.ndarray
    converged: bool


def conjugate_gradient(
    matvec: Callable[[da.Array], da.Array],
    b: Any,
    eps: float = 1e-6,
    max_iter: int | None = None,
) -> CGResult:
    """Solve ``matvec(a) = b`` for a symmetric positive definite linear ``matvec``.

    Args:
        matvec: from a dask array shaped like ``b`` to one of the same shape (e.g.
            ``alpha * a + K @ a`` by a distributed reduction).
        b: right-hand sides ``(n, D)`` (dask or NumPy): one system per column.
        eps: tolerance on each column's root-mean-square residual.
        max_iter: most iterations (default ``10 * n + 100``); a RuntimeWarning says when
            it stopped a column that had not converged.

    Returns:
        The solution and the report (:class:`CGResult`).

    Example:
        >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
        >>> res = conjugate_gradient(lambda v: da.asarray(A) @ v, np.array([[1.0], [2.0]]))
        >>> np.round(res.x.compute().ravel(), 6).tolist(), res.iterations, res.converged
        ([0.090909, 0.636364], 2, True)
    """
    b = da.asarray(b)
    if b.ndim != 2:
        raise ValueError(f"conjugate_gradient: b must be (n, D), got shape {b.shape}")
    # the iterates take the row chunks of the matvec's output (a graph, nothing computed):
    # mixed chunks would make every update a rechunk
    b = b.rechunk((matvec(b).chunks[0], -1))
    n = b.shape[0]
    if max_iter is None:
        max_iter = 10 * n + 100
    tol = n * eps**2
    a = da.zeros_like(b)
    (r,) = dask.persist(b)
    p = r
    rr = _column_dots(r, r)
    iterations = 0
    while iterations < max_iter:
        done = rr < tol
        if done.all():
            break
        (ap,) = dask.persist(matvec(p))
        p_ap = _column_dots(p, ap)
        step = np.where(done, 0.0, rr / np.where(done, 1.0, p_ap)).astype(b.dtype)
        a = a + step * p
        r = r - step * ap
        a, r = dask.persist(a, r)
        rr_new = _column_dots(r, r)
        beta = np.where(done, 0.0, rr_new / np.where(done, 1.0, rr)).astype(b.dtype)
        (p,) = dask.persist(r + beta * p)
        rr = rr_new
        iterations += 1
        LOG.debug("CG iteration %d: rms residual %s", iterations, np.sqrt(rr / max(n, 1)))
    residual = np.sqrt(rr / max(n, 1))
    converged = bool((rr < tol).all())
    if not converged:
        warnings.warn(
            f"conjugate gradient: not converged after max_iter={max_iter} iterations "
            f"(eps={eps}, rms residual {residual.max():.3g}); is alpha Id + K positive "
            f"definite?",
            RuntimeWarning,
            stacklevel=2,
        )
    LOG.info("CG: %d iterations, rms residual %s", iterations, residual)
    return CGResult(a, iterations, residual, converged)


def _column_dots(u: da.Array, v: da.Array) -> np.ndarray:
    return np.asarray((u * v).sum(axis=0).compute(), dtype=np.float64)


__all__ = ["CGResult", "conjugate_gradient"]
