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
  // e^x = 2^n e^r with n = rint(x / ln2), r = x - n ln2 (ln2 split in two), |r| <= ln2/2.
  const float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  const float n = __builtin_rintf(xc * 1.44269504088896341f);
  float r = __builtin_fmaf(-n, 0.693145751953125f, xc);
  r = __builtin_fmaf(-n, 1.428606765330187045e-06f, r);
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n = 2^n1 2^n2: n1 goes into the exponent field of p (an exact integer add), 2^n2 is a
  // normal float; integers come from the bits of n + magic (no float-to-int conversion).
  const float n1 = __builtin_floorf(n * 0.5f);
  const float f1 = n1 + 12582912.0f;        // 1.5 * 2^23: the bits hold 0x4B400000 + n1
  const float f2 = (n - n1) + 8388735.0f;   // 2^23 + 127: the low bits hold n2 + 127
  uint32_t u1, u2, up;
  std::memcpy(&u1, &f1, 4);
  std::memcpy(&u2, &f2, 4);
  std::memcpy(&up, &p, 4);
  up += (u1 - 0x4B400000u) << 23;
  u2 <<= 23;
  float y, s2;
  std::memcpy(&y, &up, 4);
  std::memcpy(&s2, &u2, 4);
  y *= s2;
  return x != x ? x : y;
}

static inline double lk_exp(double x) {
  const double xc = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);
  const double n = __builtin_rint(xc * 1.4426950408889634);
  double r = __builtin_fma(-n, 6.93147180369123816490e-01, xc);
  r = __builtin_fma(-n, 1.90821492927058770002e-10, r);
  double p = 1.6059043836821613e-10;
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
  const double n1 = __builtin_floor(n * 0.5);
  const double f1 = n1 + 6755399441055744.0;        // 1.5 * 2^52
  const double f2 = (n - n1) + 4503599627371519.0;   // 2^52 + 1023
  uint64_t u1, u2, up;
  std::memcpy(&u1, &f1, 8);
  std::memcpy(&u2, &f2, 8);
  std::memcpy(&up, &p, 8);
  up += (u1 - 0x4338000000000000ull) << 52;
  u2 <<= 52;
  double y, s2;
  std::memcpy(&y, &up, 8);
  std::memcpy(&s2, &u2, 8);
  y *= s2;
  return x != x ? x : y;
}
"""

_LK_KAHAN_ADD = r"""
template <typename A>
static inline void lk_kahan_add(A& s, A& c, A x) {
  // Compensated sum: s - c is the running total. The volatile store keeps fast-math from
  // simplifying (t - s) - y to 0.
  const A y = x - c;
  volatile A t = s + y;
  const A tt = t;
  c = (tt - s) - y;
  s = tt;
}
"""

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
    "lk_kahan_add": _LK_KAHAN_ADD.strip("\n"),
    "lk_kmin_insert": _LK_KMIN_INSERT.strip("\n"),
    "lk_kmin_merge": _LK_KMIN_MERGE.strip("\n"),
}
"""Helper sources owned by the code generator (op cards' helpers live in ``helpers.py``)."""
