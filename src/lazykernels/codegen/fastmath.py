"""C++ helpers of the generated CPU kernels: a vectorisable ``exp``, Kahan steps, the fence.

``lk_exp`` replaces ``std::exp`` in kernels (see ``lower.CPU_OVERRIDES``): GCC only
vectorises the C library's ``exp`` under full ``-ffast-math`` (it is called lane by lane
once ``-fno-finite-math-only`` is added), and the log-sum-exp reductions need a correct
``exp(-inf) = 0``. It is branch-free (selects only), so ``#pragma omp simd`` loops
vectorise it:

* range reduction ``x = n ln2 + r``, ``|r| <= ln2/2``: ``n`` is rounded by the "shifter"
  ``fn = fma(x, 1/ln2, 1.5 * 2^52)`` (``2^23`` in float), whose low mantissa bits then hold
  ``n``, and ``r = x - n ln2`` with ``ln2`` split in two (Cody-Waite, fused multiply-adds);
* ``e^r``: float, a degree-6 minimax polynomial (fit error 1.9e-9) in Horner's scheme;
  double, a degree-11 near-minimax polynomial (Chebyshev fit with mpmath, error 3.2e-18) in
  Estrin's scheme (4 dependent steps instead of 11: the Horner chain of the former
  degree-13 Taylor polynomial left the double kernels latency-bound), the constant 1
  added last;
* ``2^n`` goes into the exponent field of ``e^r`` by an exact integer add of ``fn``'s bits
  shifted left (no float-to-int conversion), then two selects give exactly 0 below ``-87``
  (float) or ``-708`` (double), so no subnormal results, and ``x + inf`` above the overflow
  threshold: ``inf``, or NaN for a NaN argument.

``lk_exp_scaled(s, c) = e^(s c)``, with ``c`` hoisted out of the loop (the CPU lowering
writes ``Exp(s * c)`` and ``Exp(-(s * c))`` so, :func:`lazykernels.codegen.lower.fuse_scaled_exp`),
takes the shifter from ``fma(s, c / ln2, 1.5 * 2^52)``: the pair's chain of dependent
operations no longer waits for ``s * c``, which made the Gaussian kernels 6 % faster in
double and 5 % in float. Its accuracy is that of ``lk_exp`` at the rounded product (measured
on 20 million points: 8.7e-8 in float, 2.0e-16 in double).

Every instruction counts: the double Gaussian kernel runs about 32 vector operations per 4
pairs, most of them multiplies, FMAs, compares and blends. The shifter, the shifted add and
the two selects (instead of ``rint``, a subtraction and three selects) made it 15 % faster:
0.31-0.33x to 0.35-0.38x the float32 limit kernel's pair rate in
``benchmarks/bench_cpu.py``. Measured in a stand-alone loop: the selects still cost 14 %; a
16-entry table of ``2^(k/16)`` with a degree-7 polynomial was 10 % slower (AVX2 gathers);
Horner's scheme was 5-8 % slower (latency). A degree-10 polynomial would leave a fit error
near 2e-16, one ulp by itself.

Accuracy, measured against ``numpy.exp`` in long double on 20 million points over the whole
finite range plus 5 million in ``[-0.5, 0.5]`` (tests/test_codegen.py checks a sample):
maximum relative error 8.8e-8 (0.74 eps, about 1.5 ulp) in float32 and 2.0e-16 (0.90 eps,
about 1.8 ulp) in double wherever the result is a normal number. ``exp(-inf) = 0``,
``exp(+inf) = inf``, ``exp(nan) = nan``, arguments below the thresholds above give exactly
0 and above ``88.72283`` (``709.78271``) ``inf``.
"""

from __future__ import annotations

_LK_EXP = r"""
static inline float lk_exp_reduced(float x, float fn) {
  // e^x = 2^n e^r, n = rint(x / ln2), r = x - n ln2 (ln2 in two parts), |r| <= ln2/2.
  // n comes from the 1.5 * 2^23 shifter: fn = x / ln2 + 1.5 * 2^23 holds n in its low
  // mantissa bits (lk_exp and lk_exp_scaled compute it).
  const float n = fn - 12582912.0f;
  float r = __builtin_fmaf(-n, 0.693145751953125f, x);
  r = __builtin_fmaf(-n, 1.428606765330187045e-06f, r);
  // minimax fit of e^r, relative error 1.9e-9; Horner's steps as explicit FMAs, so that
  // the kernels built without contraction (see codegen/exact.py) evaluate it as fast
  float p = 1.3836845755577087e-3f;
  p = __builtin_fmaf(p, r, 8.374815806746483e-3f);
  p = __builtin_fmaf(p, r, 4.166822507977486e-2f);
  p = __builtin_fmaf(p, r, 1.6666419804096222e-1f);
  p = __builtin_fmaf(p, r, 4.9999991059303284e-1f);
  p = __builtin_fmaf(p, r, 1.0f);
  p = __builtin_fmaf(p, r, 1.0f);
  // 2^n goes into the exponent field of p by an integer add of the bits of fn shifted
  // left by 23: the shift drops the shifter's own bits and leaves n << 23 (|n| < 256).
  // No float-to-int conversion; exact while the result is normal.
  uint32_t un, up;
  __builtin_memcpy(&un, &fn, 4);
  __builtin_memcpy(&up, &p, 4);
  up += un << 23;
  float y;
  __builtin_memcpy(&y, &up, 4);
  // Outside [-87, 88.72283] (and for inf / NaN) the value above is garbage: select. x + inf
  // is inf above the range and NaN for NaN, so two selects cover all three cases.
  y = x >= -87.0f ? y : 0.0f;
  return x <= 88.72283f ? y : x + __builtin_inff();
}

static inline float lk_exp(float x) {
  return lk_exp_reduced(x, __builtin_fmaf(x, 1.44269504088896341f, 12582912.0f));
}

// e^(s c), c hoisted out of the loop: the shifter comes from s directly, not after s * c
// (a shorter dependency chain per pair; see the module docstring).
static inline float lk_exp_scaled(float s, float c) {
  return lk_exp_reduced(s * c, __builtin_fmaf(s, c * 1.44269504088896341f, 12582912.0f));
}

static inline double lk_exp_reduced(double x, double fn) {
  const double n = fn - 6755399441055744.0;  // fn = x / ln2 + 1.5 * 2^52
  double r = __builtin_fma(-n, 6.93147180369123816490e-01, x);
  r = __builtin_fma(-n, 1.90821492927058770002e-10, r);
  // e^r by a degree-11 near-minimax polynomial (Chebyshev fit, abs error 3.2e-18 on
  // |r| <= ln2/2), evaluated in Estrin's scheme: 4 dependent steps instead of 11, which
  // the inner loops need (an 11-FMA Horner chain left the double kernel latency-bound).
  const double r2 = r * r, r4 = r2 * r2;
  const double q23 = __builtin_fma(0.1666666666666668, r, 0.5000000000000019);
  const double q45 = __builtin_fma(0.008333333333319601, r, 0.04166666666648809);
  const double q67 = __builtin_fma(0.00019841269890047406, r, 0.0013888888952315155);
  const double q89 = __builtin_fma(2.7557240918265525e-06, r, 2.480148548192088e-05);
  const double qab = __builtin_fma(2.5110037721946562e-08, r, 2.7632639789868395e-07);
  const double q13 = __builtin_fma(q23, r2, r);  // the constant 1 is added last (accuracy)
  const double q47 = __builtin_fma(q67, r2, q45);
  const double q8b = __builtin_fma(qab, r2, q89);
  const double p = __builtin_fma(__builtin_fma(q8b, r4, q47), r4, q13) + 1.0;
  uint64_t un, up;
  __builtin_memcpy(&un, &fn, 8);
  __builtin_memcpy(&up, &p, 8);
  up += un << 52;  // |n| < 2048
  double y;
  __builtin_memcpy(&y, &up, 8);
  y = x >= -708.0 ? y : 0.0;
  return x <= 709.782712893 ? y : x + __builtin_inf();
}

static inline double lk_exp(double x) {
  return lk_exp_reduced(x, __builtin_fma(x, 1.4426950408889634, 6755399441055744.0));
}

static inline double lk_exp_scaled(double s, double c) {
  return lk_exp_reduced(s * c, __builtin_fma(s, c * 1.4426950408889634, 6755399441055744.0));
}
"""

KAHAN_LANES = 8
"""Independent compensated sums per accumulator (so that the Kahan loop vectorises)."""

# Compensated sums must not be re-associated ((t - s) - y would fold to 0): these helpers
# are compiled without -fassociative-math (GCC's optimize attribute, clang's fp pragma) and
# are never inlined into the fast-math kernel; they run once per tile, not per pair.
_LK_KAHAN = r"""
#if defined(__clang__)
#define LK_EXACT_FP __attribute__((noinline))
#define LK_EXACT_FP_BODY _Pragma("clang fp reassociate(off)")
#else
#define LK_EXACT_FP __attribute__((noinline, optimize("no-associative-math")))
#define LK_EXACT_FP_BODY
#endif

template <typename A>
static LK_EXACT_FP void lk_kahan_add(A& s, A& c, A x) {
  // s - c is the running total, c the compensation of the rounding errors so far.
  LK_EXACT_FP_BODY
  const A y = x - c;
  const A t = s + y;
  c = (t - s) - y;
  s = t;
}

template <typename A>
static LK_EXACT_FP void lk_kahan_tile(const A* v, int64_t n, A* s, A* c) {
  // Adds v[0..n) into the LANES compensated sums (s[l], c[l]), element i in lane i % LANES.
  LK_EXACT_FP_BODY
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    for (int l = 0; l < LANES; ++l) {
      const A y = v[i + l] - c[l];
      const A t = s[l] + y;
      c[l] = (t - s[l]) - y;
      s[l] = t;
    }
  }
  for (int l = 0; i < n; ++i, ++l) {
    const A y = v[i] - c[l];
    const A t = s[l] + y;
    c[l] = (t - s[l]) - y;
    s[l] = t;
  }
}

template <typename A>
static LK_EXACT_FP A lk_kahan_total(const A* s, const A* c) {
  // The compensated sum of the LANES partial sums.
  LK_EXACT_FP_BODY
  A total = 0, comp = 0;
  for (int l = 0; l < LANES; ++l) {
    const A y = (s[l] - c[l]) - comp;
    const A t = total + y;
    comp = (t - total) - y;
    total = t;
  }
  return total - comp;
}
""".replace("LANES", str(KAHAN_LANES))

# Explicit vectors for the register-tiled micro-kernel of sqdist_cpp (T is the kernel's
# scalar type; LK_VBYTES, defined by every kernel: 64 under AVX-512, else 32; other
# targets split the vectors as they can).
_LK_VEC = r"""
typedef T lk_v __attribute__((vector_size(LK_VBYTES)));
static const int64_t LK_L = LK_VBYTES / (int64_t)sizeof(T);
static inline lk_v lk_vload(const T* p) {
  lk_v v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void lk_vstore(T* p, lk_v v) { __builtin_memcpy(p, &v, sizeof v); }
"""

# One vector of a float array as an lk_v (T = float): constant indices, so that an array
# that the vectoriser holds in a register stays there (an lk_vload takes its address).
_LK_LANES = "\n".join(
    [
        "#if LK_VBYTES == 64",
        "#define LK_LANES(p) (lk_v){" + ", ".join(f"p[{u}]" for u in range(16)) + "}",
        "#else",
        "#define LK_LANES(p) (lk_v){" + ", ".join(f"p[{u}]" for u in range(8)) + "}",
        "#endif",
    ]
)

# Fence(f) (formula/ops/arith.py): a barrier to reassociation and FMA contraction where the
# compiler has one (GCC 12+, Clang on x86), else the identity.
_LK_FENCE = r"""
template <typename T> static inline T lk_fence(T x) {
#if defined(__has_builtin)
#if __has_builtin(__builtin_assoc_barrier)
  return __builtin_assoc_barrier(x);
#elif __has_builtin(__arithmetic_fence)
  return __arithmetic_fence(x);
#endif
#endif
  return x;
}
"""

CPU_HELPERS: dict[str, str] = {
    "lk_exp": _LK_EXP.strip("\n"),
    "lk_fence": _LK_FENCE.strip("\n"),
    "lk_kahan": _LK_KAHAN.strip("\n"),
    "lk_lanes": _LK_LANES,
    "lk_vec": _LK_VEC.strip("\n"),
}
"""Helper sources owned by the code generator (op cards' helpers live in ``helpers.py``)."""
