"""The CPU dialect: C++ for GCC/Clang, with the vectorisable ``lk_exp`` of :mod:`.fastmath`.

Maths functions print as ``std::`` calls (their headers are collected by :mod:`.prelude`),
except ``exp``, which prints as ``lk_exp`` (``std::exp`` does not vectorise); infinities
and NaN print as ``std::numeric_limits<T>`` constants.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .dialect import Dialect


def c_literal(value: int | float | Fraction, dtype: np.dtype | str, ctype: str = "T") -> str:
    """A C++ literal of ``value`` rounded to ``dtype`` (``repr`` + ``f`` suffix for float32).

    inf and NaN print as ``std::numeric_limits<ctype>`` constants; negative numbers are
    parenthesised, so a literal is always an atom (``-{0}`` stays valid).

    Example:
        >>> c_literal(0.1, "float32"), c_literal(-2, "float64"), c_literal(float("inf"), "float32")
        ('0.10000000149011612f', '(-2.0)', 'std::numeric_limits<T>::infinity()')
    """
    dtype = np.dtype(dtype)
    v = float(value)
    if dtype == np.float32:
        with np.errstate(over="ignore"):
            v = float(np.float32(v))
    if math.isnan(v):
        return f"std::numeric_limits<{ctype}>::quiet_NaN()"
    if math.isinf(v):
        text = f"std::numeric_limits<{ctype}>::infinity()"
        return text if v > 0 else f"(-{text})"
    text = repr(abs(v))
    if "." not in text and "e" not in text:
        text += ".0"
    if dtype == np.float32:
        text += "f"
    return f"(-{text})" if math.copysign(1.0, v) < 0 else text


class CpuDialect(Dialect):
    """C++ of the CPU kernels (see the module docstring)."""

    fuse_scaled_exp = True
    _OVERRIDES = {"exp": ("lk_exp", frozenset({"lk_exp"}))}

    def literal(self, value: float) -> str:
        return c_literal(value, self.dtype)

    def function(self, fn: str) -> tuple[str, frozenset[str]]:
        return self._OVERRIDES.get(fn, (f"std::{fn}", frozenset()))


class CpuLibmDialect(CpuDialect):
    """The CPU dialect with the C library's ``std::exp`` (no ``lk_exp``, no fused scaling)."""

    fuse_scaled_exp = False
    _OVERRIDES: dict = {}
