// lazykernels CPU kernel: ArgKMin reduction, output indexed by I, float32 data, float accumulator, direct_sum, blocked squared distances.
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

typedef T lk_v __attribute__((vector_size(LK_VBYTES)));
static const int64_t LK_L = LK_VBYTES / (int64_t)sizeof(T);
static inline lk_v lk_vload(const T* p) {
  lk_v v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void lk_vstore(T* p, lk_v v) { __builtin_memcpy(p, &v, sizeof v); }

extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,
                         const void* const* args, const int64_t* offsets,
                         void* const* outs, int64_t n_ranges,
                         const int64_t* ranges_out,
                         const int64_t* slices, const int64_t* redranges,
                         int64_t n_threads, void* pool) {
  const int64_t BI = 96, TJ = 128, NPRE = 17, VW = LK_VBYTES / (int64_t)sizeof(T), PAD = 64;
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
          lk_buf<T> gm_v(BI * 33 + BI * TJ);
          T* __restrict xu = gm_v.data();
          T* __restrict xp = xu + BI * 16;
          T* __restrict xn = xp + BI * 16;
          T* __restrict tbs = xn + BI;
          for (;;) {
            const int64_t w = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
            if (w >= n_items) break;
            if (w < n_pi) {
              // reduction-index-only values, dimension-major, then PAD zeros
              const int64_t b = b0 + w / npc, jc0 = (w % npc) * 8192;
              const int64_t jc1 = lk_min(n_red, jc0 + 8192);
              const T* __restrict a0 = (const T*)args[0] + offsets[0 * n_batch + b];
              const T* __restrict a1 = (const T*)args[1] + offsets[1 * n_batch + b];
              T* __restrict yv = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
              T* __restrict yn = pre.data() + ((b - b0) * NPRE + 16) * n_rs;
              for (int64_t j = jc0; j < jc1; ++j) {
                T s = 0;
                for (int64_t c = 0; c < 16; ++c) {
                  const T v = -a1[j * 16 + c];
                  yv[c * n_rs + j] = v;
                  s += v * v;
                }
                yn[j] = 0.9999942779541016f * s;
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
            const T* __restrict yv = pre.data() + ((b - b0) * NPRE + 0) * n_rs;
            const T* __restrict yn = pre.data() + ((b - b0) * NPRE + 16) * n_rs;
            const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;
            for (int64_t ib = ig * G; ib < lk_min(n_blk, (ig + 1) * G); ++ib) {
              const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0, rg = blk[3 * ib + 2];
              for (int64_t k = 0; k < BI; ++k) {
                const int64_t i = i0 + (k < bi ? k : 0);
                for (int64_t c = 0; c < 16; ++c) {
                  xu[c * BI + k] = a0[i * 16 + c];
                }
              }
              for (int64_t k = 0; k < BI; ++k) {
                xn[k] = 0;
              }
              for (int64_t c = 0; c < 16; ++c) {
                #pragma omp simd
                for (int64_t k = 0; k < BI; ++k) {
                  const T u = xu[c * BI + k];
                  xp[c * BI + k] = u + u;
                  xn[k] += u * u;
                }
              }
              for (int64_t k = 0; k < BI; ++k) {
                xn[k] *= 0.9999942779541016f;
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
                  const int64_t nc = j1 - j0, bip = (bi + 5) / 6 * 6;
                  for (int64_t c0 = 0; c0 < nc; c0 += 2 * LK_L) {
                    const T* __restrict yc = yv + j0 + c0;
                    const lk_v n0 = lk_vload(yn + j0 + c0);
                    const lk_v n1 = lk_vload(yn + j0 + c0 + LK_L);
                    for (int64_t r0 = 0; r0 < bip; r0 += 6) {
                      T* __restrict o = tbs + r0 * TJ + c0;
                      lk_v a00 = n0, a01 = n1, a10 = n0, a11 = n1, a20 = n0, a21 = n1, a30 = n0, a31 = n1, a40 = n0, a41 = n1, a50 = n0, a51 = n1;
                      for (int64_t c = 0; c < 16; ++c) {
                        const lk_v y0 = lk_vload(yc + c * n_rs);
                        const lk_v y1 = lk_vload(yc + c * n_rs + LK_L);
                        const T* __restrict xc = xp + c * BI + r0;
                        a00 += xc[0] * y0;
                        a01 += xc[0] * y1;
                        a10 += xc[1] * y0;
                        a11 += xc[1] * y1;
                        a20 += xc[2] * y0;
                        a21 += xc[2] * y1;
                        a30 += xc[3] * y0;
                        a31 += xc[3] * y1;
                        a40 += xc[4] * y0;
                        a41 += xc[4] * y1;
                        a50 += xc[5] * y0;
                        a51 += xc[5] * y1;
                      }
                      lk_vstore(o + 0 * TJ, a00 + xn[r0 + 0]);
                      lk_vstore(o + 0 * TJ + LK_L, a01 + xn[r0 + 0]);
                      lk_vstore(o + 1 * TJ, a10 + xn[r0 + 1]);
                      lk_vstore(o + 1 * TJ + LK_L, a11 + xn[r0 + 1]);
                      lk_vstore(o + 2 * TJ, a20 + xn[r0 + 2]);
                      lk_vstore(o + 2 * TJ + LK_L, a21 + xn[r0 + 2]);
                      lk_vstore(o + 3 * TJ, a30 + xn[r0 + 3]);
                      lk_vstore(o + 3 * TJ + LK_L, a31 + xn[r0 + 3]);
                      lk_vstore(o + 4 * TJ, a40 + xn[r0 + 4]);
                      lk_vstore(o + 4 * TJ + LK_L, a41 + xn[r0 + 4]);
                      lk_vstore(o + 5 * TJ, a50 + xn[r0 + 5]);
                      lk_vstore(o + 5 * TJ + LK_L, a51 + xn[r0 + 5]);
                    }
                  }
                  for (int64_t k = 0; k < bi; ++k) {
                    const T* __restrict tr = tbs + k * TJ;
                    T* kv = &st_kval[k * 4 + 0];
                    int64_t* ki = &st_kind[k * 4 + 0];
                    T thr = kv[3];
                    for (int64_t t0 = 0; t0 < j1 - j0; t0 += 16) {
                      int hit = 0;
                      #pragma omp simd reduction(|:hit)
                      for (int u = 0; u < 16; ++u) {
                        hit |= (tr[t0 + u] > thr) ? 0 : 1;
                      }
                      if (!hit) continue;
                      const int64_t te = lk_min(j1 - j0, t0 + 16);
                      for (int64_t t = t0; t < te; ++t) {
                        if ((tr[t] > thr)) continue;
                        T ex = 0;
                        for (int64_t c = 0; c < 16; ++c) {
                          const T e = xu[c * BI + k] + yv[c * n_rs + j0 + t];
                          ex += e * e;
                        }
                        ex = (ex != ex ? std::numeric_limits<T>::infinity() : ex);
                        if ((ex > thr)) continue;
                        if ((ex < thr || ki[3] < 0)) {
                          int64_t lk_v1 = 3;
                          while ((lk_v1 > 0 && (ex < kv[(lk_v1 + -1)] || ki[(lk_v1 + -1)] < 0))) {
                            kv[lk_v1] = kv[(lk_v1 + -1)];
                            ki[lk_v1] = ki[(lk_v1 + -1)];
                            lk_v1 = (lk_v1 - 1);
                          }
                          kv[lk_v1] = ex;
                          ki[lk_v1] = j0 + t;
                        }
                        thr = kv[3];
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
