"""What every LazyTensor front end derives from its two classes: wiring and ``Vi``/``Vj``/``Pm``.

An array library's front end (:mod:`lazykernels.numpy.lazytensor`,
:mod:`lazykernels.torch.lazytensor`) declares its ``LazyTensor`` and ``ComplexLazyTensor``
(each a subclass of the generic class with its ``tools``) and calls :func:`wire_front_end`
once: it links the two classes (a real LazyTensor becomes complex when it meets a complex
operand, and back) and returns KeOps's ``Vi``, ``Vj`` and ``Pm`` helpers for them, with
docstrings that name the library's arrays.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..formula.ir import Cat
from .complex import ComplexGenericLazyTensor
from .core import GenericLazyTensor

# name, summary line, what the result is
_HELPERS = {
    Cat.I: ("Vi", "An i-indexed LazyTensor: ``Vi(x)`` for an (M, D) {array}", "indexed by i"),
    Cat.J: ("Vj", "A j-indexed LazyTensor: ``Vj(y)`` for an (N, D) {array}", "indexed by j"),
    Cat.PARAM: ("Pm", "A parameter: ``Pm(p)`` for a number or a (D,) {array}", "parameter"),
}

# Each helper's docstring; doctest runs its example in the adapter module (its ``__test__``).
_HELPER_DOC = """{summary}, ``{name}(ind, dim)`` symbolic.

Args:
    x_or_ind: the data ({array} or number), or the index of a symbolic variable.
    dim: the dimension of a symbolic variable; None when ``x_or_ind`` is data.

Returns:
    A LazyTensor {role}.

Example:
    >>> {name}({index}, 3).symbolic_variables
    (({index}, 3, {index}),)
"""


class VariableHelper(Protocol):
    """The signature of ``Vi``, ``Vj`` and ``Pm``."""

    def __call__(self, x_or_ind: Any, dim: int | None = None) -> GenericLazyTensor: ...


def _variable_helper(real_cls: type[GenericLazyTensor], cat: Cat, array: str) -> VariableHelper:
    """KeOps's ``Vi`` (cat I), ``Vj`` (J) or ``Pm`` (PARAM) building ``real_cls`` instances."""
    axis = cat.value

    def helper(x_or_ind: Any, dim: int | None = None) -> GenericLazyTensor:
        if dim is None:
            return real_cls(x_or_ind, axis=axis)
        return real_cls((x_or_ind, dim, axis))

    name, summary, role = _HELPERS[cat]
    helper.__name__ = helper.__qualname__ = name
    helper.__module__ = real_cls.__module__
    helper.__doc__ = _HELPER_DOC.format(
        summary=summary.format(array=array), name=name, array=array, role=role, index=axis
    )
    return helper


def wire_front_end(
    real_cls: type[GenericLazyTensor],
    complex_cls: type[ComplexGenericLazyTensor],
    array: str,
) -> tuple[VariableHelper, VariableHelper, VariableHelper]:
    """Link a front end's real and complex LazyTensor classes; return its ``Vi, Vj, Pm``.

    Args:
        real_cls: the front end's ``LazyTensor`` (a :class:`GenericLazyTensor` subclass).
        complex_cls: its ``ComplexLazyTensor`` (a :class:`ComplexGenericLazyTensor` one).
        array: what the library calls an array ("array", "tensor"), for the docstrings.

    Returns:
        ``(Vi, Vj, Pm)``: functions ``(x_or_ind, dim=None)`` building ``real_cls`` instances
        (an i-variable, a j-variable and a parameter), named and documented for the front
        end's module.

    Example:
        >>> from lazykernels.numpy.lazytensor import ComplexLazyTensor, LazyTensor
        >>> Vi, Vj, Pm = wire_front_end(LazyTensor, ComplexLazyTensor, "array")
        >>> Vj(1, 2).symbolic_variables, Vj.__name__, Vj.__module__
        (((1, 2, 1),), 'Vj', 'lazykernels.numpy.lazytensor')
    """
    for cls in (real_cls, complex_cls):
        cls._real_cls = real_cls
        cls._complex_cls = complex_cls
    vi, vj, pm = (_variable_helper(real_cls, cat, array) for cat in (Cat.I, Cat.J, Cat.PARAM))
    return vi, vj, pm


__all__ = ["VariableHelper", "wire_front_end"]
