"""Arithmetic cards: Add, Minus, Mult, Inv and their sugar (Subtract, Divide), Sum, SumT,
and Fence.

These are the primitives every derivative rule is written with, so they live together.
"""

from __future__ import annotations

import numpy as np

from ...errors import DimensionError
from ..ir import Node, make
from ..opspec import OpSpec, TestSpec, elementwise_dim


def _sum_dim(dims: tuple[int, ...], params: tuple) -> int:
    return 1


def _sumt_dim(dims: tuple[int, ...], params: tuple) -> int:
    (d,) = params
    if dims[0] != 1:
        raise DimensionError(f"SumT: the argument must have dimension 1, got {dims[0]}")
    if d < 1:
        raise DimensionError(f"SumT: the output dimension must be >= 1, got {d}")
    return d


def _vjp_mult(out: Node, g: Node, args: tuple[Node, ...], params: tuple) -> tuple:
    a, b = args
    return (g * b, g * a)


ADD = OpSpec(
    "Add",
    2,
    dim=elementwise_dim("Add"),
    elementwise=True,
    numpy=np.add,
    c="({0} + {1})",
    vjp=lambda out, g, args, params: (g, g),
    test=TestSpec(arg_dims=(3, 3)),
    doc="f + g",
)
MINUS = OpSpec(
    "Minus",
    1,
    dim=elementwise_dim("Minus"),
    elementwise=True,
    numpy=np.negative,
    c="(-{0})",
    vjp=lambda out, g, args, params: (-g,),
    test=TestSpec(arg_dims=(3,)),
    doc="-f",
)
MULT = OpSpec(
    "Mult",
    2,
    dim=elementwise_dim("Mult"),
    elementwise=True,
    numpy=np.multiply,
    c="({0} * {1})",
    vjp=_vjp_mult,
    test=TestSpec(arg_dims=(3, 1)),
    doc="f * g",
)
INV = OpSpec(
    "Inv",
    1,
    dim=elementwise_dim("Inv"),
    elementwise=True,
    numpy=np.reciprocal,
    c="(({T})1 / {0})",
    vjp=lambda out, g, args, params: (-(g * make("Square", (out,))),),  # d(1/x) = -1/x^2
    test=TestSpec(arg_dims=(3,), low=0.5, high=2.0),
    doc="1 / f",
)
# Subtract(f, g) := Add(f, Minus(g))
SUBTRACT = OpSpec(
    "Subtract",
    2,
    expand=lambda f, g: make("Add", (f, make("Minus", (g,)))),
    test=TestSpec(arg_dims=(3, 3)),
    doc="f - g",
)
# Divide(f, g) := Mult(f, Inv(g))
DIVIDE = OpSpec(
    "Divide",
    2,
    expand=lambda f, g: make("Mult", (f, make("Inv", (g,)))),
    test=TestSpec(arg_dims=(3, 1), low=0.5, high=2.0),
    doc="f / g",
)
SUM = OpSpec(
    "Sum",
    1,
    dim=_sum_dim,
    numpy=lambda x: np.sum(x, axis=-1, keepdims=True),
    lower=lambda ctx, a, params: [ctx.join(" + ", a[0])],
    vjp=lambda out, g, args, params: (make("SumT", (g,), (args[0].dim,)),),
    test=TestSpec(arg_dims=(4,)),
    doc="sum of the components of f",
)
SUMT = OpSpec(
    "SumT",
    1,
    dim=_sumt_dim,
    nparams=1,
    param_names=("dim",),
    numpy=lambda x, d: np.repeat(x, d, axis=-1),
    lower=lambda ctx, a, params: a[0] * params[0],
    vjp=lambda out, g, args, params: (make("Sum", (g,)),),
    test=TestSpec(arg_dims=(1,), params=(3,)),
    doc="a scalar broadcast to a vector of dim d",
)

# The identity, computed as written: the compiler may neither reassociate its argument with
# what surrounds it nor contract a product inside it into an outer add (fast-math kernels
# do both). The derivative rules of the log-sum-exp family put F inside one wherever the
# recomputed formula meets a saved output (``Exp(Fence(F) - o)``): with the kernels on both
# sides built to evaluate F as written (codegen/exact.py), F rounds as in the forward kernel
# and the output's rounding cancels, as in dense autograd (float32 accuracy, issue 12 item 5).
FENCE = OpSpec(
    "Fence",
    1,
    dim=elementwise_dim("Fence"),
    elementwise=True,
    numpy=lambda x: x,
    c="lk_fence<{T}>({0})",
    helpers=frozenset({"lk_fence"}),
    vjp=lambda out, g, args, params: (g,),
    test=TestSpec(arg_dims=(3,)),
    doc="f, evaluated as written (no reassociation or contraction across it)",
)

CARDS = (ADD, MINUS, MULT, INV, SUBTRACT, DIVIDE, SUM, SUMT, FENCE)
