"""JAX front end: KeOps's API (``Genred``, ``LazyTensor``, ``Vi``/``Vj``/``Pm``,
``KernelSolve``) on JAX arrays.

Every reduction is one JAX primitive (:mod:`lazykernels.jax.primitive`) with abstract
evaluation, batching (``vmap``), JVP and transpose rules, so reductions work under
``jax.jit``, ``lax.scan`` / ``lax.while_loop``, ``vmap``, and ``grad`` / ``jacfwd`` /
``jacrev`` / ``hessian`` to any order. CPU only: the compiled kernel runs on host memory
(under ``jit`` through a host callback). Needs ``pip install lazykernels[jax]``.
"""

from __future__ import annotations

from .genred import (
    Genred,
    generic_argkmin,
    generic_argmin,
    generic_logsumexp,
    generic_sum,
)
from .lazytensor import ComplexLazyTensor, KernelSolve, LazyTensor, Pm, Vi, Vj

__all__ = [
    "ComplexLazyTensor",
    "Genred",
    "KernelSolve",
    "LazyTensor",
    "Pm",
    "Vi",
    "Vj",
    "generic_argkmin",
    "generic_argmin",
    "generic_logsumexp",
    "generic_sum",
]
