"""A host emulation of the CUDA execution model, to run generated CUDA kernels on a CPU.

The *same* kernel text that NVRTC compiles (:func:`lazykernels.codegen.cuda.render_cuda`)
is compiled by the host C++ compiler (``g++ -std=c++20``) behind :data:`HEADER`, a small
macro header: ``__global__``/``__device__`` vanish, each thread of a block is a
``std::thread`` with its own ``threadIdx``/``blockIdx`` (thread-local), ``__syncthreads`` is
a ``std::barrier`` of the block's threads, ``__shared__`` arrays are function statics (one
buffer, used by one block at a time: blocks run one after another), and float16 storage is
``_Float16``'s bits (round to nearest even, as the PTX conversion). Nothing in the kernel
is rewritten. It is slow (a thread per CUDA thread) and exists for tests: a skeleton change
that breaks results (a missing barrier aside, whose race may go unseen) fails on a machine
without a GPU.

:class:`EmulatedDevice` implements the runner's device interface (:mod:`.device`) on it, so
the runner's binding, launch configuration, output allocation, batches and ranges run here
too: its "device memory" is host memory, its launch takes the kernel's argument list as a
GPU launch does.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..codegen.cuda import CudaSource
from ..errors import CompileError, ShapeError

HEADER = """\
#define LK_HOST_EMULATION 1
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __shared__ static
struct lk_dim3 { unsigned x, y, z; };
static thread_local lk_dim3 threadIdx, blockIdx;
static std::barrier<>* lk_block_barrier = nullptr;
static inline void __syncthreads() { lk_block_barrier->arrive_and_wait(); }
static inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
static inline double __longlong_as_double(long long v) {
  double f; std::memcpy(&f, &v, 8); return f;
}
template <typename U> static inline U lk_min(U a, U b) { return a < b ? a : b; }
template <typename U> static inline U lk_max(U a, U b) { return a > b ? a : b; }
// a grid's blocks one after another, a thread per CUDA thread running body(params)
typedef void (*lk_body)(void* const*);
static int lk_run_grid(int64_t grid, int block, lk_body body, void* const* params) {
  try {
    std::barrier<> bar(block);
    lk_block_barrier = &bar;
    for (int64_t bx = 0; bx < grid; ++bx) {
      std::vector<std::thread> threads;
      for (int t = 0; t < block; ++t)
        threads.emplace_back([=] {
          blockIdx = {(unsigned)bx, 0, 0};
          threadIdx = {(unsigned)t, 0, 0};
          body(params);
        });
      for (auto& th : threads) th.join();
    }
  } catch (...) {
    return 1;
  }
  return 0;
}
typedef uint16_t lk_half;
static inline float lk_h2f(lk_half h) { _Float16 v; std::memcpy(&v, &h, 2); return (float)v; }
static inline lk_half lk_f2h(float f) {
  _Float16 v = (_Float16)f; lk_half h; std::memcpy(&h, &v, 2); return h;
}
"""


def _launcher(ks: CudaSource, entry: str = "lk_emulate") -> str:
    """``entry(grid, params)``: the kernel on ``grid`` blocks (``lk_run_grid`` of the
    header); ``params[k]`` points to argument ``k`` (as ``cuLaunchKernel``'s list does)."""
    args = ", ".join(f"*({ctype}*)params[{k}]" for k, ctype in enumerate(ks.params))
    return "\n".join(
        [
            f"static void {entry}_body(void* const* params) {{ {ks.name}({args}); }}",
            f'extern "C" int {entry}(int64_t grid, void* const* params) {{',
            f"  return lk_run_grid(grid, LK_BLOCK, {entry}_body, params);",
            "}",
        ]
    )


def emulation_source(ks: CudaSource) -> str:
    """The host C++ program: :data:`HEADER`, the kernel text unchanged, then a launcher."""
    return HEADER + "\n" + ks.source + "\n" + _launcher(ks) + "\n"


def _unit(kernels: list[CudaSource]) -> str:
    """Several kernels in one program (one compiler run; the headers are parsed once):
    kernel ``n``'s text unchanged inside ``namespace lk_n``, its entry point renamed by a
    macro (every kernel has the same ``extern "C"`` name), launched by ``lk_emulate_n``."""
    parts = [HEADER]
    for n, ks in enumerate(kernels):
        parts += [
            f"#define {ks.name} {ks.name}_{n}",
            f"namespace lk_{n} {{",
            ks.source,
            _launcher(ks, f"lk_emulate_{n}"),
            "}",
            "#undef LK_BLOCK",
            f"#undef {ks.name}",
        ]
    return "\n".join(parts) + "\n"


_COMPILED: dict[str, Any] = {}  # kernel text -> its launcher (a ctypes function)
_FOLDERS: list[tempfile.TemporaryDirectory] = []  # kept until the process ends
_LOCK = threading.Lock()


def prepare(kernels: list[CudaSource], compiler: str = "g++") -> None:
    """Compile the emulation of every kernel of ``kernels`` not compiled yet, a few
    programs of many kernels each, compiled concurrently (one per core; much faster than
    one by one: tests prepare their kernels together)."""
    with _LOCK:
        todo: dict[str, CudaSource] = {}
        for ks in kernels:
            if ks.source not in _COMPILED:
                todo.setdefault(ks.source, ks)
        if not todo:
            return
        path = shutil.which(compiler)
        if path is None:
            raise CompileError(f"the CUDA emulation needs a C++20 compiler; {compiler} not found")
        batch = list(todo.values())
        jobs = max(1, min(os.cpu_count() or 1, len(batch) // 8))
        groups = [batch[g::jobs] for g in range(jobs)]
        started = []
        for group in groups:
            folder = tempfile.TemporaryDirectory(prefix="lk-cuda-emu-")
            _FOLDERS.append(folder)
            src, lib = Path(folder.name) / "kernel.cpp", Path(folder.name) / "kernel.so"
            src.write_text(_unit(group))
            command = [path, "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", str(src)]
            process = subprocess.Popen(
                [*command, "-o", str(lib)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
            )
            started.append((group, src, lib, process))
        errors = []
        for group, src, lib, process in started:
            _, stderr = process.communicate()
            if process.returncode != 0:
                errors.append(f"the CUDA emulation did not compile ({src}):\n{stderr.decode()}")
                continue
            library = ctypes.CDLL(str(lib))
            for n, ks in enumerate(group):
                entry = getattr(library, f"lk_emulate_{n}")
                entry.restype = ctypes.c_int
                entry.argtypes = [ctypes.c_int64, ctypes.c_void_p]
                _COMPILED[ks.source] = entry
        if errors:
            raise CompileError("\n".join(errors))


def _library(ks: CudaSource, compiler: str) -> Any:
    """The emulated kernel's launcher, compiled once per process and source."""
    hit = _COMPILED.get(ks.source)
    if hit is None:
        prepare([ks], compiler)
        hit = _COMPILED[ks.source]
    return hit


def launch(entry: Any, grid: int, params: list[int]) -> None:
    """Run the emulated kernel (its launcher) on ``grid`` blocks with the 64-bit
    arguments ``params``."""
    values = (ctypes.c_int64 * max(len(params), 1))(*params)
    size = ctypes.sizeof(ctypes.c_int64)
    base = ctypes.addressof(values)
    pointers = (ctypes.c_void_p * max(len(params), 1))(
        *(base + k * size for k in range(len(params)))
    )
    if entry(grid, ctypes.addressof(pointers)) != 0:
        raise CompileError("the CUDA emulation could not start its threads")


class Emulated:
    """A generated CUDA kernel compiled for the host emulation; call :meth:`run`."""

    def __init__(self, ks: CudaSource, dtype: np.dtype | str | None = None, compiler: str = "g++"):
        self.ks = ks
        self.dtype = np.dtype(ks.dtype if dtype is None else dtype)
        self._lib = _library(ks, compiler)

    def run(self, n_out: int, n_red: int, args: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """The kernel's outputs (``n_out x width`` each) for the inputs ``args``: one batch
        entry, no ranges (the runner, :mod:`.runner`, drives the rest)."""
        if self.ks.scheme != "1D":
            raise ShapeError("Emulated.run launches the 1D scheme; the runner drives the 2D one")
        if len(args) != self.ks.n_slots:
            raise ShapeError(f"the kernel takes {self.ks.n_slots} inputs, not {len(args)}")
        if n_out < 1:
            raise ShapeError(f"a CUDA launch needs at least one output row, not {n_out}")
        arrays = [np.ascontiguousarray(a, dtype=self.dtype) for a in args]
        types = {"S": self.dtype, "int64_t": np.dtype(np.int64)}
        outs = [np.zeros((n_out, w), dtype=types[ctype]) for w, ctype in self.ks.outputs]
        n_tab = -(-n_out // self.ks.block)
        params = [n_out, n_red, 1, n_tab, *(o.ctypes.data for o in outs)]
        params += [a.ctypes.data for a in arrays] + [0, 0, 0]
        launch(self._lib, n_tab, params)
        return tuple(outs)


@dataclass
class HostBuffer:
    """Emulated device memory: a host array (kept alive by this object)."""

    array: np.ndarray
    ptr: int
    nbytes: int


class EmulatedDevice:
    """The :class:`~lazykernels.cuda.device.Device` interface on the host emulation.

    Kernels are compiled by ``g++`` (once per process and source), memory is host memory,
    streams are ignored (everything is synchronous). ``launches`` records the grid and
    arguments of every launch, ``scratch_bytes`` the size of every scratch allocation, for
    tests of the launch configuration.
    """

    def __init__(self, ordinal: int = 0, capability: tuple[int, int] = (8, 0)) -> None:
        self.ordinal, self.capability = ordinal, capability
        self.name = f"host emulation #{ordinal}"
        self.launches: list[tuple[int, int, tuple[int, ...]]] = []
        self.scratch_bytes: list[int] = []

    def function(self, ks: CudaSource) -> Any:
        return _library(ks, "g++")

    def launch(self, function, grid: int, ks: CudaSource, params: list[int], stream: int):
        self.launches.append((grid, ks.block, tuple(params)))
        launch(function, grid, params)

    def alloc(self, nbytes: int) -> HostBuffer:
        array = np.zeros(max(1, nbytes), dtype=np.uint8)
        return HostBuffer(array, array.ctypes.data, nbytes)

    def scratch(self, nbytes: int, stream: int) -> HostBuffer:
        """Scratch memory, filled with a byte pattern (NaN floats, huge indices): a kernel
        that reads an entry it did not write gives wrong results, not lucky zeros."""
        array = np.full(max(1, nbytes), 0xFF, dtype=np.uint8)
        self.scratch_bytes.append(nbytes)
        return HostBuffer(array, array.ctypes.data, nbytes)

    def upload(self, array: np.ndarray, stream: int) -> HostBuffer:
        if not array.size:
            return self.alloc(0)
        copy = np.array(array, copy=True, order="C")
        return HostBuffer(copy, copy.ctypes.data, copy.nbytes)

    def download(self, buffer: HostBuffer, array: np.ndarray, stream: int) -> None:
        if array.nbytes:
            ctypes.memmove(array.ctypes.data, buffer.ptr, array.nbytes)
