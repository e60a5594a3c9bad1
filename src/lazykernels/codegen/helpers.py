"""Helper functions that op templates may call, by name, in a neutral spelling.

An op card lists the helpers its template needs (``helpers=frozenset({"lk_sign"})``); the
code generator collects the names actually used and emits only those definitions at the top
of the generated file. Each source is a template on the scalar type ``T``, written once for
every target: ``$qualifier`` stands for what the target marks a helper with (nothing on the
CPU, ``__device__`` in CUDA) and ``$sqrt``, ``$sin``... for the neutral maths functions
(:data:`.dialect.MATH_FUNCTIONS`), which the dialect spells (the C++ library's on the CPU,
``sqrtf`` / ``sqrt`` in CUDA). :meth:`.Dialect.helper` prints one. The rest is the C++
common to both (no library call, no header).
"""

from __future__ import annotations

HELPERS: dict[str, str] = {}

# --- element-wise maths: formula/ops/elementwise.py and elementwise_piecewise.py ---------
# Defined values at singular points, as in KeOps: Rsqrt(0) = 0, SinXDivX(0) = 1, XLogX(0) = 0.

HELPERS["lk_rsqrt"] = """\
template <typename T> static ${qualifier}inline T lk_rsqrt(T x) {
    return x == T(0) ? T(0) : T(1) / $sqrt(x);
}
"""
HELPERS["lk_sinxdivx"] = """\
template <typename T> static ${qualifier}inline T lk_sinxdivx(T x) {
    return x == T(0) ? T(1) : $sin(x) / x;
}
"""
HELPERS["lk_xlogx"] = """\
template <typename T> static ${qualifier}inline T lk_xlogx(T x) {
    return x == T(0) ? T(0) : x * $log(x);
}
"""
# Fence(f): the identity. The CPU's own lk_fence (codegen/fastmath.py) is a barrier to
# reassociation and contraction; CUDA has no such builtin.
HELPERS["lk_fence"] = """\
template <typename T> static ${qualifier}inline T lk_fence(T x) {
    return x;
}
"""
# x ** m by squaring; m is a literal at every call site, so the loop unrolls.
HELPERS["lk_powi"] = """\
template <typename T> static ${qualifier}inline T lk_powi(T x, int m) {
    unsigned int k = m < 0 ? 0u - static_cast<unsigned int>(m) : static_cast<unsigned int>(m);
    T result = T(1);
    while (k != 0u) {
        if (k & 1u) result *= x;
        k >>= 1;
        if (k != 0u) x *= x;
    }
    return m < 0 ? T(1) / result : result;
}
"""
# Sign(NaN) is NaN (like NumPy), Sign(0) is 0.
HELPERS["lk_sign"] = """\
template <typename T> static ${qualifier}inline T lk_sign(T x) {
    return x > T(0) ? T(1) : (x < T(0) ? T(-1) : (x == T(0) ? T(0) : x));
}
"""
HELPERS["lk_step"] = """\
template <typename T> static ${qualifier}inline T lk_step(T x) {
    return x < T(0) ? T(0) : T(1);
}
"""
# Round to d decimals, halves away from zero; d < 0 rounds to tens, hundreds...
HELPERS["lk_round"] = """\
template <typename T> static ${qualifier}inline T lk_round(T x, int d) {
    T scale = T(1);
    for (int k = 0; k < (d < 0 ? -d : d); ++k) scale *= T(10);
    return d >= 0 ? $round(x * scale) / scale : $round(x / scale) * scale;
}
"""
HELPERS["lk_mod"] = """\
template <typename T> static ${qualifier}inline T lk_mod(T x, T n, T d) {
    return x - n * $floor((x - d) / n);
}
"""
# Tests x < a first: when a > b the result is a below a, b above.
HELPERS["lk_clamp"] = """\
template <typename T> static ${qualifier}inline T lk_clamp(T x, T a, T b) {
    return x < a ? a : (x > b ? b : x);
}
"""
HELPERS["lk_diffclamp"] = """\
template <typename T> static ${qualifier}inline T lk_diffclamp(T x, T a, T b) {
    return (x < a || x > b) ? T(0) : T(1);
}
"""
