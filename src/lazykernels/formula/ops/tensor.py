"""Tensor cards: matrix-vector products, outer products and general tensor contractions.

Every matrix or tensor is a flat vector read in **row-major** order (KeOps generates
row-major code only): a dim-(n*p) vector A is the n x p matrix ``A[i, k] = A[i*p + k]``,
and ``TensorDot`` reshapes its arguments to ``dimsfa`` / ``dimsfb`` the same way.

``TensorDot(fa, fb; dimsfa, dimsfb, contfa, contfb[, permute])`` is ``np.tensordot`` of the
reshaped tensors over the axis pairs ``(contfa[t], contfb[t])``; the free axes of fa then
those of fb form the plain result, and ``permute[r]`` (KeOps's convention) is the position
in the output of axis r of that plain result, i.e. the output is
``np.transpose(plain, np.argsort(permute))``. Parameters are tuples of ints.

Sugar: ``Kron`` (a TensorDot with no contraction and an interleaving permutation) and
``SymSqNorm``.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import DimensionError
from ..ir import Node, make
from ..opspec import OpSpec, TestSpec
from .vector import broadcast_leading

# --- MatVecMult / VecMatMult / TensorProd ---------------------------------------------------


def _divisible_dim(name: str, vec: int, mat: int) -> int:
    if mat % vec != 0:
        raise DimensionError(
            f"{name}: the matrix dimension {mat} is not a multiple of the vector dimension {vec}"
        )
    return mat // vec


def _matvec_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = broadcast_leading(a, b)
    p = b.shape[-1]
    mat = a.reshape(a.shape[:-1] + (a.shape[-1] // p, p))
    return np.einsum("...ik,...k->...i", mat, b)


def _vecmat_numpy(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    b, a = broadcast_leading(b, a)
    q = b.shape[-1]
    mat = a.reshape(a.shape[:-1] + (q, a.shape[-1] // q))
    return np.einsum("...ki,...k->...i", mat, b)


def _tensorprod_numpy(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    f, g = broadcast_leading(f, g)
    outer = f[..., :, None] * g[..., None, :]
    return outer.reshape(outer.shape[:-2] + (f.shape[-1] * g.shape[-1],))


def _sum_of_products(ctx: Any, pairs: list[tuple[Any, Any]]) -> Any:
    terms = [ctx.fmt("{0} * {1}", u, v) for u, v in pairs]
    return terms[0] if len(terms) == 1 else ctx.fmt("({0})", ctx.join(" + ", terms))


def _lower_matvec(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    mat, vec = a
    p = len(vec)
    n = len(mat) // p
    return [_sum_of_products(ctx, [(mat[i * p + k], vec[k]) for k in range(p)]) for i in range(n)]


def _lower_vecmat(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    vec, mat = a
    q = len(vec)
    p = len(mat) // q
    return [_sum_of_products(ctx, [(mat[k * p + i], vec[k]) for k in range(q)]) for i in range(p)]


def _vjp_matvec(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    mat, vec = args
    return (make("TensorProd", (g, vec)), make("VecMatMult", (g, mat)))


def _vjp_vecmat(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    vec, mat = args
    return (make("MatVecMult", (mat, g)), make("TensorProd", (vec, g)))


def _vjp_tensorprod(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    f, h = args
    return (make("MatVecMult", (g, h)), make("VecMatMult", (f, g)))


MATVECMULT = OpSpec(
    "MatVecMult",
    2,
    dim=lambda dims, params: _divisible_dim("MatVecMult", dims[1], dims[0]),
    numpy=_matvec_numpy,
    lower=_lower_matvec,
    vjp=_vjp_matvec,
    test=TestSpec(arg_dims=(6, 3)),
    doc="A b with A row-major: out[i] = sum_k A[i*p + k] b[k], p = b.dim",
)
VECMATMULT = OpSpec(
    "VecMatMult",
    2,
    dim=lambda dims, params: _divisible_dim("VecMatMult", dims[0], dims[1]),
    numpy=_vecmat_numpy,
    lower=_lower_vecmat,
    vjp=_vjp_vecmat,
    test=TestSpec(arg_dims=(2, 6)),
    doc="b^T A with A row-major: out[i] = sum_k A[k*p + i] b[k], p = A.dim / b.dim",
)
TENSORPROD = OpSpec(
    "TensorProd",
    2,
    dim=lambda dims, params: dims[0] * dims[1],
    numpy=_tensorprod_numpy,
    lower=lambda ctx, a, params: [ctx.fmt("{0} * {1}", u, v) for u in a[0] for v in a[1]],
    vjp=_vjp_tensorprod,
    test=TestSpec(arg_dims=(2, 3)),
    doc="outer product, row-major: out[i*g.dim + j] = f[i] g[j]",
)

# --- TensorDot ------------------------------------------------------------------------------


def _int_tuple(name: str, what: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value
    ):
        raise DimensionError(f"{name}: {what} must be a tuple of ints, got {value!r}")
    return tuple(int(v) for v in value)


def _check_axes(name: str, what: str, axes: tuple[int, ...], rank: int) -> None:
    if len(set(axes)) != len(axes) or any(not 0 <= a < rank for a in axes):
        raise DimensionError(
            f"{name}: {what} {axes} must be distinct axes in [0, {rank}) of its tensor"
        )


def tensordot_layout(params: tuple) -> tuple:
    """Validated TensorDot parameters, with free axes and output shape.

    Returns:
        ``(dimsfa, dimsfb, contfa, contfb, perm, free_a, free_b, out_shape)``: the first
        five as tuples (``perm`` the identity when not given), ``free_a`` / ``free_b`` the
        uncontracted axes of each tensor, ``out_shape`` the shape of the output tensor.

    Raises:
        DimensionError: malformed parameters or mismatched contracted dimensions.
    """
    name = "TensorDot"
    dimsfa = _int_tuple(name, "dimsfa", params[0])
    dimsfb = _int_tuple(name, "dimsfb", params[1])
    contfa = _int_tuple(name, "contfa", params[2])
    contfb = _int_tuple(name, "contfb", params[3])
    if any(d < 1 for d in dimsfa + dimsfb):
        raise DimensionError(f"{name}: tensor dimensions must be >= 1, got {dimsfa}, {dimsfb}")
    if len(contfa) != len(contfb):
        raise DimensionError(
            f"{name}: contfa {contfa} and contfb {contfb} must have the same length"
        )
    _check_axes(name, "contfa", contfa, len(dimsfa))
    _check_axes(name, "contfb", contfb, len(dimsfb))
    for a, b in zip(contfa, contfb):
        if dimsfa[a] != dimsfb[b]:
            raise DimensionError(
                f"{name}: contracted axes have different sizes: axis {a} of fa has size "
                f"{dimsfa[a]}, axis {b} of fb has size {dimsfb[b]}"
            )
    free_a = tuple(a for a in range(len(dimsfa)) if a not in contfa)
    free_b = tuple(b for b in range(len(dimsfb)) if b not in contfb)
    nfree = len(free_a) + len(free_b)
    perm = tuple(range(nfree))
    if len(params) > 4 and params[4] is not None:
        perm = _int_tuple(name, "permute", params[4])
        if sorted(perm) != list(range(nfree)):
            raise DimensionError(f"{name}: permute {perm} must be a permutation of range({nfree})")
    plain_shape = [dimsfa[a] for a in free_a] + [dimsfb[b] for b in free_b]
    out_shape = [0] * nfree
    for r, p in enumerate(perm):
        out_shape[p] = plain_shape[r]
    return dimsfa, dimsfb, contfa, contfb, perm, free_a, free_b, tuple(out_shape)


def _tensordot_dim(dims: tuple[int, ...], params: tuple) -> int:
    if len(params) > 5:
        raise DimensionError(f"TensorDot takes 4 or 5 parameters, got {len(params)}")
    dimsfa, dimsfb, *_, out_shape = tensordot_layout(params)
    for which, dim, shape in (("fa", dims[0], dimsfa), ("fb", dims[1], dimsfb)):
        if dim != math.prod(shape):
            raise DimensionError(
                f"TensorDot: {which} has dimension {dim}, which is not the product of "
                f"its shape {shape}"
            )
    return math.prod(out_shape)


def _tensordot_numpy(fa: np.ndarray, fb: np.ndarray, *params: Any) -> np.ndarray:
    dimsfa, dimsfb, contfa, contfb, perm, free_a, free_b, out_shape = tensordot_layout(params)
    fa, fb = broadcast_leading(fa, fb)
    lead = fa.shape[:-1]
    letters = iter(string.ascii_letters)
    sub_a = [next(letters) for _ in dimsfa]
    sub_b = [next(letters) for _ in dimsfb]
    for a, b in zip(contfa, contfb):
        sub_b[b] = sub_a[a]
    plain = [sub_a[a] for a in free_a] + [sub_b[b] for b in free_b]
    sub_out = [""] * len(plain)
    for r, p in enumerate(perm):
        sub_out[p] = plain[r]
    spec = f"...{''.join(sub_a)},...{''.join(sub_b)}->...{''.join(sub_out)}"
    out = np.einsum(spec, fa.reshape(lead + dimsfa), fb.reshape(lead + dimsfb))
    return out.reshape(lead + (math.prod(out_shape),))


def _ravel(index: list[int] | tuple[int, ...], shape: tuple[int, ...]) -> int:
    flat = 0
    for i, d in zip(index, shape):
        flat = flat * d + i
    return flat


def tensordot_axes(layout: tuple, out_index: Sequence, c_index: Sequence) -> tuple[list, list]:
    """The axis indices of fa and of fb read by output multi-index ``out_index`` (over the
    output shape) and contraction multi-index ``c_index``; ``layout`` is
    :func:`tensordot_layout`'s. Indices may be ints or symbolic (the loop lowering's)."""
    dimsfa, dimsfb, contfa, contfb, perm, free_a, free_b, _ = layout
    plain = [out_index[perm[r]] for r in range(len(perm))]
    ia, ib = [None] * len(dimsfa), [None] * len(dimsfb)
    for t, a in enumerate(free_a):
        ia[a] = plain[t]
    for t, b in enumerate(free_b):
        ib[b] = plain[len(free_a) + t]
    for t, (a, b) in enumerate(zip(contfa, contfb)):
        ia[a] = ib[b] = c_index[t]
    return ia, ib


def tensordot_terms(params: tuple) -> list[list[tuple[int, int]]]:
    """For each output component (row-major), the (fa index, fb index) pairs it sums."""
    layout = tensordot_layout(params)
    dimsfa, dimsfb, contfa, out_shape = layout[0], layout[1], layout[2], layout[7]
    cont_shape = [dimsfa[a] for a in contfa]
    terms = []
    for out_index in itertools.product(*(range(s) for s in out_shape)):
        pairs = []
        for c_index in itertools.product(*(range(s) for s in cont_shape)):
            ia, ib = tensordot_axes(layout, out_index, c_index)
            pairs.append((_ravel(ia, dimsfa), _ravel(ib, dimsfb)))
        terms.append(pairs)
    return terms


def _lower_tensordot(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
    fa, fb = a
    return [
        _sum_of_products(ctx, [(fa[i], fb[j]) for i, j in pairs])
        for pairs in tensordot_terms(params)
    ]


def _tensordot_params(dims_g, dims_h, cont_g, cont_h, perm) -> tuple:
    params = (tuple(dims_g), tuple(dims_h), tuple(cont_g), tuple(cont_h))
    if tuple(perm) != tuple(range(len(perm))):
        params += (tuple(perm),)
    return params


def _cotangent_tensordot(g: Node, other: Node, layout: tuple, mine: int) -> Node:
    """Cotangent of argument ``mine`` (0 = fa, 1 = fb): G contracted with the other argument.

    G's axes holding the other tensor's free axes are contracted with them; what remains is
    G's axes of my free axes (in output order) then the other's contracted axes (in its axis
    order), which a permutation puts back in my axis order.
    """
    dimsfa, dimsfb, contfa, contfb, perm, free_a, free_b, out_shape = layout
    n_a = len(free_a)
    if mine == 0:
        my_free, my_cont, other_dims, other_free, other_cont = (
            free_a,
            contfa,
            dimsfb,
            free_b,
            contfb,
        )
        my_out = [perm[i] for i in range(n_a)]
        other_out = [perm[n_a + s] for s in range(len(free_b))]
    else:
        my_free, my_cont, other_dims, other_free, other_cont = (
            free_b,
            contfb,
            dimsfa,
            free_a,
            contfa,
        )
        my_out = [perm[n_a + s] for s in range(len(free_b))]
        other_out = [perm[i] for i in range(n_a)]
    new_perm = []
    for o in sorted(my_out):  # G's remaining axes, in output order
        new_perm.append(my_free[my_out.index(o)])
    for c in sorted(other_cont):  # the other's remaining axes, in its order
        new_perm.append(my_cont[other_cont.index(c)])
    params = _tensordot_params(out_shape, other_dims, other_out, other_free, new_perm)
    return make("TensorDot", (g, other), params)


def _vjp_tensordot(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    fa, fb = args
    layout = tensordot_layout(params)
    return (_cotangent_tensordot(g, fb, layout, 0), _cotangent_tensordot(g, fa, layout, 1))


TENSORDOT = OpSpec(
    "TensorDot",
    2,
    dim=_tensordot_dim,
    nparams=4,
    variadic_params=True,
    param_names=("dimsfa", "dimsfb", "contfa", "contfb", "permute"),
    numpy=_tensordot_numpy,
    lower=_lower_tensordot,
    vjp=_vjp_tensordot,
    test=TestSpec(arg_dims=(24, 20), params=((2, 3, 4), (4, 5), (2,), (0,), (2, 0, 1))),
    doc="np.tensordot of the row-major reshaped fa, fb, with an optional output permutation",
)

# --- sugar ----------------------------------------------------------------------------------


def _kron(a: Node, b: Node, dimsfa: tuple[int, ...], dimsfb: tuple[int, ...]) -> Node:
    dimsfa = _int_tuple("Kron", "dimsfa", dimsfa)
    dimsfb = _int_tuple("Kron", "dimsfb", dimsfb)
    if len(dimsfa) != len(dimsfb):
        raise DimensionError(
            f"Kron: dimsfa {dimsfa} and dimsfb {dimsfb} must have the same number of axes"
        )
    r = len(dimsfa)
    interleave = tuple(range(0, 2 * r, 2)) + tuple(range(1, 2 * r, 2))
    return make("TensorDot", (a, b), (dimsfa, dimsfb, (), (), interleave))


def _sym_sqnorm(a: Node, x: Node) -> Node:
    if a.dim != x.dim**2:
        raise DimensionError(
            f"SymSqNorm: the matrix A must have dimension {x.dim}^2 = {x.dim**2}, got {a.dim}"
        )
    return make("Sum", (a * make("TensorProd", (x, x)),))


# Kron(A, B; dimsfa, dimsfb) := TensorDot(A, B; dimsfa, dimsfb, (), (), (0, 2, ..., 1, 3, ...))
KRON = OpSpec(
    "Kron",
    2,
    nparams=2,
    param_names=("dimsfa", "dimsfb"),
    expand=_kron,
    test=TestSpec(arg_dims=(6, 4), params=((2, 3), (2, 2))),
    doc="Kronecker product of the row-major reshaped A and B (like np.kron)",
)
# SymSqNorm(A, X) := Sum(A * TensorProd(X, X))
SYM_SQNORM = OpSpec(
    "SymSqNorm",
    2,
    expand=_sym_sqnorm,
    test=TestSpec(arg_dims=(9, 3)),
    doc="X^T A X with A a row-major X.dim x X.dim matrix",
)

CARDS = (MATVECMULT, VECMATMULT, TENSORPROD, TENSORDOT, KRON, SYM_SQNORM)
