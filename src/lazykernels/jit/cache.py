"""The on-disk kernel cache: content keys, atomic builds, metadata, trust checks, cleaning.

Layout of the cache directory (``LAZYKERNELS_CACHE``, default the platform's user cache
directory), one group of files per kernel, named by its 64-hex-digit content key::

    <key>.cpp    the generated source (kept, so a failed build can be inspected)
    <key>.so     the shared library; it only ever appears by ``os.replace`` of a complete file
    <key>.json   metadata (compiler, flags, time, source name, the library's sha256), written
                 atomically *before* the library is moved into place
    <key>.lock   the file lock that serialises builds of that key across processes
    <key>.cu, <key>.cubin   a CUDA kernel and its NVRTC output (:func:`build_binary`),
                 under the same rules (the key covers source, NVRTC version, options and
                 the GPU architecture)

Why this cannot lie: the key is the full sha256 of everything that decides the bytes of the
library; ``<key>.so`` existing means a compiler finished it (temporary outputs carry a
``.tmp-`` infix and are never loaded); the lock is an OS lock, released by the kernel when
its holder dies, so a killed build never blocks the next one, which removes the stale
temporaries the dead build left.

Why it cannot be planted into (:mod:`.trust`): the directory must be the user's and writable
by nobody else (created ``0700``), and a library is used only when it and its metadata are
the user's, not group/world-writable, and its sha256 is the one recorded at build time;
otherwise it is rebuilt, with a :class:`~lazykernels.errors.CacheWarning` (once per kernel).

Why a build cannot run away (:mod:`.process`): sources over a size budget
(``LAZYKERNELS_MAX_SOURCE_MB``) are refused before compiling, and every compile runs under a
time limit in its own process group, killed with its children when stopped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import sys
import sysconfig
import threading
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs
from filelock import FileLock, Timeout

from .. import version
from ..errors import CacheWarning, CompileError
from .process import install_signal_guard, run_compiler
from .trust import (
    FILE_MODE,
    LIBRARY_MODE,
    file_problem,
    file_sha256,
    trusted_directory,
)

if TYPE_CHECKING:
    from .compiler import CompilerInfo

# Bump when the key recipe or the cache layout changes (2: sha256 in the metadata).
KEY_SCHEMA = 2

SOURCE_BUDGET_ENV = "LAZYKERNELS_MAX_SOURCE_MB"
DEFAULT_SOURCE_BUDGET_MB = 16.0
"""Largest generated source compiled by default, in MB (10^6 bytes). Lowering loops over
vector dimensions above the unrolling threshold, so valid formulas up to the 65,536 limit
print tens of kB (``OneHot(x, 100000)``: ~12 kB); the budget is a guard against a runaway
source (a formula with very many unrolled small ops), refused before the compiler runs."""

_KEY_FILE = re.compile(r"^[0-9a-f]{64}(\.(so|cpp|json|lock|cu|cubin)|\..*tmp-.*)$")
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
    """The kernel cache directory, created (mode 0700) if needed, and checked.

    ``LAZYKERNELS_CACHE`` overrides the default ``platformdirs.user_cache_dir("lazykernels")``.
    The directory must be owned by the current user and writable by nobody else (see
    :mod:`lazykernels.jit.trust`); ``LAZYKERNELS_CACHE_PRIVATE=1`` moves the cache into a
    private ``user-<uid>`` subfolder of a directory that is not.

    Returns:
        The absolute path of the directory.

    Raises:
        CacheError: the directory cannot be created, or may be written by someone else (the
            message names the folder, the problem and the fix).

    Example:
        >>> cache_dir().is_dir()
        True
    """
    override = os.environ.get("LAZYKERNELS_CACHE", "").strip()
    if override:
        return trusted_directory(Path(override).expanduser(), default=False)
    default = Path(platformdirs.user_cache_dir("lazykernels", appauthor=False))
    return trusted_directory(default, default=True)


def source_budget() -> int:
    """The largest source :func:`check_source_size` admits, in bytes.

    Raises:
        CompileError: ``LAZYKERNELS_MAX_SOURCE_MB`` is not a positive number.
    """
    text = os.environ.get(SOURCE_BUDGET_ENV, "").strip()
    if not text:
        return int(DEFAULT_SOURCE_BUDGET_MB * 1e6)
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise CompileError(f"{SOURCE_BUDGET_ENV}={text!r} is not a positive number of MB")
    return int(value * 1e6)


def check_source_size(source: str, name: str, detail: str = "") -> None:
    """Refuse, before compiling, a kernel whose generated source exceeds the budget.

    Args:
        source: the generated source.
        name: the kernel's readable name.
        detail: what the kernel computes and how big its formula is (for the message).

    Raises:
        CompileError: the source is larger than :func:`source_budget`.

    Example:
        >>> check_source_size("int f();", "tiny")
    """
    budget = source_budget()
    size = len(source)
    if size <= budget:
        return
    lines = source.count("\n")
    about = f" ({detail})" if detail else ""
    raise CompileError(
        f"kernel {name!r}{about} is too large to compile: its generated source is "
        f"{size / 1e6:.1f} MB in {lines:,} lines, over the budget of {budget / 1e6:g} MB "
        f"(compiling it would take many minutes and gigabytes of memory). Simplify the "
        f"formula (fewer distinct small-vector ops), or raise "
        f"{SOURCE_BUDGET_ENV} if you really want to wait"
    )


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
            version.__version__,
            platform_tag(),
        ],
        ensure_ascii=True,
    )
    return sha256(payload.encode("ascii")).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The file is readable and writable by its owner only.
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
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
    """Run the compiler (bounded, see :mod:`.process`); raise CompileError with everything
    needed to reproduce a failure."""
    debug(f"compile {name!r}: source {source_path}")
    debug(f"command: {shlex.join(command)}")

    def describe() -> str:
        return f"  kernel: {name!r}\n  command: {shlex.join(command)}\n  source: {source_path}"

    start = time.perf_counter()
    try:
        returncode, log, _ = run_compiler(command, output, describe)
    except CompileError as exc:
        debug(f"compile {name!r} stopped: {exc}")
        raise CompileError(f"compilation of kernel {name!r} failed: {exc}") from None
    seconds = time.perf_counter() - start
    debug(f"compiler output ({seconds:.2f} s):\n{log.rstrip() or '(none)'}")
    if returncode != 0 or not output.is_file():
        reason = _describe_failure(returncode) if returncode else "no output file"
        raise CompileError(
            f"compilation of kernel {name!r} failed: {reason}\n"
            f"  command: {shlex.join(command)}\n"
            f"  source: {source_path}\n"
            f"  compiler output:\n{log.rstrip()}"
        )
    return seconds


def _metadata(
    key: str, name: str, info: CompilerInfo, seconds: float, digest: str
) -> dict[str, Any]:
    return {
        "key": key,
        "sha256": digest,
        "name": name,
        "source": f"{key}.cpp",
        "compiler": info.path,
        "compiler_version": info.version,
        "flags": list(info.flags),
        "target": info.target,
        "openmp": info.openmp,
        "lazykernels_version": version.__version__,
        "platform": platform_tag(),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 3),
        "pid": os.getpid(),
    }


MISSING = "it is missing"
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def library_problem(directory: Path, key: str, suffix: str = ".so") -> str | None:
    """Why ``<key><suffix>`` (a library, or a cubin) must not be loaded, or None when it
    can be trusted.

    It must exist; it and ``<key>.json`` must be the user's and not group/world-writable;
    its sha256 must equal the ``"sha256"`` recorded in the metadata at build time.
    Returns :data:`MISSING` when there is no library.
    """
    library = directory / f"{key}{suffix}"
    problem = file_problem(library)
    if problem is not None:
        return problem if problem == MISSING else f"the library: {problem}"
    meta_path = directory / f"{key}.json"
    problem = file_problem(meta_path)
    if problem is not None:
        return f"its metadata {meta_path.name}: {problem}"
    metadata = read_metadata(key, directory)
    recorded = metadata.get("sha256") if metadata else None
    if not isinstance(recorded, str):
        return f"its metadata {meta_path.name} records no sha256"
    try:
        actual = file_sha256(library)
    except OSError as exc:
        return f"the library cannot be read ({exc})"
    if actual != recorded:
        return (
            f"its sha256 ({actual[:16]}...) differs from the one recorded when it was built "
            f"({recorded[:16]}...)"
        )
    return None


def _warn_untrusted(key: str, library: Path, problem: str) -> None:
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    message = f"not loading the cached kernel {library}: {problem}; rebuilding it"
    debug(message)
    warnings.warn(message, CacheWarning, stacklevel=4)


def build_artifact(
    source: str, name: str, info: CompilerInfo, *, key: str | None = None, force: bool = False
) -> tuple[Path, bool]:
    """Return the path of the compiled library for ``source``, compiling it if needed.

    Concurrent callers (threads or processes) serialise on ``<key>.lock``; the first one
    compiles, the others find ``<key>.so`` once the lock is theirs. A library that fails
    :func:`library_problem` is rebuilt (with a ``CacheWarning``, once per kernel).

    Args:
        source: the complete C++ source text.
        name: a human-readable name, recorded in the metadata and debug traces only.
        info: the compiler to use.
        key: ``kernel_key(source, info)`` when the caller already has it.
        force: rebuild even if ``<key>.so`` exists (used when a cached library fails to load).

    Returns:
        ``(path, built)``: the library's path, and whether this call compiled it.

    Raises:
        CompileError: the compiler failed, ran past its time limit or was stopped; the
            message holds the command, the source path and the compiler's full output.
        CacheError: the cache directory is not trusted.
    """
    directory = cache_dir()
    key = key or kernel_key(source, info)
    library = directory / f"{key}.so"
    if not force and library_problem(directory, key) is None:
        return library, False
    install_signal_guard()
    lock = FileLock(str(directory / f"{key}.lock"), mode=FILE_MODE)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        debug(f"waiting for {lock.lock_file}: another process is building {name!r}")
        lock.acquire()
    try:
        problem = library_problem(directory, key)
        if problem is None and not force:
            return library, False
        if problem is not None and problem != MISSING:
            _warn_untrusted(key, library, problem)
        _remove_stale_temporaries(directory, key)
        source_path = directory / f"{key}.cpp"
        atomic_write_text(source_path, source)
        output = directory / f"{key}.tmp-{os.getpid()}-{secrets.token_hex(4)}.so"
        command = [info.path, *info.flags, "-o", str(output), str(source_path)]
        try:
            seconds = _compile(command, name, source_path, output)
            os.chmod(output, LIBRARY_MODE)
            metadata = _metadata(key, name, info, seconds, file_sha256(output))
            # metadata first: once the library is in place, its recorded hash is too
            atomic_write_text(directory / f"{key}.json", json.dumps(metadata, indent=2) + "\n")
            os.replace(output, library)
        finally:
            output.unlink(missing_ok=True)
        return library, True
    finally:
        lock.release()


def binary_key(fields: list[Any]) -> str:
    """The content key of an artefact made in-process (a cubin): the full sha256 of the JSON
    list of ``fields`` (for a cubin: source, NVRTC version, options, architecture) with the
    key schema, the lazykernels version and the platform."""
    payload = [KEY_SCHEMA, "binary", *fields, version.__version__, platform_tag()]
    return sha256(json.dumps(payload, ensure_ascii=True).encode("ascii")).hexdigest()


def build_binary(
    key: str,
    name: str,
    source: str,
    produce: Callable[[], bytes],
    *,
    source_suffix: str = ".cu",
    suffix: str = ".cubin",
    metadata: dict[str, Any] | None = None,
) -> tuple[bytes, bool]:
    """The bytes of the artefact ``<key><suffix>``, made by ``produce()`` if needed.

    The same rules as :func:`build_artifact` (a lock per key, the source kept, metadata with
    the sha256 written before the artefact is moved into place, an untrusted file rebuilt
    with a warning), for artefacts made in-process, such as NVRTC's cubins.

    Returns:
        ``(data, built)``: the artefact's bytes and whether this call made them.

    Raises:
        CacheError: the cache directory is not trusted; whatever ``produce`` raises.
    """
    directory = cache_dir()
    target = directory / f"{key}{suffix}"
    if library_problem(directory, key, suffix) is None:
        return target.read_bytes(), False
    lock = FileLock(str(directory / f"{key}.lock"), mode=FILE_MODE)
    with lock:
        problem = library_problem(directory, key, suffix)
        if problem is None:
            return target.read_bytes(), False
        if problem != MISSING:
            _warn_untrusted(key, target, problem)
        _remove_stale_temporaries(directory, key)
        atomic_write_text(directory / f"{key}{source_suffix}", source)
        start = time.perf_counter()
        data = produce()
        seconds = time.perf_counter() - start
        output = directory / f"{key}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}"
        try:
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, LIBRARY_MODE)
            with open(descriptor, "wb") as handle:
                handle.write(data)
            meta = {
                "key": key,
                "sha256": file_sha256(output),
                "name": name,
                "source": f"{key}{source_suffix}",
                **(metadata or {}),
                "lazykernels_version": version.__version__,
                "platform": platform_tag(),
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": round(seconds, 3),
                "pid": os.getpid(),
            }
            atomic_write_text(directory / f"{key}.json", json.dumps(meta, indent=2) + "\n")
            os.replace(output, target)
        finally:
            output.unlink(missing_ok=True)
        debug(f"built {name!r} ({key}{suffix}) in {seconds:.2f} s")
        return data, True


def read_metadata(key: str, directory: Path | None = None) -> dict[str, Any] | None:
    """The metadata of a cached kernel (plain JSON, never evaluated), or None if absent."""
    path = (directory or cache_dir()) / f"{key}.json"
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

    ``num_kernels`` counts compiled libraries and cubins; ``total_bytes`` sums every cache file
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
        if entry.suffix in (".so", ".cubin") and ".tmp-" not in entry.name:
            kernels += 1
    return {"path": str(directory), "num_kernels": kernels, "total_bytes": total}
