"""Kernel linear systems ``(alpha Id + K) a = b`` by conjugate gradient (SPEC §4.3, §4.5).

Array-library neutral: the solver only uses arithmetic operators and the few helpers of an
:class:`~lazykernels.lazytensor.tools.ArrayTools` adapter, so the NumPy and PyTorch front
ends share it.

- :func:`conjugate_gradient` solves independent systems at once: one per batch entry and per
  column of ``b`` (shape ``(..., n, D)``). Each stops when its squared residual falls below
  ``n * eps**2`` (KeOps's test, per system), and, unlike KeOps (SPEC §8.9), the iterations
  are capped by ``max_iter``; a warning says when the cap stopped them.
- :func:`lazy_solve` is ``LazyTensor.solve``: ``K.solve(b, alpha=...)`` solves
  ``alpha a_i + sum_j K_ij a_j = b_i``.
- :class:`GenericKernelSolve` is ``KernelSolve``: the same solver around a ``Genred`` Sum.

Neither checks that the matrix is symmetric positive definite: CG needs it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ArgumentError, FormulaError
from ..formula.ir import Cat
from ..formula.parse import parse_aliases, parse_formula
from .reductions import call_arrays, split_kwargs

if TYPE_CHECKING:
    from .core import GenericLazyTensor
    from .tools import ArrayTools

SOLVE_KEYS = ("alpha", "eps", "max_iter")


def conjugate_gradient(
    linop: Callable[[Any], Any],
    b: Any,
    tools: ArrayTools,
    eps: float = 1e-6,
    max_iter: int | None = None,
) -> Any:
    """Solve ``linop(a) = b`` for a symmetric positive definite ``linop``.

    Args:
        linop: the linear map, from and to arrays shaped like ``b`` (batch dims may
            broadcast: the solution takes the shape of ``linop``'s output).
        b: right-hand sides ``(..., n, D)``: one system per batch entry and column.
        tools: the array library's adapter.
        eps: tolerance; a system stops when ``sum_rows(r**2) < n * eps**2``.
        max_iter: most iterations (default ``10 * n + 100``).

    Returns:
        The solution ``a``.

    Example:
        >>> import numpy as np
        >>> from lazykernels.numpy.lazytensor import NUMPY_TOOLS
        >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
        >>> a = conjugate_gradient(lambda v: A @ v, np.array([[1.0], [2.0]]), NUMPY_TOOLS)
        >>> np.round(a.ravel(), 6)
        array([0.090909, 0.636364])
    """
    n = tools.shape(b)[-2]
    if max_iter is None:
        max_iter = 10 * n + 100
    tol = n * eps**2
    r = b - linop(tools.zeros_like(b))  # the residual of a = 0, at the output's full shape
    a = tools.zeros_like(r)
    p = r
    rr = tools.sum_rows(r * r)
    for _ in range(max_iter):
        done = rr < tol
        if tools.all(done):
            return a
        ap = linop(p)
        p_ap = tools.sum_rows(p * ap)
        step = tools.where(done, 0.0, rr / tools.where(done, 1.0, p_ap))
        a = a + step * p
        r = r - step * ap
        rr_new = tools.sum_rows(r * r)
        beta = tools.where(done, 0.0, rr_new / tools.where(done, 1.0, rr))
        p = r + beta * p
        rr = rr_new
    if not tools.all(rr < tol):
        warnings.warn(
            f"conjugate gradient: not converged after max_iter={max_iter} iterations "
            f"(eps={eps}); is alpha Id + K positive definite?",
            RuntimeWarning,
            stacklevel=3,
        )
    return a


def _pop_solve_options(kwargs: dict[str, Any]) -> tuple[float, float, int | None]:
    alpha = kwargs.pop("alpha", 1e-10)
    eps = kwargs.pop("eps", 1e-6)
    max_iter = kwargs.pop("max_iter", None)
    return alpha, eps, max_iter


def _rhs(K: GenericLazyTensor, other: Any) -> GenericLazyTensor:
    """The right-hand side as a LazyTensor variable bound to an array (raw arrays: Vi)."""
    from .core import GenericLazyTensor

    if not isinstance(other, GenericLazyTensor):
        if not K.tools.is_array(other):
            raise TypeError(f"solve: b must be a {K.tools.name} array or a LazyTensor variable")
        shape = K.tools.shape(other)
        if len(shape) >= 3:  # (..., M, D): batched rows of i
            other = K.tools.reshape(other, (*shape[:-1], 1, shape[-1]))
            other = K._real_cls(other)
        else:
            other = K._real_cls(other, axis=0)
    if other.node not in other._bindings or other.node.params[2] is Cat.PARAM:
        raise ArgumentError(
            "solve: the right-hand side must be an array, or a Vi / Vj LazyTensor made from one"
        )
    return other


def lazy_solve(
    K: GenericLazyTensor, other: Any, var: Any = None, call: bool = True, **kwargs: Any
) -> Any:
    """``K.solve(b)``: solve ``alpha a + sum K a = b`` by conjugate gradient.

    Args:
        K: the LazyTensor; without ``var`` the system is ``sum_j K_ij a_j`` (K of dim 1 or
            ``b``'s dim), with ``var`` (a symbolic variable of K) it is ``K(var = a)``.
        other: ``b``, an ``(..., M, D)`` array (i-indexed) or a Vi / Vj LazyTensor.
        var: the symbolic variable of K that stands for the unknown, or None.
        call: False returns a function of K's other symbolic variables (then call options
            such as ``backend``).
        kwargs: ``alpha`` (1e-10), ``eps`` (1e-6), ``max_iter``, and reduction options
            (``backend``, ``ranges``, ``dtype_acc``, ``sum_scheme``...).

    Returns:
        The solution ``a``, shaped like ``b`` (with K's batch dims), or a function.
    """
    from .core import GenericLazyTensor

    alpha, eps, max_iter = _pop_solve_options(kwargs)
    K._check_usable()
    b = _rhs(K, other)
    K._merge([K, b])  # same array library, dtype, sizes
    b_cat = b.node.params[2]
    if var is None:
        index = max((v.params[0] for v in K._symbolic_vars()), default=-1) + 1
        unknown = K._real_cls((index, b.ndim, b_cat.opposite().value))
        system = K * unknown
    else:
        if not isinstance(var, GenericLazyTensor) or var.node.op.name != "Var" or var._bindings:
            raise ArgumentError("solve: var must be a symbolic variable, e.g. Vj(0, D)")
        if var.node not in K._symbolic_vars():
            raise FormulaError(f"solve: the variable {var.symbolic_variables[0]} is not in K")
        if var.node.params[2] is not b_cat.opposite() or var.ndim != b.ndim:
            raise ArgumentError(
                "solve: var must have the right-hand side's dim and the opposite index (i/j)"
            )
        unknown, system = var, K
    axis = 1 if unknown.node.params[2] is Cat.J else 0
    reduced = system._reduce("Sum", axis, call=False, **kwargs)
    symbolic = reduced._symbolic_vars()
    position = symbolic.index(unknown.node)
    rhs = b._bindings[b.node]

    def run(*args: Any, **call_kwargs: Any) -> Any:
        if len(args) != len(symbolic) - 1:
            raise ArgumentError(
                f"this solver takes {len(symbolic) - 1} array(s) for K's symbolic variables, "
                f"got {len(args)}"
            )

        options, call_kwargs = split_kwargs(call_kwargs)
        if options:
            raise TypeError(f"{sorted(options)} configure the reduction: pass them to solve()")
        call_kwargs = {**reduced._reduction.call_kwargs, **call_kwargs}
        # every array the reduction reads (the unknown's slot holds rhs for now), so that
        # tools.solve_linear sees them all (PyTorch differentiates with respect to them)
        arrays = call_arrays(reduced, (*args[:position], rhs, *args[position:]), symbolic)
        inputs = [*arrays[:position], *arrays[position + 1 :]]
        backend = call_kwargs.get("backend") or reduced.backend or "auto"
        ranges = call_kwargs.get("ranges", reduced.ranges)

        def apply(a: Any, inputs: Sequence[Any]) -> Any:
            full = [*inputs[:position], a, *inputs[position:]]
            (ka,) = K.tools.run_reduction(reduced._plan, full, backend=backend, ranges=ranges)
            return ka + alpha * a

        return K.tools.solve_linear(apply, rhs, inputs, eps, max_iter)

    if call and len(symbolic) == 1:
        return run()
    return run


def _inverse_position(varinvalias: Any, aliases: Sequence[Any]) -> int:
    """Call position of ``varinvalias``: an alias name, ``"Var(k,d,c)"`` or an int."""
    if isinstance(varinvalias, int) and not isinstance(varinvalias, bool):
        return varinvalias
    if not isinstance(varinvalias, str):
        raise ArgumentError(f"varinvalias must be an alias name, got {varinvalias!r}")
    parsed = parse_aliases(list(aliases))
    for alias in parsed:
        if alias.name == varinvalias.strip():
            return alias.position
    node = parse_formula(varinvalias, parsed)
    if node.op.name != "Var":
        raise ArgumentError(f"varinvalias {varinvalias!r} names no alias and is not a Var(...)")
    return node.params[0]


class GenericKernelSolve:
    """``KernelSolve(formula, aliases, varinvalias, axis=0, ...)`` (SPEC §4.3).

    Solves ``(alpha Id + K) a = b`` where ``K a`` is the Sum reduction of ``formula`` (linear
    in the variable ``varinvalias``) over ``axis``, by :func:`conjugate_gradient`. Adapters
    set ``genred_class`` (their ``Genred``) and ``tools``.
    """

    genred_class: ClassVar[type]
    tools: ClassVar[ArrayTools]

    def __init__(
        self,
        formula: str,
        aliases: Sequence[str],
        varinvalias: Any,
        axis: int = 0,
        dtype: Any = None,
        opt_arg: int | None = None,
        dtype_acc: str = "auto",
        use_double_acc: bool = False,
        sum_scheme: str = "auto",
        enable_chunks: bool = True,
        rec_multVar_highdim: Any = None,  # noqa: N803 (KeOps's keyword)
        use_fast_math: bool = True,
        cuda_type: Any = None,
    ):
        self.genred = self.genred_class(
            formula,
            aliases,
            reduction_op="Sum",
            axis=axis,
            dtype=dtype,
            opt_arg=opt_arg,
            dtype_acc=dtype_acc,
            use_double_acc=use_double_acc,
            sum_scheme=sum_scheme,
            enable_chunks=enable_chunks,
            use_fast_math=use_fast_math,
            cuda_type=cuda_type,
        )
        self.varinvpos = _inverse_position(varinvalias, aliases)
        slots = self.genred.plan.slots
        if not 0 <= self.varinvpos < len(slots):
            raise ArgumentError(f"varinvalias {varinvalias!r}: no input at that position")
        slot = slots[self.varinvpos]
        if slot.cat is not self.genred.plan.reduced_cat:
            raise ArgumentError(
                f"KernelSolve: {slot.describe()} must be indexed by the reduced index "
                f"({'j' if axis == 1 else 'i'} for axis={axis})"
            )

    def __call__(
        self,
        *args: Any,
        backend: str = "auto",
        device_id: int = -1,
        alpha: float = 1e-10,
        eps: float = 1e-6,
        ranges: Any = None,
        max_iter: int | None = None,
    ) -> Any:
        """Solve for the argument at ``varinvalias``'s position (which holds ``b``)."""
        pos = self.varinvpos
        if len(args) != len(self.genred.plan.slots):
            raise ArgumentError(
                f"KernelSolve: expected {len(self.genred.plan.slots)} arrays, got {len(args)}"
            )

        def apply(a: Any, inputs: Sequence[Any]) -> Any:
            full = (*inputs[:pos], a, *inputs[pos:])
            return self.genred(*full, backend=backend, ranges=ranges) + alpha * a

        inputs = [*args[:pos], *args[pos + 1 :]]
        return self.tools.solve_linear(apply, args[pos], inputs, eps, max_iter)
