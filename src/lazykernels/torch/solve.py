"""Differentiable kernel solves on torch tensors: ``LazyTensor.solve`` and ``KernelSolve``.

The solution of ``(alpha Id + K(theta)) a = b`` is computed by conjugate gradient
(:func:`lazykernels.solve.conjugate_gradient`) inside :class:`SolveFunction`, a
``torch.autograd.Function``; its backward follows SPEC §4.3, for an incoming gradient G:

- ``grad_b = a~``, the solution of the *transposed* system ``(alpha Id + K^T) a~ = G``
  (another :class:`SolveFunction`, so it is differentiable in turn);
- ``grad_theta = -d/dtheta <a~, K(theta) a>`` at fixed ``a`` and ``a~``: the gradient of
  the Sum reduction ``K a`` with the cotangent ``-a~``, computed by
  :func:`lazykernels.torch.autograd.torch_reduce`'s own backward.

``K^T u`` is the gradient with respect to ``a`` of ``<u, alpha a + K a>`` (K is linear in
``a``), so no transposed formula has to be written by hand and non-symmetric kernels (a
``K(var)`` of ``solve(var=...)``, a KernelSolve formula) are handled too. Every derivative is
built from differentiable operations, so gradients of gradients work to any order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..solve import conjugate_gradient

Apply = Callable[[torch.Tensor, Sequence[torch.Tensor]], torch.Tensor]
"""``apply(a, inputs) = alpha a + K a``, differentiable in ``a`` and ``inputs``."""

_N_STATIC = 4  # SolveFunction's non-differentiable arguments: system, tools, eps, max_iter


@dataclass(frozen=True)
class LinearSystem:
    """The operator ``a -> alpha a + K a`` of a solve, or its transpose.

    Attributes:
        apply: ``apply(a, inputs) = alpha a + K a``.
        transposed: use ``alpha a + K^T a`` instead.
    """

    apply: Apply
    transposed: bool = False

    def __call__(self, a: torch.Tensor, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The operator (or its transpose) applied to ``a``."""
        if not self.transposed:
            return self.apply(a, inputs)
        return _adjoint(self.apply, a, inputs)

    @property
    def T(self) -> LinearSystem:  # noqa: N802 (NumPy's name)
        """The transposed system."""
        return replace(self, transposed=not self.transposed)


def _adjoint(apply: Apply, u: torch.Tensor, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``alpha u + K^T u``: the gradient of ``<u, apply(a)>`` with respect to ``a``.

    Differentiable (in ``u`` and ``inputs``) when gradients are being recorded.
    """
    create = torch.is_grad_enabled()
    with torch.enable_grad():
        a0 = torch.zeros_like(u, requires_grad=True)  # apply is linear in a: any point does
        (grad,) = torch.autograd.grad(apply(a0, inputs), a0, u, create_graph=create)
    return grad


class SolveFunction(torch.autograd.Function):
    """``SolveFunction.apply(system, tools, eps, max_iter, b, *inputs)``: the solution ``a``.

    ``system(a, inputs)`` is ``alpha a + K a``; ``inputs`` are every tensor it reads besides
    ``a``. See the module docstring for the backward.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        system: LinearSystem,
        tools: Any,
        eps: float,
        max_iter: int | None,
        b: torch.Tensor,
        *inputs: torch.Tensor,
    ) -> torch.Tensor:
        detached = [t.detach() for t in inputs]  # the CG iterations record no graph
        a = conjugate_gradient(lambda v: system(v, detached), b.detach(), tools, eps, max_iter)
        ctx.system, ctx.tools, ctx.eps, ctx.max_iter = system, tools, eps, max_iter
        ctx.b_shape = b.shape
        ctx.save_for_backward(a, *inputs)
        return a

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        a, *inputs = ctx.saved_tensors
        system: LinearSystem = ctx.system
        adjoint = SolveFunction.apply(
            system.T, ctx.tools, ctx.eps, ctx.max_iter, grad.contiguous(), *inputs
        )
        grad_b = adjoint.sum_to_size(ctx.b_shape) if ctx.needs_input_grad[_N_STATIC] else None
        needs = ctx.needs_input_grad[_N_STATIC + 1 :]
        wanted = [k for k, need in enumerate(needs) if need]
        grads = _input_grads(system, a, adjoint, inputs, wanted) if wanted else [None] * len(needs)
        return (None,) * _N_STATIC + (grad_b, *grads)


def _input_grads(
    system: LinearSystem,
    a: torch.Tensor,
    adjoint: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    wanted: Sequence[int],
) -> list[torch.Tensor | None]:
    """``-d/dinput <a~, system(a, inputs)>`` at fixed ``a`` and ``a~``, for ``wanted`` inputs.

    Differentiable when gradients are being recorded (``create_graph=True`` upstream): the
    inputs are replaced by fresh view nodes, so the gradient is a partial derivative while
    ``a`` and ``a~`` keep their own dependence on the inputs in the graph.
    """
    create = torch.is_grad_enabled()
    with torch.enable_grad():
        proxies = []
        for k, t in enumerate(inputs):
            if k not in wanted:
                proxies.append(t.detach())
            elif create:
                proxies.append(t.view_as(t))
            else:
                proxies.append(t.detach().requires_grad_())
        applied = system(a if create else a.detach(), proxies)
        found = torch.autograd.grad(
            applied, [proxies[k] for k in wanted], -adjoint, create_graph=create, allow_unused=True
        )
    grads: list[torch.Tensor | None] = [None] * len(inputs)
    for k, g in zip(wanted, found):
        grads[k] = torch.zeros_like(inputs[k]) if g is None else g
    return grads


def solve_linear(
    tools: Any,
    apply: Apply,
    rhs: torch.Tensor,
    inputs: Sequence[Any],
    eps: float,
    max_iter: int | None,
) -> torch.Tensor:
    """Solve ``apply(a, inputs) = rhs`` by conjugate gradient, differentiably.

    The torch implementation of :meth:`lazykernels.lazytensor.tools.ArrayTools.solve_linear`.

    Args:
        tools: the torch adapter (for :func:`~lazykernels.solve.conjugate_gradient`).
        apply: ``apply(a, inputs) = alpha a + K a`` (symmetric positive definite).
        rhs: the right-hand sides ``(..., n, D)``.
        inputs: the other tensors ``apply`` reads.
        eps, max_iter: the CG tolerance and iteration cap.

    Returns:
        The solution, differentiable with respect to ``rhs`` and ``inputs``.
    """
    tensors = [t if isinstance(t, torch.Tensor) else torch.as_tensor(t) for t in inputs]
    return SolveFunction.apply(LinearSystem(apply), tools, eps, max_iter, rhs, *tensors)


__all__ = ["LinearSystem", "SolveFunction", "solve_linear"]
