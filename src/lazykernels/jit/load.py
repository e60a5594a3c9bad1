"""Loading compiled kernels with ctypes, with an in-process table for warm calls."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

from ..errors import CompileError
from .cache import build_artifact, check_source_size, debug, kernel_key
from .cache import clean_cache as _clean_disk
from .compiler import compiler_environment, compiler_info, for_source

# key -> loaded library, and the same by (compiler environment, source): a warm build() is
# one dict lookup (a str caches its hash), without re-hashing the source with sha256.
_LOADED: dict[str, ctypes.CDLL] = {}
_WARM: dict[tuple[str, ...], ctypes.CDLL] = {}
# One lock per key, so threads building different kernels do not wait for each other.
_KEY_LOCKS: dict[str, threading.Lock] = {}
_TABLE_LOCK = threading.Lock()


def _key_lock(key: str) -> threading.Lock:
    with _TABLE_LOCK:
        return _KEY_LOCKS.setdefault(key, threading.Lock())


def _load(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))


def build(
    source: str,
    name: str = "kernel",
    detail: str = "",
    include_dirs: Sequence[str] = (),
    depends: Sequence[str] = (),
) -> ctypes.CDLL:
    """Compile ``source`` (unless cached) into a shared library and load it.

    A source over the size budget (``LAZYKERNELS_MAX_SOURCE_MB``) is refused before anything
    else; a cached library is loaded only if it passes the trust checks of
    :mod:`lazykernels.jit.trust` (else it is rebuilt, with a ``CacheWarning``).

    Args:
        source: complete C++ source; functions meant to be called need ``extern "C"``.
        name: a readable name for metadata and debug traces (not part of the cache key).
        detail: what the kernel computes, for the size-budget message (e.g. the formula's
            node count and widest dimension).
        include_dirs: header directories outside the source (``-I`` flags, part of the key
            like every flag), e.g. the XLA FFI headers of jaxlib.
        depends: the header files the source includes from ``include_dirs``: the sha256 of
            each is written into the source's first lines (:func:`with_dependencies`), so the
            content key changes when a header does (an upgraded jaxlib rebuilds).

    Returns:
        The loaded library; the same object for the same source within a process.

    Raises:
        CompileError: no compiler, a source over the size budget, a compilation failure
            or time-out (the message holds the command, the source path and the compiler's
            output), or a library that does not load.
        CacheError: the cache directory may be written by someone else.

    Example:
        >>> lib = build('extern "C" int lk_two(void) { return 2; }', "doc")  # doctest: +SKIP
        >>> lib.lk_two()  # doctest: +SKIP
        2
    """
    extra = tuple(f"-I{directory}" for directory in include_dirs)
    if depends:
        source = with_dependencies(source, depends)
    warm = (source, *extra, *compiler_environment())
    library = _WARM.get(warm)
    if library is not None:
        return library
    check_source_size(source, name, detail)
    info = for_source(compiler_info(), source)
    if extra:
        info = replace(info, flags=(*info.flags, *extra))
    key = kernel_key(source, info)
    library = _LOADED.get(key)
    if library is not None:
        _WARM[warm] = library
        return library
    with _key_lock(key):
        library = _LOADED.get(key)
        if library is not None:
            return library
        path, built = build_artifact(source, name, info, key=key)
        try:
            library = _load(path)
        except OSError as exc:
            if built:
                raise CompileError(
                    f"cannot load the kernel {name!r} just built at {path}: {exc}"
                ) from exc
            # Not something our builds produce (atomic replace), but a damaged file must not
            # poison the cache for good: rebuild it once.
            debug(f"cached artefact {path} does not load ({exc}); rebuilding")
            path, built = build_artifact(source, name, info, key=key, force=True)
            try:
                library = _load(path)
            except OSError as again:
                raise CompileError(
                    f"cannot load the kernel {name!r} rebuilt at {path}: {again}"
                ) from again
        debug(f"load {name!r}: {path} ({'built now' if built else 'cached artefact'})")
        _LOADED[key] = library
        _WARM[warm] = library
        return library


def with_dependencies(source: str, depends: Sequence[str]) -> str:
    """``source`` opened by one comment line per file of ``depends``: its sha256 and path.

    Raises:
        CompileError: a file cannot be read.

    Example:
        >>> import os
        >>> with_dependencies("int f();", [os.devnull]).splitlines()[0][:22]
        '// depends on: sha256 '
    """
    lines = []
    for name in depends:
        try:
            digest = sha256(Path(name).read_bytes()).hexdigest()
        except OSError as exc:
            raise CompileError(f"cannot read the header {name}: {exc}") from exc
        # printable characters only, no backslash: nothing can end or continue the comment
        shown = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in str(name))
        lines.append(f"// depends on: sha256 {digest} {shown}\n")
    return "".join(lines) + source


def clean_cache() -> None:
    """Delete every cached kernel on disk and forget the libraries loaded by this process.

    Libraries already handed out stay usable (they remain mapped); the next :func:`build`
    of their source compiles again.

    Example:
        >>> clean_cache()  # doctest: +SKIP
    """
    forget_loaded()
    _clean_disk()


def forget_loaded() -> None:
    """Forget this process's loaded libraries, so that the next build() looks at the disk."""
    with _TABLE_LOCK:
        _LOADED.clear()
        _WARM.clear()
