"""KeOps's ``pykeops.common.lazy_tensor``: the array-library-neutral LazyTensor classes.

``isinstance(x, GenericLazyTensor)`` holds for the LazyTensors of both front ends.
"""

from __future__ import annotations

from ..lazytensor import ComplexGenericLazyTensor, GenericLazyTensor

__all__ = ["ComplexGenericLazyTensor", "GenericLazyTensor"]
