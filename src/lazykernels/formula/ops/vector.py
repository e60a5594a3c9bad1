"""Vector (structural) cards: indexing, concatenation, one-hot, inner products, inner min/max.

These ops re-index or combine the components of their arguments; they are not element-wise.
Their ``lower`` rules return one C++ expression per output component: structural ops
(``Elem``, ``Extract``, ``Concat``...) only re-index the argument atoms and emit no code.

The norm and distance sugar (``SqDist``, ``SqNorm2``, ``Norm2``, ``Normalize``, the weighted
norms) expands into primitives when built; ``SymSqNorm`` lives with the tensor cards.

Lowering context used here (see ``codegen.lower.LowerCtx``): ``ctx.literal(value)`` is a
number of the kernel's scalar type, ``ctx.fmt(template, *args)`` a neutral infix expression,
``ctx.call(fn, *args)`` a neutral maths function, ``ctx.emit(expr)`` binds ``expr`` to a
fresh value. Above the unrolling threshold, ``codegen.loops`` lowers these ops with loops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DimensionError
from ..ir import Node, make
from ..opspec import OpSpec, TestSpec, fixed_dim, zero_derivative

# --- shared helpers (also used by the tensor and special cards) -----------------------------


def broadcast_leading(*arrays: np.ndarray) -> list[np.ndarray]:
    """Broadcast the leading (non-vector) axes of ``arrays``, keeping each last axis."""
    arrays = tuple(np.asarray(a) for a in arrays)
    lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
    return [np.broadcast_to(a, lead + a.shape[-1:]) for a in arrays]


def check_int_param(name: str, what: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, or a ``DimensionError`` naming the op and parameter."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DimensionError(f"{name}: {what} must be an integer, got {value!r}")
    if value < low:
        raise DimensionError(f"{name}: {what} must be >= {low}, got {value}")
    return int(value)


def _zero_lit(ctx: Any) -> str:
    return ctx.literal(0)


# --- Elem / ElemT ---------------------------------------------------------------------------


def _elem_dim(dims: tuple[int, ...], params: tuple) -> int:
    m = check_int_param("Elem", "the index m", params[0], 0)
    if m >= dims[0]:
        raise DimensionError(
            f"Elem: index m={m} is out of range for an argument of dimension {dims[0]}"
        )
    return 1


def _elemt_dim(dims: tuple[int, ...], params: tuple) -> int:
    n = check_int_param("ElemT", "the output dimension n", params[0], 1)
    m = check_int_param("ElemT", "the index m", params[1], 0)
    if dims[0] != 1:
        raise DimensionError(f"ElemT: the argument must have dimension 1, got {dims[0]}")
    if m >= n:
        raise DimensionError(f"ElemT: index m={m} is out of range for output dimension n={n}")
    return n


def _elemt_numpy(x: np.ndarray, n: int, m: int) -> np.ndarray:
    out = np.zeros(x.shape[:-1] + (n,), dtype=x.dtype)
    out[..., m] = x[..., 0]
    return out


def _lower_elemt(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    n, m = params
    out = [_zero_lit(ctx)] * n
    out[m] = a[0][0]
    return out


ELEM = OpSpec(
    "Elem",
    1,
    dim=_elem_dim,
    nparams=1,
    param_names=("m",),
    numpy=lambda x, m: x[..., m : m + 1],
    lower=lambda ctx, a, params: [a[0][params[0]]],
    vjp=lambda out, g, args, params: (make("ElemT", (g,), (args[0].dim, params[0])),),
    test=TestSpec(arg_dims=(4,), params=(2,)),
    doc="component m of f (a scalar)",
)
ELEMT = OpSpec(
    "ElemT",
    1,
    dim=_elemt_dim,
    nparams=2,
    param_names=("n", "m"),
    numpy=_elemt_numpy,
    lower=_lower_elemt,
    vjp=lambda out, g, args, params: (make("Elem", (g,), (params[1],)),),
    test=TestSpec(arg_dims=(1,), params=(4, 1)),
    doc="the scalar f placed at index m of a zero vector of dimension n",
)

# --- Extract / ExtractT ---------------------------------------------------------------------


def _extract_dim(dims: tuple[int, ...], params: tuple) -> int:
    start = check_int_param("Extract", "start", params[0], 0)
    d = check_int_param("Extract", "dim", params[1], 1)
    if start + d > dims[0]:
        raise DimensionError(
            f"Extract: components [{start}, {start + d}) are out of range for an argument "
            f"of dimension {dims[0]}"
        )
    return d


def _extractt_dim(dims: tuple[int, ...], params: tuple) -> int:
    start = check_int_param("ExtractT", "start", params[0], 0)
    d = check_int_param("ExtractT", "dim", params[1], 1)
    if start + dims[0] > d:
        raise DimensionError(
            f"ExtractT: an argument of dimension {dims[0]} placed at start={start} does not "
            f"fit in the output dimension {d}"
        )
    return d


def _extractt_numpy(x: np.ndarray, start: int, d: int) -> np.ndarray:
    out = np.zeros(x.shape[:-1] + (d,), dtype=x.dtype)
    out[..., start : start + x.shape[-1]] = x
    return out


def _lower_extractt(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    start, d = params
    zero = _zero_lit(ctx)
    return [zero] * start + list(a[0]) + [zero] * (d - start - len(a[0]))


EXTRACT = OpSpec(
    "Extract",
    1,
    dim=_extract_dim,
    nparams=2,
    param_names=("start", "dim"),
    numpy=lambda x, start, d: x[..., start : start + d],
    lower=lambda ctx, a, params: list(a[0][params[0] : params[0] + params[1]]),
    vjp=lambda out, g, args, params: (make("ExtractT", (g,), (params[0], args[0].dim)),),
    test=TestSpec(arg_dims=(5,), params=(1, 3)),
    doc="components start, ..., start+dim-1 of f",
)
EXTRACTT = OpSpec(
    "ExtractT",
    1,
    dim=_extractt_dim,
    nparams=2,
    param_names=("start", "dim"),
    numpy=_extractt_numpy,
    lower=_lower_extractt,
    vjp=lambda out, g, args, params: (make("Extract", (g,), (params[0], args[0].dim)),),
    test=TestSpec(arg_dims=(3,), params=(1, 6)),
    doc="f placed at components start, ... of a zero vector of dimension dim",
)

# --- Concat ---------------------------------------------------------------------------------


def _vjp_concat(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    f, h = args
    return (make("Extract", (g,), (0, f.dim)), make("Extract", (g,), (f.dim, h.dim)))


def _concat_numpy(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.concatenate(broadcast_leading(f, g), axis=-1)


CONCAT = OpSpec(
    "Concat",
    2,
    dim=lambda dims, params: dims[0] + dims[1],
    numpy=_concat_numpy,
    lower=lambda ctx, a, params: list(a[0]) + list(a[1]),
    vjp=_vjp_concat,
    test=TestSpec(arg_dims=(2, 3)),
    doc="the components of f followed by those of g",
)

# --- OneHot ---------------------------------------------------------------------------------


def _onehot_dim(dims: tuple[int, ...], params: tuple) -> int:
    d = check_int_param("OneHot", "the dimension D", params[0], 1)
    if dims[0] != 1:
        raise DimensionError(f"OneHot: the argument must have dimension 1, got {dims[0]}")
    return d


def _onehot_numpy(x: np.ndarray, d: int) -> np.ndarray:
    # KeOps's index is the C cast (int)(f + 0.5): truncation toward zero.
    index = np.trunc(x + x.dtype.type(0.5))
    return (index == np.arange(d, dtype=x.dtype)).astype(x.dtype)


def _lower_onehot(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    (d,) = params
    index = ctx.emit(ctx.call("trunc", ctx.fmt("{0} + {1}", a[0][0], ctx.literal(0.5))))
    one, zero = ctx.literal(1), ctx.literal(0)
    return [ctx.fmt("({0} == {1} ? {2} : {3})", index, ctx.literal(k), one, zero) for k in range(d)]


ONEHOT = OpSpec(
    "OneHot",
    1,
    dim=_onehot_dim,
    nparams=1,
    param_names=("D",),
    numpy=_onehot_numpy,
    lower=_lower_onehot,
    vjp=zero_derivative,
    test=TestSpec(arg_dims=(1,), params=(4,), low=-1.8, high=4.8),
    doc="1 at index int(f + 0.5) of a zero vector of dimension D (all 0 if out of range)",
)

# --- Scalprod -------------------------------------------------------------------------------


def _scalprod_dim(dims: tuple[int, ...], params: tuple) -> int:
    # Equal dimensions; a dim-1 argument broadcasts (KeOps rewrites Scalprod(a, g) as a*Sum(g)).
    if dims[0] != dims[1] and 1 not in dims:
        raise DimensionError(
            f"Scalprod: the arguments must have the same dimension, got {dims[0]} and {dims[1]}"
        )
    return 1


def _lower_scalprod(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    f, g = a
    n = max(len(f), len(g))
    terms = [ctx.fmt("{0} * {1}", f[k % len(f)], g[k % len(g)]) for k in range(n)]
    return [ctx.fmt("({0})", ctx.join(" + ", terms))]


def _vjp_scalprod(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    f, h = args
    return (g * h, g * f)  # grad fits a dim-D cotangent of a dim-1 argument by Sum


SCALPROD = OpSpec(
    "Scalprod",
    2,
    dim=_scalprod_dim,
    numpy=lambda f, g: np.sum(f * g, axis=-1, keepdims=True),
    lower=_lower_scalprod,
    vjp=_vjp_scalprod,
    test=TestSpec(arg_dims=(4, 4)),
    doc="scalar product <f, g> (a dim-1 argument is broadcast)",
)

# --- inner Min / Max / ArgMin / ArgMax ------------------------------------------------------


def _lower_select(strict_op: str, want_index: bool):
    """Lowering of Min/Max/ArgMin/ArgMax: a running comparison, the first extremum wins."""

    def lower(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
        comps = a[0]
        best = comps[0]
        index = ctx.literal(0)
        for k in range(1, len(comps)):
            better = ctx.fmt(f"{{0}} {strict_op} {{1}}", comps[k], best)
            if want_index:
                index = ctx.emit(ctx.fmt("({0} ? {1} : {2})", better, ctx.literal(k), index))
                if k == len(comps) - 1:
                    break  # the last running extremum is not needed
            best = ctx.emit(ctx.fmt("({0} ? {1} : {2})", better, comps[k], best))
        return [index if want_index else best]

    return lower


def _vjp_select(arg_op: str):
    """Min/Max: the cotangent flows to the selected component, OneHot(ArgMin(f), D) * g."""

    def vjp(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
        (f,) = args
        return (make("OneHot", (make(arg_op, (f,)),), (f.dim,)) * g,)

    return vjp


def _argselect_numpy(pick):
    def numpy_rule(x: np.ndarray) -> np.ndarray:
        return pick(x, axis=-1)[..., None].astype(x.dtype)

    return numpy_rule


MIN = OpSpec(
    "Min",
    1,
    dim=fixed_dim(1),
    numpy=lambda x: np.min(x, axis=-1, keepdims=True),
    lower=_lower_select("<", want_index=False),
    vjp=_vjp_select("ArgMin"),
    test=TestSpec(arg_dims=(5,)),
    doc="smallest component of f",
)
MAX = OpSpec(
    "Max",
    1,
    dim=fixed_dim(1),
    numpy=lambda x: np.max(x, axis=-1, keepdims=True),
    lower=_lower_select(">", want_index=False),
    vjp=_vjp_select("ArgMax"),
    test=TestSpec(arg_dims=(5,)),
    doc="largest component of f",
)
ARGMIN = OpSpec(
    "ArgMin",
    1,
    dim=fixed_dim(1),
    numpy=_argselect_numpy(np.argmin),
    lower=_lower_select("<", want_index=True),
    vjp=zero_derivative,
    test=TestSpec(arg_dims=(5,)),
    doc="index (as a float) of the smallest component of f; the first one wins",
)
ARGMAX = OpSpec(
    "ArgMax",
    1,
    dim=fixed_dim(1),
    numpy=_argselect_numpy(np.argmax),
    lower=_lower_select(">", want_index=True),
    vjp=zero_derivative,
    test=TestSpec(arg_dims=(5,)),
    doc="index (as a float) of the largest component of f; the first one wins",
)

# --- norm and distance sugar ----------------------------------------------------------------


def _sqnorm_diag(s: Node, a: Node) -> Node:
    if s.dim != a.dim:
        raise DimensionError(
            f"SqNormDiag: the weights S must have the dimension of A ({a.dim}), got {s.dim}"
        )
    return make("Sum", (s * make("Square", (a,)),))


def _sqnorm_iso(s: Node, a: Node) -> Node:
    if s.dim != 1:
        raise DimensionError(f"SqNormIso: the weight S must have dimension 1, got {s.dim}")
    return s * make("SqNorm2", (a,))


def _weighted_sqnorm(a: Node, x: Node) -> Node:
    if a.dim == 1:
        return make("SqNormIso", (a, x))
    if a.dim == x.dim:
        return make("SqNormDiag", (a, x))
    if a.dim == x.dim**2:
        return make("SymSqNorm", (a, x))
    raise DimensionError(
        f"WeightedSqNorm: the weights must have dimension 1, {x.dim} or {x.dim**2} "
        f"(X has dimension {x.dim}), got {a.dim}"
    )


# SqDist(f, g) := Sum(Square(f - g))
SQDIST = OpSpec(
    "SqDist",
    2,
    expand=lambda f, g: make("Sum", (make("Square", (f - g,)),)),
    test=TestSpec(arg_dims=(3, 3)),
    doc="squared Euclidean distance |f - g|^2",
)
# SqNorm2(f) := Sum(Square(f))
SQNORM2 = OpSpec(
    "SqNorm2",
    1,
    expand=lambda f: make("Sum", (make("Square", (f,)),)),
    test=TestSpec(arg_dims=(3,)),
    doc="squared Euclidean norm |f|^2",
)
# Norm2(f) := Sqrt(SqNorm2(f))
NORM2 = OpSpec(
    "Norm2",
    1,
    expand=lambda f: make("Sqrt", (make("SqNorm2", (f,)),)),
    test=TestSpec(arg_dims=(3,)),
    doc="Euclidean norm |f|",
)
# Normalize(f) := Rsqrt(SqNorm2(f)) * f
NORMALIZE = OpSpec(
    "Normalize",
    1,
    expand=lambda f: make("Rsqrt", (make("SqNorm2", (f,)),)) * f,
    test=TestSpec(arg_dims=(3,)),
    doc="f / |f| (0 where f = 0, since Rsqrt(0) = 0)",
)
# SqNormDiag(S, A) := Sum(S * Square(A))
SQNORM_DIAG = OpSpec(
    "SqNormDiag",
    2,
    expand=_sqnorm_diag,
    test=TestSpec(arg_dims=(3, 3)),
    doc="sum_k S_k A_k^2",
)
# SqNormIso(S, A) := S * SqNorm2(A)
SQNORM_ISO = OpSpec(
    "SqNormIso",
    2,
    expand=_sqnorm_iso,
    test=TestSpec(arg_dims=(1, 3)),
    doc="S |A|^2 (S a scalar)",
)
# WeightedSqNorm(A, X) := SqNormIso | SqNormDiag | SymSqNorm, by A.dim in (1, X.dim, X.dim^2)
WEIGHTED_SQNORM = OpSpec(
    "WeightedSqNorm",
    2,
    expand=_weighted_sqnorm,
    test=TestSpec(arg_dims=(9, 3)),
    doc="X^T A X with A a scalar, a diagonal or a full (row-major) matrix",
)
# WeightedSqDist(S, F, G) := WeightedSqNorm(S, F - G)
WEIGHTED_SQDIST = OpSpec(
    "WeightedSqDist",
    3,
    expand=lambda s, f, g: make("WeightedSqNorm", (s, f - g)),
    test=TestSpec(arg_dims=(3, 3, 3)),
    doc="(F - G)^T S (F - G), S as in WeightedSqNorm",
)

CARDS = (
    ELEM,
    ELEMT,
    EXTRACT,
    EXTRACTT,
    CONCAT,
    ONEHOT,
    SCALPROD,
    MIN,
    MAX,
    ARGMIN,
    ARGMAX,
    SQDIST,
    SQNORM2,
    NORM2,
    NORMALIZE,
    SQNORM_DIAG,
    SQNORM_ISO,
    WEIGHTED_SQNORM,
    WEIGHTED_SQDIST,
)
