"""The Python half of the R package (``r/``): R's conventions at the edge of lazykernels.numpy.

The R package calls one function, :func:`call`, with the name of an entry of
:data:`ENTRIES`; everything R-specific on the Python side is here:

- **Data cross as bytes.** R writes a numeric matrix's column-major values with ``writeBin``
  (8-byte doubles, or 4-byte floats for ``dtype = "float32"``: R converts while writing) and
  reticulate hands the raw vector over as a ``bytearray``. :func:`from_r` views those bytes
  and copies them once into the C-ordered ``(rows, cols)`` array the kernels read, so a
  LazyTensor's data or a kernel's input is never copied again per call. Reticulate's own
  NumPy conversion is not used: Debian's reticulate 1.28 refuses NumPy 2 arrays, and the
  bytes path behaves the same under every version. Results go back the same way
  (:func:`to_r`): one copy into a ``bytearray`` in R's column-major order, indices shifted
  to 1-based ``int32``.
- **RKeOps's formula strings.** :class:`Operator` is ``keops_kernel()``: a
  ``<Name>_Reduction(F, tag)`` string (KeOps's tag: 0 = one output row per i, the reduction
  running over j) parsed by :func:`~lazykernels.reductions.parse_reduction` into a
  :class:`~lazykernels.core.plan.ReductionPlan`; :meth:`Operator.grad` is ``keops_grad()``,
  built from the reduction derivative rules of :mod:`lazykernels.reductions.derivatives`.
- **R's index names.** A reduction ``index`` names the index reduced over, as in RKeOps's
  LazyTensor (``sum(K, "j")`` is ``sum_j K_ij``, one row per i): ``"j"`` is KeOps's
  ``axis=1``, ``"i"`` is ``axis=0``. Input positions are 1-based.
- **Errors as data.** :func:`call` returns the entry's value, or an :class:`RError` holding
  ``classes`` and ``message`` for a :class:`~lazykernels.errors.LazyKernelsError` (R tells
  them apart by the class reticulate gives the object, without a round trip), so that the R
  side raises a condition
  whose classes are the error's (``lazykernels_FormulaError``...) and whose message is
  lazykernels's own, caret included, whatever reticulate version turns Python exceptions
  into R errors. Other exceptions (bugs) propagate as they are.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.autodiff import derived_inputs, normalise
from ..core.genred import build_plan, run_plan
from ..core.plan import ReductionPlan
from ..errors import ArgumentError, LazyKernelsError
from ..formula.ir import Cat
from ..formula.surface import FormulaSurface
from ..reductions import SPECS, parse_reduction
from ..reductions.derivatives import DerivedPlan, Extra, vjp_rule
from .lazytensor import LazyTensor, Pm, Vi, Vj

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
INNER = ("col", "row")
_AXIS = {"i": 0, "j": 1}
_CAT_NAMES = {Cat.I: "Vi", Cat.J: "Vj", Cat.PARAM: "Pm"}


# --- data ------------------------------------------------------------------------------------


def _dtype(name: Any) -> np.dtype:
    if name not in DTYPES:
        raise ArgumentError(f'dtype must be "float32" or "float64", got {name!r}')
    return DTYPES[name]


def from_r(buf: bytearray, nrow: int, ncol: int, dtype: str, inner: str = "col") -> np.ndarray:
    """The ``(points, dim)`` C-ordered array of an R matrix written by ``writeBin``.

    Args:
        buf: the matrix's values in R's column-major order, 4 or 8 bytes each.
        nrow, ncol: the R matrix's dimensions.
        dtype: ``"float32"`` or ``"float64"``, the size of each value in ``buf``.
        inner: ``"col"``: one point per row (an ``nrow x D`` matrix, RKeOps's default);
            ``"row"``: one point per column (``D x ncol``), whose column-major bytes already
            are the C order of its transpose, so nothing is copied.

    Example:
        >>> import numpy as np
        >>> buf = bytearray(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).tobytes())  # matrix(1:6, 3)
        >>> from_r(buf, 3, 2, "float64")
        array([[1., 4.],
               [2., 5.],
               [3., 6.]])
    """
    kind = _dtype(dtype)
    if inner not in INNER:
        raise ArgumentError(f'inner_dim must be "col" or "row", got {inner!r}')
    nrow, ncol = int(nrow), int(ncol)
    if len(buf) != nrow * ncol * kind.itemsize:
        raise ArgumentError(
            f"{len(buf)} bytes do not hold a {nrow} x {ncol} {dtype} matrix"
        )  # pragma: no cover - the R side writes exactly this many
    values = np.frombuffer(buf, dtype=kind)
    if inner == "row":
        return values.reshape(ncol, nrow)
    # a single column is already C-ordered; otherwise the one transpose copy
    return np.ascontiguousarray(values.reshape(ncol, nrow).T)


def vector_from_r(buf: bytearray, dtype: str) -> np.ndarray:
    """A 1-D array of an R vector written by ``writeBin`` (a parameter's values)."""
    return np.frombuffer(buf, dtype=_dtype(dtype))


def to_r(array: np.ndarray, inner: str = "col") -> tuple[bytearray, list[int], str]:
    """``(bytes, dim, kind)`` for R's ``readBin``: column-major values, 1-based indices.

    Floating arrays keep their dtype (``kind`` ``"float32"`` / ``"float64"``: R reads them
    as doubles); integer arrays (indices) become 1-based ``int32`` (``kind`` ``"integer"``).
    ``inner="row"`` returns a 2-D result transposed (one point per column), as RKeOps does.

    Example:
        >>> import numpy as np
        >>> buf, dim, kind = to_r(np.array([[0, 2], [1, 0]]))
        >>> np.frombuffer(buf, dtype=np.int32).tolist(), dim, kind
        ([1, 2, 3, 1], [2, 2], 'integer')
    """
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        if array.size and int(array.max()) >= np.iinfo(np.int32).max:
            raise ArgumentError("an index does not fit R's 32-bit integers")
        array = array + 1
        kind, dtype = "integer", np.dtype(np.int32)
    else:
        kind, dtype = str(array.dtype), array.dtype
    if inner == "row" and array.ndim == 2:
        array = array.T
    buf = bytearray(array.size * dtype.itemsize)
    # the C order of the reversed axes is R's column-major order of ``array``
    np.frombuffer(buf, dtype=dtype).reshape(array.shape[::-1])[...] = array.T
    return buf, list(array.shape), kind


def _results(outputs: Sequence[np.ndarray] | np.ndarray, inner: str = "col") -> list[tuple]:
    if isinstance(outputs, np.ndarray):
        outputs = (outputs,)
    return [to_r(o, inner) for o in outputs]


# --- keops_kernel / keops_grad ---------------------------------------------------------------


class Operator:
    """``keops_kernel()``'s operator: one reduction plan, the names of its inputs.

    A gradient operator (:meth:`grad`) also holds the derivative rule it runs: its inputs
    are the original ones then the gradient input ``eta``; the rule's other feeds (the
    forward output of the log-sum-exp family, an auxiliary log-sum-exp) are computed here.
    """

    def __init__(
        self,
        plan: ReductionPlan,
        names: Sequence[str],
        rule: DerivedPlan | None = None,
        forward: Operator | None = None,
    ):
        self.plan = plan
        self.names = tuple(names)
        self.rule = rule
        self.forward = forward

    @classmethod
    def from_formula(cls, formula: str, args: Sequence[str], sum_scheme: str = "auto") -> Operator:
        """Parse RKeOps's ``formula`` (``"Sum_Reduction(F, 0)"``) and ``args``."""
        if not isinstance(formula, str):
            raise ArgumentError(f"formula must be a string, got {type(formula).__name__}")
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise ArgumentError('args must be a character vector such as c("x = Vi(3)")')
        parsed = parse_reduction(formula, list(args))
        plan = build_plan(
            parsed.formula,
            parsed.aliases,
            reduction_op=parsed.name,
            axis=1 if parsed.output_cat is Cat.I else 0,
            opt_arg=parsed.k,
            formula2=parsed.formula2,
            sum_scheme=sum_scheme,
        )
        return cls(plan, [s.name or f"arg{s.position + 1}" for s in plan.slots])

    def inputs(self) -> list[tuple[str, str, int]]:
        """``(name, "Vi" | "Vj" | "Pm", dim)`` of each input, in call order."""
        if self.rule is not None:  # the forward inputs, then eta (one row per output row)
            forward = self.forward.plan  # type: ignore[union-attr]
            weight_dim = forward.weight.dim if forward.weight is not None else 0
            (tail,) = SPECS[forward.reduction].output_tails(forward.formula.dim, weight_dim)
            eta = (self.names[-1], _CAT_NAMES[forward.output_cat], tail[-1])
            return [*self.forward.inputs(), eta]  # type: ignore[union-attr]
        slots = self.plan.slots[: len(self.names)]
        return [(n, _CAT_NAMES[s.cat], s.dim) for n, s in zip(self.names, slots)]

    def run(self, arrays: Sequence[np.ndarray], backend: str = "auto") -> tuple[np.ndarray, ...]:
        """The outputs on ``arrays`` (one per input, in call order)."""
        if len(arrays) != len(self.names):
            raise ArgumentError(
                f"the operator takes {len(self.names)} inputs ({', '.join(self.names)}), "
                f"got {len(arrays)}"
            )
        if self.rule is None:
            return run_plan(self.plan, arrays, backend=backend)
        *original, eta = arrays
        rule = self.rule

        def forward_output() -> np.ndarray:
            return self.forward.run(original, backend)[0]  # type: ignore[union-attr]

        needs_output = any(f.kind is Extra.OUTPUT for f in rule.feeds)
        feeds = derived_inputs(
            rule,
            original,
            eta,
            forward_output() if needs_output else None,
            (),
            lambda aux: run_plan(aux, original, backend=backend)[0],
        )
        (out,) = run_plan(rule.plan, feeds, backend=backend)
        out = normalise(rule, out, eta)
        return (out.sum(axis=-2),) if self.rule.sum_rows else (out,)

    def grad(self, var: str | int) -> Operator:
        """``keops_grad()``: the gradient w.r.t. the input ``var`` (name, or 1-based position).

        The new operator takes the same inputs plus ``eta``, the gradient input of the
        output's shape (one row per output index), and returns the gradient of
        ``sum <eta, output>``: one row per row of ``var`` (a vector for a parameter).
        """
        if self.rule is not None:
            raise ArgumentError(
                "keops_grad: the operator is already a gradient; write the formula of the "
                "derivative you want (Grad(Grad(F, x, e), y, f)) in keops_kernel() instead"
            )
        position = self._position(var)
        rule = vjp_rule(self.plan, position)
        eta = "eta"
        while eta in self.names:
            eta += "_"
        return Operator(rule.plan, [*self.names, eta], rule, self)

    def _position(self, var: str | int) -> int:
        if isinstance(var, str):
            if var not in self.names:
                raise ArgumentError(
                    f"keops_grad: no input named {var!r}; the inputs are {', '.join(self.names)}"
                )
            return self.names.index(var)
        if isinstance(var, bool) or not isinstance(var, int | float) or var != int(var):
            raise ArgumentError(f"keops_grad: var must be a name or a position, got {var!r}")
        if not 1 <= var <= len(self.names):
            raise ArgumentError(
                f"keops_grad: var = {int(var)} is not an input position (1 to "
                f"{len(self.names)}; positions are 1-based in R, unlike RKeOps's 0-based var)"
            )
        return int(var) - 1


def kernel(formula: str, args: Sequence[str], sum_scheme: str = "auto") -> Operator:
    """``keops_kernel(formula, args)``: see :meth:`Operator.from_formula`."""
    return Operator.from_formula(formula, args, sum_scheme)


def run_operator(
    op: Operator, arrays: Sequence[np.ndarray], inner: str = "col", backend: str = "auto"
) -> list[tuple]:
    """Run ``op`` and return its outputs for R (:func:`to_r`)."""
    return _results(op.run(list(arrays), backend), inner)


def grad(op: Operator, var: str | int) -> Operator:
    """``keops_grad(op, var)``: see :meth:`Operator.grad`."""
    return op.grad(var)


# --- LazyTensor ------------------------------------------------------------------------------


def variable(array: np.ndarray | float, index: str) -> LazyTensor:
    """``Vi`` / ``Vj`` of a ``(points, dim)`` array, or ``Pm`` (index ``"p"``) of a vector."""
    helpers = {"i": Vi, "j": Vj, "p": Pm}
    if index not in helpers:
        raise ArgumentError(f'index must be "i", "j" or NA (a parameter), got {index!r}')
    return helpers[index](array)


_UNARY_NAMES = (
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "abs",
    "sin",
    "cos",
    "asin",
    "acos",
    "atan",
    "sign",
    "floor",
    "square",
    "relu",
    "step",
    "xlogx",
    "sinxdivx",
    "sqnorm2",
    "norm2",
    "normalize",
    "sum",
    "min",
    "max",
    "argmin",
    "argmax",
)
UNARY: dict[str, Callable[[Any], Any]] = {
    **{name: getattr(FormulaSurface, name) for name in _UNARY_NAMES},
    "neg": operator.neg,
    "inv": lambda x: 1.0 / x,
}
"""The element-wise and inner-dimension operations of the R LazyTensor, by R name."""


def _r_exponent(y: Any) -> Any:
    """R's numbers are doubles: a whole exponent becomes an ``int`` (``x^2`` is ``Square``,
    ``x^3`` is ``Pow(x, 3)``, as RKeOps does), not ``Powf`` of a parameter."""
    if isinstance(y, float) and y.is_integer() and abs(y) < 2**31:
        return int(y)
    return y


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": lambda x, y: x ** _r_exponent(y),
    "|": operator.or_,  # KeOps's scalar product (x | y)
    "sqdist": FormulaSurface.sqdist,
    "weightedsqnorm": FormulaSurface.weightedsqnorm,
    "atan2": FormulaSurface.atan2,
    "concat": FormulaSurface.concat,
}
"""The binary operations of the R LazyTensor, by R name; either operand may be a number."""


def unary(name: str, x: LazyTensor) -> LazyTensor:
    """``UNARY[name](x)``."""
    return UNARY[name](x)


def binary(name: str, x: Any, y: Any) -> LazyTensor:
    """``BINARY[name](x, y)``."""
    return BINARY[name](x, y)


def elem(x: LazyTensor, m: int) -> LazyTensor:
    """The ``m``-th (1-based) coordinate of ``x``."""
    _check_coordinate(x, m, 1, "elem")
    return x.elem(int(m) - 1)


def extract(x: LazyTensor, m: int, d: int) -> LazyTensor:
    """Coordinates ``m`` to ``m + d - 1`` (1-based) of ``x``."""
    _check_coordinate(x, m, d, "extract")
    return x.extract(int(m) - 1, int(d))


def _check_coordinate(x: LazyTensor, m: int, d: int, what: str) -> None:
    if not (m >= 1 and d >= 1 and m + d - 1 <= x.ndim):
        raise ArgumentError(
            f"{what}: coordinates {m} to {m + d - 1} do not fit a LazyTensor of dimension "
            f"{x.ndim} (coordinates are 1-based)"
        )


# RKeOps names of the reductions, and whether they take K / a weight
REDUCTIONS = {
    "sum": "Sum",
    "min": "Min",
    "max": "Max",
    "argmin": "ArgMin",
    "argmax": "ArgMax",
    "min_argmin": "Min_ArgMin",
    "max_argmax": "Max_ArgMax",
    "Kmin": "KMin",
    "argKmin": "ArgKMin",
    "Kmin_argKmin": "KMin_ArgKMin",
    "logsumexp": "LogSumExp",
    "sumsoftmaxweight": "SumSoftMaxWeight",
}


def reduce(
    name: str,
    x: LazyTensor,
    index: str,
    k: int | None = None,
    weight: LazyTensor | None = None,
    backend: str = "auto",
) -> list[tuple]:
    """The reduction ``REDUCTIONS[name]`` of ``x`` over ``index`` (``"i"`` or ``"j"``)."""
    if index not in _AXIS:
        raise ArgumentError(f'index must be "i" or "j" (the index reduced over), got {index!r}')
    if k is not None:
        k = int(k)
    out = x.reduction(REDUCTIONS[name], weight, opt_arg=k, axis=_AXIS[index], backend=backend)
    return _results(out)


def matmul(x: LazyTensor, v: np.ndarray, backend: str = "auto") -> list[tuple]:
    """``x %*% v``: ``sum_j x_ij v_j`` for an ``(N, D)`` array ``v``."""
    return _results(x.__matmul__(v, backend=backend))


def solve(
    x: LazyTensor,
    b: np.ndarray | LazyTensor,
    alpha: float,
    eps: float,
    max_iter: int | None,
    backend: str = "auto",
) -> list[tuple]:
    """``solve(K, b)``: ``(alpha Id + K) a = b`` by conjugate gradient."""
    max_iter = None if max_iter is None else int(max_iter)
    return _results(x.solve(b, alpha=alpha, eps=eps, max_iter=max_iter, backend=backend))


def describe(x: LazyTensor) -> list[Any]:
    """``[formula, dim, number of i, number of j, dtype]`` for R's ``print``."""
    return [str(x.formula), int(x.ndim), x.ni, x.nj, str(np.dtype(x.dtype))]


# --- the entry point -------------------------------------------------------------------------

ENTRIES: dict[str, Callable[..., Any]] = {
    "from_r": from_r,
    "vector_from_r": vector_from_r,
    "kernel": kernel,
    "inputs": Operator.inputs,
    "run": run_operator,
    "grad": grad,
    "variable": variable,
    "unary": unary,
    "binary": binary,
    "elem": elem,
    "extract": extract,
    "reduce": reduce,
    "matmul": matmul,
    "solve": solve,
    "describe": describe,
}
"""What the R package may call, by name."""


def error_classes(err: LazyKernelsError) -> list[str]:
    """The R condition classes of ``err``: its lazykernels classes, most specific first.

    Example:
        >>> from lazykernels.errors import DimensionError
        >>> error_classes(DimensionError("x"))
        ['lazykernels_DimensionError', 'lazykernels_FormulaError', 'lazykernels_error']
    """
    names = [
        f"lazykernels_{c.__name__}"
        for c in type(err).__mro__
        if issubclass(c, LazyKernelsError) and c is not LazyKernelsError
    ]
    return [*names, "lazykernels_error"]


class RError:
    """What :func:`call` returns instead of raising a lazykernels error.

    Attributes:
        classes: the R condition classes (:func:`error_classes`).
        message: the error's message, caret under a malformed formula included.
    """

    def __init__(self, err: LazyKernelsError):
        self.classes = error_classes(err)
        self.message = str(err)


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    """``ENTRIES[name](*args, **kwargs)``, or an :class:`RError` for our errors.

    Example:
        >>> err = call("kernel", "Sum_Reduction(Exq(x), 0)", ["x = Vi(1)"])
        >>> err.classes[0], err.message.splitlines()[0]
        ('lazykernels_FormulaError', "unknown operation 'Exq' (did you mean 'Exp'?)")
    """
    try:
        return ENTRIES[name](*args, **kwargs)
    except LazyKernelsError as err:
        return RError(err)
