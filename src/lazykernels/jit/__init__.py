"""The JIT: compile generated C++ into shared libraries, cache them on disk, load them.

Pipeline position: the code generator hands a complete C++ source to :func:`build`, which
returns a ``ctypes.CDLL``. Three modules, one concern each:

- :mod:`.compiler` finds the compiler (``CXX`` or g++/c++/clang++), probes what it accepts
  (``-march=native``, 512-bit vectors, OpenMP) once per compiler version, and picks the
  flags: ``-O3``, fast math *without* finite-math-only, ``-fopenmp`` when it works, then
  ``CXXFLAGS``.
- :mod:`.cache` names each library by the full sha256 of (source, compiler path and version,
  flags, native target, lazykernels version, platform), and builds it into a temporary file
  that ``os.replace`` moves into place under a per-key file lock.
- :mod:`.load` loads libraries with ctypes and keeps them in an in-process table.

``LAZYKERNELS_CACHE`` moves the cache; ``LAZYKERNELS_DEBUG=1`` traces every build (source
path, command, compiler output) and every load on stderr.
"""

from __future__ import annotations

from .cache import cache_dir, cache_info
from .compiler import CompilerInfo, compiler_info
from .load import build, clean_cache, with_dependencies

__all__ = [
    "CompilerInfo",
    "build",
    "cache_dir",
    "cache_info",
    "clean_cache",
    "compiler_info",
    "with_dependencies",
]
