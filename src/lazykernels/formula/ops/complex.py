"""Complex-number cards (SPEC §1.5): complex vectors stored as interleaved [re, im] pairs.

A complex vector of n numbers is a real vector of dimension 2n: component 2k is the real part
of number k, component 2k+1 its imaginary part. Binary ops broadcast a single complex number
(dim 2) against a vector (dim 2n); otherwise the dimensions must be equal.

Design: the ops whose scalar code mixes the two parts of a pair (ComplexMult, ComplexExp,
Conj, the Real/Imag projections and injections, ComplexSum/SumT, ComplexSquareAbs) are
*primitives* with a ``lower`` rule: lowering receives one scalar atom per component, so each
pair costs exactly its complex arithmetic, with no gather/scatter through Extract/Concat
nodes for the code generator to see through. Ops that are plain real arithmetic on the
interleaved layout are *sugar*: ComplexAdd/Subtract are Add/Subtract (after broadcasting a
single number with ComplexSumT), ComplexRealScal is a real Mult by a dim-1 scalar, and
ComplexDivide, ComplexAbs, ComplexAngle follow the identities of SPEC §1.5.

Derivatives are of the real representation (a complex number is two real inputs). For a
holomorphic map z -> h(z) the vector-Jacobian product is ``g * conj(h'(z))`` (complex
product); that one identity gives every VJP below.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DimensionError
from ..ir import Node, make
from ..opspec import OpSpec, TestSpec

# --- NumPy views of the interleaved layout ----------------------------------------------------


def _as_complex(x: np.ndarray) -> np.ndarray:
    """(..., 2n) interleaved reals -> (..., n) complex."""
    return x[..., 0::2] + 1j * x[..., 1::2]


def _as_real(z: np.ndarray) -> np.ndarray:
    """(..., n) complex -> (..., 2n) interleaved reals."""
    z = np.asarray(z)
    return np.stack([z.real, z.imag], axis=-1).reshape(*z.shape[:-1], 2 * z.shape[-1])


# --- dimension rules --------------------------------------------------------------------------


def _check_complex(name: str, dim: int) -> None:
    if dim % 2 != 0:
        raise DimensionError(
            f"{name}: a complex argument must have an even dimension ([re, im] pairs), got {dim}"
        )


def complex_broadcast_dim(name: str, dims: tuple[int, ...]) -> int:
    """Output dim of a binary complex op: dims even, equal or one of them 2 (broadcast)."""
    for d in dims:
        _check_complex(name, d)
    big = {d for d in dims if d != 2}
    if len(big) > 1:
        raise DimensionError(
            f"{name}: complex arguments must have the same dimension or dimension 2, got {dims}"
        )
    return big.pop() if big else 2


def _same_dim(name: str):
    def rule(dims: tuple[int, ...], params: tuple) -> int:
        _check_complex(name, dims[0])
        return dims[0]

    return rule


def _half_dim(name: str):
    def rule(dims: tuple[int, ...], params: tuple) -> int:
        _check_complex(name, dims[0])
        return dims[0] // 2

    return rule


def _double_dim(dims: tuple[int, ...], params: tuple) -> int:
    return 2 * dims[0]


def _complex_sum_dim(dims: tuple[int, ...], params: tuple) -> int:
    _check_complex("ComplexSum", dims[0])
    return 2


def _complex_sumt_dim(dims: tuple[int, ...], params: tuple) -> int:
    (d,) = params
    if isinstance(d, bool) or not isinstance(d, int | np.integer):
        raise DimensionError(f"ComplexSumT: the output dimension must be an integer, got {d!r}")
    if dims[0] != 2:
        raise DimensionError(f"ComplexSumT: the argument must have dimension 2, got {dims[0]}")
    if d < 2 or d % 2 != 0:
        raise DimensionError(f"ComplexSumT: the output dimension must be even and >= 2, got {d}")
    return d


# --- lowering helpers ---------------------------------------------------------------------------


def _pairs(scalars: list[str], n: int) -> list[tuple[str, str]]:
    """n (re, im) pairs of a lowered argument; a single number is repeated (broadcast)."""
    pairs = list(zip(scalars[0::2], scalars[1::2]))
    return pairs * n if len(pairs) == 1 else pairs


def _interleave(parts: list[tuple[str, str]]) -> list[Any]:
    return [s for pair in parts for s in pair]


def lower_complex_mult(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    """(a + ib)(c + id) = (ac - bd) + i(ad + bc), pair by pair."""
    n = max(len(a[0]), len(a[1])) // 2
    out = []
    for (re1, im1), (re2, im2) in zip(_pairs(a[0], n), _pairs(a[1], n)):
        out.append(
            (
                ctx.fmt("({0} * {1} - {2} * {3})", re1, re2, im1, im2),
                ctx.fmt("({0} * {1} + {2} * {3})", re1, im2, im1, re2),
            )
        )
    return _interleave(out)


def lower_complex_exp(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    """exp(a + ib) = e^a cos b + i e^a sin b (e^a bound once)."""
    out = []
    for re, im in _pairs(a[0], len(a[0]) // 2):
        scale = ctx.emit(ctx.call("exp", re))
        out.append(
            (
                ctx.fmt("({0} * {1})", scale, ctx.call("cos", im)),
                ctx.fmt("({0} * {1})", scale, ctx.call("sin", im)),
            )
        )
    return _interleave(out)


def lower_complex_exp1j(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    """exp(i x) = cos x + i sin x for each real component x."""
    return _interleave([(ctx.call("cos", x), ctx.call("sin", x)) for x in a[0]])


def lower_conj(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    return _interleave([(re, ctx.fmt("(-{0})", im)) for re, im in _pairs(a[0], len(a[0]) // 2)])


def lower_complex_square_abs(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    return [ctx.fmt("({0} * {0} + {1} * {1})", re, im) for re, im in _pairs(a[0], len(a[0]) // 2)]


def lower_complex_sum(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    return [
        ctx.fmt("({0})", ctx.join(" + ", a[0][0::2])),
        ctx.fmt("({0})", ctx.join(" + ", a[0][1::2])),
    ]


def lower_real2complex(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    zero = ctx.literal(0)
    return _interleave([(x, zero) for x in a[0]])


def lower_imag2complex(ctx, a: list[list[Any]], params: tuple) -> list[Any]:
    zero = ctx.literal(0)
    return _interleave([(zero, x) for x in a[0]])


# --- derivative rules -------------------------------------------------------------------------


def _cmult(a: Node, b: Node) -> Node:
    return make("ComplexMult", (a, b))


def _conj(a: Node) -> Node:
    return make("Conj", (a,))


def _fit(cot: Node, arg: Node) -> Node:
    """Sum the cotangent of a broadcast single complex number (dim 2) over the vector."""
    if arg.dim == 2 and cot.dim != 2:
        return make("ComplexSum", (cot,))
    return cot


def vjp_complex_mult(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    z, w = args
    return (_fit(_cmult(g, _conj(w)), z), _fit(_cmult(g, _conj(z)), w))


def vjp_complex_exp(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    return (_cmult(g, _conj(out)),)  # h' = exp = out


def vjp_complex_exp1j(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    # d/dx (cos x, sin x) = (-sin x, cos x): g_re*(-sin x) + g_im*cos x = Im(g * conj(out))
    return (make("ComplexImag", (_cmult(g, _conj(out)),)),)


def vjp_complex_square_abs(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    # d(re^2 + im^2) = 2 re dre + 2 im dim: [2 g re, 2 g im] = 2 * (g + 0i) * z
    (z,) = args
    return (2 * _cmult(make("Real2Complex", (g,)), z),)


# --- cards ------------------------------------------------------------------------------------

COMPLEX_MULT = OpSpec(
    "ComplexMult",
    2,
    dim=lambda dims, params: complex_broadcast_dim("ComplexMult", dims),
    numpy=lambda a, b: _as_real(_as_complex(a) * _as_complex(b)),
    lower=lower_complex_mult,
    vjp=vjp_complex_mult,
    test=TestSpec(arg_dims=(4, 4)),
    doc="complex product z * w",
)
COMPLEX_EXP = OpSpec(
    "ComplexExp",
    1,
    dim=_same_dim("ComplexExp"),
    numpy=lambda a: _as_real(np.exp(_as_complex(a))),
    lower=lower_complex_exp,
    vjp=vjp_complex_exp,
    test=TestSpec(arg_dims=(4,)),
    doc="complex exponential exp(z)",
)
COMPLEX_EXP1J = OpSpec(
    "ComplexExp1j",
    1,
    dim=_double_dim,
    numpy=lambda x: _as_real(np.exp(1j * x)),
    lower=lower_complex_exp1j,
    vjp=vjp_complex_exp1j,
    test=TestSpec(arg_dims=(3,)),
    doc="exp(i x) = cos x + i sin x of a real vector x (dim 2 * x.dim)",
)
CONJ = OpSpec(
    "Conj",
    1,
    dim=_same_dim("Conj"),
    numpy=lambda a: _as_real(np.conj(_as_complex(a))),
    lower=lower_conj,
    vjp=lambda out, g, args, params: (_conj(g),),  # real-linear and self-adjoint
    test=TestSpec(arg_dims=(4,)),
    doc="complex conjugate",
)
COMPLEX_REAL = OpSpec(
    "ComplexReal",
    1,
    dim=_half_dim("ComplexReal"),
    numpy=lambda a: a[..., 0::2],
    lower=lambda ctx, a, params: a[0][0::2],
    vjp=lambda out, g, args, params: (make("Real2Complex", (g,)),),
    test=TestSpec(arg_dims=(4,)),
    doc="real parts (dim f.dim/2)",
)
COMPLEX_IMAG = OpSpec(
    "ComplexImag",
    1,
    dim=_half_dim("ComplexImag"),
    numpy=lambda a: a[..., 1::2],
    lower=lambda ctx, a, params: a[0][1::2],
    vjp=lambda out, g, args, params: (make("Imag2Complex", (g,)),),
    test=TestSpec(arg_dims=(4,)),
    doc="imaginary parts (dim f.dim/2)",
)
REAL2COMPLEX = OpSpec(
    "Real2Complex",
    1,
    dim=_double_dim,
    numpy=lambda x: _as_real(x + 0j),
    lower=lower_real2complex,
    vjp=lambda out, g, args, params: (make("ComplexReal", (g,)),),
    test=TestSpec(arg_dims=(3,)),
    doc="real vector x as complex numbers x + 0i (dim 2 * x.dim)",
)
IMAG2COMPLEX = OpSpec(
    "Imag2Complex",
    1,
    dim=_double_dim,
    numpy=lambda x: _as_real(1j * x),
    lower=lower_imag2complex,
    vjp=lambda out, g, args, params: (make("ComplexImag", (g,)),),
    test=TestSpec(arg_dims=(3,)),
    doc="real vector x as imaginary numbers 0 + ix (dim 2 * x.dim)",
)
COMPLEX_SQUARE_ABS = OpSpec(
    "ComplexSquareAbs",
    1,
    dim=_half_dim("ComplexSquareAbs"),
    numpy=lambda a: np.abs(_as_complex(a)) ** 2,
    lower=lower_complex_square_abs,
    vjp=vjp_complex_square_abs,
    test=TestSpec(arg_dims=(4,)),
    doc="squared moduli |z|^2 (dim f.dim/2)",
)
COMPLEX_SUM = OpSpec(
    "ComplexSum",
    1,
    dim=_complex_sum_dim,
    numpy=lambda a: _as_real(np.sum(_as_complex(a), axis=-1, keepdims=True)),
    lower=lower_complex_sum,
    vjp=lambda out, g, args, params: (make("ComplexSumT", (g,), (args[0].dim,)),),
    test=TestSpec(arg_dims=(6,)),
    doc="sum of the complex numbers of f (dim 2)",
)
COMPLEX_SUMT = OpSpec(
    "ComplexSumT",
    1,
    dim=_complex_sumt_dim,
    nparams=1,
    param_names=("dim",),
    numpy=lambda a, d: np.tile(a, (1,) * (a.ndim - 1) + (d // 2,)),
    lower=lambda ctx, a, params: a[0] * (params[0] // 2),
    vjp=lambda out, g, args, params: (make("ComplexSum", (g,)),),
    test=TestSpec(arg_dims=(2,), params=(6,)),
    doc="one complex number repeated into a complex vector of (real) dim d",
)


def _complex_add_like(name: str, real_op: str):
    def expand(f: Node, g: Node) -> Node:
        dim = complex_broadcast_dim(name, (f.dim, g.dim))
        if f.dim != dim:
            f = make("ComplexSumT", (f,), (dim,))
        if g.dim != dim:
            g = make("ComplexSumT", (g,), (dim,))
        return make(real_op, (f, g))

    return expand


def _expand_complex_real_scal(a: Node, b: Node) -> Node:
    real, cplx = (a, b) if a.dim == 1 else (b, a)
    if real.dim != 1:
        raise DimensionError(
            f"ComplexRealScal: one argument must be a real scalar (dim 1), got {(a.dim, b.dim)}"
        )
    _check_complex("ComplexRealScal", cplx.dim)
    return make("Mult", (real, cplx))  # a real scalar scales re and im alike


def _expand_complex_divide(f: Node, g: Node) -> Node:
    complex_broadcast_dim("ComplexDivide", (f.dim, g.dim))
    inv_sq_abs = make("Inv", (make("ComplexSquareAbs", (g,)),))
    return _cmult(make("Real2Complex", (inv_sq_abs,)), _cmult(f, _conj(g)))


def _expand_complex_abs(f: Node) -> Node:
    _check_complex("ComplexAbs", f.dim)
    return make("Sqrt", (make("ComplexSquareAbs", (f,)),))


def _expand_complex_angle(f: Node) -> Node:
    _check_complex("ComplexAngle", f.dim)
    return make("Atan2", (make("ComplexImag", (f,)), make("ComplexReal", (f,))))


# ComplexAdd(z, w) := Add(z, w), a single number first repeated by ComplexSumT
COMPLEX_ADD = OpSpec(
    "ComplexAdd",
    2,
    expand=_complex_add_like("ComplexAdd", "Add"),
    test=TestSpec(arg_dims=(4, 4)),
    doc="complex sum z + w",
)
# ComplexSubtract(z, w) := Subtract(z, w), a single number first repeated by ComplexSumT
COMPLEX_SUBTRACT = OpSpec(
    "ComplexSubtract",
    2,
    expand=_complex_add_like("ComplexSubtract", "Subtract"),
    test=TestSpec(arg_dims=(4, 4)),
    doc="complex difference z - w",
)
# ComplexRealScal(x, z) == ComplexRealScal(z, x) := Mult(x, z), x real of dim 1
COMPLEX_REAL_SCAL = OpSpec(
    "ComplexRealScal",
    2,
    expand=_expand_complex_real_scal,
    test=TestSpec(arg_dims=(1, 4)),
    doc="real scalar times complex vector (either argument order)",
)
# ComplexDivide(f, g) := ComplexMult(Real2Complex(Inv(ComplexSquareAbs(g))), f * Conj(g))
COMPLEX_DIVIDE = OpSpec(
    "ComplexDivide",
    2,
    expand=_expand_complex_divide,
    test=TestSpec(arg_dims=(4, 4), low=0.5, high=2.0),
    doc="complex quotient z / w",
)
# ComplexAbs(f) := Sqrt(ComplexSquareAbs(f))
COMPLEX_ABS = OpSpec(
    "ComplexAbs",
    1,
    expand=_expand_complex_abs,
    test=TestSpec(arg_dims=(4,), low=0.3, high=2.0),
    doc="moduli |z| (dim f.dim/2)",
)
# ComplexAngle(f) := Atan2(ComplexImag(f), ComplexReal(f))
COMPLEX_ANGLE = OpSpec(
    "ComplexAngle",
    1,
    expand=_expand_complex_angle,
    test=TestSpec(arg_dims=(4,), low=0.3, high=2.0),
    doc="arguments arg(z) in (-pi, pi] (dim f.dim/2)",
)

CARDS = (
    COMPLEX_ADD,
    COMPLEX_SUBTRACT,
    COMPLEX_MULT,
    COMPLEX_DIVIDE,
    COMPLEX_EXP,
    COMPLEX_EXP1J,
    COMPLEX_IMAG,
    COMPLEX_REAL,
    COMPLEX_REAL_SCAL,
    COMPLEX_SQUARE_ABS,
    COMPLEX_ABS,
    COMPLEX_ANGLE,
    COMPLEX_SUM,
    COMPLEX_SUMT,
    CONJ,
    IMAG2COMPLEX,
    REAL2COMPLEX,
)
