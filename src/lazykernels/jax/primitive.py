"""The reduction as a JAX primitive: ``reduce_p`` and its rules.

``reduce_p.bind(*arrays, plan=plan, backend=backend, ranges=ranges)`` runs one
:class:`~lazykernels.core.plan.ReductionPlan` and returns its outputs (a list). Its rules
are the op-card shape of JAX:

- abstract evaluation: the output shapes and dtypes of the plan's binding checks
  (:func:`lazykernels.core.bind.layout_for` through the JAX array adapter,
  :mod:`lazykernels.jax.arrays`), run on the abstract shapes only, so shape
  errors surface at trace time with our messages. Index outputs are int64 under
  ``jax_enable_x64`` and int32 under JAX's default 32-bit mode (the values fit whenever the
  reduced axis has fewer than 2**31 indices);
- eager evaluation: the compiled backend as a one-reduction XLA program (the lowering
  below, compiled once per plan and shape); the reference backend through the NumPy core
  (:func:`lazykernels.core.genred.run_plan`) directly;
- lowering (under ``jax.jit``, ``lax.scan``...): on CPU an XLA FFI custom call whose
  native handler runs the compiled kernel on XLA's buffers (:mod:`lazykernels.jax.ffi`);
  on other platforms (and with ``LAZYKERNELS_JAX_CALLBACK=1``) a ``jax.pure_callback``
  into the NumPy core, the slower fallback;
- batching: ``vmap`` axes become a leading engine batch dimension (unbatched inputs get a
  broadcast one of size 1), so a vmapped reduction is one batched reduction;
- JVP: the reduction of ``jvp_rule``'s ``Diff`` formula through the neutral driver
  (``core.autodiff.run_jvp``, smooth reductions); index-only reductions have zero
  tangents. The log-sum-exp family's tangent is a softmax-normalised reduction, bound as
  :data:`normalised_p` (one reduction that divides by its own leading columns, linear in
  the tangents), so forward mode costs the output and one reduction;
- transpose (of the JVP reductions, linear in their tangent inputs): the reductions of
  ``vjp_group_rule``'s ``Grad`` formula through the neutral driver
  :mod:`lazykernels.core.autodiff`, bound through ``reduce_p`` again, so every derivative
  is differentiable in turn (``grad``, ``jacfwd``, ``jacrev``, ``hessian``, any order).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import ShapedArray, Tracer
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from ..core.autodiff import run_jvp, run_vjp, vjp_rules
from ..core.backends import resolve
from ..core.bind import layout_for
from ..core.genred import run_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from ..reductions.derivatives import Derivative, Extra, derivative
from .arrays import JAX

reduce_p = Primitive("lazykernels_reduce")
reduce_p.multiple_results = True


class StaticRanges:
    """KeOps's 6-tuple of block-sparse ranges as a hashable primitive parameter.

    Ranges decide which pairs are reduced, so they are part of what is compiled: a jitted
    function is traced again for new ranges (they must be concrete, not traced).
    """

    def __init__(self, ranges: Sequence[Any]):
        if not isinstance(ranges, list | tuple):
            raise ArgumentError("ranges must be a 6-tuple of integer arrays")
        try:
            self.arrays = tuple(np.asarray(r) for r in ranges)
        except jax.errors.TracerArrayConversionError as error:
            raise ArgumentError("ranges must be concrete arrays, not traced values") from error
        self._key = tuple((a.shape, a.dtype.str, a.tobytes()) for a in self.arrays)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StaticRanges) and self._key == other._key


def reduce(
    plan: ReductionPlan,
    arrays: Sequence[Any],
    backend: str = "auto",
    ranges: Sequence[Any] | None = None,
) -> list[Any]:
    """The outputs of ``plan`` on ``arrays`` (JAX arrays or tracers), without the
    selection rule of :func:`lazykernels.jax.reduce.jax_reduce`."""
    static = None if ranges is None else StaticRanges(ranges)
    if not any(isinstance(a, Tracer) for a in arrays) and _eager_compiled(backend):
        # concrete arrays, compiled backend: what bind would reach through the eval trace
        # (_impl), without its ~15 us of dispatch
        return _executable(plan, backend, static)(*arrays)
    return reduce_p.bind(*arrays, plan=plan, backend=backend, ranges=static)


def _index_dtype() -> np.dtype:
    return np.dtype(np.int64) if jax.config.jax_enable_x64 else np.dtype(np.int32)


def _out_avals(plan: ReductionPlan, avals: Sequence[Any]):
    layout = layout_for(plan, avals, JAX)
    index, values = _index_dtype(), layout.user_dtype  # float16 data: float16 values
    return [
        ShapedArray(shape, index if np.dtype(kind).kind == "i" else values)
        for shape, kind in layout.outputs
    ]


def _abstract_eval(*avals: ShapedArray, plan: ReductionPlan, backend: str, ranges: Any):
    return _out_avals(plan, avals)


def _host_run(
    plan: ReductionPlan, backend: str, ranges: Any, arrays: Sequence[Any]
) -> list[np.ndarray]:
    """Run the NumPy core; integer outputs cast to JAX's index dtype."""
    given = None if ranges is None else ranges.arrays
    results = run_plan(plan, arrays, backend=backend, ranges=given, adapter=JAX)
    index = _index_dtype()
    return [r.astype(index) if r.dtype.kind == "i" and r.dtype != index else r for r in results]


def _eager_compiled(backend: str) -> bool:
    """Whether an eager reduction runs as an XLA program: the compiled CPU backend, the
    FFI lowering, and jit enabled (``jax.disable_jit`` would run the program's ``bind``
    eagerly again). BackendError for an unknown backend."""
    return _FFI_LOWERING and resolve(backend)[0] == "CPU" and not jax.config.jax_disable_jit


# (id of the plan, backend, ranges) -> (plan, its reduction compiled by XLA): see _impl
_EXECUTABLES: dict[tuple[int, str, Any], tuple[ReductionPlan, Any]] = {}
_MAX_EXECUTABLES = 1024


def _executable(plan: ReductionPlan, backend: str, ranges: Any) -> Any:
    """``reduce_p`` with these parameters under ``jax.jit`` (one XLA program per shape).

    Keyed by the plan's identity (the entry holds the plan, so its id is not reused
    meanwhile): hashing a plan hashes every field, a few microseconds per eager call.
    """
    key = (id(plan), backend, ranges)
    hit = _EXECUTABLES.get(key)
    if hit is not None and hit[0] is plan:
        return hit[1]
    run = jax.jit(lambda *xs: reduce_p.bind(*xs, plan=plan, backend=backend, ranges=ranges))
    if len(_EXECUTABLES) >= _MAX_EXECUTABLES:
        _EXECUTABLES.clear()
    _EXECUTABLES[key] = (plan, run)
    return run


def _impl(*arrays: Any, plan: ReductionPlan, backend: str, ranges: Any) -> list[jax.Array]:
    """Eager evaluation. The compiled backend runs as a one-reduction XLA program, so its
    kernel writes into XLA's buffers through the FFI handler (no copy of the inputs or
    results); the reference backend (the tests' oracle) runs the NumPy core on the host,
    which compiles no XLA program per derivative plan."""
    if _eager_compiled(backend):
        return _executable(plan, backend, ranges)(*arrays)
    return [jnp.asarray(r) for r in _host_run(plan, backend, ranges, arrays)]


def _callback(*arrays: Any, plan: ReductionPlan, backend: str, ranges: Any) -> list[Any]:
    avals = _out_avals(plan, arrays)
    shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals]
    host = lambda *xs: tuple(_host_run(plan, backend, ranges, xs))
    return list(jax.pure_callback(host, tuple(shapes), *arrays))


def _leading(args: Sequence[Any], dims: Sequence[Any]) -> list[Any]:
    """The vmapped axes moved in front (a broadcast one of size 1 where there is none)."""
    return [
        jnp.expand_dims(a, 0) if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims)
    ]


def _batch(
    args: Sequence[Any], dims: Sequence[Any], *, plan: ReductionPlan, backend: str, ranges: Any
):
    outs = reduce_p.bind(*_leading(args, dims), plan=plan, backend=backend, ranges=ranges)
    return outs, [0] * len(outs)


def _zeros(aval: Any) -> jax.Array:
    return jnp.zeros(aval.shape, aval.dtype)


def _zero_tangent(value: Any) -> Any:
    """The symbolic zero tangent of ``value`` (float0 for integer outputs)."""
    return ad.Zero(jax.typeof(value).to_tangent_aval())


def _jvp(
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    plan: ReductionPlan,
    backend: str,
    ranges: Any,
):
    outs = reduce_p.bind(*primals, plan=plan, backend=backend, ranges=ranges)
    if derivative(plan) is Derivative.INDEX:
        return outs, [_zero_tangent(o) for o in outs]
    if derivative(plan) is not Derivative.SMOOTH:  # selections: through their front end
        raise NotImplementedError(
            f"{plan.reduction} is differentiated by re-evaluating F at the selected pairs; "
            f"call it through lazykernels.jax.Genred or LazyTensor"
        )
    given = [None if type(t) is ad.Zero else t for t in tangents]
    one = lambda p, xs: reduce_p.bind(*xs, plan=p, backend=backend, ranges=ranges)[0]
    # a softmax-normalised tangent divides by leading columns that do not depend on the
    # tangents, but JAX cannot know it: normalised_p is that division, in one reduction
    divided = lambda p, xs, d: normalised_p.bind(
        *xs, plan=p, backend=backend, ranges=ranges, denominator=d
    )
    tangent = run_jvp(plan, primals, given, outs[0], one, normalised=divided)
    return outs, [_zero_tangent(outs[0]) if tangent is None else tangent]


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``grad`` over the batch dimensions that ``shape`` broadcasts (size 1)."""
    axes = tuple(k for k, size in enumerate(shape) if size == 1 and grad.shape[k] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


def _transpose(cts: Sequence[Any], *args: Any, plan: ReductionPlan, backend: str, ranges: Any):
    """The adjoint of a reduction linear in its undefined inputs (the JVP reductions)."""
    return _adjoint(cts[0], args, plan, backend, ranges)


def _adjoint(
    ct: Any, args: Sequence[Any], plan: ReductionPlan, backend: str, ranges: Any, output: Any = None
) -> list[Any]:
    """The cotangents of ``args``' undefined inputs for the cotangent ``ct`` of the output;
    ``output``: the reduction at zero undefined inputs, when the caller has it."""
    undefined = [k for k, a in enumerate(args) if ad.is_undefined_primal(a)]
    if type(ct) is ad.Zero:
        return [None] * len(args)
    # the gradient of a linear map does not depend on where it is taken: at zero
    inputs = [_zeros(a.aval) if ad.is_undefined_primal(a) else a for a in args]
    rules = vjp_rules(plan, undefined)
    if output is None and any(f.kind is Extra.OUTPUT for r in rules for f in r.feeds):
        output = reduce_p.bind(*inputs, plan=plan, backend=backend, ranges=ranges)[0]
    one = lambda p, xs: reduce_p.bind(*xs, plan=p, backend=backend, ranges=ranges)[0]
    grads = run_vjp(plan, rules, inputs, ct, output, one)
    result: list[Any] = [None] * len(args)
    for k in undefined:
        aval = args[k].aval
        grad = grads.get(k)
        result[k] = _zeros(aval) if grad is None else unbroadcast(grad, aval.shape)
    return result


# ``normalised_p.bind(*arrays, plan=, backend=, ranges=, denominator=d)``: the output T of
# ``plan`` less its first d columns, divided by them (one column: broadcast). It is the JVP
# of the log-sum-exp family (jvp_rule's ``denominator``): there T = [SumSoftMaxWeight(F, g),
# SumSoftMaxWeight(F, g dF + dg)], and the leading columns do not depend on the tangents, so
# the map is linear in them. A primitive of its own, because JAX cannot see that: a division
# of two columns of one reduction would not be transposable, and dividing by the same
# reduction run at zero tangents (a primal value) cost one more reduction.
normalised_p = Primitive("lazykernels_reduce_normalised")


def _normalised(*args: Any, plan: ReductionPlan, backend: str, ranges: Any, denominator: int):
    (t,) = reduce_p.bind(*args, plan=plan, backend=backend, ranges=ranges)
    return t[..., denominator:] / t[..., :denominator]


def _normalised_aval(*avals: ShapedArray, denominator: int, **params: Any) -> ShapedArray:
    (t,) = _abstract_eval(*avals, **params)
    return ShapedArray((*t.shape[:-1], t.shape[-1] - denominator), t.dtype)


def _normalised_batch(args: Sequence[Any], dims: Sequence[Any], **params: Any):
    return normalised_p.bind(*_leading(args, dims), **params), 0


def _normalised_jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any):
    """Met at second order (the JVP of a JVP): the derivative of the division."""
    tangents = [ad.instantiate_zeros(t) for t in tangents]
    return jax.jvp(lambda *xs: _normalised(*xs, **params), tuple(primals), tuple(tangents))


def _normalised_transpose(
    ct: Any, *args: Any, plan: ReductionPlan, backend: str, ranges: Any, denominator: int
):
    if type(ct) is ad.Zero:
        return [None] * len(args)
    inputs = [_zeros(a.aval) if ad.is_undefined_primal(a) else a for a in args]
    # the leading columns, a value of the defined inputs (the reduction's vjp rules read
    # this same output: it is computed once)
    (at_zero,) = reduce_p.bind(*inputs, plan=plan, backend=backend, ranges=ranges)
    lead = at_zero[..., :denominator]
    quotient = ct / lead
    raw = jnp.concatenate([jnp.zeros(lead.shape, ct.dtype), quotient], axis=-1)
    return _adjoint(raw, args, plan, backend, ranges, output=at_zero)


reduce_p.def_impl(_impl)
reduce_p.def_abstract_eval(_abstract_eval)
# every platform: a host callback; CPU: the XLA FFI custom call (lazykernels.jax.ffi),
# unless LAZYKERNELS_JAX_CALLBACK=1 asks for the callback (to measure one against the other)
mlir.register_lowering(reduce_p, mlir.lower_fun(_callback, multiple_results=True))
_FFI_LOWERING = not os.environ.get("LAZYKERNELS_JAX_CALLBACK")
if _FFI_LOWERING:
    from .ffi import lower_cpu

    mlir.register_lowering(reduce_p, lower_cpu, platform="cpu")
batching.primitive_batchers[reduce_p] = _batch
ad.primitive_jvps[reduce_p] = _jvp
ad.primitive_transposes[reduce_p] = _transpose

normalised_p.def_impl(_normalised)
normalised_p.def_abstract_eval(_normalised_aval)
mlir.register_lowering(normalised_p, mlir.lower_fun(_normalised, multiple_results=False))
batching.primitive_batchers[normalised_p] = _normalised_batch
ad.primitive_jvps[normalised_p] = _normalised_jvp
ad.primitive_transposes[normalised_p] = _normalised_transpose

__all__ = ["normalised_p", "reduce", "reduce_p", "unbroadcast"]
