// lazykernels CPU kernel: ArgKMin reduction, output indexed by I, float32 data, float accumulator, direct_sum.
// Generated code: a deterministic function of the reduction plan.
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
typedef float A;
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
    lk_buf<T> part_kval(n_part * 4);
    lk_buf<int64_t> part_kind(n_part * 4);
    if (n_ranges >= 0) {
      // rows outside every range get the empty-reduction value
      lk_buf<T> st_kval_v(1 * 4);
      T* __restrict st_kval = st_kval_v.data();
      lk_buf<int64_t> st_kind_v(1 * 4);
      int64_t* __restrict st_kind = st_kind_v.data();
      for (int64_t b = 0; b < n_batch; ++b) {
        int64_t* __restrict out0 = (int64_t*)outs[0] + b * n_out * 4;
        for (int64_t i = 0, k = 0; i < n_out; ++i) {
          for (int64_t c = 0; c < 4; ++c) {
            st_kval[k * 4 + c] = std::numeric_limits<T>::infinity();
          }
          for (int64_t c = 0; c < 4; ++c) {
            st_kind[k * 4 + c] = -1;
          }
          for (int64_t lk_v0 = 0; lk_v0 < 4; ++lk_v0) {
            out0[i * 4 + lk_v0] = st_kind[k * 4 + lk_v0];
          }
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
          lk_buf<T> st_kval_v(BI * 4);
          T* __restrict st_kval = st_kval_v.data();
          lk_buf<int64_t> st_kind_v(BI * 4);
          int64_t* __restrict st_kind = st_kind_v.data();
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
              T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
              T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_rs;
              T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_rs;
              for (int64_t j = jc0; j < jc1; ++j) {
                const T y0 = a1[j * 3 + 0];
                const T y1 = a1[j * 3 + 1];
                const T y2 = a1[j * 3 + 2];
                const T y3 = (-y0);
                const T y4 = (-y1);
                const T y5 = (-y2);
                ys0[j] = y3;
                ys1[j] = y4;
                ys2[j] = y5;
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
            const T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
            const T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_rs;
            const T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_rs;
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
                for (int64_t c = 0; c < 4; ++c) {
                  st_kval[k * 4 + c] = std::numeric_limits<T>::infinity();
                }
                for (int64_t c = 0; c < 4; ++c) {
                  st_kind[k * 4 + c] = -1;
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
                    const int64_t jm = j0 + (j1 - j0) / VW * VW;
                    #pragma omp simd
                    for (int64_t j = j0; j < jm; ++j) {
                      const T yr0 = ys0[j];
                      const T yr1 = ys1[j];
                      const T yr2 = ys2[j];
                      const T t0 = (xr0 + yr0);
                      const T t1 = (xr1 + yr1);
                      const T t2 = (xr2 + yr2);
                      const T t3 = (t0 * t0);
                      const T t4 = (t1 * t1);
                      const T t5 = (t2 * t2);
                      const T t6 = t3 + t4 + t5;
                      tb0[j - j0] = (t6 != t6 ? std::numeric_limits<T>::infinity() : t6);
                    }
                    if (jm < j1 && j1 >= VW) {
                      const int64_t jt = j1 - VW;
                      const int u_first = (int)(jm - jt);
                      #pragma omp simd
                      for (int u = 0; u < VW; ++u) {
                        const int64_t j = jt + u;
                        const T yr0 = ys0[j];
                        const T yr1 = ys1[j];
                        const T yr2 = ys2[j];
                        const T t0 = (xr0 + yr0);
                        const T t1 = (xr1 + yr1);
                        const T t2 = (xr2 + yr2);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        if (u >= u_first) tb0[j - j0] = (t6 != t6 ? std::numeric_limits<T>::infinity() : t6);
                      }
                    } else {
                      for (int64_t j = jm; j < j1; ++j) {
                        const T yr0 = ys0[j];
                        const T yr1 = ys1[j];
                        const T yr2 = ys2[j];
                        const T t0 = (xr0 + yr0);
                        const T t1 = (xr1 + yr1);
                        const T t2 = (xr2 + yr2);
                        const T t3 = (t0 * t0);
                        const T t4 = (t1 * t1);
                        const T t5 = (t2 * t2);
                        const T t6 = t3 + t4 + t5;
                        tb0[j - j0] = (t6 != t6 ? std::numeric_limits<T>::infinity() : t6);
                      }
                    }
                    {
                      T* kv = &st_kval[k * 4 + 0];
                      int64_t* ki = &st_kind[k * 4 + 0];
                      T thr = kv[3];
                      for (int64_t t0 = 0; t0 < j1 - j0; t0 += 16) {
                        int hit = 0;
                        #pragma omp simd reduction(|:hit)
                        for (int u = 0; u < 16; ++u) {
                          hit |= (tb0[t0 + u] > thr) ? 0 : 1;
                        }
                        if (!hit) continue;
                        const int64_t te = lk_min(j1 - j0, t0 + 16);
                        for (int64_t t = t0; t < te; ++t) {
                          if ((tb0[t] > thr)) continue;
                          if ((tb0[t] < thr || ki[3] < 0)) {
                            int64_t lk_v1 = 3;
                            while ((lk_v1 > 0 && (tb0[t] < kv[(lk_v1 + -1)] || ki[(lk_v1 + -1)] < 0))) {
                              kv[lk_v1] = kv[(lk_v1 + -1)];
                              ki[lk_v1] = ki[(lk_v1 + -1)];
                              lk_v1 = (lk_v1 - 1);
                            }
                            kv[lk_v1] = tb0[t];
                            ki[lk_v1] = j0 + t;
                          }
                          thr = kv[3];
                        }
                      }
                    }
                  }
                }
              }
              if (q == 1) {
                int64_t* __restrict out0 = (int64_t*)outs[0] + b * n_out * 4;
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t i = i0 + k;
                  for (int64_t lk_v2 = 0; lk_v2 < 4; ++lk_v2) {
                    out0[i * 4 + lk_v2] = st_kind[k * 4 + lk_v2];
                  }
                }
              } else {
                for (int64_t k = 0; k < bi; ++k) {
                  const int64_t pr = (((b - b0) * n_blk + ib) * q + iq) * BI + k;
                  for (int64_t c = 0; c < 4; ++c) {
                    part_kval[pr * 4 + c] = st_kval[k * 4 + c];
                  }
                  for (int64_t c = 0; c < 4; ++c) {
                    part_kind[pr * 4 + c] = st_kind[k * 4 + c];
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
        lk_buf<T> st_kval_v(BI * 4);
        T* __restrict st_kval = st_kval_v.data();
        lk_buf<int64_t> st_kind_v(BI * 4);
        int64_t* __restrict st_kind = st_kind_v.data();
        for (int64_t w = 0; w < (b1 - b0) * n_blk; ++w) {
          const int64_t b = b0 + w / n_blk, ib = w % n_blk;
          const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0;
          int64_t* __restrict out0 = (int64_t*)outs[0] + b * n_out * 4;
          for (int64_t k = 0; k < bi; ++k) {
            {
              const int64_t pr = (w * q) * BI + k;
              for (int64_t c = 0; c < 4; ++c) {
                st_kval[k * 4 + c] = part_kval[pr * 4 + c];
              }
              for (int64_t c = 0; c < 4; ++c) {
                st_kind[k * 4 + c] = part_kind[pr * 4 + c];
              }
            }
            for (int64_t iq = 1; iq < q; ++iq) {
              const int64_t pr = (w * q + iq) * BI + k;
              for (int64_t lk_v3 = 0; lk_v3 < 4; ++lk_v3) {
                if ((part_kind[pr * 4 + lk_v3] >= 0)) {
                  const T lk_v4 = part_kval[pr * 4 + lk_v3];
                  const int64_t lk_v5 = part_kind[pr * 4 + lk_v3];
                  if ((lk_v4 < st_kval[k * 4 + 3] || st_kind[k * 4 + 3] < 0 || (lk_v4 == st_kval[k * 4 + 3] && lk_v5 < st_kind[k * 4 + 3]))) {
                    T lk_v6 = lk_v4;
                    int64_t lk_v7 = lk_v5;
                    for (int64_t lk_v8 = 0; lk_v8 < 4; ++lk_v8) {
                      if ((lk_v6 < st_kval[k * 4 + lk_v8] || st_kind[k * 4 + lk_v8] < 0 || (lk_v6 == st_kval[k * 4 + lk_v8] && lk_v7 < st_kind[k * 4 + lk_v8]))) {
                        const T lk_v9 = st_kval[k * 4 + lk_v8];
                        const int64_t lk_v10 = st_kind[k * 4 + lk_v8];
                        st_kval[k * 4 + lk_v8] = lk_v6;
                        st_kind[k * 4 + lk_v8] = lk_v7;
                        lk_v6 = lk_v9;
                        lk_v7 = lk_v10;
                      }
                    }
                  }
                }
              }
            }
            const int64_t i = i0 + k;
            for (int64_t lk_v11 = 0; lk_v11 < 4; ++lk_v11) {
              out0[i * 4 + lk_v11] = st_kind[k * 4 + lk_v11];
            }
          }
        }
      }
    }
  } catch (...) {
    return 1;
  }
  return 0;
}
