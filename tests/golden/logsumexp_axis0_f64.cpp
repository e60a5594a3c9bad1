// lazykernels CPU kernel: LogSumExp reduction, output indexed by J, float64 data, double accumulator, block_sum.
// Generated code: a deterministic function of the reduction plan.
// formula rounding: as-written (it rounds as in the kernels that share it)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("fp-contract=off", "no-associative-math")
#endif
#include <cstddef>
#include <cstdint>
#include <cmath>
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

typedef double T;
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

extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,
                         const void* const* args, const int64_t* offsets,
                         void* const* outs, int64_t n_ranges,
                         const int64_t* ranges_out,
                         const int64_t* slices, const int64_t* redranges,
                         int64_t n_threads, void* pool) {
  const int64_t BI = 8, TJ = 2048, NPRE = 3, VW = LK_VBYTES / (int64_t)sizeof(T), PAD = 64;
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
    lk_buf<A> part_s(n_part * 1);
    if (n_ranges >= 0) {
      // rows outside every range get the empty-reduction value
      lk_buf<A> st_m_v(1 * 1);
      A* __restrict st_m = st_m_v.data();
      lk_buf<A> st_s_v(1 * 1);
      A* __restrict st_s = st_s_v.data();
      for (int64_t b = 0; b < n_batch; ++b) {
        T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
        for (int64_t i = 0, k = 0; i < n_out; ++i) {
          st_m[k] = (-std::numeric_limits<A>::infinity());
          st_s[k] = 0;
          const A s0 = st_s[k];
          out0[i] = (T)((st_m[k] + std::log(s0)));
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
          lk_buf<A> st_s_v(BI * 1);
          A* __restrict st_s = st_s_v.data();
          lk_buf<T> tb_v(TJ * 1);
          T* __restrict tb0 = tb_v.data() + 0 * TJ;
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
              for (int64_t j = jc0; j < jc1; ++j) {
                const T y0 = a0[j * 3 + 0];
                const T y1 = a0[j * 3 + 1];
                const T y2 = a0[j * 3 + 2];
                ys0[j] = y0;
                ys1[j] = y1;
                ys2[j] = y2;
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
            const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;
            for (int64_t ib = ig * G; ib < lk_min(n_blk, (ig + 1) * G); ++ib) {
              const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0, rg = blk[3 * ib + 2];
              T xs0[8], xs1[8], xs2[8], xs3[8];
              for (int64_t k = 0; k < BI; ++k) {
                const int64_t i = i0 + (k < bi ? k : 0);
                const T x0 = a2[i];
                const T x1 = a1[i * 3 + 0];
                const T x2 = a1[i * 3 + 1];
                const T x3 = a1[i * 3 + 2];
                const T x4 = (-x1);
                const T x5 = (-x2);
                const T x6 = (-x3);
                xs0[k] = x0;
                xs1[k] = x4;
                xs2[k] = x5;
                xs3[k] = x6;
              }
              for (int64_t k = 0; k < bi; ++k) {
                st_m[k] = (-std::numeric_limits<A>::infinity());
                st_s[k] = 0;
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
                    const T xr3 = xs3[k];
                    T tm = (T)st_m[k];
                    const int64_t jm = j0 + (j1 - j0) / VW * VW;
                    #pragma omp simd reduction(max:tm)
                    for (int64_t j = j0; j < jm; ++j) {
                      const T yr0 = ys0[j];
                      const T yr1 = ys1[j];
                      const T yr2 = ys2[j];
                      const T t0 = (yr0 + xr1);
                      const T t1 = (yr1 + xr2);
                      const T t2 = (yr2 + xr3);
                      const T t3 = (t0 * t0);
                      const T t4 = (t1 * t1);
                      const T t5 = (t2 * t2);
                      const T t6 = t3 + t4 + t5;
                      const T t7 = (t6 * p0);
                      const T t8 = (-t7);
                      const T t9 = (xr0 + t8);
                      tb0[j - j0] = t9;
                      tm = ((t9 > tm) ? t9 : tm);
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
                        const T t0 = (yr0 + xr1);
                        const T t1 = (yr1 + xr2);
                        const T t2 = (yr2 + xr3);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        const T t7 = (t6 * p0);
                        const T t8 = (-t7);
                        const T t9 = (xr0 + t8);
                        if (u >= u_first) tb0[j - j0] = t9;
                        tm = ((u >= u_first) && (t9 > tm) ? t9 : tm);
                      }
                    } else {
                      for (int64_t j = jm; j < j1; ++j) {
                        const T yr0 = ys0[j];
                        const T yr1 = ys1[j];
                        const T yr2 = ys2[j];
                        const T t0 = (yr0 + xr1);
                        const T t1 = (yr1 + xr2);
                        const T t2 = (yr2 + xr3);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        const T t7 = (t6 * p0);
                        const T t8 = (-t7);
                        const T t9 = (xr0 + t8);
                        tb0[j - j0] = t9;
                        tm = ((t9 > tm) ? t9 : tm);
                      }
                    }
                    if ((tm > st_m[k])) {
                      const A lk_v0 = lk_exp((st_m[k] - tm));
                      for (int64_t lk_v1 = 0; lk_v1 < 1; ++lk_v1) {
                        st_s[k] = (st_s[k] * lk_v0);
                      }
                      st_m[k] = tm;
                    }
                    if ((st_m[k] > (-std::numeric_limits<T>::infinity()))) {
                      const A mm = st_m[k];
                      const int64_t nv = (j1 - j0 + VW - 1) / VW * VW;
                      for (int64_t t = j1 - j0; t < nv; ++t) {
                        tb0[t] = (-std::numeric_limits<T>::infinity());
                      }
                      A ps0 = 0;
                      #pragma omp simd reduction(+:ps0)
                      for (int64_t t = 0; t < nv; ++t) {
                        const A lk_v2 = lk_exp((tb0[t] - mm));
                        ps0 += lk_v2;
                      }
                      st_s[k] += ps0;
                    }
                  }
                }
              }
              if (q == 1) {
                T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t i = i0 + k;
                  const A s0 = st_s[k];
                  out0[i] = (T)((st_m[k] + std::log(s0)));
                }
              } else {
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t pr = (((b - b0) * n_blk + ib) * q + iq) * BI + k;
                  part_m[pr * 1 + 0] = st_m[k];
                  part_s[pr * 1 + 0] = st_s[k];
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
        lk_buf<A> st_s_v(BI * 1);
        A* __restrict st_s = st_s_v.data();
        for (int64_t w = 0; w < (b1 - b0) * n_blk; ++w) {
          const int64_t b = b0 + w / n_blk, ib = w % n_blk;
          const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0;
          T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
          for (int64_t k = 0; k < bi; ++k) {
            {
              const int64_t pr = (w * q) * BI + k;
              st_m[k] = part_m[pr * 1 + 0];
              st_s[k] = part_s[pr * 1 + 0];
            }
            for (int64_t iq = 1; iq < q; ++iq) {
              const int64_t pr = (w * q + iq) * BI + k;
              if ((part_m[pr * 1 + 0] > st_m[k])) {
                const A lk_v3 = lk_exp((st_m[k] - part_m[pr * 1 + 0]));
                for (int64_t lk_v4 = 0; lk_v4 < 1; ++lk_v4) {
                  st_s[k] = (st_s[k] * lk_v3);
                }
                for (int64_t lk_v5 = 0; lk_v5 < 1; ++lk_v5) {
                  st_s[k] += part_s[pr * 1 + lk_v5];
                }
                st_m[k] = part_m[pr * 1 + 0];
              } else {
                if ((part_m[pr * 1 + 0] > (-std::numeric_limits<T>::infinity()))) {
                  const A lk_v6 = lk_exp((part_m[pr * 1 + 0] - st_m[k]));
                  for (int64_t lk_v7 = 0; lk_v7 < 1; ++lk_v7) {
                    st_s[k] += (lk_v6 * part_s[pr * 1 + lk_v7]);
                  }
                }
              }
            }
            const int64_t i = i0 + k;
            const A s0 = st_s[k];
            out0[i] = (T)((st_m[k] + std::log(s0)));
          }
        }
      }
    }
  } catch (...) {
    return 1;
  }
  return 0;
}
