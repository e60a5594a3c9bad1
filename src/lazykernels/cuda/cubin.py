"""Cubins of generated kernels in the on-disk kernel cache (``jit.cache.build_binary``).

A cubin is keyed by the full sha256 of (kernel source, NVRTC version, NVRTC options, GPU
architecture), made by NVRTC (:mod:`.nvrtc`) under the key's lock, written atomically,
checked by sha256 before it is used, and kept in memory by key so that a warm lookup does
not read the disk.
"""

from __future__ import annotations

import threading

from ..jit.cache import binary_key, build_binary
from . import nvrtc

_MEMORY: dict[str, bytes] = {}
_LOCK = threading.Lock()


def cubin_key(source: str, arch: str) -> str:
    """The cache key of ``source`` compiled for ``arch`` by the installed NVRTC."""
    return binary_key(["cubin", source, list(nvrtc.version()), list(nvrtc.OPTIONS), arch])


def cubin(source: str, arch: str, name: str = "lk_cuda_kernel") -> tuple[bytes, bool]:
    """The cubin of ``source`` for ``arch`` (``sm_80``...): from memory, the disk cache, or
    NVRTC; and whether this call compiled it.

    Raises:
        CompatibilityError: NVRTC is not installed.
        CompileError: NVRTC rejected the source (with its log).
        CacheError: the cache directory is not trusted.
    """
    key = cubin_key(source, arch)
    hit = _MEMORY.get(key)
    if hit is not None:
        return hit, False

    def produce() -> bytes:
        return nvrtc.compile_source(source, arch, f"{name}.cu").cubin

    meta = {"nvrtc": ".".join(map(str, nvrtc.version())), "options": list(nvrtc.OPTIONS)}
    data, built = build_binary(key, name, source, produce, metadata={**meta, "arch": arch})
    with _LOCK:
        _MEMORY[key] = data
    return data, built
