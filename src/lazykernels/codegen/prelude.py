"""The top of a generated kernel: the headers it includes and the skeleton's own helpers.

Headers dominate a small kernel's compile time (``<cmath>`` alone costs about 0.15 s;
``<algorithm>``, ``<memory>``, ``<thread>`` and ``<vector>`` together about 0.2 s), so a
kernel includes only what its printed text uses (STYLE rule 8): :func:`includes` scans the
printed helpers and body for ``std::`` names and looks each one up in :data:`STD_HEADERS`.
The skeleton itself uses no standard library: :data:`SKELETON_HELPERS` gives it
``lk_min`` / ``lk_max`` and an owning array ``lk_buf``, GCC/Clang ``__atomic`` builtins
replace ``std::atomic``, ``sched_yield`` and ``sysconf`` (POSIX C headers, cheap) replace
``std::this_thread::yield`` and ``std::thread::hardware_concurrency``.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import FormulaError
from . import fastmath
from .dialect_cpu import CpuDialect

_CMATH = (  # noqa: SIM905 (one string: easier to read than a 58-item list)
    "abs fabs fmod remainder fma fmax fmin fdim exp exp2 expm1 log log10 log2 log1p pow "
    "sqrt cbrt hypot sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh "
    "erf erfc tgamma lgamma ceil floor trunc round lround llround nearbyint rint lrint "
    "llrint frexp ldexp modf scalbn ilogb logb nextafter copysign isnan isinf isfinite signbit"
).split()

STD_HEADERS: dict[str, str] = {
    **dict.fromkeys(_CMATH, "cmath"),
    "numeric_limits": "limits",
    "memcpy": "cstring",
    "memset": "cstring",
}
"""Header of every ``std::`` name a kernel may print (op templates, helpers, skeleton)."""

BASE_HEADERS = ("cstddef", "cstdint")
"""Included by every kernel (``int64_t``, ``size_t``: negligible cost)."""

THREAD_HEADERS = (
    "#include <sched.h>",
    "#ifdef _OPENMP",
    "#include <omp.h>",
    "#else",
    "#include <unistd.h>",
    "#endif",
)
"""The skeleton's thread headers: sched_yield, and omp.h for the default thread count
(without OpenMP, sysconf counts the CPUs)."""

ROUNDING_PRAGMAS = {
    "no-contraction": '#pragma GCC optimize ("fp-contract=off")',
    "as-written": '#pragma GCC optimize ("fp-contract=off", "no-associative-math")',
}
"""The GCC pragma of each formula rounding other than ``"fast"`` (:mod:`.exact`)."""


def rounding_lines(rounding: str) -> tuple[str, ...]:
    """The lines that open a kernel whose formula rounds as ``rounding`` says.

    The pragma comes first in the source, before any header, so that every function of the
    file is built with the same options (GCC inlines only between functions of equal
    options). The exponential (:mod:`.fastmath`) spells its FMAs out, so it keeps them, and
    the kernels' sums are ``omp simd`` reductions, which vectorise without reassociation.
    Other compilers skip GCC's pragma and build as their flags say.
    """
    if rounding == "fast":
        return ()
    return (
        f"// formula rounding: {rounding} (it rounds as in the kernels that share it)",
        "#if defined(__GNUC__) && !defined(__clang__)",
        ROUNDING_PRAGMAS[rounding],
        "#endif",
    )


SKELETON_HELPERS = r"""
template <typename X> static inline X lk_min(X a, X b) { return b < a ? b : a; }
template <typename X> static inline X lk_max(X a, X b) { return a < b ? b : a; }

// An owning array (a vector's storage without <vector>): zero-filled unless zero is false.
template <typename X> struct lk_buf {
  X* p;
  explicit lk_buf(int64_t n, bool zero = true)
      : p(n <= 0 ? nullptr : zero ? new X[n]() : new X[n]) {}
  ~lk_buf() { delete[] p; }
  lk_buf(const lk_buf&) = delete;
  lk_buf& operator=(const lk_buf&) = delete;
  X* data() const { return p; }
  X& operator[](int64_t i) const { return p[i]; }
};
""".strip("\n")
"""C++ the skeleton of :mod:`.cpp` always uses (it needs no header)."""

_STD_NAME = re.compile(r"\bstd::([A-Za-z_][A-Za-z_0-9]*)")


def includes(text: str) -> list[str]:
    """The ``#include`` lines for printed kernel text: the base headers, then those of the
    ``std::`` names used, sorted (the source stays a deterministic function of the plan).

    Example:
        >>> includes("y = std::exp(x) * std::numeric_limits<T>::max();")
        ['#include <cstddef>', '#include <cstdint>', '#include <cmath>', '#include <limits>']

    Raises:
        FormulaError: a name has no entry in :data:`STD_HEADERS` (add it there).
    """
    headers = set()
    for name in sorted(set(_STD_NAME.findall(text))):
        if name not in STD_HEADERS:
            raise FormulaError(f"generated code uses std::{name}, whose header is unknown")
        headers.add(STD_HEADERS[name])
    return [f"#include <{h}>" for h in (*BASE_HEADERS, *sorted(headers))]


def helper_sources(names: set[str], dtype: np.dtype | str = "float64") -> list[str]:
    """The C++ source of each named helper function, sorted by name: the CPU's own
    (:data:`.fastmath.CPU_HELPERS`), else the op cards' (:mod:`.helpers`), printed by the
    CPU dialect of ``dtype``.

    Raises:
        FormulaError: a name has no source in either.
    """
    dialect = CpuDialect(dtype)
    return [fastmath.CPU_HELPERS.get(name) or dialect.helper(name) for name in sorted(names)]
