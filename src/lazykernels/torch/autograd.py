"""Reductions on torch tensors with autograd: ``torch_reduce`` and ``GenredFunction``.

Tensors go to the core through the torch array adapter (:mod:`lazykernels.torch.arrays`):
CPU tensors are read by the backends in place, by pointer; CUDA tensors run on the GPU in
place, on torch's current stream; the outputs are tensors on the inputs' device. Tensors on
any other device raise, and nothing is ever copied between devices behind the user's back.

Differentiation follows :mod:`lazykernels.reductions.derivatives`:

- Sum and the log-sum-exp family (LogSumExp, LogSumExpWeight, SumSoftMaxWeight) run
  through :class:`GenredFunction`, a ``torch.autograd.Function`` whose backward runs the
  derived reductions of ``vjp_group_rule`` through this same function, so gradients of
  gradients work to any order. Its ``jvp`` (``jvp_rule``) and ``vmap`` (the vmapped
  dimension becomes a leading batch dimension) rules make ``torch.func.grad``, ``vjp``,
  ``jacrev``, ``jvp``, ``jacfwd``, ``hessian`` and ``vmap`` work.
- Min, Max, KMin and their ``*_Arg*`` forms: when a gradient may be needed, the values and
  indices are computed by the reduction, then F is re-evaluated differentiably at the
  selected pairs (the reduced-category inputs are gathered with torch indexing, and
  ``selection_plan``'s Sum runs over a dummy axis of size 1). The returned values are the
  reduction's values exactly; the gradient flows through the selected entries only (on
  ties, through the index the reduction returned; nothing flows into empty rows).
- ArgMin, ArgMax, ArgKMin and the index outputs are int64 tensors without gradient.
- The raw Max_SumShiftExp* reductions raise NotImplementedError when differentiated.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from ..core.autodiff import derived_inputs, normalise, run_vjp, vjp_rules
from ..core.backends import prepare
from ..core.genred import run_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from ..formula.ir import Cat
from ..reductions import SPECS
from ..reductions.derivatives import (
    Derivative,
    DerivedPlan,
    derivative,
    jvp_rule,
    selection_plan,
    with_index,
)
from .arrays import TORCH, check_device

__all__ = ["GenredFunction", "check_device", "torch_reduce", "unbroadcast"]

_FLOATS = (torch.float16, torch.float32, torch.float64)
_N_STATIC = 3  # GenredFunction's non-tensor arguments: plan, backend, ranges


def _ranges_arrays(ranges: Sequence[Any] | None) -> tuple[np.ndarray, ...] | None:
    if ranges is None:
        return None
    if not isinstance(ranges, list | tuple):
        raise ArgumentError("ranges must be a 6-tuple of integer tensors")
    return tuple(  # CUDA ranges are read on the host: the block table is built there
        TORCH.to_host(r) if isinstance(r, torch.Tensor) else np.asarray(r) for r in ranges
    )


def _run(
    plan: ReductionPlan,
    tensors: Sequence[Any],
    backend: str,
    ranges: tuple[np.ndarray, ...] | None,
    out: Any = None,
) -> tuple[torch.Tensor, ...]:
    """Run ``plan`` on the backend, without autograd; outputs as tensors."""
    return run_plan(plan, tensors, backend=backend, ranges=ranges, out=out, adapter=TORCH)


def tracked(tensors: Sequence[Any]) -> bool:
    """True when a derivative of the result may be asked for."""
    grad_enabled = torch.is_grad_enabled()
    # dual tensors exist only inside forward_ad.dual_level() (level >= 0); where torch
    # does not say, every tensor is asked
    dual = getattr(torch.autograd.forward_ad, "_current_level", 0) >= 0
    # tensors are wrapped only inside torch.func transforms (grad, vjp, jvp, vmap...)
    transformed = _transforms_active()
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            continue
        if t.requires_grad and grad_enabled:
            return True
        if transformed and _is_wrapped(t):
            return True
        if dual and torch.autograd.forward_ad.unpack_dual(t).tangent is not None:
            return True
    return False


_is_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_transforms_active = getattr(torch._C, "_are_functorch_transforms_active", lambda: True)


def unbroadcast(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``grad`` over the batch dimensions that ``shape`` broadcasts (size 1)."""
    dims = [k for k, size in enumerate(shape) if size == 1 and grad.shape[k] != 1]
    return grad.sum(dim=dims, keepdim=True) if dims else grad


class _Constant(torch.autograd.Function):
    """A reduction run without derivatives (indices, values before re-selection).

    A Function only so that ``torch.func`` transforms can see through it: its outputs are
    marked non-differentiable and ``vmap`` moves the vmapped dimension to a batch one.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        plan: ReductionPlan,
        backend: str,
        ranges: tuple[np.ndarray, ...] | None,
        *tensors: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        return _run(plan, tensors, backend, ranges)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[torch.Tensor, ...]) -> None:
        ctx.mark_non_differentiable(*output)
        ctx.n_outputs = len(output)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple[None, ...]:  # type: ignore[override]
        return (None,) * len(ctx.needs_input_grad)

    @staticmethod
    def jvp(ctx: Any, *tangents: Any) -> tuple[None, ...]:
        return (None,) * ctx.n_outputs

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], *args: Any) -> tuple[Any, Any]:
        plan, backend, ranges, *tensors = args
        outputs = _Constant.apply(plan, backend, ranges, *_batch_first(tensors, in_dims))
        return outputs, (0,) * len(outputs)


def _batch_first(tensors: Sequence[torch.Tensor], in_dims: tuple[int | None, ...]) -> list:
    """Make the vmapped dimension a leading batch dimension of every input.

    Unbatched inputs get a broadcast one of size 1: batch dimensions are native to every
    backend, so a vmapped reduction is one batched reduction.
    """
    return [
        t.unsqueeze(0) if d is None else t.movedim(d, 0)
        for t, d in zip(tensors, in_dims[_N_STATIC:])
    ]


def _constant(
    plan: ReductionPlan,
    tensors: Sequence[Any],
    backend: str,
    ranges: tuple[np.ndarray, ...] | None,
) -> tuple[torch.Tensor, ...]:
    """Run ``plan`` without derivatives, also on the wrapped tensors of torch.func."""
    if not any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors):
        return _run(plan, tensors, backend, ranges)
    return _Constant.apply(plan, backend, ranges, *tensors)


class GenredFunction(torch.autograd.Function):
    """A smooth reduction (Sum, log-sum-exp family) as a differentiable torch function.

    ``GenredFunction.apply(plan, backend, ranges, *tensors)`` returns the single output.
    Backward and forward-mode derivatives are reductions again (run through this class),
    so they are differentiable in turn.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        plan: ReductionPlan,
        backend: str,
        ranges: tuple[np.ndarray, ...] | None,
        *tensors: torch.Tensor,
    ) -> torch.Tensor:
        (result,) = _run(plan, tensors, backend, ranges)
        return result

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        plan, backend, ranges, *tensors = inputs
        ctx.plan, ctx.backend, ctx.ranges = plan, backend, ranges
        ctx.save_for_backward(*tensors, output)
        ctx.save_for_forward(*tensors, output)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        *tensors, output = ctx.saved_tensors
        wanted = [k for k in range(len(tensors)) if ctx.needs_input_grad[_N_STATIC + k]]
        rules = vjp_rules(ctx.plan, wanted)
        _prepare(rules, output, ctx.backend)
        reduce = partial(_reduce_one, backend=ctx.backend, ranges=ctx.ranges)
        joined = run_vjp(ctx.plan, rules, tensors, grad_out, output, reduce)
        grads: list[torch.Tensor | None] = [None] * len(tensors)
        for k in wanted:  # zeros for the inputs F does not depend on
            grad = joined.get(k)
            grads[k] = (
                torch.zeros_like(tensors[k])
                if grad is None
                else unbroadcast(grad, tensors[k].shape)
            )
        return (None,) * _N_STATIC + tuple(grads)

    @staticmethod
    def jvp(ctx: Any, *tangents: torch.Tensor | None) -> torch.Tensor:
        *tensors, output = ctx.saved_tensors
        inputs = tangents[_N_STATIC:]
        positions = tuple(k for k, t in enumerate(inputs) if t is not None)
        rule = jvp_rule(ctx.plan, positions)
        if rule.zero:
            return torch.zeros_like(output)
        reduce = partial(_reduce_one, backend=ctx.backend, ranges=ctx.ranges)
        auxiliary = lambda aux: reduce(aux, tensors)
        feeds = derived_inputs(rule, tensors, None, output, inputs, auxiliary)
        return normalise(rule, reduce(rule.plan, feeds), None)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[int | None, ...], *args: Any) -> tuple[Any, int]:
        plan, backend, ranges, *tensors = args
        moved = _batch_first(tensors, in_dims)
        return GenredFunction.apply(plan, backend, ranges, *moved), 0


def _prepare(rules: Sequence[DerivedPlan], output: torch.Tensor, backend: str) -> None:
    """Compile the kernels of a backward pass's reductions side by side before running them.

    One reduction per input (and an auxiliary one for some): built one after the other,
    their compilations dominated the first backward pass.
    """
    plans = [r.plan for r in rules] + [r.auxiliary for r in rules if r.auxiliary is not None]
    if len(plans) < 2 or output.dtype not in _FLOATS or output.is_cuda:
        return  # (CUDA: NVRTC compiles in-process, one kernel at a time)
    dtype = np.float64 if output.dtype == torch.float64 else np.float32  # float16: float32
    prepare(plans, dtype, backend)


def _reduce_one(
    plan: ReductionPlan,
    tensors: Sequence[Any],
    backend: str,
    ranges: tuple[np.ndarray, ...] | None,
) -> torch.Tensor:
    """The single output of ``plan``, differentiably (the ``reduce`` of the neutral driver)."""
    (result,) = torch_reduce(plan, tensors, backend=backend, ranges=ranges)
    return result


def _selected_values(
    plan: ReductionPlan,
    tensors: Sequence[torch.Tensor],
    index: torch.Tensor,
    backend: str,
) -> torch.Tensor:
    """F at the selected pairs, differentiable, shaped ``batch + (n, K, D)``."""
    dim = plan.formula.dim
    if SPECS[plan.reduction].needs_k:
        index = index.unsqueeze(-1) if dim == 1 else index  # (..., n, K, D)
    else:
        index = index.unsqueeze(-2)  # (..., n, 1, D)
    nb = index.ndim - 3
    batch, n, k = index.shape[:nb], index.shape[-3], index.shape[-2]
    valid = index >= 0
    # (..., K, D, n): the K and component axes become two extra batch dimensions
    order = index.clamp(min=0).permute(*range(nb), nb + 1, nb + 2, nb)
    feeds = []
    for slot, t in zip(plan.slots, tensors):
        if slot.cat is Cat.PARAM:
            feeds.append(t.unsqueeze(-2).unsqueeze(-2))
        elif slot.cat is plan.output_cat:
            feeds.append(t.unsqueeze(-3).unsqueeze(-3))
        else:
            rows, width = t.shape[-2], t.shape[-1]
            source = t.expand(*batch, rows, width).unsqueeze(-3).unsqueeze(-3)
            source = source.expand(*batch, k, dim, rows, width)
            where = order.unsqueeze(-1).expand(*batch, k, dim, n, width)
            feeds.append(torch.gather(source, -2, where))
    (values,) = torch_reduce(selection_plan(plan), feeds, backend=backend)
    # (..., K, D, n, D): component d of F with the index of component d
    values = torch.diagonal(values, dim1=-3, dim2=-1).transpose(-3, -2)
    return torch.where(valid, values, torch.zeros((), dtype=values.dtype))


def _selection(
    plan: ReductionPlan,
    tensors: Sequence[Any],
    backend: str,
    ranges: tuple[np.ndarray, ...] | None,
) -> tuple[torch.Tensor, ...]:
    values, index = _constant(with_index(plan), tensors, backend, ranges)
    red_rows = [t.shape[-2] for s, t in zip(plan.slots, tensors) if s.cat is plan.reduced_cat]
    if any(r == 0 for r in red_rows) or values.numel() == 0:
        pass  # nothing selected: no gradient path
    else:
        selected = _selected_values(plan, tensors, index, backend).reshape(values.shape)
        # exactly the reduction's values, with the derivatives of F at the selected pairs
        values = values + (selected - selected.detach())
    if not SPECS[plan.reduction].has_index:
        return (values,)
    return (values, index)


def torch_reduce(
    plan: ReductionPlan,
    tensors: Sequence[Any],
    backend: str = "auto",
    ranges: Sequence[Any] | None = None,
    out: Any = None,
) -> tuple[torch.Tensor, ...]:
    """Run ``plan`` on torch tensors, differentiably; the entry point of the torch adapter.

    Args:
        plan: the reduction plan (``Genred``'s, or one built by a LazyTensor).
        tensors: one tensor per slot of the plan, in position order, all on one device
            (CPU or CUDA).
        backend: ``"auto"`` (the GPU for CUDA tensors, or when one is present),
            ``"CPU"``, ``"reference"``, ``"GPU"``.
        ranges: KeOps's 6-tuple of block-sparse ranges (tensors or arrays), or None.
        out: preallocated output tensor(s), filled in place; only when no gradient is
            tracked.

    Returns:
        The outputs of the reduction (one tensor, or values and int64 indices).

    Raises:
        BackendError: tensors on different devices, a CPU backend for CUDA tensors.
        ArgumentError, ShapeError, DtypeError: invalid inputs (see
            :mod:`lazykernels.core.bind`).

    Example:
        >>> import torch
        >>> from lazykernels.core.genred import build_plan
        >>> plan = build_plan("x * y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
        >>> x = torch.ones(2, 1, requires_grad=True)
        >>> (s,) = torch_reduce(plan, [x, torch.full((3, 1), 2.0)], backend="reference")
        >>> s.sum().backward()
        >>> x.grad.ravel().tolist()
        [6.0, 6.0]
    """
    tensors = list(tensors)
    ranges_np = _ranges_arrays(ranges)
    is_tracked = tracked(tensors)
    if out is not None:
        if is_tracked:
            raise ArgumentError(
                "out= cannot be used when a gradient is tracked (an input requires grad); "
                "call under torch.no_grad() or drop out="
            )
        return _run(plan, tensors, backend, ranges_np, out)
    if not is_tracked:
        return _run(plan, tensors, backend, ranges_np)
    kind = derivative(plan)
    if kind is Derivative.INDEX:
        return _constant(plan, tensors, backend, ranges_np)
    if kind is Derivative.SELECTION:
        return _selection(plan, tensors, backend, ranges_np)
    for k, t in enumerate(tensors):  # validate before autograd sees the inputs
        if not isinstance(t, torch.Tensor):
            raise ArgumentError(f"argument #{k}: expected a torch.Tensor, got {type(t).__name__}")
    return (GenredFunction.apply(plan, backend, ranges_np, *tensors),)
