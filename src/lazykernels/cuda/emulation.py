"""A host emulation of the CUDA execution model, to run generated CUDA kernels on a CPU.

The *same* kernel text that NVRTC compiles (:func:`lazykernels.codegen.cuda.render_cuda`)
is compiled by the host C++ compiler (``g++ -std=c++20``) behind :data:`HEADER`, a small
macro header: ``__global__``/``__device__`` vanish, each thread of a block is a
``std::thread`` with its own ``threadIdx``/``blockIdx`` (thread-local), ``__syncthreads`` is
a ``std::barrier`` of the block's threads, and ``__shared__`` arrays are function statics:
one buffer, used by one block at a time (blocks run one after another). Nothing in the
kernel is rewritten. It is slow (a thread per CUDA thread) and exists for tests: a skeleton
change that breaks results (a missing barrier aside, whose race may go unseen) fails on a
machine without a GPU.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from pathlib import Path

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
"""


def _args(n: int) -> list[str]:
    return [f"args[{p}]" for p in range(n)]


def _launcher(ks: CudaSource) -> str:
    outs = [f"({ctype}*)outs[{o}]" for o, (_, ctype) in enumerate(ks.outputs)]
    call = f"{ks.name}({', '.join(['n_out', 'n_red', *outs, *_args(ks.n_slots)])});"
    return "\n".join(
        [
            'extern "C" int lk_emulate(int64_t grid, int64_t n_out, int64_t n_red,',
            "                          void* const* outs, const T* const* args) {",
            "  try {",
            "    std::barrier<> bar(LK_BLOCK);",
            "    lk_block_barrier = &bar;",
            "    for (int64_t bx = 0; bx < grid; ++bx) {",
            "      std::vector<std::thread> threads;",
            "      for (int t = 0; t < LK_BLOCK; ++t)",
            "        threads.emplace_back([=] {",
            "          blockIdx = {(unsigned)bx, 0, 0};",
            "          threadIdx = {(unsigned)t, 0, 0};",
            f"          {call}",
            "        });",
            "      for (auto& th : threads) th.join();",
            "    }",
            "  } catch (...) {",
            "    return 1;",
            "  }",
            "  return 0;",
            "}",
        ]
    )


def emulation_source(ks: CudaSource) -> str:
    """The host C++ program: :data:`HEADER`, the kernel text unchanged, then a launcher."""
    return HEADER + "\n" + ks.source + "\n" + _launcher(ks) + "\n"


class Emulated:
    """A generated CUDA kernel compiled for the host emulation; call :meth:`run`."""

    def __init__(self, ks: CudaSource, dtype: np.dtype | str, compiler: str = "g++") -> None:
        self.ks, self.dtype = ks, np.dtype(dtype)
        path = shutil.which(compiler)
        if path is None:
            raise CompileError(f"the CUDA emulation needs a C++20 compiler; {compiler} not found")
        self._dir = tempfile.TemporaryDirectory(prefix="lk-cuda-emu-")
        src, lib = Path(self._dir.name) / "kernel.cpp", Path(self._dir.name) / "kernel.so"
        src.write_text(emulation_source(ks))
        command = [path, "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread", str(src)]
        done = subprocess.run([*command, "-o", str(lib)], capture_output=True, text=True)
        if done.returncode != 0:
            raise CompileError(f"the CUDA emulation did not compile ({src}):\n{done.stderr}")
        self._lib = ctypes.CDLL(str(lib))
        self._lib.lk_emulate.restype = ctypes.c_int

    def run(self, n_out: int, n_red: int, args: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """The kernel's outputs (``n_out x width`` each) for the inputs ``args``."""
        if len(args) != self.ks.n_slots:
            raise ShapeError(f"the kernel takes {self.ks.n_slots} inputs, not {len(args)}")
        if n_out < 1:
            raise ShapeError(f"a CUDA launch needs at least one output row, not {n_out}")
        arrays = [np.ascontiguousarray(a, dtype=self.dtype) for a in args]
        types = {"T": self.dtype, "int64_t": np.dtype(np.int64)}
        outs = [np.zeros((n_out, w), dtype=types[ctype]) for w, ctype in self.ks.outputs]
        ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*(a.ctypes.data for a in arrays))
        out_ptrs = (ctypes.c_void_p * len(outs))(*(o.ctypes.data for o in outs))
        grid = -(-n_out // self.ks.block)
        c64 = ctypes.c_int64
        status = self._lib.lk_emulate(c64(grid), c64(n_out), c64(n_red), out_ptrs, ptrs)
        if status != 0:
            raise CompileError("the CUDA emulation could not start its threads")
        return tuple(outs)
