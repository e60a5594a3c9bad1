"""The on-disk kernel cache: content keys, atomic builds, metadata, cleaning.

Layout of the cache directory (``LAZYKERNELS_CACHE``, default the platform's user cache
directory), one group of files per kernel, named by its 64-hex-digit content key::

    <key>.cpp    the generated source (kept, so a failed build can be inspected)
    <key>.so     the shared library; it only ever appears by ``os.replace`` of a complete file
    <key>.json   metadata (compiler, flags, time, source name), written atomically
    <key>.lock   the file lock that serialises builds of that key across processes

Why this cannot lie: the key is the full sha256 of everything that decides the bytes of the
library; ``<key>.so`` existing means a compiler finished it (temporary outputs carry a
``.tmp-`` infix and are never loaded); the lock is an OS lock, released by the kernel when
its holder dies, so a killed build never blocks the next one, which removes the stale
temporaries the dead build left.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from filelock import FileLock, Timeout

import lazykernels

from ..errors import CompileError

if TYPE_CHECKING:
    from .compiler import CompilerInfo

# Bump when the key recipe or the cache layout changes.
KEY_SCHEMA = 1

_KEY_FILE = re.compile(r"^[0-9a-f]{64}(\.(so|cpp|json|lock)|\..*tmp-.*)$")
_PROBE_FILE = re.compile(r"^compiler-[0-9a-f]{64}\.(json|lock)$|^compiler-[0-9a-f]{64}\..*tmp-.*$")
PROBE_DIR_PREFIX = "lk-probe-"


def debug_enabled() -> bool:
    """Whether ``LAZYKERNELS_DEBUG`` asks for build and load traces on stderr."""
    return os.environ.get("LAZYKERNELS_DEBUG", "").strip() not in ("", "0")


def debug(message: str) -> None:
    """Print ``message`` to stderr when ``LAZYKERNELS_DEBUG`` is set."""
    if debug_enabled():
        print(f"[lazykernels.jit] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """The kernel cache directory, created if needed.

    ``LAZYKERNELS_CACHE`` overrides the default ``platformdirs.user_cache_dir("lazykernels")``.

    Returns:
        The absolute path of the directory.

    Raises:
        CompileError: the directory cannot be created.

    Example:
        >>> cache_dir().is_dir()
        True
    """
    override = os.environ.get("LAZYKERNELS_CACHE", "").strip()
    if override:
        path = Path(override).expanduser()
    else:
        path = Path(platformdirs.user_cache_dir("lazykernels", appauthor=False))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompileError(
            f"cannot create the kernel cache directory {path}: {exc}; "
            "set LAZYKERNELS_CACHE to a writable directory"
        ) from exc
    return path.resolve()


def platform_tag() -> str:
    """The Python platform tag (e.g. ``linux-x86_64``), part of every key."""
    return sysconfig.get_platform()


def kernel_key(source: str, info: CompilerInfo) -> str:
    """The content key of a kernel: the full sha256 of everything that shapes the library.

    The fields are JSON-encoded as one list, so no two different inputs share an encoding
    (no concatenation without separators).

    Args:
        source: the complete C++ source text.
        info: the compiler that will build it (path, version, flags, native target).

    Returns:
        64 lowercase hexadecimal digits.
    """
    payload = json.dumps(
        [
            KEY_SCHEMA,
            source,
            info.path,
            info.version,
            list(info.flags),
            info.target,
            lazykernels.__version__,
            platform_tag(),
        ],
        ensure_ascii=True,
    )
    return sha256(payload.encode("ascii")).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale_temporaries(directory: Path, key: str) -> None:
    # Called with the key's lock held: no live process is writing these files.
    for stale in directory.glob(f"{key}.*tmp-*"):
        debug(f"removing stale temporary {stale}")
        stale.unlink(missing_ok=True)


def _describe_failure(returncode: int) -> str:
    if returncode < 0:
        return f"the compiler was killed by signal {-returncode}"
    return f"the compiler exited with status {returncode}"


def _compile(command: list[str], name: str, source_path: Path, output: Path) -> float:
    """Run the compiler; raise CompileError with everything needed to reproduce a failure."""
    debug(f"compile {name!r}: source {source_path}")
    debug(f"command: {shlex.join(command)}")
    start = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise CompileError(
            f"cannot run the C++ compiler for kernel {name!r}: {exc}\n"
            f"  command: {shlex.join(command)}\n  source: {source_path}"
        ) from exc
    seconds = time.perf_counter() - start
    debug(f"compiler output ({seconds:.2f} s):\n{result.stdout.rstrip() or '(none)'}")
    if result.returncode != 0 or not output.is_file():
        reason = _describe_failure(result.returncode) if result.returncode else "no output file"
        raise CompileError(
            f"compilation of kernel {name!r} failed: {reason}\n"
            f"  command: {shlex.join(command)}\n"
            f"  source: {source_path}\n"
            f"  compiler output:\n{result.stdout.rstrip()}"
        )
    return seconds


def _metadata(key: str, name: str, info: CompilerInfo, seconds: float) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "source": f"{key}.cpp",
        "compiler": info.path,
        "compiler_version": info.version,
        "flags": list(info.flags),
        "target": info.target,
        "openmp": info.openmp,
        "lazykernels_version": lazykernels.__version__,
        "platform": platform_tag(),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 3),
        "pid": os.getpid(),
    }


def build_artifact(
    source: str, name: str, info: CompilerInfo, *, key: str | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Return the path of the compiled library for ``source``, compiling it if needed.

    Concurrent callers (threads or processes) serialise on ``<key>.lock``; the first one
    compiles, the others find ``<key>.so`` once the lock is theirs.

    Args:
        source: the complete C++ source text.
        name: a human-readable name, recorded in the metadata and debug traces only.
        info: the compiler to use.
        key: ``kernel_key(source, info)`` when the caller already has it.
        force: rebuild even if ``<key>.so`` exists (used when a cached library fails to load).

    Returns:
        ``(path, built)``: the library's path, and whether this call compiled it.

    Raises:
        CompileError: the compiler failed; the message holds the command, the source path
            and the compiler's full output.
    """
    directory = cache_dir()
    key = key or kernel_key(source, info)
    library = directory / f"{key}.so"
    if library.is_file() and not force:
        return library, False
    lock = FileLock(str(directory / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        debug(f"waiting for {lock.lock_file}: another process is building {name!r}")
        lock.acquire()
    try:
        if library.is_file() and not force:
            return library, False
        _remove_stale_temporaries(directory, key)
        source_path = directory / f"{key}.cpp"
        atomic_write_text(source_path, source)
        output = directory / f"{key}.tmp-{os.getpid()}-{secrets.token_hex(4)}.so"
        command = [info.path, *info.flags, "-o", str(output), str(source_path)]
        try:
            seconds = _compile(command, name, source_path, output)
            os.replace(output, library)
        finally:
            output.unlink(missing_ok=True)
        metadata = _metadata(key, name, info, seconds)
        atomic_write_text(directory / f"{key}.json", json.dumps(metadata, indent=2) + "\n")
        return library, True
    finally:
        lock.release()


def read_metadata(key: str) -> dict[str, Any] | None:
    """The metadata of a cached kernel (plain JSON, never evaluated), or None if absent."""
    path = cache_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _our_entries(directory: Path) -> list[Path]:
    return [
        entry
        for entry in directory.iterdir()
        if _KEY_FILE.match(entry.name)
        or _PROBE_FILE.match(entry.name)
        or (entry.name.startswith(PROBE_DIR_PREFIX) and entry.is_dir())
    ]


def clean_cache() -> None:
    """Delete every kernel and compiler probe from the cache directory (disk only).

    Only files this module names are touched, so an ``LAZYKERNELS_CACHE`` pointing at a
    shared directory loses nothing else. Cleaning while another process builds is safe: its
    library still appears atomically (at worst a kernel is compiled twice).
    """
    for entry in _our_entries(cache_dir()):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def cache_info() -> dict[str, Any]:
    """Summary of the cache: ``{"path": str, "num_kernels": int, "total_bytes": int}``.

    ``num_kernels`` counts compiled libraries; ``total_bytes`` sums every cache file
    (libraries, sources, metadata, locks, probes).

    Example:
        >>> sorted(cache_info())
        ['num_kernels', 'path', 'total_bytes']
    """
    directory = cache_dir()
    kernels = 0
    total = 0
    for entry in _our_entries(directory):
        if entry.is_dir():
            continue
        try:
            total += entry.stat().st_size
        except FileNotFoundError:  # removed by a concurrent build or clean
            continue
        if entry.suffix == ".so" and ".tmp-" not in entry.name:
            kernels += 1
    return {"path": str(directory), "num_kernels": kernels, "total_bytes": total}
