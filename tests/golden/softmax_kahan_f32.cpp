// lazykernels CPU kernel: SumSoftMaxWeight reduction, output indexed by I, float32 data, double accumulator, kahan_scheme.
// Generated code: a deterministic function of the reduction plan.
// formula rounding: no-contraction (it rounds as in the kernels that share it)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off")
#endif
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sched.h>
#ifdef _OPENMP
#include <omp.h>
#else
#include <unistd.h>
#endif
#if defined(__AVX512F__)
#define LK_VBYTES 64
#else
#define LK_VBYTES 32
#endif

typedef float T;
typedef double A;
typedef int (*lk_pool_fn)(int, void (*)(void*, int), void*);
template <typename F> static void lk_invoke(void* f, int slot) {
  (*static_cast<F*>(f))(slot);
}

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
  // Adds v[0..n) into the 8 compensated sums (s[l], c[l]), element i in lane i % 8.
  LK_EXACT_FP_BODY
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) {
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
  // The compensated sum of the 8 partial sums.
  LK_EXACT_FP_BODY
  A total = 0, comp = 0;
  for (int l = 0; l < 8; ++l) {
    const A y = (s[l] - c[l]) - comp;
    const A t = total + y;
    comp = (t - total) - y;
    total = t;
  }
  return total - comp;
}

extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,
                         const void* const* args, const int64_t* offsets,
                         void* const* outs, int64_t n_ranges,
                         const int64_t* ranges_out,
                         const int64_t* slices, const int64_t* redranges,
                         int64_t n_threads, void* pool) {
  const int64_t BI = 8, TJ = 256, NPRE = 6, VW = LK_VBYTES / (int64_t)sizeof(T), PAD = 64;
  if (n_out <= 0 || n_batch <= 0) return 0;
  int nt = (int)n_threads;
  if (nt <= 0) {
    #ifdef _OPENMP
    nt = omp_get_max_threads();
    #else
    nt = (int)sysconf(_SC_NPROCESSORS_ONLN);
    #endif
    const double pairs = (double)n_batch * (double)n_out * (double)n_red;
    nt = (int)lk_max(1.0, lk_min((double)nt, pairs / 262144.0));
  }
  if (pool == nullptr) nt = 1;
  try {
    // blocks of output rows: (first row, end row, range or -1)
    int64_t n_blk = n_ranges < 0 ? (n_out + BI - 1) / BI : 0;
    for (int64_t r = 0; r < n_ranges; ++r) {
      const int64_t lo0 = lk_max<int64_t>(0, ranges_out[2 * r]);
      const int64_t hi0 = lk_min(n_out, ranges_out[2 * r + 1]);
      if (lo0 < hi0) n_blk += (hi0 - lo0 + BI - 1) / BI;
    }
    lk_buf<int64_t> blk(3 * n_blk, false);
    const int64_t r_end = n_ranges < 0 ? 0 : n_ranges;  // r = -1: no ranges
    for (int64_t ib = 0, r = n_ranges < 0 ? -1 : 0; r < r_end; ++r) {
      int64_t lo0 = 0, hi0 = n_out;
      if (r >= 0) {
        lo0 = lk_max<int64_t>(0, ranges_out[2 * r]);
        hi0 = lk_min(n_out, ranges_out[2 * r + 1]);
      }
      for (int64_t lo = lo0; lo < hi0; lo += BI, ++ib) {
        blk[3 * ib] = lo;
        blk[3 * ib + 1] = lk_min(hi0, lo + BI);
        blk[3 * ib + 2] = r;
      }
    }
    const int64_t n_rs = lk_max<int64_t>(n_red, 0) + PAD;  // precomputed stride
    // batch entries per chunk: bounded memory for the precomputed inner values
    int64_t bc = n_batch;
    if (NPRE > 0) bc = lk_max<int64_t>(1, lk_min<int64_t>(n_batch, 16777216 / (NPRE * n_rs)));
    // work items: G consecutive blocks x one of q parts of the reduction range
    const int64_t want = 16 * (int64_t)nt;
    int64_t G = lk_max<int64_t>(1, 65536 / lk_max<int64_t>(1, BI * n_red));
    if (nt > 1) G = lk_min(G, lk_max<int64_t>(1, bc * n_blk / want));
    const int64_t n_grp = (n_blk + G - 1) / G;
    int64_t q = 1;
    if (nt > 1 && bc * n_grp < want && n_red >= 4096) {
      q = (want + bc * n_grp - 1) / (bc * n_grp);
      q = lk_max<int64_t>(1, lk_min<int64_t>(q, n_red / 2048));
    }
    lk_buf<T> pre(NPRE > 0 ? bc * NPRE * n_rs : 0, false);  // uninitialised
    const int64_t n_part = q > 1 ? bc * n_blk * q * BI : 0;
    lk_buf<A> part_m(n_part * 1);
    lk_buf<A> part_s(n_part * 32);
    lk_buf<A> part_comp(n_part * 32);
    if (n_ranges >= 0) {
      // rows outside every range get the empty-reduction value
      lk_buf<A> st_m_v(1 * 1);
      A* __restrict st_m = st_m_v.data();
      lk_buf<A> st_s_v(1 * 32);
      A* __restrict st_s = st_s_v.data();
      lk_buf<A> st_comp_v(1 * 32);
      A* __restrict st_comp = st_comp_v.data();
      for (int64_t b = 0; b < n_batch; ++b) {
        T* __restrict out0 = (T*)outs[0] + b * n_out * 3;
        for (int64_t i = 0, k = 0; i < n_out; ++i) {
          st_m[k] = (-std::numeric_limits<A>::infinity());
          for (int64_t c = 0; c < 32; ++c) {
            st_s[k * 32 + c] = 0;
          }
          for (int64_t c = 0; c < 32; ++c) {
            st_comp[k * 32 + c] = 0;
          }
          const A s0 = lk_kahan_total(&st_s[k * 32 + 0], &st_comp[k * 32 + 0]);
          const A s1 = lk_kahan_total(&st_s[k * 32 + 8], &st_comp[k * 32 + 8]);
          const A s2 = lk_kahan_total(&st_s[k * 32 + 16], &st_comp[k * 32 + 16]);
          const A s3 = lk_kahan_total(&st_s[k * 32 + 24], &st_comp[k * 32 + 24]);
          out0[i * 3 + 0] = (T)((s0 > 0 ? s1 / s0 : 0));
          out0[i * 3 + 1] = (T)((s0 > 0 ? s2 / s0 : 0));
          out0[i * 3 + 2] = (T)((s0 > 0 ? s3 / s0 : 0));
        }
      }
    }
    for (int64_t b0 = 0; b0 < n_batch; b0 += bc) {
      const int64_t b1 = lk_min(n_batch, b0 + bc);
      const int64_t npc = (n_red + 8191) / 8192;
      const int64_t n_pi = NPRE > 0 ? (b1 - b0) * npc : 0;
      const int64_t n_items = n_pi + (b1 - b0) * n_grp * q;
      // shared counters, accessed only by __atomic builtins (no <atomic>)
      int64_t next = 0, pre_done = 0, finished = 0;
      int failed = 0;
      auto body = [&](int) {
        try {
          lk_buf<A> st_m_v(BI * 1);
          A* __restrict st_m = st_m_v.data();
          lk_buf<A> st_s_v(BI * 32);
          A* __restrict st_s = st_s_v.data();
          lk_buf<A> st_comp_v(BI * 32);
          A* __restrict st_comp = st_comp_v.data();
          lk_buf<T> tb_v(TJ * 4);
          T* __restrict tb0 = tb_v.data() + 0 * TJ;
          T* __restrict tb1 = tb_v.data() + 1 * TJ;
          T* __restrict tb2 = tb_v.data() + 2 * TJ;
          T* __restrict tb3 = tb_v.data() + 3 * TJ;
          lk_buf<A> kb_v(TJ * 4);
          A* __restrict kb0 = kb_v.data() + 0 * TJ;
          A* __restrict kb1 = kb_v.data() + 1 * TJ;
          A* __restrict kb2 = kb_v.data() + 2 * TJ;
          A* __restrict kb3 = kb_v.data() + 3 * TJ;
          for (;;) {
            const int64_t w = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
            if (w >= n_items) break;
            if (w < n_pi) {
              // reduction-index-only values, dimension-major, then PAD zeros
              const int64_t b = b0 + w / npc, jc0 = (w % npc) * 8192;
              const int64_t jc1 = lk_min(n_red, jc0 + 8192);
              const T* __restrict a0 = (const T*)args[0] + offsets[0 * n_batch + b];
              const T* __restrict a1 = (const T*)args[1] + offsets[1 * n_batch + b];
              const T* __restrict a2 = (const T*)args[2] + offsets[2 * n_batch + b];
              const T* __restrict a3 = (const T*)args[3] + offsets[3 * n_batch + b];
              const T p0 = a3[0];
              T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
              T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_rs;
              T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_rs;
              T* __restrict ys3 = pre.data() + ((b - b0) * NPRE + 3) * n_rs;
              T* __restrict ys4 = pre.data() + ((b - b0) * NPRE + 4) * n_rs;
              T* __restrict ys5 = pre.data() + ((b - b0) * NPRE + 5) * n_rs;
              for (int64_t j = jc0; j < jc1; ++j) {
                const T y0 = a1[j * 3 + 0];
                const T y1 = a1[j * 3 + 1];
                const T y2 = a1[j * 3 + 2];
                const T y3 = (-y0);
                const T y4 = (-y1);
                const T y5 = (-y2);
                const T y6 = a2[j];
                const T y7 = (y0 * y6);
                const T y8 = (y1 * y6);
                const T y9 = (y2 * y6);
                ys0[j] = y3;
                ys1[j] = y4;
                ys2[j] = y5;
                ys3[j] = y7;
                ys4[j] = y8;
                ys5[j] = y9;
              }
              if (jc1 == n_red) {
                for (int64_t m = 0; m < NPRE; ++m) {
                  T* __restrict z = pre.data() + ((b - b0) * NPRE + m) * n_rs;
                  for (int64_t j = n_red; j < n_rs; ++j) z[j] = (T)0;
                }
              }
              __atomic_fetch_add(&pre_done, 1, __ATOMIC_RELEASE);
              __atomic_fetch_add(&finished, 1, __ATOMIC_RELAXED);
              continue;
            }
            while (__atomic_load_n(&pre_done, __ATOMIC_ACQUIRE) < n_pi) {
              if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) return;
              sched_yield();
            }
            const int64_t v = w - n_pi;
            const int64_t b = b0 + v / (n_grp * q), ig = (v / q) % n_grp, iq = v % q;
            const T* __restrict a0 = (const T*)args[0] + offsets[0 * n_batch + b];
            const T* __restrict a1 = (const T*)args[1] + offsets[1 * n_batch + b];
            const T* __restrict a2 = (const T*)args[2] + offsets[2 * n_batch + b];
            const T* __restrict a3 = (const T*)args[3] + offsets[3 * n_batch + b];
            const T p0 = a3[0];
            const T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
            const T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_rs;
            const T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_rs;
            const T* __restrict ys3 = pre.data() + ((b - b0) * NPRE + 3) * n_rs;
            const T* __restrict ys4 = pre.data() + ((b - b0) * NPRE + 4) * n_rs;
            const T* __restrict ys5 = pre.data() + ((b - b0) * NPRE + 5) * n_rs;
            const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;
            for (int64_t ib = ig * G; ib < lk_min(n_blk, (ig + 1) * G); ++ib) {
              const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0, rg = blk[3 * ib + 2];
              T xs0[8], xs1[8], xs2[8];
              for (int64_t k = 0; k < BI; ++k) {
                const int64_t i = i0 + (k < bi ? k : 0);
                const T x0 = a0[i * 3 + 0];
                const T x1 = a0[i * 3 + 1];
                const T x2 = a0[i * 3 + 2];
                xs0[k] = x0;
                xs1[k] = x1;
                xs2[k] = x2;
              }
              for (int64_t k = 0; k < bi; ++k) {
                st_m[k] = (-std::numeric_limits<A>::infinity());
                for (int64_t c = 0; c < 32; ++c) {
                  st_s[k * 32 + c] = 0;
                }
                for (int64_t c = 0; c < 32; ++c) {
                  st_comp[k * 32 + c] = 0;
                }
              }
              const int64_t s0 = rg <= 0 ? 0 : slices[rg - 1], s1 = rg < 0 ? 1 : slices[rg];
              for (int64_t s = s0; s < s1; ++s) {
                const int64_t ja = lk_max(jlo, rg < 0 ? (int64_t)0 : redranges[2 * s]);
                const int64_t jb = lk_min(jhi, rg < 0 ? n_red : redranges[2 * s + 1]);
                for (int64_t j0 = ja; j0 < jb; j0 += TJ) {
                  const int64_t j1 = lk_min(jb, j0 + TJ);
                  for (int64_t k = 0; k < bi; ++k) {
                    const T xr0 = xs0[k];
                    const T xr1 = xs1[k];
                    const T xr2 = xs2[k];
                    T tm = (T)st_m[k];
                    const int64_t jm = j0 + (j1 - j0) / VW * VW;
                    #pragma omp simd reduction(max:tm)
                    for (int64_t j = j0; j < jm; ++j) {
                      const T yr0 = ys0[j];
                      const T yr1 = ys1[j];
                      const T yr2 = ys2[j];
                      const T yr3 = ys3[j];
                      const T yr4 = ys4[j];
                      const T yr5 = ys5[j];
                      const T t0 = (xr0 + yr0);
                      const T t1 = (xr1 + yr1);
                      const T t2 = (xr2 + yr2);
                      const T t3 = (t0 * t0);
                      const T t4 = (t1 * t1);
                      const T t5 = (t2 * t2);
                      const T t6 = t3 + t4 + t5;
                      const T t7 = (t6 * p0);
                      const T t8 = (-t7);
                      tb0[j - j0] = t8;
                      tb1[j - j0] = yr3;
                      tb2[j - j0] = yr4;
                      tb3[j - j0] = yr5;
                      tm = ((t8 > tm) ? t8 : tm);
                    }
                    if (jm < j1 && j1 >= VW) {
                      const int64_t jt = j1 - VW;
                      const int u_first = (int)(jm - jt);
                      #pragma omp simd reduction(max:tm)
                      for (int u = 0; u < VW; ++u) {
                        const int64_t j = jt + u;
                        const T yr0 = ys0[j];
                        const T yr1 = ys1[j];
                        const T yr2 = ys2[j];
                        const T yr3 = ys3[j];
                        const T yr4 = ys4[j];
                        const T yr5 = ys5[j];
                        const T t0 = (xr0 + yr0);
                        const T t1 = (xr1 + yr1);
                        const T t2 = (xr2 + yr2);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        const T t7 = (t6 * p0);
                        const T t8 = (-t7);
                        if (u >= u_first) tb0[j - j0] = t8;
                        if (u >= u_first) tb1[j - j0] = yr3;
                        if (u >= u_first) tb2[j - j0] = yr4;
                        if (u >= u_first) tb3[j - j0] = yr5;
                        tm = ((u >= u_first) && (t8 > tm) ? t8 : tm);
                      }
                    } else {
                      for (int64_t j = jm; j < j1; ++j) {
                        const T yr0 = ys0[j];
                        const T yr1 = ys1[j];
                        const T yr2 = ys2[j];
                        const T yr3 = ys3[j];
                        const T yr4 = ys4[j];
                        const T yr5 = ys5[j];
                        const T t0 = (xr0 + yr0);
                        const T t1 = (xr1 + yr1);
                        const T t2 = (xr2 + yr2);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        const T t7 = (t6 * p0);
                        const T t8 = (-t7);
                        tb0[j - j0] = t8;
                        tb1[j - j0] = yr3;
                        tb2[j - j0] = yr4;
                        tb3[j - j0] = yr5;
                        tm = ((t8 > tm) ? t8 : tm);
                      }
                    }
                    if (((A)(tm) > st_m[k])) {
                      const A lk_v0 = lk_exp((st_m[k] - (A)(tm)));
                      for (int64_t lk_v1 = 0; lk_v1 < 32; ++lk_v1) {
                        st_s[k * 32 + lk_v1] = (st_s[k * 32 + lk_v1] * lk_v0);
                        st_comp[k * 32 + lk_v1] = (st_comp[k * 32 + lk_v1] * lk_v0);
                      }
                      st_m[k] = (A)(tm);
                    }
                    if ((st_m[k] > (-std::numeric_limits<T>::infinity()))) {
                      const A mm = st_m[k];
                      const int64_t nv = (j1 - j0 + VW - 1) / VW * VW;
                      for (int64_t t = j1 - j0; t < nv; ++t) {
                        tb0[t] = (-std::numeric_limits<T>::infinity());
                        tb1[t] = 0;
                        tb2[t] = 0;
                        tb3[t] = 0;
                      }
                      #pragma omp simd
                      for (int64_t t = 0; t < nv; ++t) {
                        const A lk_v2 = lk_exp(((A)(tb0[t]) - mm));
                        kb0[t] = lk_v2;
                        kb1[t] = (lk_v2 * (A)(tb1[t]));
                        kb2[t] = (lk_v2 * (A)(tb2[t]));
                        kb3[t] = (lk_v2 * (A)(tb3[t]));
                      }
                      lk_kahan_tile(kb0, nv, &st_s[k * 32 + 0], &st_comp[k * 32 + 0]);
                      lk_kahan_tile(kb1, nv, &st_s[k * 32 + 8], &st_comp[k * 32 + 8]);
                      lk_kahan_tile(kb2, nv, &st_s[k * 32 + 16], &st_comp[k * 32 + 16]);
                      lk_kahan_tile(kb3, nv, &st_s[k * 32 + 24], &st_comp[k * 32 + 24]);
                    }
                  }
                }
              }
              if (q == 1) {
                T* __restrict out0 = (T*)outs[0] + b * n_out * 3;
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t i = i0 + k;
                  const A s0 = lk_kahan_total(&st_s[k * 32 + 0], &st_comp[k * 32 + 0]);
                  const A s1 = lk_kahan_total(&st_s[k * 32 + 8], &st_comp[k * 32 + 8]);
                  const A s2 = lk_kahan_total(&st_s[k * 32 + 16], &st_comp[k * 32 + 16]);
                  const A s3 = lk_kahan_total(&st_s[k * 32 + 24], &st_comp[k * 32 + 24]);
                  out0[i * 3 + 0] = (T)((s0 > 0 ? s1 / s0 : 0));
                  out0[i * 3 + 1] = (T)((s0 > 0 ? s2 / s0 : 0));
                  out0[i * 3 + 2] = (T)((s0 > 0 ? s3 / s0 : 0));
                }
              } else {
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t pr = (((b - b0) * n_blk + ib) * q + iq) * BI + k;
                  part_m[pr * 1 + 0] = st_m[k];
                  for (int64_t c = 0; c < 32; ++c) {
                    part_s[pr * 32 + c] = st_s[k * 32 + c];
                  }
                  for (int64_t c = 0; c < 32; ++c) {
                    part_comp[pr * 32 + c] = st_comp[k * 32 + c];
                  }
                }
              }
            }
            __atomic_fetch_add(&finished, 1, __ATOMIC_RELAXED);
          }
        } catch (...) {
          __atomic_store_n(&failed, 1, __ATOMIC_SEQ_CST);
        }
      };
      if (nt > 1) ((lk_pool_fn)pool)(nt, &lk_invoke<decltype(body)>, &body);
      else body(0);
      if (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) != n_items) return 1;
      if (q > 1) {
        lk_buf<A> st_m_v(BI * 1);
        A* __restrict st_m = st_m_v.data();
        lk_buf<A> st_s_v(BI * 32);
        A* __restrict st_s = st_s_v.data();
        lk_buf<A> st_comp_v(BI * 32);
        A* __restrict st_comp = st_comp_v.data();
        for (int64_t w = 0; w < (b1 - b0) * n_blk; ++w) {
          const int64_t b = b0 + w / n_blk, ib = w % n_blk;
          const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0;
          T* __restrict out0 = (T*)outs[0] + b * n_out * 3;
          for (int64_t k = 0; k < bi; ++k) {
            {
              const int64_t pr = (w * q) * BI + k;
              st_m[k] = part_m[pr * 1 + 0];
              for (int64_t c = 0; c < 32; ++c) {
                st_s[k * 32 + c] = part_s[pr * 32 + c];
              }
              for (int64_t c = 0; c < 32; ++c) {
                st_comp[k * 32 + c] = part_comp[pr * 32 + c];
              }
            }
            for (int64_t iq = 1; iq < q; ++iq) {
              const int64_t pr = (w * q + iq) * BI + k;
              if ((part_m[pr * 1 + 0] > st_m[k])) {
                const A lk_v3 = lk_exp((st_m[k] - part_m[pr * 1 + 0]));
                for (int64_t lk_v4 = 0; lk_v4 < 32; ++lk_v4) {
                  st_s[k * 32 + lk_v4] = (st_s[k * 32 + lk_v4] * lk_v3);
                  st_comp[k * 32 + lk_v4] = (st_comp[k * 32 + lk_v4] * lk_v3);
                }
                for (int64_t l = 0; l < 32; ++l) {
                  lk_kahan_add(st_s[k * 32 + l], st_comp[k * 32 + l], (A)((part_s[pr * 32 + l] - part_comp[pr * 32 + l])));
                }
                st_m[k] = part_m[pr * 1 + 0];
              } else if ((part_m[pr * 1 + 0] > (-std::numeric_limits<T>::infinity()))) {
                const A lk_v5 = lk_exp((part_m[pr * 1 + 0] - st_m[k]));
                for (int64_t l = 0; l < 32; ++l) {
                  lk_kahan_add(st_s[k * 32 + l], st_comp[k * 32 + l], (A)(lk_v5 * (part_s[pr * 32 + l] - part_comp[pr * 32 + l])));
                }
              }
            }
            const int64_t i = i0 + k;
            const A s0 = lk_kahan_total(&st_s[k * 32 + 0], &st_comp[k * 32 + 0]);
            const A s1 = lk_kahan_total(&st_s[k * 32 + 8], &st_comp[k * 32 + 8]);
            const A s2 = lk_kahan_total(&st_s[k * 32 + 16], &st_comp[k * 32 + 16]);
            const A s3 = lk_kahan_total(&st_s[k * 32 + 24], &st_comp[k * 32 + 24]);
            out0[i * 3 + 0] = (T)((s0 > 0 ? s1 / s0 : 0));
            out0[i * 3 + 1] = (T)((s0 > 0 ? s2 / s0 : 0));
            out0[i * 3 + 2] = (T)((s0 > 0 ? s3 / s0 : 0));
          }
        }
      }
    }
  } catch (...) {
    return 1;
  }
  return 0;
}
