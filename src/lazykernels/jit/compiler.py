"""Compiler discovery, capability probes and flag selection.

The compiler is ``$CXX`` when set, else the first of ``g++``, ``c++``, ``clang++`` on
``PATH``. What it accepts (``-march=native``, ``-mprefer-vector-width=512``, OpenMP) is
probed once by compiling tiny programs; the answer is stored as JSON in the cache directory,
keyed by the compiler's path and version, and memoised per process.

Floating point: the flags allow reassociation, reciprocals, contraction and ignore signed
zeros, errno and traps, which is what vectorised reductions need, but deliberately *not*
``-ffinite-math-only`` (nor ``-ffast-math``, which implies it): max, argmin and log-sum-exp
rely on ``inf`` and ``isnan``/``isinf`` must keep working.
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path

from filelock import FileLock

from ..errors import CompileError
from .cache import PROBE_DIR_PREFIX, atomic_write_text, cache_dir, debug
from .process import install_signal_guard, run_compiler

COMPILER_NAMES = ("g++", "c++", "clang++")

QUERY_TIMEOUT = 60.0
"""Seconds allowed to ``--version`` and the ``-march=native -###`` dump (each is instant)."""

# Bump when the probe programs or the meaning of their answers change.
PROBE_SCHEMA = 1

FAST_MATH_FLAGS = (
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fassociative-math",
    "-freciprocal-math",
    "-ffp-contract=fast",
)

_PLAIN_PROBE = "int lk_probe(int x) { return x + 1; }\n"

# Checks the header, the link and that the runtime loads; it starts no thread team, so a
# process that forks later is not left with a live OpenMP pool by the probe.
_OPENMP_PROBE = """\
#include <omp.h>
extern "C" int lk_probe_openmp(void) {
#ifdef _OPENMP
    return omp_get_max_threads() >= 1 ? 1 : 0;
#else
    return 0;
#endif
}
"""


@dataclass(frozen=True)
class CompilerInfo:
    """The C++ compiler the JIT uses and how it calls it.

    Attributes:
        path: absolute path of the compiler executable.
        version: first line of ``<compiler> --version``.
        flags: every flag passed when building a kernel (``CXXFLAGS`` last).
        openmp: whether ``-fopenmp`` is among the flags (the compiler and runtime work).
        target: what ``-march=native`` resolves to on this machine ("" when unused), so a
            cache shared between different CPUs never hands one machine's code to another.
    """

    path: str
    version: str
    flags: tuple[str, ...]
    openmp: bool
    target: str = ""


def find_compiler() -> str:
    """The absolute path of the C++ compiler: ``$CXX``, else g++, c++ or clang++ on PATH.

    Raises:
        CompileError: no compiler is found, or ``CXX`` names no executable.
    """
    requested = os.environ.get("CXX", "").strip()
    if requested:
        found = shutil.which(requested)
        if found is None:
            raise CompileError(
                f"no C++ compiler found: CXX={requested!r} does not name an executable; "
                "set CXX to a C++ compiler (a path or a program on PATH) or install g++"
            )
        return os.path.abspath(found)
    for name in COMPILER_NAMES:
        found = shutil.which(name)
        if found is not None:
            return os.path.abspath(found)
    raise CompileError("no C++ compiler found: set CXX or install g++")


def compiler_version(path: str) -> str:
    """The first line of ``<path> --version``.

    Raises:
        CompileError: the compiler cannot be run or prints no version.
    """
    try:
        result = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=QUERY_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompileError(f"cannot run the C++ compiler {path}: {exc}") from exc
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise CompileError(
            f"{path} --version failed (status {result.returncode}); is it a C++ compiler?\n"
            f"{result.stdout}{result.stderr}"
        )
    return lines[0]


def native_target(path: str) -> str:
    """The concrete CPU options ``-march=native`` expands to, from the driver's ``-###`` dump.

    GCC lists ``-march=<cpu>`` plus one ``-m[no-]<feature>`` per ISA extension and cache
    ``--param``s; Clang lists ``-target-cpu`` and ``-target-feature`` pairs. Paths and other
    machine-independent options are dropped. Returns "" if the driver prints nothing useful.
    """
    try:
        result = subprocess.run(
            [path, "-march=native", "-###", "-E", "-x", "c++", os.devnull],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=QUERY_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    kept: list[str] = []
    paired = {"-target-cpu", "-target-feature", "-tune-cpu", "--param"}
    for line in (result.stdout + result.stderr).splitlines():
        if not line.startswith(" "):
            continue  # only the sub-command lines, not "COLLECT_GCC=..." environment echoes
        try:
            tokens = shlex.split(line)
        except ValueError:
            continue
        for previous, token in zip([""] + tokens, tokens):
            if token.startswith("-m") or token in paired or previous in paired:
                kept.append(token)
    return " ".join(kept)


class _Probe:
    """One probe compilation, started at once (probes run concurrently), awaited by ok().

    It runs through :func:`.process.run_compiler` in a thread of its own, under the same
    bounds as a kernel build: the time limit, its own process group, killed with its caller.
    """

    def __init__(
        self, path: str, flags: list[str], source: str, workdir: Path, name: str, *, shared: bool
    ) -> None:
        source_path = workdir / f"{name}.cpp"
        source_path.write_text(source, encoding="utf-8")
        self.output = workdir / (f"{name}.so" if shared else f"{name}.o")
        kind = ["-fPIC", "-shared"] if shared else ["-c"]
        self.command = [path, *flags, *kind, "-Werror", "-o", str(self.output), str(source_path)]
        self._accepted = False
        self._thread = threading.Thread(target=self._run, name=f"lk-probe-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            returncode, _, _ = run_compiler(self.command, self.output, self.describe)
        except CompileError as exc:  # cannot start, timed out, or stopped by a signal
            debug(f"probe stopped: {exc}")
            return
        self._accepted = returncode == 0 and self.output.is_file()

    def describe(self) -> str:
        return f"  probe: {shlex.join(self.command)}"

    def ok(self) -> bool:
        """Whether the compiler accepted the program (waits for it)."""
        self._thread.join()
        debug(f"probe {'ok' if self._accepted else 'failed'}: {shlex.join(self.command)}")
        return self._accepted


def _openmp_runs(library: Path) -> bool:
    try:
        probe = ctypes.CDLL(str(library))
    except OSError:
        return False
    return bool(probe.lk_probe_openmp() == 1)


def _run_probes(path: str) -> dict[str, bool]:
    workdir = Path(tempfile.mkdtemp(prefix=PROBE_DIR_PREFIX, dir=cache_dir()))
    try:
        march = ["-march=native"]
        wide = ["-mprefer-vector-width=512"]
        # all at once: the 512-bit probe assumes -march=native works and is redone without
        # it in the rare case that it does not
        native_probe = _Probe(path, march, _PLAIN_PROBE, workdir, "native", shared=False)
        wide_probe = _Probe(path, [*march, *wide], _PLAIN_PROBE, workdir, "wide", shared=False)
        omp_probe = _Probe(path, ["-O1", "-fopenmp"], _OPENMP_PROBE, workdir, "omp", shared=True)
        native = native_probe.ok()
        wide_ok = wide_probe.ok()
        if not native:
            wide_ok = _Probe(path, wide, _PLAIN_PROBE, workdir, "wide0", shared=False).ok()
        openmp = omp_probe.ok() and _openmp_runs(omp_probe.output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"march_native": native, "prefer_vector_width_512": wide_ok, "openmp": openmp}


def probe_capabilities(path: str, version: str) -> dict[str, bool]:
    """What the compiler accepts, probed once and cached as JSON in the cache directory.

    Returns:
        ``{"march_native": bool, "prefer_vector_width_512": bool, "openmp": bool}``.
    """
    digest = sha256(json.dumps([PROBE_SCHEMA, path, version]).encode()).hexdigest()
    directory = cache_dir()
    record = directory / f"compiler-{digest}.json"
    names = ("march_native", "prefer_vector_width_512", "openmp")

    def load() -> dict[str, bool] | None:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or (data.get("path"), data.get("version")) != (
            path,
            version,
        ):
            return None
        if not all(isinstance(data.get(name), bool) for name in names):
            return None
        return {name: data[name] for name in names}

    cached = load()
    if cached is not None:
        return cached
    with FileLock(str(directory / f"compiler-{digest}.lock")):
        cached = load()
        if cached is not None:
            return cached
        debug(f"probing {path} ({version})")
        found = _run_probes(path)
        content = {"schema": PROBE_SCHEMA, "path": path, "version": version, **found}
        atomic_write_text(record, json.dumps(content, indent=2) + "\n")
        return found


def select_flags(capabilities: dict[str, bool], extra: str = "") -> tuple[str, ...]:
    """The kernel build flags for a compiler with ``capabilities``; ``extra`` (CXXFLAGS) last.

    Example:
        >>> select_flags({"march_native": False, "prefer_vector_width_512": False,
        ...               "openmp": True}, "-g")[:4]
        ('-O3', '-fPIC', '-shared', '-std=c++17')
    """
    flags = ["-O3"]
    if capabilities["march_native"]:
        flags.append("-march=native")
    if capabilities["prefer_vector_width_512"]:
        flags.append("-mprefer-vector-width=512")
    flags += ["-fPIC", "-shared", "-std=c++17", *FAST_MATH_FLAGS]
    if capabilities["openmp"]:
        flags.append("-fopenmp")
    flags += shlex.split(extra)
    return tuple(flags)


# Optimisation level by size of the generated source (lines): huge straight-line kernels
# (high-dimensional gradients, second derivatives) spend most of an -O3 build in register
# allocation and CSE of the unrolled vector code, for no measurable speed-up. Measured with
# g++ 12 on vjp kernels of a Gaussian sum (x, y, b of dimension D): D = 64 builds in 9.4 s
# at -O3, 6.0 s at -O2, 3.9 s at -O1 and runs equally fast (register-bound) at all three;
# D = 16 (~1,100 lines) 1.1 / 0.9 / 0.7 s and runs as fast at -O2, 20% slower at -O1;
# D = 3 (~450 lines) runs ~30% slower at -O1. The first matching row wins; smaller
# kernels get -O3.
SIZE_OPT_LEVELS = ((2500, "-O1"), (800, "-O2"))


def optimisation_level(source: str) -> str:
    """The ``-O`` flag for a kernel of this source: -O3, or less for very large kernels.

    Example:
        >>> optimisation_level("int f(void);")
        '-O3'
    """
    lines = source.count("\n")
    for threshold, level in SIZE_OPT_LEVELS:
        if lines >= threshold:
            return level
    return "-O3"


def for_source(info: CompilerInfo, source: str) -> CompilerInfo:
    """``info`` with the optimisation level :func:`optimisation_level` picks for ``source``.

    Only the ``-O3`` the library chose is replaced; an ``-O`` flag from ``CXXFLAGS`` comes
    after it and still has the last word.
    """
    level = optimisation_level(source)
    if level == "-O3" or "-O3" not in info.flags:
        return info
    flags = list(info.flags)
    flags[flags.index("-O3")] = level
    return replace(info, flags=tuple(flags))


_ENVIRONMENT = ("CXX", "CXXFLAGS", "PATH")
_INFO: dict[tuple[str, ...], CompilerInfo] = {}
_INFO_LOCK = threading.Lock()


def compiler_environment() -> tuple[str, ...]:
    """The environment variables that decide :func:`compiler_info` (CXX, CXXFLAGS, PATH)."""
    return tuple(os.environ.get(name, "") for name in _ENVIRONMENT)


def compiler_info() -> CompilerInfo:
    """The compiler, version and flags the JIT uses (memoised per ``CXX``/``CXXFLAGS``/``PATH``).

    Raises:
        CompileError: no usable compiler (set ``CXX`` or install g++).

    Example:
        >>> "-O3" in compiler_info().flags  # doctest: +SKIP
        True
    """
    environment = compiler_environment()
    info = _INFO.get(environment)
    if info is not None:
        return info
    install_signal_guard()  # usually the main thread: before any thread starts a compile
    with _INFO_LOCK:
        info = _INFO.get(environment)
        if info is not None:
            return info
        path = find_compiler()
        version = compiler_version(path)
        capabilities = probe_capabilities(path, version)
        target = native_target(path) if capabilities["march_native"] else ""
        flags = select_flags(capabilities, environment[1])
        info = CompilerInfo(path, version, flags, capabilities["openmp"], target)
        debug(f"compiler {path} ({version}); flags: {shlex.join(flags)}")
        _INFO[environment] = info
        return info


def _forget_compiler_info() -> None:
    """Drop the per-process memo (tests; after installing a compiler)."""
    with _INFO_LOCK:
        _INFO.clear()
