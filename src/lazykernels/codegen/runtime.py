"""The CPU kernels' thread pool: one small C++ library per process, shared by every kernel.

Why not OpenMP's ``parallel`` regions: libgomp's threads *spin* while they wait (at a
barrier, at the end of a region and between regions) unless ``OMP_WAIT_POLICY=passive`` was
set before libgomp was loaded. Measured on the 2-core machine class of the benchmarks:

* a worker burns 7.4 ms of CPU after every parallel region (0 with the passive policy);
* with two other busy processes on the 2 cores, a 300 x 3000 Gaussian sum took 15.9 ms
  with 2 OpenMP threads, 0.7 ms with the passive policy (5-20x slowdowns were reported);
* the policy cannot be set from the kernel library: a ``setenv`` in its constructor is
  ignored (libgomp reads the environment in its own constructor, which runs first; still
  7.4 ms of spinning), and libgomp has no call to change it later. ``omp_set_dynamic``
  only consults the 15-minute load average;
* torch ships its own ``libgomp.so.1``, under the same soname: when torch is imported first,
  the kernels load *torch's* runtime (``omp_get_max_threads`` then follows
  ``torch.set_num_threads``), and torch's own workers spin after each torch operation: a
  2-thread kernel started right after a matmul took 40 ms (median) instead of 32 ms.
  ``OMP_WAIT_POLICY=passive`` in the environment before torch is imported removes that;
  lazykernels does not change the environment of other libraries.

So the kernels bring their own threads, and never spin:

* ``lk_pool_run(n_threads, fn, ctx)`` runs ``fn(ctx, slot)`` on the calling thread (slot 0)
  and on up to ``n_threads - 1`` pool workers; each participant claims work items from the
  kernel's atomic counters, so **participation is optional**: a worker that wakes late finds
  no work (or none at all: it no longer joins a finished job), and nobody waits for a
  thread that has not started. The caller waits only for workers that are inside ``fn``.
* every wait is passive (a condition variable): idle workers sleep (0.04 ms of CPU in the
  50 ms after a call, against 7.4 ms for libgomp), and the same busy-machine case runs in
  0.7 ms with 2 threads, as with 1;
* the workers are created on first use and kept; after ``fork`` the child gets a fresh
  pool (the parent's threads do not exist there); a call made while the pool is busy (from
  another Python thread) runs on its caller alone instead of waiting.

The library also holds ``lk_first_nan``, the NaN check of a call's inputs: one foreign call
for all of them (four NumPy reductions cost 5 us of a warm call's 30 us budget), and
``lk_checked_run``, a prepared call's NaN check and kernel call in one foreign call.

OpenMP still supplies ``omp simd`` (vectorisation) and the default thread count
(``omp_get_max_threads()``: ``OMP_NUM_THREADS``, or torch's ``set_num_threads`` when the
runtime is torch's), which the kernels cap by the work size (:mod:`.cpp`).
"""

from __future__ import annotations

POOL_SIGNATURE = "int (*)(int, void (*)(void*, int), void*)"
"""C type of ``lk_pool_run``, which kernels receive as their last argument."""

POOL_SOURCE = r"""// lazykernels CPU runtime: the thread pool shared by every kernel of a process.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace {

struct LkPool {
  explicit LkPool(pid_t owner) : pid(owner) {}
  const pid_t pid;
  std::mutex m;
  std::condition_variable wake, done;
  unsigned long long gen = 0;  // job number: a worker joins each job at most once
  void (*fn)(void*, int) = nullptr;
  void* ctx = nullptr;
  int open = 0;  // worker places still open in the current job
  int next_slot = 1;
  int running = 0;  // workers inside fn
  int workers = 0;
  bool busy = false;
};

std::atomic<LkPool*> lk_pool{nullptr};

// `seen` is the job number at the worker's creation (taken under the lock, before the job
// that creates it is published), so a new worker joins that very job.
void lk_worker(LkPool* p, unsigned long long seen) {
  std::unique_lock<std::mutex> lk(p->m);
  for (;;) {
    p->wake.wait(lk, [&] { return p->gen != seen; });
    seen = p->gen;
    if (p->fn == nullptr || p->open <= 0) continue;  // too late: the job is finished or full
    --p->open;
    const int slot = p->next_slot++;
    ++p->running;
    void (*fn)(void*, int) = p->fn;
    void* ctx = p->ctx;
    lk.unlock();
    fn(ctx, slot);
    lk.lock();
    if (--p->running == 0) p->done.notify_all();
  }
}

LkPool* lk_current_pool() {
  const pid_t me = getpid();
  LkPool* p = lk_pool.load();
  if (p != nullptr && p->pid == me) return p;
  LkPool* fresh = new LkPool(me);  // first use, or a forked child: the old pool is leaked
  if (lk_pool.compare_exchange_strong(p, fresh)) return fresh;
  delete fresh;
  return p;
}

}  // namespace

// Runs fn(ctx, slot) on the caller (slot 0) and on up to n_threads - 1 workers; returns the
// number of participants. fn must claim its work from shared counters and must not throw.
extern "C" int lk_pool_run(int n_threads, void (*fn)(void*, int), void* ctx) {
  LkPool* p = n_threads > 1 ? lk_current_pool() : nullptr;
  if (p == nullptr) {
    fn(ctx, 0);
    return 1;
  }
  std::unique_lock<std::mutex> lk(p->m);
  if (p->busy) {  // another thread's job is running: do this one alone
    lk.unlock();
    fn(ctx, 0);
    return 1;
  }
  try {
    while (p->workers < n_threads - 1) {
      std::thread(lk_worker, p, p->gen).detach();
      ++p->workers;
    }
  } catch (...) {  // no more threads: run with those there are
  }
  p->busy = true;
  p->fn = fn;
  p->ctx = ctx;
  p->open = n_threads - 1 < p->workers ? n_threads - 1 : p->workers;
  p->next_slot = 1;
  ++p->gen;
  const int open = p->open;
  lk.unlock();
  for (int k = 0; k < open; ++k) p->wake.notify_one();
  fn(ctx, 0);
  lk.lock();
  const int joined = p->next_slot;
  p->fn = nullptr;  // workers that wake from now on stay out
  p->open = 0;
  p->done.wait(lk, [&] { return p->running == 0; });
  p->busy = false;
  return joined;
}

namespace {

template <typename T>
bool lk_any_nan(const T* x, intptr_t n) {
  int bad = 0;
  #pragma omp simd reduction(|:bad)
  for (intptr_t i = 0; i < n; ++i) bad |= x[i] != x[i];
  return bad != 0;
}

}  // namespace

// The first k < n such that array k holds a NaN, or -1. Array k starts at ptrs[k] and holds
// sizes[k] contiguous values of itemsize bytes (4: float, 8: double); size 0 skips it.
extern "C" int64_t lk_first_nan(int64_t n, const void* const* ptrs, const intptr_t* sizes,
                                int64_t itemsize) {
  for (int64_t k = 0; k < n; ++k) {
    const bool bad = itemsize == 4 ? lk_any_nan((const float*)ptrs[k], sizes[k])
                                   : lk_any_nan((const double*)ptrs[k], sizes[k]);
    if (bad) return k;
  }
  return -1;
}

typedef int (*lk_kernel_fn)(int64_t, int64_t, int64_t, const void* const*, const int64_t*,
                            void* const*, int64_t, const int64_t*, const int64_t*,
                            const int64_t*, int64_t, void*);

// A prepared call (lazykernels.cpu.prepare_call) in one foreign call: the NaN check of the
// n_in inputs, then the kernel without ranges on the default threads. Returns the kernel's
// status (0, or 1: failed), or -2 - k when input k holds a NaN.
extern "C" int64_t lk_checked_run(void* kernel, int64_t n_in, const void* const* args,
                                  const intptr_t* sizes, int64_t itemsize, int64_t n_out,
                                  int64_t n_red, int64_t n_batch, const int64_t* offsets,
                                  void* const* outs, void* pool) {
  const int64_t bad = lk_first_nan(n_in, args, sizes, itemsize);
  if (bad >= 0) return -2 - bad;
  return ((lk_kernel_fn)kernel)(n_out, n_red, n_batch, args, offsets, outs, -1, nullptr,
                                nullptr, nullptr, 0, pool);
}
"""
