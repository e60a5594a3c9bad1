"""C++ helpers of the generated CPU kernels: a vectorisable ``exp``, Kahan and K-min steps.

``lk_exp`` replaces ``std::exp`` in kernels (see ``lower.CPU_OVERRIDES``): GCC only
vectorises the C library's ``exp`` under full ``-ffast-math`` (it is called lane by lane
once ``-fno-finite-math-only`` is added), and the log-sum-exp reductions need a correct
``exp(-inf) = 0``. It is branch-free (selects only), so ``#pragma omp simd`` loops
vectorise it:

* range reduction ``x = n ln2 + r``, ``|r| <= ln2/2``, with ``ln2`` split in two (Cody-Waite,
  fused multiply-adds); ``e^r`` by its Taylor polynomial (degree 7 in float, 13 in double:
  truncation error below 5e-9 and 5e-18);
* ``2^n`` applied in two steps (an exact integer add to the exponent field of ``e^r``, then
  one multiplication), so results that overflow give ``inf`` and tiny results round
  correctly into subnormals or 0; no float-to-int conversions.

Measured maximum relative error against ``numpy.exp`` (tests/test_codegen.py): below 3e-7
(about 2.5 ulp) in float32 and 5e-16 (about 2.5 ulp) in float64 wherever the result is a
normal number; ``exp(-inf) = 0``, ``exp(+inf) = inf``, ``exp(nan) = nan``, and very negative
arguments give exactly 0.
"""

from __future__ import annotations

_LK_EXP = r"""
static inline float lk_exp(float x) {
  // e^x = 2^n e^r, n = rint(x / ln2), r = x - n ln2 (ln2 in two parts), |r| <= ln2/2.
  const float n = __builtin_rintf(x * 1.44269504088896341f);
  float r = __builtin_fmaf(-n, 0.693145751953125f, x);
  r = __builtin_fmaf(-n, 1.428606765330187045e-06f, r);
  float p = 1.3836845755577087e-3f;  // minimax fit of e^r, relative error 1.9e-9
  p = p * r + 8.374815806746483e-3f;
  p = p * r + 4.166822507977486e-2f;
  p = p * r + 1.6666419804096222e-1f;
  p = p * r + 4.9999991059303284e-1f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n goes into the exponent field of p (an integer add); n comes from the bits of
  // n + 1.5 * 2^23, not from a float-to-int conversion. Exact while the result is normal.
  const float fn = n + 12582912.0f;
  uint32_t un, up;
  std::memcpy(&un, &fn, 4);
  std::memcpy(&up, &p, 4);
  up += (un - 0x4B400000u) << 23;
  float y;
  std::memcpy(&y, &up, 4);
  // Outside [-87, 88.72283] (and for inf / NaN) the value above is garbage: select.
  y = x > 88.72283f ? std::numeric_limits<float>::infinity() : y;
  y = x >= -87.0f ? y : 0.0f;
  return x != x ? x : y;
}

static inline double lk_exp(double x) {
  const double n = __builtin_rint(x * 1.4426950408889634);
  double r = __builtin_fma(-n, 6.93147180369123816490e-01, x);
  r = __builtin_fma(-n, 1.90821492927058770002e-10, r);
  double p = 1.6059043836821613e-10;  // Taylor, truncation error 4.1e-18
  p = p * r + 2.08767569878681e-09;
  p = p * r + 2.505210838544172e-08;
  p = p * r + 2.755731922398589e-07;
  p = p * r + 2.7557319223985893e-06;
  p = p * r + 2.48015873015873e-05;
  p = p * r + 0.0001984126984126984;
  p = p * r + 0.001388888888888889;
  p = p * r + 0.008333333333333333;
  p = p * r + 0.041666666666666664;
  p = p * r + 0.16666666666666666;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double fn = n + 6755399441055744.0;  // 1.5 * 2^52
  uint64_t un, up;
  std::memcpy(&un, &fn, 8);
  std::memcpy(&up, &p, 8);
  up += (un - 0x4338000000000000ull) << 52;
  double y;
  std::memcpy(&y, &up, 8);
  y = x > 709.782712893 ? std::numeric_limits<double>::infinity() : y;
  y = x >= -708.0 ? y : 0.0;
  return x != x ? x : y;
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

_LK_KMIN_INSERT = r"""
template <typename T>
static inline void lk_kmin_insert(T* v, int64_t* ind, int64_t K, T x, int64_t j) {
  // Insert (x, j) into the ascending list v[0..K): before the unfilled slots (index -1, at
  // the end) and after equal values, so that among ties the lower (earlier) index is first.
  int64_t r = K - 1;
  while (r > 0 && (x < v[r - 1] || ind[r - 1] < 0)) {
    v[r] = v[r - 1];
    ind[r] = ind[r - 1];
    --r;
  }
  v[r] = x;
  ind[r] = j;
}
"""

_LK_KMIN_MERGE = r"""
template <typename T>
static inline void lk_kmin_merge(T* v, int64_t* ind, const T* sv, const int64_t* si,
                                 int64_t K) {
  // In place: v <- the K first of the sorted lists v and sv merged, where (sv, si) goes
  // before (v, i) when sv < v, or when they are equal and only the sv slot is filled (on
  // ties v, which holds lower indices, comes first). Count how many come from each list,
  // then fill from the back.
  int64_t a = 0, b = 0;
  for (int64_t r = 0; r < K; ++r) {
    if (b < K && (a >= K || sv[b] < v[a] || (sv[b] == v[a] && ind[a] < 0 && si[b] >= 0))) {
      ++b;
    } else {
      ++a;
    }
  }
  for (int64_t r = K - 1; r >= 0; --r) {
    const bool src_first = b > 0 && a > 0 &&
        (sv[b - 1] < v[a - 1] || (sv[b - 1] == v[a - 1] && ind[a - 1] < 0 && si[b - 1] >= 0));
    if (b > 0 && (a == 0 || !src_first)) {
      --b;
      v[r] = sv[b];
      ind[r] = si[b];
    } else {
      --a;
      v[r] = v[a];
      ind[r] = ind[a];
    }
  }
}
"""

CPU_HELPERS: dict[str, str] = {
    "lk_exp": _LK_EXP.strip("\n"),
    "lk_kahan": _LK_KAHAN.strip("\n"),
    "lk_kmin_insert": _LK_KMIN_INSERT.strip("\n"),
    "lk_kmin_merge": _LK_KMIN_MERGE.strip("\n"),
}
"""Helper sources owned by the code generator (op cards' helpers live in ``helpers.py``)."""
