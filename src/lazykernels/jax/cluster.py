"""Cluster utilities for the JAX front end (KeOps's ``cluster`` helpers, SPEC §4.7).

Clustering has data-dependent shapes (one range per non-empty cluster), and block-sparse
``ranges=`` are static parameters of a jitted reduction, so these helpers run outside
``jax.jit``, on concrete arrays: they are the NumPy ones (:mod:`lazykernels.numpy.cluster`)
reading JAX arrays, and return NumPy arrays (ranges, labels, centroids) that pass to
``ranges=`` as they are and to ``jax.numpy`` functions like any array.

Example:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0.1, 0.1], [2.5, 0.2], [0.3, 0.4], [2.2, 0.9]])
    >>> grid_cluster(x, 1.0).tolist()
    [0, 1, 0, 1]
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .. import cluster as _core
from ..cluster import swap_axes  # noqa: F401 (in PUBLIC_NAMES)
from ..numpy.cluster import NumpyOps

__all__ = ["JaxOps", *_core.PUBLIC_NAMES]


class JaxOps(NumpyOps):
    """The :class:`lazykernels.cluster.ArrayOps` primitives on concrete JAX arrays."""

    name = "concrete JAX array (the cluster helpers run outside jax.jit)"

    def asarray(self, value: Any) -> np.ndarray:
        if isinstance(value, jax.core.Tracer):  # the core reports it, naming the argument
            raise TypeError("a traced value")
        return np.asarray(value)


JAX = JaxOps()
(
    grid_cluster,
    sort_clusters,
    cluster_ranges,
    cluster_centroids,
    cluster_ranges_centroids,
    from_matrix,
) = _core.front_end(JAX, __name__, "concrete JAX or NumPy array", "np.array")
