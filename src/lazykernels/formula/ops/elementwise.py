"""Element-wise maths cards (KeOps's VectorizedScalarOps): one scalar function per component.

Dim-1 arguments broadcast against the others (``elementwise_dim``). Derivatives are written
with ``chain`` (partial derivatives times the cotangent); piecewise-constant ops use
``zero_derivative``.
"""

from __future__ import annotations

import numpy as np

from ..ir import make
from ..opspec import OpSpec, TestSpec, chain, elementwise_dim


def _unary(name: str, numpy, c: str, dfdx, test: TestSpec, doc: str, **kw) -> OpSpec:
    return OpSpec(
        name,
        1,
        dim=elementwise_dim(name),
        elementwise=True,
        numpy=numpy,
        c=c,
        vjp=chain(dfdx) if dfdx is not None else None,
        test=test,
        doc=doc,
        **kw,
    )


EXP = _unary(
    "Exp",
    np.exp,
    "std::exp({0})",
    lambda out, x: out,
    TestSpec(arg_dims=(3,)),
    "exponential",
)
LOG = _unary(
    "Log",
    np.log,
    "std::log({0})",
    lambda out, x: make("Inv", (x,)),
    TestSpec(arg_dims=(3,), low=0.2, high=3.0),
    "natural logarithm",
)
SQUARE = _unary(
    "Square",
    np.square,
    "({0} * {0})",
    lambda out, x: 2 * x,
    TestSpec(arg_dims=(3,)),
    "f * f",
)

CARDS = (EXP, LOG, SQUARE)
