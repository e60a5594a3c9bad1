"""The CUDA dialect: CUDA C++ device code, compiled by NVRTC (no host headers).

Maths functions print as the CUDA math library's C names (``expf`` for float32, ``exp`` for
float64), which NVRTC knows without any include; infinities and NaN print as bit patterns
(``__int_as_float``, ``__longlong_as_double``), since the C++ library's numeric limits
need a host header. The host emulation header (:mod:`lazykernels.cuda.emulation`) gives
the same names on the CPU.
"""

from __future__ import annotations

import math
import re

import numpy as np

from .dialect import Dialect
from .dialect_cpu import c_literal
from .kir import Expr, Load

_INPUT = re.compile(r"a[0-9]+")  # the kernel's input arrays (lower.py names them a<slot>)

_SPECIAL = {
    (np.dtype(np.float32), "inf"): "__int_as_float(0x7f800000)",
    (np.dtype(np.float32), "nan"): "__int_as_float(0x7fffffff)",
    (np.dtype(np.float64), "inf"): "__longlong_as_double(0x7ff0000000000000LL)",
    (np.dtype(np.float64), "nan"): "__longlong_as_double(0x7ff8000000000000LL)",
}


class CudaDialect(Dialect):
    """CUDA C++ of the GPU kernels (see the module docstring)."""

    helper_qualifier = "__device__"
    fuse_scaled_exp = False

    def literal(self, value: float) -> str:
        v = float(value)
        if math.isnan(v):
            return _SPECIAL[self.dtype, "nan"]
        if math.isinf(v):
            text = _SPECIAL[self.dtype, "inf"]
            return text if v > 0 else f"(-{text})"
        return c_literal(v, self.dtype)

    def function(self, fn: str) -> tuple[str, frozenset[str]]:
        return (f"{fn}f" if self.dtype == np.float32 else fn), frozenset()


class CudaHalfDialect(CudaDialect):
    """float16 storage, float32 arithmetic: every input load converts with ``lk_h2f``.

    The kernel's inputs ``a<p>`` hold IEEE binary16 bits (``lk_half``); the formula is
    evaluated in float (the dialect's dtype), so only the loads of input arrays differ.
    """

    def __init__(self) -> None:
        super().__init__(np.float32)

    def expr(self, e: Expr) -> str:
        if isinstance(e, Load) and _INPUT.fullmatch(e.array):
            return f"lk_h2f({e.array}[{e.index.text}])"
        return super().expr(e)
