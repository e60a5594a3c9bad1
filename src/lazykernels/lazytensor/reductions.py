"""The reduction methods of LazyTensor (SPEC §2.2, §4.5): from a symbolic matrix to arrays.

A reduction renumbers the LazyTensor's variables to call positions (symbolic variables first,
by index, then the bound arrays), builds a :class:`~lazykernels.core.plan.ReductionPlan`
directly from the IR node with :func:`lazykernels.core.genred.build_plan` (no formula string
in between), and runs it through the array library's ``tools.run_reduction`` hook.

``axis`` (or ``dim``) follows KeOps: it must be ``nbatchdims`` (reduce over i, the result is
indexed by j) or ``nbatchdims + 1`` (reduce over j, the result is indexed by i). ``sum()``,
``min()``, ``max()``, ``argmin()``, ``argmax()`` default to ``axis=-1``: the inner-dimension
*operation* on the vector, not a reduction. With ``call=False``, or when the formula has
symbolic variables, the result is a *reduced LazyTensor*: call it with one array per symbolic
variable (then keyword options ``backend``, ``ranges``, ``out``...).

Keyword options follow KeOps's routing: ``dtype_acc``, ``use_double_acc``, ``sum_scheme``
(and ``gemm``: "auto", True or False, the dot-product path of docs/gemm.md)
configure the plan (checked when the reduction is built, even with ``call=False``);
``backend``, ``ranges``, ``out``, ``device_id`` configure the call. The GPU-only
``enable_chunks``, ``use_fast_math``, ``rec_multVar_highdim`` and ``optional_flags`` are
accepted and ignored (KeOps 2.3 raises TypeError on ``optional_flags``, SPEC §8.2).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.genred import build_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError, DimensionError
from ..formula.aliases import Alias
from ..formula.ir import Cat, Node, substitute
from ..formula.surface import FormulaSurface
from ..reductions import SPECS
from .construct import FloatParam, read_value
from .plan_cache import (
    MAX_PLANS,
    PLAN_KEYS,
    PLANS,
    STRUCTURES,
    reduction_key,
    remember_structure,
)
from .state import copy_state
from .warm import file_as_given, lookup_as_given

if TYPE_CHECKING:
    from .core import GenericLazyTensor

GENRED_KEYS = frozenset(
    (
        "dtype_acc",
        "use_double_acc",
        "sum_scheme",
        "gemm",
        "enable_chunks",
        "use_fast_math",
        "rec_multVar_highdim",
        "optional_flags",
    )
)
"""Keyword options of a reduction that configure the plan (KeOps's Genred constructor)."""

CALL_KEYS = frozenset(("backend", "device_id", "ranges", "out"))
"""Keyword options of a reduction that configure the call."""


class MissingAxisError(ArgumentError, TypeError):
    """A reduction was asked without ``axis`` (a TypeError in KeOps, kept for compatibility)."""


def split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a reduction's keyword options into (plan options, call options).

    Raises:
        TypeError: an unknown keyword.
    """
    unknown = set(kwargs) - GENRED_KEYS - CALL_KEYS
    if unknown:
        known = ", ".join(sorted(GENRED_KEYS | CALL_KEYS))
        raise TypeError(f"unexpected reduction option(s) {sorted(unknown)}; known options: {known}")
    options = {k: v for k, v in kwargs.items() if k in GENRED_KEYS}
    return options, {k: v for k, v in kwargs.items() if k in CALL_KEYS}


class ReductionInfo(NamedTuple):
    """What a reduced LazyTensor computes when called (immutable; a NamedTuple rather than
    a frozen dataclass: built at every reduction, it costs a third).

    Attributes:
        reduction_op: the user-level name (``"Sum"``, ``"LogSumExp"``...).
        axis: KeOps's Genred axis: 0 reduces over i, 1 over j.
        opt_arg: K of the KMin family.
        weight: the weight formula of the weighted log-sum-exp family, else None.
        options: plan options (``dtype_acc``, ``sum_scheme``...).
        call_kwargs: default call options (``backend``, ``ranges``, ``out``...).
        is_complex: the outputs are complex (interleaved values viewed as complex).
    """

    reduction_op: str
    axis: int
    opt_arg: int | None
    weight: Node | None
    options: dict[str, Any]
    call_kwargs: dict[str, Any]
    is_complex: bool = False

    def roots(self, node: Node) -> list[Node]:
        """The formulas the reduction reads."""
        return [node] if self.weight is None else [node, self.weight]

    def describe(self, mapping: dict[Node, Node]) -> str:
        text = f"{self.reduction_op} (axis={self.axis})"
        if self.opt_arg is not None:
            text += f", K={self.opt_arg}"
        if self.weight is not None:
            text += f", weight: {substitute(self.weight, mapping)}"
        return text


def _pad_batch(tools: Any, array: Any, cat: Cat, nbatch: int) -> Any:
    """``array`` with leading 1s so that it spells all ``nbatch`` batch dimensions."""
    shape = tools.shape(array)
    core = 1 if cat is Cat.PARAM else 2
    missing = nbatch - (len(shape) - core)
    return tools.reshape(array, (1,) * missing + shape) if missing > 0 else array


_NONE: dict[str, Any] = MappingProxyType({})  # type: ignore[assignment]  # no options


def run_bound(
    lt: GenericLazyTensor,
    plan: ReductionPlan,
    complex_outputs: bool,
    args: tuple[Any, ...],
    symbolic: list[Node] | tuple,
    call_kwargs: Mapping[str, Any],
) -> Any:
    """Run ``plan`` on the arrays of ``lt`` (``args`` for its ``symbolic`` variables, then
    its bound values) with the call options ``call_kwargs`` over ``lt``'s defaults. A plain
    call of a layout seen before runs on the bound arrays as given (:mod:`.warm`)."""
    tools = lt.tools
    filed = None
    if not (args or call_kwargs or complex_outputs) and lt.ranges is None:
        values = list(lt._binds.values())
        found, filed = lookup_as_given(tools, plan, values, lt.backend or "auto")
        if found is not None:
            outputs = found(values)
            return outputs[0] if len(outputs) == 1 else outputs
    arrays = call_arrays(lt, args, symbolic)
    if call_kwargs:
        backend = call_kwargs.get("backend") or lt.backend or "auto"
        ranges, out = call_kwargs.get("ranges", lt.ranges), call_kwargs.get("out")
    else:
        backend, ranges, out = lt.backend or "auto", lt.ranges, None
    outputs = tools.run_reduction(plan, arrays, backend=backend, ranges=ranges, out=out)
    if filed is not None:
        file_as_given(tools, plan, filed, arrays, backend)
    if complex_outputs:
        specs = SPECS[plan.reduction].outputs
        outputs = tuple(o if s.index else tools.view_as_complex(o) for o, s in zip(outputs, specs))
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def call_arrays(lt: GenericLazyTensor, args: tuple[Any, ...], symbolic: Any) -> list:
    """The arrays of a call of ``lt``'s reduction, in plan order: ``args`` for its
    ``symbolic`` variables (checked; complex ones viewed as real), then its bound values
    (Python numbers as arrays of the call's dtype), each spelling every batch dimension."""
    tools = lt.tools
    nb = len(lt.batchdims)
    arrays = []
    if args:
        from .core import GenericLazyTensor  # core imports this module

        for v, a in zip(symbolic, args):
            if isinstance(a, GenericLazyTensor) or not tools.is_array(a):
                raise TypeError(
                    f"symbolic variable {v}: expected a {tools.name} array, got {type(a).__name__}"
                )
            if tools.is_complex_array(a):
                a = tools.view_as_real(a)
            arrays.append(_pad_batch(tools, a, v.params[2], nb))
    given = len(arrays)
    for leaf, value in lt._binds.items():
        if type(value) is FloatParam:
            value = tools.from_values(value.values, *lt._param_dtype(arrays[:given]))
        else:
            value = read_value(tools, leaf, value)
        arrays.append(_pad_batch(tools, value, leaf.cat, nb) if nb else value)
    return arrays


class ReductionMethods:
    """Mixin of :class:`~lazykernels.lazytensor.core.GenericLazyTensor`: every reduction."""

    # --- the generic entry point -----------------------------------------------------------

    def reduction(
        self: GenericLazyTensor,
        reduction_op: str,
        other: Any = None,
        opt_arg: int | None = None,
        axis: int | None = None,
        dim: int | None = None,
        call: bool = True,
        is_complex: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Reduce with any user-level ``reduction_op`` of SPEC §2.2 over ``axis`` (or ``dim``).

        Args:
            reduction_op: ``"Sum"``, ``"LogSumExp"``, ``"Min"``, ``"ArgKMin"``...
            other: the weight of the weighted log-sum-exp family.
            opt_arg: K of the KMin family.
            axis, dim: ``nbatchdims`` (reduce over i) or ``nbatchdims + 1`` (over j).
            call: False returns a reduced LazyTensor to call later.
            is_complex: view the outputs as complex (default: this LazyTensor's kind).
            kwargs: ``dtype_acc``, ``use_double_acc``, ``sum_scheme``, ``backend``,
                ``ranges``, ``out``, ``device_id``...

        Returns:
            The result array(s), or a reduced LazyTensor (``call=False`` or symbolic
            variables).
        """
        k = self._reduction_axis(reduction_op, axis, dim)
        return self._reduce(reduction_op, k, other, opt_arg, call, is_complex, **kwargs)

    def _reduction_axis(self: GenericLazyTensor, name: str, axis: Any, dim: Any) -> int:
        if axis is not None and dim is not None and axis != dim:
            raise ArgumentError(f"{name} reduction: axis={axis} and dim={dim} disagree")
        a = axis if axis is not None else dim
        nb = len(self.batchdims)
        if type(a) is int and nb <= a <= nb + 1:
            return a - nb
        expected = f"axis={nb} (reduce over i) or axis={nb + 1} (reduce over j)"
        if a is None:
            raise MissingAxisError(f"{name} reduction: give {expected}")
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise ArgumentError(f"{name} reduction: axis must be an int, got {a!r}")
        if a < 0:
            raise ArgumentError(f"{name} reduction: negative axes are not allowed; use {expected}")
        if a - nb not in (0, 1):
            raise ArgumentError(
                f"{name} reduction: axis {a} is not a reduction axis of a LazyTensor with "
                f"{nb} batch dimension(s); use {expected}"
            )
        return int(a) - nb

    def _reduce(
        self: GenericLazyTensor,
        reduction_op: str,
        axis: int,
        other: Any = None,
        opt_arg: int | None = None,
        call: bool = True,
        is_complex: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Like :meth:`reduction` with KeOps's Genred ``axis`` (0: over i, 1: over j)."""
        self._check_usable()
        options, call_kwargs = split_kwargs(kwargs) if kwargs else (_NONE, _NONE)
        if other is None:
            operands, state, binds = [self], None, self._binds
        else:
            operands = [self, self._lift(other)]
            state = self._merge(operands)
            binds = state["binds"]
        try:
            key = reduction_key(operands, binds, reduction_op, axis, opt_arg, options)
            hit = None if key is None else STRUCTURES.get(key)
        except TypeError:  # an unhashable parameter or option: no caching
            key = hit = None
        # the warm path: a plan without symbolic variables, run on this state as it is (no
        # reduced LazyTensor is made); the key fixes the plan and the order of the
        # bound arrays
        if hit is not None and call and not hit[1] and other is None:
            complex_outputs = self.is_complex if is_complex is None else bool(is_complex)
            return run_bound(self, hit[0], complex_outputs, (), (), call_kwargs)
        res = copy_state(type(self), self) if state is None else type(self)._wrap(None, state)
        res._node, res._ndim, res._pending = self._node, self._ndim, self._pending
        weight = None if other is None else operands[1].node
        res._reduction = ReductionInfo(
            reduction_op,
            axis,
            opt_arg,
            weight,
            options,
            call_kwargs,
            self.is_complex if is_complex is None else bool(is_complex),
        )
        res.axis = axis
        if hit is not None:
            res._plan, res._sym = hit[0], list(hit[1])
        else:
            res._plan = res._build_plan()  # options and dimensions are checked now
            remember_structure(key, res)
        if call and not res._symbolic_vars():
            return res._run((), _NONE)
        return res

    def _build_plan(self: GenericLazyTensor) -> ReductionPlan:
        info = self._reduction
        order, mapping = self._layout()
        opts = {k: info.options[k] for k in PLAN_KEYS if k in info.options}
        formula = substitute(self.node, mapping)
        weight = None if info.weight is None else substitute(info.weight, mapping)
        inputs = tuple(mapping[v] for v in order)
        # LazyTensor code rebuilds the same reduction at every call (with new variables for
        # its scalar constants): the renumbered formula nodes are interned, so the plan is
        # remembered by them
        key = (formula, weight, info.reduction_op, info.axis, info.opt_arg, inputs)
        try:
            key += tuple(sorted(opts.items()))
            plan = PLANS.get(key)
        except TypeError:  # an unhashable option value: build_plan will say what is wrong
            plan, key = None, None
        if plan is None:
            plan = build_plan(
                formula,
                [Alias(None, v) for v in inputs],
                info.reduction_op,
                info.axis,
                info.opt_arg,
                weight,
                **opts,
            )
            if len(PLANS) >= MAX_PLANS:
                PLANS.clear()
            if key is not None:
                PLANS[key] = plan
        return plan

    def __call__(self: GenericLazyTensor, *args: Any, **kwargs: Any) -> Any:
        """Run a reduced LazyTensor: one array per symbolic variable, then call options."""
        info = self._reduction
        if info is None:
            raise TypeError(
                "only a reduced LazyTensor can be called; reduce it first, e.g. "
                "K.sum(axis=1, call=False)"
            )
        options, call_kwargs = split_kwargs(kwargs) if kwargs else ({}, {})
        if options:
            raise TypeError(
                f"{sorted(options)} configure the reduction: pass them to the reduction method"
            )
        symbolic = self._symbolic_vars()
        if len(args) != len(symbolic):
            names = ", ".join(str(s) for s in self.symbolic_variables) or "none"
            raise ArgumentError(
                f"this reduction takes {len(symbolic)} array(s) for its symbolic variables "
                f"(ind, dim, cat) = {names}; got {len(args)}"
            )
        return self._run(args, call_kwargs)

    def _run(self: GenericLazyTensor, args: tuple[Any, ...], call_kwargs: dict[str, Any]) -> Any:
        """Run the reduction: ``args`` for the symbolic variables (their number checked),
        ``call_kwargs`` over the defaults given to the reduction method."""
        info = self._reduction
        if info.call_kwargs:
            call_kwargs = {**info.call_kwargs, **call_kwargs}
        return run_bound(
            self, self._plan, info.is_complex, args, self._symbolic_vars(), call_kwargs
        )

    def _param_dtype(self: GenericLazyTensor, symbolic_arrays: list[Any]) -> tuple[Any, Any]:
        """(dtype, an array of the call) for the Python numbers of a parameter: the
        LazyTensor's dtype (else the first array's, else the default), and the first array
        (its device)."""
        tools = self.tools
        dtype = self._dtype
        if dtype is None:
            dtype = tools.dtype_of(symbolic_arrays[0]) if symbolic_arrays else tools.default_dtype()
        given = [*symbolic_arrays, *(v for v in self._binds.values() if tools.is_array(v))]
        return dtype, given[0] if given else None

    # --- sums ------------------------------------------------------------------------------

    def _inner(self: GenericLazyTensor, axis: Any, dim: Any) -> bool:
        a = dim if dim is not None else axis
        return a is not None and not isinstance(a, bool) and a in (-1, len(self.batchdims) + 2)

    def sum(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: the inner ``Sum`` op; ``axis=nbatchdims(+1)``: a Sum reduction."""
        if self._inner(axis, dim):
            return FormulaSurface.sum(self)
        if dim is not None and axis == -1:  # K.sum(dim=1): dim wins over the default axis
            axis = None
        return self.reduction("Sum", axis=axis, dim=dim, **kwargs)

    def sum_reduction(self, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:
        """Sum reduction over ``axis``."""
        return self.reduction("Sum", axis=axis, dim=dim, **kwargs)

    def logsumexp(
        self,
        axis: int | None = None,
        dim: int | None = None,
        weight: Any = None,
        call: bool = True,
        **kwargs: Any,
    ) -> Any:
        """``log sum exp F`` over ``axis``; with ``weight=g`` (or ``other=g``): LogSumExpWeight."""
        if weight is None:
            weight = kwargs.pop("other", None)
        return self.reduction("LogSumExp", weight, axis=axis, dim=dim, call=call, **kwargs)

    def logsumexp_reduction(self, **kwargs: Any) -> Any:
        """Same as :meth:`logsumexp`."""
        return self.logsumexp(**kwargs)

    def sumsoftmaxweight(
        self, weight: Any, axis: int | None = None, dim: int | None = None, **kwargs: Any
    ) -> Any:
        """``sum exp(F) g / sum exp(F)`` over ``axis``."""
        return self.reduction("SumSoftMaxWeight", weight, axis=axis, dim=dim, **kwargs)

    def sumsoftmaxweight_reduction(self, **kwargs: Any) -> Any:
        """Same as :meth:`sumsoftmaxweight`."""
        return self.sumsoftmaxweight(**kwargs)

    # --- min / max -------------------------------------------------------------------------

    def _minmax(self, name: str, axis: Any, dim: Any, kwargs: dict[str, Any]) -> Any:
        if self._inner(axis, dim):
            return getattr(FormulaSurface, name.lower())(self)
        if dim is not None and axis == -1:  # K.argmin(dim=1): dim wins over the default
            axis = None
        return self.reduction(name, axis=axis, dim=dim, **kwargs)

    def min(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: the inner ``Min`` op; else a Min reduction."""
        return self._minmax("Min", axis, dim, kwargs)

    def max(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: the inner ``Max`` op; else a Max reduction."""
        return self._minmax("Max", axis, dim, kwargs)

    def argmin(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: the inner ``ArgMin`` op; else an ArgMin reduction (int64)."""
        return self._minmax("ArgMin", axis, dim, kwargs)

    def argmax(self, axis: int | None = -1, dim: int | None = None, **kwargs: Any) -> Any:
        """``axis=-1``: the inner ``ArgMax`` op; else an ArgMax reduction (int64)."""
        return self._minmax("ArgMax", axis, dim, kwargs)

    def __min__(self, **kwargs: Any) -> Any:
        return self.min(**kwargs)

    def __max__(self, **kwargs: Any) -> Any:
        return self.max(**kwargs)

    def min_reduction(self, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:
        """Min reduction over ``axis``."""
        return self.reduction("Min", axis=axis, dim=dim, **kwargs)

    def max_reduction(self, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:
        """Max reduction over ``axis``."""
        return self.reduction("Max", axis=axis, dim=dim, **kwargs)

    def argmin_reduction(
        self, axis: int | None = None, dim: int | None = None, **kwargs: Any
    ) -> Any:
        """ArgMin reduction over ``axis`` (int64)."""
        return self.reduction("ArgMin", axis=axis, dim=dim, **kwargs)

    def argmax_reduction(
        self, axis: int | None = None, dim: int | None = None, **kwargs: Any
    ) -> Any:
        """ArgMax reduction over ``axis`` (int64)."""
        return self.reduction("ArgMax", axis=axis, dim=dim, **kwargs)

    def min_argmin(self, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:
        """(values, int64 indices) of the Min reduction."""
        return self.reduction("Min_ArgMin", axis=axis, dim=dim, **kwargs)

    def max_argmax(self, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:
        """(values, int64 indices) of the Max reduction."""
        return self.reduction("Max_ArgMax", axis=axis, dim=dim, **kwargs)

    def min_argmin_reduction(self, **kwargs: Any) -> Any:
        """Same as :meth:`min_argmin`."""
        return self.min_argmin(**kwargs)

    def max_argmax_reduction(self, **kwargs: Any) -> Any:
        """Same as :meth:`max_argmax`."""
        return self.max_argmax(**kwargs)

    # --- K-min -----------------------------------------------------------------------------

    def Kmin(self, K: int, axis: int | None = None, dim: int | None = None, **kwargs: Any) -> Any:  # noqa: N802, N803
        """The K smallest values, sorted: (..., n, K, D), (..., n, K) when D == 1."""
        return self.reduction("KMin", opt_arg=K, axis=axis, dim=dim, **kwargs)

    def argKmin(
        self, K: int, axis: int | None = None, dim: int | None = None, **kwargs: Any
    ) -> Any:  # noqa: N802, N803
        """Indices (int64) of the K smallest values."""
        return self.reduction("ArgKMin", opt_arg=K, axis=axis, dim=dim, **kwargs)

    def Kmin_argKmin(  # noqa: N802
        self,
        K: int,  # noqa: N803
        axis: int | None = None,
        dim: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """(values, int64 indices) of the K smallest values."""
        return self.reduction("KMin_ArgKMin", opt_arg=K, axis=axis, dim=dim, **kwargs)

    def Kmin_reduction(self, **kwargs: Any) -> Any:  # noqa: N802
        """Same as :meth:`Kmin`."""
        return self.Kmin(**kwargs)

    def argKmin_reduction(self, **kwargs: Any) -> Any:  # noqa: N802
        """Same as :meth:`argKmin`."""
        return self.argKmin(**kwargs)

    def Kmin_argKmin_reduction(self, **kwargs: Any) -> Any:  # noqa: N802
        """Same as :meth:`Kmin_argKmin`."""
        return self.Kmin_argKmin(**kwargs)

    # --- linear algebra --------------------------------------------------------------------

    def __matmul__(self: GenericLazyTensor, v: Any, **kwargs: Any) -> Any:
        """``K @ v``: the Sum over j of ``K_ij v_j``; v is ``(N,)`` or ``(..., N, D)``."""
        self._check_usable()
        tools = self.tools
        if self.ndim != (2 if self.is_complex else 1):
            raise DimensionError(
                f"K @ v needs a LazyTensor of vector dimension 1, got ndim = {self.ndim}"
            )
        found = tools.float_info(v)  # (dtype, shape) of a real floating array
        if found is None:
            # (GenericLazyTensor derives from this class, which core imports)
            if isinstance(v, ReductionMethods) or not tools.is_array(v):
                raise TypeError(f"K @ v: v must be a {tools.name} array, got {type(v).__name__}")
            shape = tools.shape(v)
        else:
            dtype, shape = found
        if not shape:
            raise ArgumentError("K @ v: v must be a (N,) or (..., N, D) array, got a 0-d array")
        vector = len(shape) == 1
        if vector:
            v = tools.reshape(v, (shape[0], 1))
            shape = (shape[0], 1)
        if found is not None and shape[-2] != 1:
            # what LazyTensor(v[..., None, :, :]) binds, without the reshapes and checks
            v_j = self._real_cls._rows_of(v, Cat.J, shape[:-2], shape[-2], shape[-1], dtype)
        else:  # the constructor decides (and raises on a bad dtype)
            v_j = self._real_cls(tools.reshape(v, (*shape[:-2], 1, *shape[-2:])))
        real = not (self.is_complex or v_j.is_complex)
        product = self._apply("Mult", v_j) if real else self * v_j  # (what * does when real)
        res = product._reduce("Sum", 1, **kwargs)
        if isinstance(res, ReductionMethods):
            raise ArgumentError("K @ v: K has symbolic variables; use K.sum(axis, call=False)")
        return tools.reshape(res, tools.shape(res)[:-1]) if vector else res

    def matvec(self, v: Any, **kwargs: Any) -> Any:
        """``K @ v`` (SciPy's LinearOperator protocol)."""
        return self.__matmul__(v, **kwargs)

    def rmatvec(self, v: Any, **kwargs: Any) -> Any:
        """``K.T @ v`` (SciPy's LinearOperator protocol)."""
        return self.T.__matmul__(v, **kwargs)

    def solve(self, other: Any, var: Any = None, call: bool = True, **kwargs: Any) -> Any:
        """Solve ``(alpha Id + K) a = other`` by conjugate gradient (:func:`..solve.lazy_solve`)."""
        from .solve import lazy_solve  # solve.py reads LazyTensors: a cycle inside the package

        return lazy_solve(self, other, var=var, call=call, **kwargs)
