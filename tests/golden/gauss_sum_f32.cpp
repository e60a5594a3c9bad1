// lazykernels CPU kernel: Sum reduction, output indexed by I, float32 data, float accumulator, block_sum.
// Generated code: a deterministic function of the reduction plan.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef float T;
typedef float A;

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

extern "C" int lk_kernel(int64_t n_out, int64_t n_red, int64_t n_batch,
                         const void* const* args, const int64_t* offsets,
                         void* const* outs, int64_t n_ranges,
                         const int64_t* ranges_out,
                         const int64_t* slices, const int64_t* redranges,
                         int64_t n_threads) {
  const int64_t BI = 8, TJ = 2048, NPRE = 3;
  if (n_out <= 0 || n_batch <= 0) return 0;
  int nt = 1;
  #ifdef _OPENMP
  nt = n_threads > 0 ? (int)n_threads : omp_get_max_threads();
  #endif
  const double pairs = (double)n_batch * (double)n_out * (double)n_red;
  if (pairs < 131072.0) nt = 1;
  try {
    // blocks of output rows: (first row, end row, range or -1)
    std::vector<int64_t> blk;
    if (n_ranges < 0) {
      for (int64_t lo = 0; lo < n_out; lo += BI) {
        blk.insert(blk.end(), {lo, std::min(n_out, lo + BI), (int64_t)-1});
      }
    } else {
      for (int64_t r = 0; r < n_ranges; ++r) {
        const int64_t lo0 = std::max<int64_t>(0, ranges_out[2 * r]);
        const int64_t hi0 = std::min(n_out, ranges_out[2 * r + 1]);
        for (int64_t lo = lo0; lo < hi0; lo += BI) {
          blk.insert(blk.end(), {lo, std::min(hi0, lo + BI), r});
        }
      }
    }
    const int64_t n_blk = (int64_t)blk.size() / 3;
    // batch entries per chunk: bounded memory for the precomputed inner values
    int64_t bc = n_batch;
    if (NPRE > 0 && n_red > 0) bc = std::max<int64_t>(1, std::min<int64_t>(n_batch, 16777216 / (NPRE * n_red)));
    // split the reduction range when there are too few blocks to feed every thread
    int64_t q = 1;
    const int64_t items = bc * n_blk;
    if (nt > 1 && items > 0 && items < 4 * nt && n_red >= 4096) {
      q = (8 * nt + items - 1) / items;
      q = std::max<int64_t>(1, std::min<int64_t>(q, n_red / 2048));
    }
    std::vector<T> pre((size_t)(bc * NPRE * std::max<int64_t>(n_red, 0)));
    const size_t n_part = q > 1 ? (size_t)(items * q * BI) : 0;
    std::vector<A> part_acc(n_part * 1);
    #pragma omp parallel num_threads(nt)
    {
      std::vector<A> st_acc_v(BI * 1);
      A* __restrict st_acc = st_acc_v.data();
      for (int64_t b0 = 0; b0 < n_batch; b0 += bc) {
        const int64_t b1 = std::min(n_batch, b0 + bc);
        // reduction-index-only values, dimension-major
        for (int64_t b = b0; b < b1; ++b) {
          const T* __restrict a0 = (const T*)args[0] + offsets[0 * n_batch + b];
          const T* __restrict a1 = (const T*)args[1] + offsets[1 * n_batch + b];
          const T* __restrict a2 = (const T*)args[2] + offsets[2 * n_batch + b];
          const T* __restrict a3 = (const T*)args[3] + offsets[3 * n_batch + b];
          const T p0 = a3[0];
          T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_red;
          T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_red;
          T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_red;
          #pragma omp for schedule(static) nowait
          for (int64_t j = 0; j < n_red; ++j) {
            const T y1 = a1[j * 3 + 0];
            const T y2 = a1[j * 3 + 1];
            const T y3 = a1[j * 3 + 2];
            const T y4 = (-y1);
            const T y5 = (-y2);
            const T y6 = (-y3);
            ys0[j] = y4;
            ys1[j] = y5;
            ys2[j] = y6;
          }
        }
        if (n_ranges >= 0) {
          // rows outside every range get the empty-reduction value
          #pragma omp for schedule(static) nowait
          for (int64_t w = 0; w < (b1 - b0) * n_out; ++w) {
            const int64_t b = b0 + w / n_out, i = w % n_out, k = 0;
            T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
            st_acc[k] = 0;
            out0[i] = (T)st_acc[k];
          }
        }
        #pragma omp barrier
        #pragma omp for schedule(dynamic, 1) nowait
        for (int64_t w = 0; w < (b1 - b0) * n_blk * q; ++w) {
          const int64_t b = b0 + w / (n_blk * q), ib = (w / q) % n_blk, iq = w % q;
          const T* __restrict a0 = (const T*)args[0] + offsets[0 * n_batch + b];
          const T* __restrict a1 = (const T*)args[1] + offsets[1 * n_batch + b];
          const T* __restrict a2 = (const T*)args[2] + offsets[2 * n_batch + b];
          const T* __restrict a3 = (const T*)args[3] + offsets[3 * n_batch + b];
          const T p0 = a3[0];
          const T* __restrict ys0 = pre.data() + ((b - b0) * NPRE + 0) * n_red;
          const T* __restrict ys1 = pre.data() + ((b - b0) * NPRE + 1) * n_red;
          const T* __restrict ys2 = pre.data() + ((b - b0) * NPRE + 2) * n_red;
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
            st_acc[k] = 0;
          }
          const int64_t jlo = iq * n_red / q, jhi = (iq + 1) * n_red / q;
          const int64_t s0 = rg <= 0 ? 0 : slices[rg - 1], s1 = rg < 0 ? 1 : slices[rg];
          for (int64_t s = s0; s < s1; ++s) {
            const int64_t ja = std::max(jlo, rg < 0 ? (int64_t)0 : redranges[2 * s]);
            const int64_t jb = std::min(jhi, rg < 0 ? n_red : redranges[2 * s + 1]);
            for (int64_t j0 = ja; j0 < jb; j0 += TJ) {
              const int64_t j1 = std::min(jb, j0 + TJ);
              for (int64_t k = 0; k < bi; ++k) {
                const T xr0 = xs0[k];
                const T xr1 = xs1[k];
                const T xr2 = xs2[k];
                A ps0 = 0;
                #pragma omp simd reduction(+:ps0)
                for (int64_t j = j0; j < j1; ++j) {
                  const T yr0 = a2[j];
                  const T yr1 = ys0[j];
                  const T yr2 = ys1[j];
                  const T yr3 = ys2[j];
                  const T t0 = (xr0 + yr1);
                  const T t1 = (xr1 + yr2);
                  const T t2 = (xr2 + yr3);
                  const T t3 = (t0 * t0);
                  const T t4 = (t1 * t1);
                  const T t5 = (t2 * t2);
                  const T t6 = t3 + t4 + t5;
                  const T t7 = (t6 * p0);
                  const T t8 = (-t7);
                  const T t9 = lk_exp(t8);
                  const T t10 = (yr0 * t9);
                  ps0 += t10;
                }
                st_acc[k] += ps0;
              }
            }
          }
          if (q == 1) {
            T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
            for (int64_t k = 0; k < bi; ++k) {
              const int64_t i = i0 + k;
              out0[i] = (T)st_acc[k];
            }
          } else {
            for (int64_t k = 0; k < bi; ++k) {
              const int64_t pr = ((w / (n_blk * q) * n_blk + ib) * q + iq) * BI + k;
              part_acc[pr * 1 + 0] = st_acc[k];
            }
          }
        }
        // the merge reads every part; the next chunk overwrites the precomputed values
        if (q > 1 || b1 < n_batch) {
          #pragma omp barrier
        }
        if (q > 1) {
          #pragma omp for schedule(static)
          for (int64_t w = 0; w < (b1 - b0) * n_blk; ++w) {
            const int64_t b = b0 + w / n_blk, ib = w % n_blk;
            const int64_t i0 = blk[3 * ib], bi = blk[3 * ib + 1] - i0;
            T* __restrict out0 = (T*)outs[0] + b * n_out * 1;
            for (int64_t k = 0; k < bi; ++k) {
              {
                const int64_t pr = (w * q) * BI + k;
                st_acc[k] = part_acc[pr * 1 + 0];
              }
              for (int64_t iq = 1; iq < q; ++iq) {
                const int64_t pr = (w * q + iq) * BI + k;
                st_acc[k] += part_acc[pr * 1 + 0];
              }
              const int64_t i = i0 + k;
              out0[i] = (T)st_acc[k];
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
