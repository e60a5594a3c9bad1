"""KeOps's ``pykeops.common.operations``: the conjugate-gradient solver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ArgumentError


def ConjugateGradientSolver(  # noqa: N802 (KeOps's name)
    binding: str, linop: Callable[[Any], Any], b: Any, eps: float = 1e-6
) -> Any:
    """Solve ``linop(a) = b`` (symmetric positive definite) by conjugate gradient.

    Args:
        binding: ``"numpy"`` or ``"torch"``: the array library of ``b``.
        linop: the linear map, from and to arrays shaped like ``b``.
        b: the right-hand side, ``(n,)`` or ``(n, D)`` (one system per column).
        eps: tolerance: a column stops when its squared residual is below ``n * eps**2``.

    Returns:
        The solution, shaped like ``b``.
    """
    from ..solve import conjugate_gradient  # import cost

    if binding == "numpy":
        from ..numpy.lazytensor import NUMPY_TOOLS as tools  # torch is optional
    elif binding in ("torch", "pytorch"):
        from ..torch.lazytensor import TORCH_TOOLS as tools  # torch is optional
    else:
        raise ArgumentError(f"unknown binding {binding!r}: expected 'numpy' or 'torch'")
    shape = tools.shape(b)
    if len(shape) == 1:
        column = tools.reshape(b, (shape[0], 1))
        solution = conjugate_gradient(
            lambda a: tools.reshape(linop(tools.reshape(a, shape)), (shape[0], 1)),
            column,
            tools,
            eps,
        )
        return tools.reshape(solution, shape)
    return conjugate_gradient(linop, b, tools, eps)


__all__ = ["ConjugateGradientSolver"]
