"""Special cards: B-spline bases and soft-DTW, dynamic programmes over the components.

Each algorithm is written once, over a small arithmetic interface, and runs on two
backends: :class:`NumpyArith` (the NumPy evaluation, on arrays of the leading shape) and
:class:`CodeArith` (the lowering: every operation becomes a temporary through
``ctx.emit``, so the generated code is straight-line, of size O(n * m) for soft-DTW and
O(len(knots) * order) for B-splines; loops over small local arrays in a C++ helper would be
the way to go for long series).

- ``BSpline(knots, x; order)``: the ``knots.dim - order - 1`` B-spline basis functions of
  degree ``order`` at the scalar x, by the Cox–de Boor recursion with KeOps's conventions
  (half-open intervals ``t_i <= x < t_{i+1}``; a ratio over an empty knot span is 0).
  Differentiable with respect to x (for nondecreasing knots) through the internal
  ``DiffBSpline(knots, x; order, n)``, the n-th derivative; not with respect to the knots.
- ``SoftDTW_SqDist(x, y, gamma)``: soft-DTW between the series x (length n) and y (length
  m) with the cost ``(x_i - y_j)^2`` and smoothing gamma. Its gradient is the internal
  ``GradSoftDTW_SqDist`` (dim n + m, as in KeOps), whose own derivative is the internal
  Hessian-vector product ``HvpSoftDTW_SqDist(x, y, gamma, v)``; no derivative in gamma.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import DimensionError
from ..ir import Node, make
from ..opspec import NotDifferentiable, OpSpec, TestSpec
from .vector import broadcast_leading, check_int_param

# --- the two arithmetic backends ------------------------------------------------------------


class NumpyArith:
    """Arithmetic on NumPy arrays (one array per scalar component)."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)

    def const(self, v: float) -> Any:
        return self.dtype.type(v)

    def add(self, *terms: Any) -> Any:
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total

    def sub(self, a: Any, b: Any) -> Any:
        return a - b

    def mul(self, a: Any, b: Any) -> Any:
        return a * b

    def div(self, a: Any, b: Any) -> Any:
        return a / b

    def exp(self, a: Any) -> Any:
        return np.exp(a)

    def log(self, a: Any) -> Any:
        return np.log(a)

    def min(self, a: Any, b: Any) -> Any:
        return np.where(b < a, b, a)

    def indicator(self, lo: Any, x: Any, hi: Any) -> Any:
        """1 where lo <= x < hi, else 0."""
        return ((lo <= x) & (x < hi)).astype(self.dtype)

    def ratio_if_increasing(self, num: Any, lo: Any, hi: Any) -> Any:
        """num / (hi - lo) where lo < hi, else 0."""
        ok = lo < hi
        return np.where(ok, num / np.where(ok, hi - lo, 1), 0).astype(self.dtype)


class CodeArith:
    """Arithmetic that emits kernel IR: each result is a value bound by ``ctx.emit``."""

    def __init__(self, ctx: Any):
        self.ctx = ctx

    def const(self, v: float) -> str:
        return self.ctx.literal(v)

    def _emit(self, template: str, *args: Any) -> Any:
        return self.ctx.emit(self.ctx.fmt(template, *args))

    def add(self, *terms: Any) -> Any:
        return terms[0] if len(terms) == 1 else self.ctx.emit(self.ctx.join(" + ", list(terms)))

    def sub(self, a: Any, b: Any) -> Any:
        return self._emit("{0} - {1}", a, b)

    def mul(self, a: Any, b: Any) -> Any:
        return self._emit("{0} * {1}", a, b)

    def div(self, a: Any, b: Any) -> Any:
        return self._emit("{0} / {1}", a, b)

    def exp(self, a: Any) -> Any:
        return self.ctx.emit(self.ctx.call("exp", a))

    def log(self, a: Any) -> Any:
        return self.ctx.emit(self.ctx.call("log", a))

    def min(self, a: Any, b: Any) -> Any:
        return self._emit("({1} < {0} ? {1} : {0})", a, b)

    def indicator(self, lo: Any, x: Any, hi: Any) -> Any:
        one, zero = self.ctx.literal(1), self.ctx.literal(0)
        return self._emit("({0} <= {1} && {1} < {2} ? {3} : {4})", lo, x, hi, one, zero)

    def ratio_if_increasing(self, num: Any, lo: Any, hi: Any) -> Any:
        zero = self.ctx.literal(0)
        return self._emit("({1} < {2} ? {0} / ({2} - {1}) : {3})", num, lo, hi, zero)


def _numpy_rule(algorithm, arity: int):
    """NumPy evaluation of ``algorithm(ar, *component_lists, *params) -> components``."""

    def numpy_rule(*values_and_params: Any) -> np.ndarray:
        arrays = broadcast_leading(*values_and_params[:arity])
        params = values_and_params[arity:]
        dtype = np.result_type(*arrays)
        comps = [[a[..., k] for k in range(a.shape[-1])] for a in arrays]
        with np.errstate(all="ignore"):
            out = algorithm(NumpyArith(dtype), *comps, *params)
        lead = arrays[0].shape[:-1]
        return np.stack([np.broadcast_to(np.asarray(o, dtype=dtype), lead) for o in out], -1)

    return numpy_rule


def _lower_rule(algorithm):
    """Lowering of ``algorithm`` through :class:`CodeArith`."""

    def lower(ctx: Any, a: list[list[str]], params: tuple) -> list[str]:
        return list(algorithm(CodeArith(ctx), *a, *params))

    return lower


# --- B-splines ------------------------------------------------------------------------------


def bspline_basis(ar: Any, knots: list, x: list, order: int, nder: int = 0) -> list:
    """The n-th x-derivative (``nder``) of the B-spline basis of degree ``order``.

    Levels k = 1..order of the recursion are value steps
    ``B_{i,k} = w_{i,k} B_{i,k-1} + (1 - w_{i+1,k}) B_{i+1,k-1}`` with
    ``w_{i,k} = (x - t_i) / (t_{i+k} - t_i)``, except the last ``nder`` levels, which are
    derivative steps ``k / (t_{i+k} - t_i) B_{i,k-1} - k / (t_{i+k+1} - t_{i+1}) B_{i+1,k-1}``
    (the classical identity for nondecreasing knots). A span that is not increasing gives 0.
    """
    (xv,) = x
    n_knots = len(knots)
    basis = [ar.indicator(knots[i], xv, knots[i + 1]) for i in range(n_knots - 1)]
    offsets: dict[int, Any] = {}  # x - t_i, shared by the levels
    for k in range(1, order + 1):
        if k <= order - nder:
            for i in range(n_knots - k):
                if i not in offsets:
                    offsets[i] = ar.sub(xv, knots[i])
            w = [
                ar.ratio_if_increasing(offsets[i], knots[i], knots[i + k])
                for i in range(n_knots - k)
            ]
            one = ar.const(1)
            basis = [
                ar.add(ar.mul(w[i], basis[i]), ar.mul(ar.sub(one, w[i + 1]), basis[i + 1]))
                for i in range(n_knots - 1 - k)
            ]
        else:
            c = [
                ar.ratio_if_increasing(ar.const(k), knots[i], knots[i + k])
                for i in range(n_knots - k)
            ]
            basis = [
                ar.sub(ar.mul(c[i], basis[i]), ar.mul(c[i + 1], basis[i + 1]))
                for i in range(n_knots - 1 - k)
            ]
    return basis


def _bspline_dim(name: str, dims: tuple[int, ...], order: Any) -> int:
    order = check_int_param(name, "the order", order, 0)
    n_knots, x_dim = dims
    if x_dim != 1:
        raise DimensionError(f"{name}: x must be a scalar (dimension 1), got dimension {x_dim}")
    if n_knots < order + 2:
        raise DimensionError(
            f"{name}: B-splines of order {order} need at least {order + 2} knots, got {n_knots}"
        )
    return n_knots - order - 1


def _diff_bspline_dim(dims: tuple[int, ...], params: tuple) -> int:
    order, nder = params
    out = _bspline_dim("DiffBSpline", dims, order)
    nder = check_int_param("DiffBSpline", "the derivative order n", nder, 0)
    if nder > order:
        raise DimensionError(f"DiffBSpline: derivative order {nder} exceeds the order {order}")
    return out


_KNOTS_NOT_DIFFERENTIABLE = "no derivative with respect to the knots"


def _vjp_bspline_in_x(order: int, nder: int):
    def vjp(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
        knots, x = args
        if nder + 1 > order:  # piecewise polynomial of degree `order`: derivative 0 a.e.
            return (NotDifferentiable(_KNOTS_NOT_DIFFERENTIABLE), None)
        d = make("DiffBSpline", (knots, x), (order, nder + 1))
        return (NotDifferentiable(_KNOTS_NOT_DIFFERENTIABLE), g * d)  # grad sums to dim 1

    return vjp


def _vjp_bspline(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    return _vjp_bspline_in_x(params[0], 0)(out, g, args, params)


def _vjp_diff_bspline(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    return _vjp_bspline_in_x(params[0], params[1])(out, g, args, params)


BSPLINE = OpSpec(
    "BSpline",
    2,
    dim=lambda dims, params: _bspline_dim("BSpline", dims, params[0]),
    nparams=1,
    param_names=("order",),
    numpy=_numpy_rule(bspline_basis, 2),
    lower=_lower_rule(bspline_basis),
    vjp=_vjp_bspline,
    test=TestSpec(arg_dims=(7, 1), params=(2,), grad=False),
    doc="B-spline basis of degree `order` on `knots`, at the scalar x (De Boor recursion)",
)
DIFF_BSPLINE = OpSpec(
    "DiffBSpline",
    2,
    dim=_diff_bspline_dim,
    nparams=2,
    param_names=("order", "n"),
    numpy=_numpy_rule(bspline_basis, 2),
    lower=_lower_rule(bspline_basis),
    vjp=_vjp_diff_bspline,
    test=TestSpec(arg_dims=(7, 1), params=(3, 2), grad=False),
    doc="internal: n-th derivative in x of BSpline(knots, x; order)",
)

# --- soft-DTW -------------------------------------------------------------------------------


def _predecessors(i: int, j: int) -> list[tuple[int, int]]:
    if i == 0:
        return [(0, j - 1)] if j > 0 else []
    if j == 0:
        return [(i - 1, 0)]
    return [(i - 1, j - 1), (i - 1, j), (i, j - 1)]


class _SoftDTW:
    """The soft-DTW programme on one backend: forward table, weights, adjoints, tangents."""

    def __init__(self, ar: Any, x: list, y: list, gamma: list):
        self.ar, self.n, self.m, self.gamma = ar, len(x), len(y), gamma[0]
        self.d = [[ar.sub(xi, yj) for yj in y] for xi in x]
        self.c = [[ar.mul(dij, dij) for dij in row] for row in self.d]
        self.r: dict[tuple[int, int], Any] = {}
        self.w: dict[tuple[tuple[int, int], tuple[int, int]], Any] = {}
        for i in range(self.n):
            for j in range(self.m):
                self.r[i, j] = self._cell(i, j)

    def _cell(self, i: int, j: int) -> Any:
        ar, preds = self.ar, _predecessors(i, j)
        if not preds:
            return self.c[i][j]
        if len(preds) == 1:
            return ar.add(self.c[i][j], self.r[preds[0]])
        a, b, c = (self.r[p] for p in preds)
        low = ar.min(ar.min(a, b), c)
        expsum = ar.add(*(ar.exp(ar.div(ar.sub(low, v), self.gamma)) for v in (a, b, c)))
        softmin = ar.sub(low, ar.mul(self.gamma, ar.log(expsum)))
        return ar.add(self.c[i][j], softmin)

    def weight(self, s: tuple[int, int], q: tuple[int, int]) -> Any:
        """dR[s] / dR[q] for a predecessor q of s (1 on the borders)."""
        if len(_predecessors(*s)) == 1:
            return None  # exactly 1
        if (s, q) not in self.w:
            ar = self.ar
            shifted = ar.sub(ar.sub(self.r[s], self.c[s[0]][s[1]]), self.r[q])
            self.w[s, q] = ar.exp(ar.div(shifted, self.gamma))
        return self.w[s, q]

    def _successors(self, i: int, j: int) -> list[tuple[int, int]]:
        cells = [(i + 1, j), (i, j + 1), (i + 1, j + 1)]
        return [(a, b) for a, b in cells if a < self.n and b < self.m]

    def adjoints(self) -> dict[tuple[int, int], Any]:
        """E[i, j] = dR[n-1, m-1] / dR[i, j] (= d/dC[i, j]), by the backward recursion."""
        ar, e = self.ar, {(self.n - 1, self.m - 1): self.ar.const(1)}
        for i in reversed(range(self.n)):
            for j in reversed(range(self.m)):
                if (i, j) in e:
                    continue
                terms = []
                for s in self._successors(i, j):
                    w = self.weight(s, (i, j))
                    terms.append(e[s] if w is None else ar.mul(e[s], w))
                e[i, j] = ar.add(*terms)
        return e

    def gradient(self, e: dict, ce: dict | None = None) -> list:
        """[d/dx_i] + [d/dy_j] of sum C[i,j] E[i,j]; ``ce`` adds sum dC[i,j] . E'[i,j]."""
        ar = self.ar
        prods = {
            (i, j): ar.mul(self.d[i][j], e[i, j]) for i in range(self.n) for j in range(self.m)
        }
        if ce is not None:
            prods = {k: ar.add(v, ce[k]) for k, v in prods.items()}
        two, minus_two = ar.const(2), ar.const(-2)
        gx = [ar.mul(two, ar.add(*(prods[i, j] for j in range(self.m)))) for i in range(self.n)]
        gy = [
            ar.mul(minus_two, ar.add(*(prods[i, j] for i in range(self.n)))) for j in range(self.m)
        ]
        return gx + gy

    def hvp(self, v: list) -> list:
        """Hessian (in x, y) times v: forward-mode tangent of the gradient along v."""
        ar, n, m = self.ar, self.n, self.m
        dv = [[ar.sub(v[i], v[n + j]) for j in range(m)] for i in range(n)]
        two = ar.const(2)
        cdot = {
            (i, j): ar.mul(two, ar.mul(self.d[i][j], dv[i][j])) for i in range(n) for j in range(m)
        }
        rdot: dict[tuple[int, int], Any] = {}
        for i in range(n):
            for j in range(m):
                terms = [cdot[i, j]]
                for q in _predecessors(i, j):
                    w = self.weight((i, j), q)
                    terms.append(rdot[q] if w is None else ar.mul(w, rdot[q]))
                rdot[i, j] = ar.add(*terms)
        e = self.adjoints()
        edot = {(n - 1, m - 1): ar.const(0)}
        for i in reversed(range(n)):
            for j in reversed(range(m)):
                if (i, j) in edot:
                    continue
                terms = []
                for s in self._successors(i, j):
                    w = self.weight(s, (i, j))
                    if w is None:
                        terms.append(edot[s])
                        continue
                    rate = ar.div(ar.sub(ar.sub(rdot[s], cdot[s]), rdot[i, j]), self.gamma)
                    terms.append(ar.mul(ar.add(edot[s], ar.mul(e[s], rate)), w))
                edot[i, j] = ar.add(*terms)
        return self.gradient(edot, {k: ar.mul(dv[k[0]][k[1]], e[k]) for k in e})


def softdtw_value(ar: Any, x: list, y: list, gamma: list) -> list:
    """[R[n-1, m-1]]: the soft-DTW value."""
    prog = _SoftDTW(ar, x, y, gamma)
    return [prog.r[prog.n - 1, prog.m - 1]]


def softdtw_gradient(ar: Any, x: list, y: list, gamma: list) -> list:
    """Gradient of the soft-DTW value in (x, y), concatenated."""
    prog = _SoftDTW(ar, x, y, gamma)
    return prog.gradient(prog.adjoints())


def softdtw_hvp(ar: Any, x: list, y: list, gamma: list, v: list) -> list:
    """Hessian of the soft-DTW value in (x, y) times v (dim n + m)."""
    return _SoftDTW(ar, x, y, gamma).hvp(v)


def _softdtw_dims(name: str, dims: tuple[int, ...]) -> tuple[int, int]:
    if dims[2] != 1:
        raise DimensionError(f"{name}: gamma must be a scalar (dimension 1), got {dims[2]}")
    return dims[0], dims[1]


def _hvp_dim(dims: tuple[int, ...], params: tuple) -> int:
    n, m = _softdtw_dims("HvpSoftDTW_SqDist", dims)
    if dims[3] != n + m:
        raise DimensionError(
            f"HvpSoftDTW_SqDist: the direction must have dimension {n + m}, got {dims[3]}"
        )
    return n + m


_GAMMA = NotDifferentiable("no derivative with respect to gamma")


def _split(h: Node, n: int, m: int) -> tuple[Node, Node]:
    return make("Extract", (h,), (0, n)), make("Extract", (h,), (n, m))


def _softdtw_dim(dims: tuple[int, ...], params: tuple) -> int:
    _softdtw_dims("SoftDTW_SqDist", dims)
    return 1


def _vjp_softdtw(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    x, y, gamma = args
    grad_xy = g * make("GradSoftDTW_SqDist", args)
    return (*_split(grad_xy, x.dim, y.dim), _GAMMA)


def _vjp_grad_softdtw(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    x, y, gamma = args
    hv = make("HvpSoftDTW_SqDist", (x, y, gamma, g))  # the Hessian is symmetric
    return (*_split(hv, x.dim, y.dim), _GAMMA)


def _vjp_hvp_softdtw(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    x, y, gamma, v = args
    third = NotDifferentiable("third derivatives of SoftDTW_SqDist are not implemented")
    return (third, third, _GAMMA, make("HvpSoftDTW_SqDist", (x, y, gamma, g)))


_SOFTDTW_TEST = TestSpec(arg_dims=(4, 3, 1), low=0.3, high=2.0, grad=False)

SOFTDTW_SQDIST = OpSpec(
    "SoftDTW_SqDist",
    3,
    dim=_softdtw_dim,
    numpy=_numpy_rule(softdtw_value, 3),
    lower=_lower_rule(softdtw_value),
    vjp=_vjp_softdtw,
    test=_SOFTDTW_TEST,
    doc="soft-DTW between the series x and y, cost (x_i - y_j)^2, smoothing gamma",
)
GRAD_SOFTDTW_SQDIST = OpSpec(
    "GradSoftDTW_SqDist",
    3,
    dim=lambda dims, params: sum(_softdtw_dims("GradSoftDTW_SqDist", dims)),
    numpy=_numpy_rule(softdtw_gradient, 3),
    lower=_lower_rule(softdtw_gradient),
    vjp=_vjp_grad_softdtw,
    test=_SOFTDTW_TEST,
    doc="internal: gradient of SoftDTW_SqDist in (x, y), concatenated",
)
HVP_SOFTDTW_SQDIST = OpSpec(
    "HvpSoftDTW_SqDist",
    4,
    dim=_hvp_dim,
    numpy=_numpy_rule(softdtw_hvp, 4),
    lower=_lower_rule(softdtw_hvp),
    vjp=_vjp_hvp_softdtw,
    test=TestSpec(arg_dims=(4, 3, 1, 7), low=0.3, high=2.0, grad=False),
    doc="internal: Hessian of SoftDTW_SqDist in (x, y) times v",
)

CARDS = (
    BSPLINE,
    DIFF_BSPLINE,
    SOFTDTW_SQDIST,
    GRAD_SOFTDTW_SQDIST,
    HVP_SOFTDTW_SQDIST,
)
