"""The native XLA FFI handler: C++ that runs a compiled CPU kernel on XLA's buffers.

:data:`HANDLER_SOURCE` is a fixed C++ text (it holds no formula and nothing a user wrote),
compiled once by :func:`lazykernels.jit.build` against the XLA FFI headers that ship with
jaxlib (``jax.ffi.include_dir()``; their sha256 are part of the content key, so a new jaxlib
rebuilds it). It exports two C functions:

- ``lk_jax_reduce``, the handler of the FFI target :data:`TARGET`: it decodes XLA's call
  frame with the typed bindings of ``xla/ffi/api/ffi.h`` (the int64 attribute ``key``, the
  operand and result buffers), checks the inputs for NaN (``lk_first_nan``), and calls the
  kernel's ``lk_kernel`` entry directly with XLA's buffers: no Python, no GIL, no copy
  (index outputs wanted as int32 are written as int64 into a per-thread scratch, then
  narrowed);
- ``lk_jax_add``, called by :func:`entry_key` at lowering time: it copies into a C++ table
  everything a call needs that the shapes decide (sizes, batch offsets, ranges, the kernel's
  and the thread pool's addresses, the error messages) and returns the entry's ``key``.

The key names a row of this process's table, not an address: an executable that JAX's
compilation cache hands to another process was lowered there too, which filled that
process's table. Errors (NaN inputs, a kernel out of memory) come back to JAX as FFI errors
with our message, as from the ctypes handler of :mod:`.ffi_ctypes`.

What the handler does not cover (chosen at lowering, see :mod:`.ffi`): the reference
backend, float16 inputs, empty sizes, K larger than the reduced axis; those, and every call
when this library cannot be built (no headers, no compiler), go through the ctypes handler.
"""

from __future__ import annotations

import ctypes
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..core.bind import layout_of, nan_error, orient_ranges
from ..core.plan import ReductionPlan
from ..errors import CompileError, LazyKernelsError
from ..formula.ir import Cat

TARGET = "lazykernels_reduce"

HEADERS = ("xla/ffi/api/c_api.h", "xla/ffi/api/api.h", "xla/ffi/api/ffi.h")

HANDLER_SOURCE = r"""// lazykernels: the XLA FFI handler of lazykernels.jax (CPU).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

typedef int (*lk_kernel_fn)(int64_t, int64_t, int64_t, const void* const*, const int64_t*,
                            void* const*, int64_t, const int64_t*, const int64_t*,
                            const int64_t*, int64_t, void*);
typedef int64_t (*lk_first_nan_fn)(int64_t, const void* const*, const intptr_t*, int64_t);

// What one lowered custom call runs; immutable once in the table.
struct LkEntry {
  lk_kernel_fn kernel = nullptr;
  void* pool = nullptr;
  lk_first_nan_fn first_nan = nullptr;
  int64_t n_out = 0, n_red = 0, n_batch = 0, itemsize = 0, n_ranges = -1;
  std::vector<intptr_t> in_sizes;   // values per input (the NaN check reads them all)
  std::vector<int64_t> offsets;     // the kernel's batch offsets, n_in * n_batch (at least 1)
  std::vector<int64_t> out_sizes;   // values per output
  std::vector<char> narrow;         // per output: written as int64, stored as int32
  std::vector<int64_t> ranges_out, slices, redranges;
  std::vector<std::string> nan_messages;  // per input
  std::string failure;
};

std::mutex lk_table_lock;
std::vector<std::unique_ptr<LkEntry>> lk_table;

const LkEntry* lk_find(int64_t key) {
  std::lock_guard<std::mutex> guard(lk_table_lock);
  if (key < 0 || key >= (int64_t)lk_table.size()) return nullptr;
  return lk_table[key].get();
}

struct LkScratch {
  std::vector<const void*> ins;
  std::vector<void*> outs;
  std::vector<int32_t*> narrowed;
  std::vector<int64_t> wide;
};
thread_local LkScratch lk_scratch;

ffi::Error lk_mismatch(const char* what) {
  return ffi::Error::Internal(std::string("lazykernels: the custom call's ") + what +
                              " differ from those it was lowered with");
}

ffi::Error lk_run(const LkEntry& e, ffi::RemainingArgs args, ffi::RemainingRets rets) {
  const size_t n_in = e.in_sizes.size(), n_res = e.out_sizes.size();
  if (args.size() != n_in || rets.size() != n_res) return lk_mismatch("operands");
  LkScratch& s = lk_scratch;
  s.ins.resize(n_in);
  s.outs.resize(n_res);
  s.narrowed.assign(n_res, nullptr);
  for (size_t k = 0; k < n_in; ++k) {
    auto buffer = args.get<ffi::AnyBuffer>(k);
    if (!buffer.has_value()) return buffer.error();
    if ((intptr_t)buffer->element_count() != e.in_sizes[k]) return lk_mismatch("input sizes");
    s.ins[k] = buffer->untyped_data();
  }
  const int64_t bad = e.first_nan((int64_t)n_in, s.ins.data(), e.in_sizes.data(), e.itemsize);
  if (bad >= 0) return ffi::Error::InvalidArgument(e.nan_messages[bad]);
  size_t wide = 0;
  for (size_t k = 0; k < n_res; ++k) wide += e.narrow[k] ? e.out_sizes[k] : 0;
  s.wide.resize(wide);
  wide = 0;
  for (size_t k = 0; k < n_res; ++k) {
    auto result = rets.get<ffi::AnyBuffer>(k);
    if (!result.has_value()) return result.error();
    if ((int64_t)(*result)->element_count() != e.out_sizes[k]) return lk_mismatch("output sizes");
    void* data = (*result)->untyped_data();
    if (e.narrow[k]) {
      s.narrowed[k] = static_cast<int32_t*>(data);
      s.outs[k] = s.wide.data() + wide;
      wide += e.out_sizes[k];
    } else {
      s.outs[k] = data;
    }
  }
  const bool ranged = e.n_ranges >= 0;
  const int status = e.kernel(e.n_out, e.n_red, e.n_batch, s.ins.data(), e.offsets.data(),
                              s.outs.data(), e.n_ranges,
                              ranged ? e.ranges_out.data() : nullptr,
                              ranged ? e.slices.data() : nullptr,
                              ranged ? e.redranges.data() : nullptr, 0, e.pool);
  if (status != 0) return ffi::Error(ffi::ErrorCode::kResourceExhausted, e.failure);
  for (size_t k = 0; k < n_res; ++k) {
    if (s.narrowed[k] == nullptr) continue;
    const int64_t* from = static_cast<const int64_t*>(s.outs[k]);
    int32_t* to = s.narrowed[k];
    for (int64_t v = 0; v < e.out_sizes[k]; ++v) to[v] = (int32_t)from[v];
  }
  return ffi::Error::Success();
}

ffi::Error lk_reduce(int64_t key, ffi::RemainingArgs args, ffi::RemainingRets rets) {
  const LkEntry* e = lk_find(key);
  if (e == nullptr) return ffi::Error::Internal("lazykernels: no reduction has this key");
  try {
    return lk_run(*e, args, rets);
  } catch (...) {  // std::bad_alloc of the scratch buffers
    return ffi::Error(ffi::ErrorCode::kResourceExhausted, e->failure);
  }
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(lk_jax_reduce, lk_reduce,
                              ffi::Ffi::Bind()
                                  .Attr<int64_t>("key")
                                  .RemainingArgs()
                                  .RemainingRets());

// sizes: n_out, n_red, n_batch, itemsize, n_in, n_res, n_ranges (-1: none), n_redranges.
// messages: n_in NaN messages, then the failure message. Returns the key, or -1.
extern "C" int64_t lk_jax_add(const void* kernel, void* pool, const void* first_nan,
                              const int64_t* sizes, const int64_t* in_sizes,
                              const int64_t* offsets, const int64_t* out_sizes,
                              const int64_t* narrow, const int64_t* ranges_out,
                              const int64_t* slices, const int64_t* redranges,
                              const char* const* messages) {
  try {
    std::unique_ptr<LkEntry> e(new LkEntry());
    e->kernel = reinterpret_cast<lk_kernel_fn>(const_cast<void*>(kernel));
    e->pool = pool;
    e->first_nan = reinterpret_cast<lk_first_nan_fn>(const_cast<void*>(first_nan));
    e->n_out = sizes[0];
    e->n_red = sizes[1];
    e->n_batch = sizes[2];
    e->itemsize = sizes[3];
    const int64_t n_in = sizes[4], n_res = sizes[5];
    e->n_ranges = sizes[6];
    e->in_sizes.assign(in_sizes, in_sizes + n_in);
    const int64_t n_offsets = n_in * e->n_batch;
    e->offsets.assign(offsets, offsets + n_offsets);
    if (e->offsets.empty()) e->offsets.push_back(0);
    e->out_sizes.assign(out_sizes, out_sizes + n_res);
    for (int64_t k = 0; k < n_res; ++k) e->narrow.push_back(narrow[k] != 0);
    if (e->n_ranges >= 0) {
      e->ranges_out.assign(ranges_out, ranges_out + 2 * e->n_ranges);
      e->slices.assign(slices, slices + e->n_ranges);
      e->redranges.assign(redranges, redranges + 2 * sizes[7]);
      e->ranges_out.push_back(0);  // never empty: data() is a valid pointer
      e->slices.push_back(0);
      e->redranges.push_back(0);
    }
    for (int64_t k = 0; k < n_in; ++k) e->nan_messages.emplace_back(messages[k]);
    e->failure = messages[n_in];
    std::lock_guard<std::mutex> guard(lk_table_lock);
    lk_table.push_back(std::move(e));
    return (int64_t)lk_table.size() - 1;
  } catch (...) {
    return -1;
  }
}
"""

_I64 = ctypes.POINTER(ctypes.c_int64)
_ADD_ARGTYPES = [
    ctypes.c_void_p,  # kernel: lk_kernel
    ctypes.c_void_p,  # pool: lk_pool_run
    ctypes.c_void_p,  # first_nan: lk_first_nan
    _I64,  # sizes
    _I64,  # in_sizes
    _I64,  # offsets
    _I64,  # out_sizes
    _I64,  # narrow
    _I64,  # ranges_out
    _I64,  # slices
    _I64,  # redranges
    ctypes.POINTER(ctypes.c_char_p),  # messages
]

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}  # "library" (the loaded handler) or "failed" (why not)
_KEYS: dict[Any, int] = {}  # (plan, shapes, dtypes, ranges) -> key


def _headers() -> list[str]:
    root = Path(jax.ffi.include_dir())
    paths = [root / name for name in HEADERS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise CompileError(f"the XLA FFI headers of jaxlib are missing: {', '.join(missing)}")
    return [str(p) for p in paths]


def handler_library() -> ctypes.CDLL | None:
    """The built handler library (built on first use), or None when it cannot be built.

    A failed build is reported once, by a warning naming the reason; the reductions then
    take the ctypes handler (:mod:`.ffi_ctypes`).
    """
    library = _STATE.get("library")
    if library is not None or "failed" in _STATE:
        return library
    from ..jit import build  # the JIT only when a handler is lowered, as in core.backends

    with _LOCK:
        if "library" in _STATE or "failed" in _STATE:
            return _STATE.get("library")
        try:
            headers = _headers()
            library = build(
                HANDLER_SOURCE,
                "jax_ffi_handler",
                include_dirs=[jax.ffi.include_dir()],
                depends=headers,
            )
        except (CompileError, OSError) as error:
            _STATE["failed"] = str(error)
            warnings.warn(
                f"lazykernels.jax: the native XLA FFI handler cannot be built, the slower "
                f"ctypes handler runs instead: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        library.lk_jax_add.argtypes = _ADD_ARGTYPES
        library.lk_jax_add.restype = ctypes.c_int64
        jax.ffi.register_ffi_target(
            TARGET, jax.ffi.pycapsule(library.lk_jax_reduce), platform="cpu"
        )
        _STATE["library"] = library
    return library


def _batch_offsets(shape: tuple[int, ...], core: int, batch: tuple[int, ...]) -> np.ndarray:
    """Element offset of each batch entry of a dense row-major ``shape`` (0 if broadcast).

    Entry ``b`` of the array's own batch shape starts at ``b * (rows * dim)``; broadcasting
    that index table to ``batch`` repeats it along the dimensions where the array has 1.
    """
    own = shape[: len(shape) - core]
    block = math.prod(shape[len(shape) - core :])
    index = np.arange(math.prod(own), dtype=np.int64).reshape(own) * block
    return np.broadcast_to(index, batch).ravel()


def _ranges_tables(
    plan: ReductionPlan, ranges: Any, n_out: int, n_red: int
) -> tuple[int, int, list[np.ndarray]]:
    """(number of output ranges or -1, number of reduction ranges, the kernel's three
    int64 tables), each table padded by one 0 so that it is never empty."""
    if ranges is None:
        return -1, 0, [np.zeros(1, np.int64)] * 3
    oriented = orient_ranges(ranges.arrays, plan.output_cat, n_out, n_red)
    parts = (oriented.ranges_out, oriented.slices, oriented.redranges)
    tables = [np.concatenate([np.ravel(a).astype(np.int64), np.zeros(1, np.int64)]) for a in parts]
    return len(oriented.ranges_out), len(oriented.redranges), tables


def _pointer(array: np.ndarray) -> Any:
    return array.ctypes.data_as(_I64)


def entry_key(
    plan: ReductionPlan,
    shapes: tuple[tuple[int, ...], ...],
    dtypes: tuple[np.dtype, ...],
    out_dtypes: tuple[np.dtype, ...],
    ranges: Any,
) -> int | None:
    """The ``key`` of the native handler's entry for this call (registered on first use),
    or None when the native handler does not serve it (see the module docstring).

    Compiles the plan's kernel (once per process and cache) and the handler library.

    Raises:
        CompileError: the kernel does not compile.
    """
    signature = (plan, shapes, dtypes, out_dtypes, ranges)
    key = _KEYS.get(signature)
    if key is not None:
        return key
    layout = layout_of(plan, shapes, dtypes)
    if layout.dtype != layout.user_dtype:  # float16: computed in float32, cast back
        return None
    n_out, n_red = (layout.ni, layout.nj) if plan.output_cat is Cat.I else (layout.nj, layout.ni)
    n_batch = math.prod(layout.batch_shape)
    sizes_out = [math.prod(s) for s, _ in layout.outputs]
    if n_out == 0 or n_red == 0 or n_batch == 0 or not all(sizes_out):
        return None
    if ranges is None and layout.k_too_large:  # the ctypes handler raises our error
        return None
    library = handler_library()
    if library is None:
        return None
    from ..codegen.runtime import POOL_SOURCE  # lazily, as core.backends: the compiled
    from ..cpu import describe, kernel_source  # backend and the JIT load when a
    from ..jit import build  # reduction is lowered, not on import

    kernel = build(
        kernel_source(plan, layout.dtype).source, f"cpu_{plan.reduction}", describe(plan)
    )
    runtime = build(POOL_SOURCE, "cpu_pool")
    address = lambda f: ctypes.cast(f, ctypes.c_void_p).value
    cores = [1 if slot.cat is Cat.PARAM else 2 for slot in plan.slots]
    offsets = [_batch_offsets(s, c, layout.batch_shape) for s, c in zip(shapes, cores)]
    table = np.concatenate([*offsets, np.zeros(1, np.int64)])
    narrow = [
        int(np.dtype(o) != np.dtype(want)) for o, (_, want) in zip(out_dtypes, layout.outputs)
    ]
    n_ranges, n_redranges, triple = _ranges_tables(plan, ranges, n_out, n_red)
    counts = np.array(
        [
            n_out,
            n_red,
            n_batch,
            layout.dtype.itemsize,
            len(shapes),
            len(sizes_out),
            n_ranges,
            n_redranges,
        ],
        dtype=np.int64,
    )
    in_sizes = np.array([math.prod(s) for s in shapes] + [0], dtype=np.int64)
    out_sizes = np.array(sizes_out, dtype=np.int64)
    narrowed = np.array(narrow, dtype=np.int64)
    failure = LazyKernelsError(f"the CPU kernel of {plan.reduction} failed (out of memory?)")
    texts = [f"ArgumentError: {nan_error(slot)}" for slot in plan.slots]
    texts.append(f"{type(failure).__name__}: {failure}")
    messages = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
    with _LOCK:
        key = _KEYS.get(signature)
        if key is None:
            key = library.lk_jax_add(
                address(kernel.lk_kernel),
                address(runtime.lk_pool_run),
                address(runtime.lk_first_nan),
                *[_pointer(a) for a in (counts, in_sizes, table, out_sizes, narrowed, *triple)],
                messages,
            )
            if key < 0:
                raise MemoryError("lazykernels.jax: cannot register a reduction (out of memory)")
            _KEYS[signature] = key
    return key


__all__ = ["HANDLER_SOURCE", "TARGET", "entry_key", "handler_library"]
