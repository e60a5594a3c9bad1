"""Compiled kernels under concurrency and crashes, end to end through ``lazykernels.numpy.Genred``.

tests/test_jit.py checks the JIT layer with hand-written sources and a fake compiler; here
real ``Genred`` kernels are built by real compilers in separate processes sharing one fresh
``LAZYKERNELS_CACHE``:

- four processes ask for the same new kernel at the same moment (they wait on a go file):
  one compiles, the three others load its artefact, and all give the same result;
- a build whose compiler is SIGKILLed mid-way, and one whose whole process is, leave a cache
  that the next ``Genred`` call repairs (it rebuilds, and gets the right numbers).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from lazykernels import cpu, jit
from lazykernels.jit import compiler as jit_compiler
from lazykernels.jit import load as jit_load
from lazykernels.numpy import Genred

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, POSIX signals"),
]

ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
SMALL_FORMULA = "Exp(-SqDist(x,y)*3)*Cos(x-y)*b"
# Forty different terms: a kernel that takes a few seconds to compile, so that a compiler can
# be caught and killed while it works.
BIG_FORMULA = " + ".join(f"Cos(x*{k}+y)*Exp(-SqDist(x,y)*{k})*Sin(b*{k})" for k in range(1, 41))
ARTEFACT = re.compile(r"^[0-9a-f]{64}\.(so|json)$")
LOAD = re.compile(r"load 'cpu_Sum': (\S+) \((built now|cached artefact)\)")

# The children: build the Genred, then (race) wait for the go file; compute; save the result.
CHILD = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    import numpy as np
    from lazykernels import jit
    from lazykernels.numpy import Genred
    formula, ready, go, out = sys.argv[1:5]
    jit.compiler_info()
    routine = Genred(formula, ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"], axis=1)
    rng = np.random.default_rng(0)
    args = rng.normal(size=(50, 3)), rng.normal(size=(60, 3)), rng.normal(size=(60, 1))
    if ready:
        Path(ready).touch()
        while not Path(go).exists():
            time.sleep(0.002)
    np.save(out, routine(*args, backend="CPU"))
    """
)


def inputs() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)  # as in CHILD
    return rng.normal(size=(50, 3)), rng.normal(size=(60, 3)), rng.normal(size=(60, 1))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory for this process and its children, with the compiler probe
    already stored (children then only race for the kernel itself)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(directory))
    monkeypatch.delenv("LAZYKERNELS_DEBUG", raising=False)
    info = jit.compiler_info()
    jit_compiler.probe_capabilities(info.path, info.version)
    jit_load.forget_loaded()
    yield directory.resolve()
    jit_load.forget_loaded()


def child(formula: str, out: Path, ready: Path | None = None, go: Path | None = None, **env):
    command = [sys.executable, "-c", CHILD, formula, str(ready or ""), str(go or ""), str(out)]
    return subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, with its compiler
    )


def kernels(cache: Path, suffix: str = ".so") -> list[Path]:
    """The compiled libraries (or their metadata files) in the cache."""
    return sorted(p for p in cache.iterdir() if ARTEFACT.match(p.name) and p.suffix == suffix)


def kernel_artefacts(cache: Path) -> list[Path]:
    """The libraries of Genred kernels (the backend may build runtime libraries too)."""
    return [
        cache / f"{meta['key']}.so"
        for meta in map(json.loads, (p.read_text() for p in kernels(cache, ".json")))
        if meta["name"].startswith("cpu_Sum") and (cache / f"{meta['key']}.so").is_file()
    ]


def test_four_processes_compile_one_new_kernel_once(cache, tmp_path):
    go = tmp_path / "go"
    procs = []
    for k in range(4):
        ready, out = tmp_path / f"ready{k}", tmp_path / f"out{k}.npy"
        procs.append((ready, out, child(SMALL_FORMULA, out, ready, go, LAZYKERNELS_DEBUG="1")))
    deadline = time.monotonic() + 120
    while not all(ready.exists() for ready, _, _ in procs):
        assert all(p.poll() is None for _, _, p in procs), "a child died before the race"
        assert time.monotonic() < deadline, "the children did not get ready"
        time.sleep(0.01)
    go.touch()  # all four ask for the kernel now
    logs = []
    for _, _, p in procs:
        _, err = p.communicate(timeout=300)
        logs.append(err.decode())
        assert p.returncode == 0, logs[-1]

    results = [np.load(out) for _, out, _ in procs]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    want = Genred(SMALL_FORMULA, ALIASES, axis=1)(*inputs(), backend="reference")
    np.testing.assert_allclose(results[0], want, rtol=1e-12)

    # One artefact per library (the kernel, and any runtime library the backend builds),
    # each built by one of the children; every child loaded the same kernel file.
    built = [json.loads(p.read_text()) for p in kernels(cache, ".json")]
    names = [meta["name"] for meta in built]
    assert len(names) == len(set(names)) and len(kernels(cache)) == len(built), names
    assert {meta["pid"] for meta in built} <= {p.pid for _, _, p in procs}
    (key,) = [meta["key"] for meta in built if meta["name"] == "cpu_Sum"]
    assert not list(cache.glob("*tmp-*"))
    loads = [LOAD.findall(log) for log in logs]
    assert all(len(found) == 1 for found in loads), logs
    assert {path for ((path, _),) in loads} == {str(cache / f"{key}.so")}
    assert sorted(how for ((_, how),) in loads) == ["built now"] + ["cached artefact"] * 3
    assert sum(log.count("compile 'cpu_Sum'") for log in logs) == 1


def compilers_of(cache: Path, kernel_only: bool = False) -> list[int]:
    """Pids of the running processes whose command line names the cache (the compiler
    driver, cc1plus... of a build); with ``kernel_only``, only those compiling a source that
    defines a kernel (``lk_kernel``), not a runtime library."""
    found = []
    needle = str(cache).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if not any(needle in arg for arg in args):
            continue
        if kernel_only:
            sources = [a.decode() for a in args if needle in a and a.endswith(b".cpp")]
            try:
                if not any("lk_kernel" in Path(s).read_text() for s in sources):
                    continue
            except OSError:
                continue
        found.append(int(entry.name))
    return found


def wait_for_compiler(cache: Path, proc: subprocess.Popen) -> list[int]:
    """Wait until a kernel compiler of ``proc`` runs."""
    deadline = time.monotonic() + 120
    while True:
        pids = compilers_of(cache, kernel_only=True)
        if pids:
            return pids
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"the build ended before it could be killed:\n{err.decode()}")
        assert time.monotonic() < deadline, "no compiler started"
        time.sleep(0.005)


def test_killed_builds_leave_a_cache_the_next_call_repairs(cache, tmp_path, monkeypatch, capfd):
    # 1. SIGKILL the compiler mid-build: the build fails with a CompileError.
    proc = child(BIG_FORMULA, tmp_path / "a.npy")
    try:
        wait_for_compiler(cache, proc)
        time.sleep(0.3)  # cc1plus is at work now
        for pid in compilers_of(cache):
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "CompileError" in err.decode(), err.decode()
    assert kernel_artefacts(cache) == []

    # 2. SIGKILL the whole building process (Python and its compiler) mid-build.
    proc = child(BIG_FORMULA, tmp_path / "b.npy")
    try:
        wait_for_compiler(cache, proc)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert kernel_artefacts(cache) == []
    # The compiler runs in its own process group (jit/process.py), which an uncatchable
    # SIGKILL of its caller cannot reach: it would finish on its own; stop it here.
    for pid in compilers_of(cache):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while compilers_of(cache):  # the killed group's processes are being reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)

    # 3. The next Genred call (here, in this process) finds the lock free, rebuilds, and
    # computes the right values; the dead builds' temporaries are gone.
    for path in cache.glob("*.lock"):
        lock = FileLock(str(path))
        lock.acquire(timeout=0)  # OS locks: their dead holders left them free
        lock.release()
    monkeypatch.setenv("LAZYKERNELS_DEBUG", "1")
    capfd.readouterr()
    routine = Genred(BIG_FORMULA, ALIASES, axis=1)
    got = routine(*inputs(), backend="CPU")
    (library,) = kernel_artefacts(cache)
    assert LOAD.findall(capfd.readouterr().err) == [(str(library), "built now")]
    assert library.read_bytes()[:4] == b"\x7fELF"
    want = routine(*inputs(), backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-11)
    assert not list(cache.glob("*tmp-*"))
