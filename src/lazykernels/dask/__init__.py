"""Dask front end: lazykernels reductions on dask arrays, on one machine or a cluster.

``Genred`` and ``LazyTensor`` accept dask arrays for the i- and/or j-variables (NumPy
arrays for the rest) and return lazy dask arrays; ``.compute()`` runs them with dask's
threaded scheduler or on a ``distributed`` cluster. Each task runs the single-process
engine on NumPy blocks. Two plans (:mod:`lazykernels.dask.plans`): i-sharded (the reduced
data broadcast once to each worker) and i x j-sharded (partial states merged by a tree with
the reduction card's own merge, :mod:`lazykernels.reductions.partial`).

Also: gradients through the engine's VJP rules (:func:`vjp`), conjugate gradients with a
distributed matvec (:func:`conjugate_gradient`, ``KernelSolve``, ``LazyTensor.solve``) and
k-nearest-neighbour graphs (:func:`knn_graph`). Needs the ``dask`` extra
(``pip install "lazykernels[dask]"``); ``import lazykernels`` never imports dask.
"""

from __future__ import annotations

try:
    import dask.array  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'lazykernels.dask needs dask[array]: pip install "lazykernels[dask]"'
    ) from err

from .autodiff import vjp
from .genred import Genred, dask_reduce
from .knn import knn_graph
from .lazytensor import KernelSolve, LazyTensor, Pm, Vi, Vj
from .plans import PLANS
from .solve import CGResult, conjugate_gradient

__all__ = [
    "PLANS",
    "CGResult",
    "Genred",
    "KernelSolve",
    "LazyTensor",
    "Pm",
    "Vi",
    "Vj",
    "conjugate_gradient",
    "dask_reduce",
    "knn_graph",
    "vjp",
]
