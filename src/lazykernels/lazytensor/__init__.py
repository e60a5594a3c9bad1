"""LazyTensor: symbolic matrices ``K[i, j] = F(x_i, y_j)`` built with Python operators.

Pipeline position: a LazyTensor wraps a formula IR node (built through the shared operator
surface, :mod:`lazykernels.formula.surface`) plus the arrays bound to its variables. Its
reduction methods build a :class:`~lazykernels.core.plan.ReductionPlan` straight from the
node and run it through the array library's adapter (:class:`.tools.ArrayTools`).

- :mod:`.core`: ``GenericLazyTensor`` (construction, operands, shapes, transposition);
- :mod:`.state`: the state (bound arrays, batch dims, sizes, dtype) an operation merges;
- :mod:`.reductions`: the reduction methods, ``@``, ``matvec``, ``solve``;
- :mod:`.plan_cache`: the plans of reductions by the structure of their expression;
- :mod:`.pending`: the dimension checks of operations and their nodes, built when first read;
- :mod:`.complex`: ``ComplexGenericLazyTensor``;
- :mod:`.tools`: the adapter interface an array library implements;
- :mod:`.frontend`: ``wire_front_end``, which links a front end's real and complex classes
  and makes its ``Vi`` / ``Vj`` / ``Pm``.

The front ends (:mod:`lazykernels.numpy.lazytensor`, :mod:`lazykernels.torch.lazytensor`)
only subclass these with their ``tools`` and call ``wire_front_end``.
"""

from __future__ import annotations

from .complex import ComplexGenericLazyTensor
from .core import GenericLazyTensor
from .tools import ArrayTools

__all__ = ["ArrayTools", "ComplexGenericLazyTensor", "GenericLazyTensor"]
