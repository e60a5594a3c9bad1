"""JAX front end: KeOps's API (``Genred``, ``LazyTensor``, ``Vi``/``Vj``/``Pm``,
``KernelSolve``) on JAX arrays.

Every reduction is one JAX primitive (:mod:`lazykernels.jax.primitive`) with abstract
evaluation, batching (``vmap``), JVP and transpose rules, so reductions work under
``jax.jit``, ``lax.scan`` / ``lax.while_loop``, ``vmap``, and ``grad`` / ``jacfwd`` /
``jacrev`` / ``hessian`` to any order. CPU only: under ``jit`` (and eagerly) the compiled
kernel runs on XLA's buffers through an XLA FFI custom call (:mod:`lazykernels.jax.ffi`:
a C++ handler built by our JIT, or a ctypes one as the fallback). Needs
``pip install lazykernels[jax]``.
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
