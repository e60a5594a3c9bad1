"""Tests of the JIT with real processes: concurrent builders, builds killed mid-way, bounded
compiles (time limit, SIGINT, SIGTERM) that leave no compiler running and a usable cache.

A fake compiler script (``FAKE_COMPILER``, through ``CXX``) makes "a compile that hangs"
deterministic: it writes half a library, starts a child as g++ starts cc1plus, records both
pids and sleeps. Linux-only checks read ``/proc`` to tell live processes from zombies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from lazykernels import jit
from lazykernels.errors import CompileError
from lazykernels.jit import cache as jit_cache
from lazykernels.jit import compiler as jit_compiler
from lazykernels.jit import process as jit_process

from .test_jit import ANSWER_SOURCE, SUM_SOURCE, _call_sum, _unique, needs_compiler

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")


@pytest.fixture
def cache(empty_cache):
    """A fresh cache directory, no debug traces, and an empty in-process table."""
    return empty_cache


# ---------------------------------------------------------------- processes

CHILD = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    from lazykernels import jit
    source = Path(sys.argv[1]).read_text()
    go = Path(sys.argv[2])
    jit.compiler_info()
    Path(sys.argv[3]).touch()
    while not go.exists():
        time.sleep(0.002)
    lib = jit.build(source, "race")
    print(lib.lk_answer(), lib._name)
    """
)


def _child_env(cache: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["LAZYKERNELS_CACHE"] = str(cache)
    env.update(extra)
    return env


@pytest.mark.cpu
@needs_compiler
def test_four_processes_build_the_same_source_once(cache, tmp_path):
    jit.compiler_info()
    info = jit.compiler_info()
    jit_compiler.probe_capabilities(info.path, info.version)  # children read the probe
    source = _unique(ANSWER_SOURCE)
    source_file = tmp_path / "race.cpp"
    source_file.write_text(source)
    go = tmp_path / "go"
    env = _child_env(cache, LAZYKERNELS_DEBUG="1")
    children = []
    for k in range(4):
        ready = tmp_path / f"ready{k}"
        command = [sys.executable, "-c", CHILD, str(source_file), str(go), str(ready)]
        children.append((ready, subprocess.Popen(command, env=env, stdout=-1, stderr=-1)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in children):
        assert time.monotonic() < deadline, "children did not start"
        assert all(child.poll() is None for _, child in children), "a child died early"
        time.sleep(0.01)
    go.touch()  # all four ask for the same new kernel now
    results = [child.communicate(timeout=120) for _, child in children]
    assert all(child.returncode == 0 for _, child in children), results
    key = jit_cache.kernel_key(source, info)
    outputs = {out.decode().strip() for out, _ in results}
    assert outputs == {f"42 {cache.resolve() / (key + '.so')}"}
    logs = "".join(err.decode() for _, err in results)
    assert logs.count("[lazykernels.jit] command:") == 1  # compiled exactly once
    assert logs.count("(built now)") == 1 and logs.count("(cached artefact)") == 3
    builder = json.loads((cache / f"{key}.json").read_text())["pid"]
    assert builder in {child.pid for _, child in children}


FAKE_COMPILER = """\
#!/bin/sh
# Passes everything to the real compiler, except that with LK_TEST_HANG set, a kernel build
# (output named *.tmp-*) writes half a library, starts a child (as g++ starts cc1plus),
# records both pids ($LK_TEST_HANG.child, then $LK_TEST_HANG) and hangs.
if [ -n "$LK_TEST_HANG" ]; then
  prev=""; out=""
  for arg in "$@"; do
    if [ "$prev" = "-o" ]; then out="$arg"; fi
    prev="$arg"
  done
  case "$out" in
    *.tmp-*)
      printf 'half a library' > "$out"
      sleep 300 &
      echo $! > "$LK_TEST_HANG.child"
      echo $$ > "$LK_TEST_HANG"
      exec sleep 120 ;;
  esac
fi
exec "{real}" "$@"
"""

HANGING_CHILD = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    from lazykernels import jit
    jit.build(Path(sys.argv[1]).read_text(), "victim")
    """
)


def _install_fake_compiler(tmp_path: Path, monkeypatch) -> Path:
    if sys.platform == "win32":
        pytest.skip("POSIX shell and signals")
    fake = tmp_path / "fake-cxx"
    fake.write_text(FAKE_COMPILER.replace("{real}", jit_compiler.find_compiler()))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CXX", str(fake))
    jit.compiler_info()  # probes through the fake (no hang) and stores the answer
    return tmp_path / "compiler.pid"


def _wait_for_pid(pid_file: Path, child: subprocess.Popen | None = None) -> tuple[int, int]:
    """(compiler pid, its child's pid) once the hanging fake compiler has recorded them."""
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text().strip()):
        if child is not None:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.01)
    child_file = pid_file.with_name(pid_file.name + ".child")
    return int(pid_file.read_text()), int(child_file.read_text())


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return fields[0] not in ("Z", "X")


def _assert_gone(*pids: int) -> None:
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, f"compiler processes left running: {pids}"
        time.sleep(0.01)


def _kill_quietly(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def hanging_build(cache, tmp_path, monkeypatch):
    """Start a subprocess whose kernel build hangs mid-way; yield (process, compiler pid, key)."""
    pid_file = _install_fake_compiler(tmp_path, monkeypatch)
    info = jit.compiler_info()
    source = _unique(SUM_SOURCE)
    source_file = tmp_path / "victim.cpp"
    source_file.write_text(source)
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_CHILD, str(source_file)],
        env=_child_env(cache, LK_TEST_HANG=str(pid_file)),
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's job would be
    )
    compiler, grandchild = _wait_for_pid(pid_file, child)
    key = jit_cache.kernel_key(source, info)
    try:
        yield child, compiler, key, source, grandchild
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        _kill_quietly(compiler)  # the compiler's own group (after an uncatchable SIGKILL)


def _assert_cache_recovers(cache: Path, key: str, source: str) -> None:
    # The lock is an OS lock: its dead holder left it free (this would raise Timeout).
    lock = FileLock(str(cache / f"{key}.lock"))
    lock.acquire(timeout=0)
    lock.release()
    assert not (cache / f"{key}.so").exists()
    lib = jit.build(source, "after the crash")
    assert _call_sum(lib, np.arange(5.0)) == 30.0
    assert (cache / f"{key}.so").read_bytes()[:4] == b"\x7fELF"
    assert not list(cache.glob(f"{key}*tmp-*"))


@pytest.mark.cpu
@needs_compiler
def test_build_killed_mid_way_leaves_a_usable_cache(cache, hanging_build):
    child, compiler, key, source, grandchild = hanging_build
    half = list(cache.glob(f"{key}.tmp-*.so"))
    assert [p.read_bytes() for p in half] == [b"half a library"]
    # SIGKILL cannot be caught: the builder dies at once, its compiler (in its own process
    # group) is left to finish, as documented in jit/process.py; we stop it here.
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert _running(compiler)
    os.killpg(compiler, signal.SIGKILL)
    _assert_gone(compiler, grandchild)
    assert half[0].exists()  # the dead build's debris is still there ...
    _assert_cache_recovers(cache, key, source)  # ... and never loaded; then cleaned


@pytest.mark.cpu
@needs_compiler
def test_compiler_killed_mid_way_raises_and_leaves_a_usable_cache(cache, hanging_build):
    child, compiler_pid, key, source, _ = hanging_build
    os.kill(compiler_pid, signal.SIGKILL)
    _, err = child.communicate(timeout=60)
    assert child.returncode != 0
    message = err.decode()
    assert "CompileError" in message and "killed by signal 9" in message
    assert f"{key}.cpp" in message
    _assert_cache_recovers(cache, key, source)


# ---------------------------------------------------------------- bounded compiles


@pytest.mark.cpu
@needs_compiler
def test_compile_past_the_time_limit_is_killed_with_its_children(cache, tmp_path, monkeypatch):
    pid_file = _install_fake_compiler(tmp_path, monkeypatch)
    monkeypatch.setenv("LK_TEST_HANG", str(pid_file))
    monkeypatch.setenv("LAZYKERNELS_COMPILE_TIMEOUT", "1.5")
    source = _unique(SUM_SOURCE)
    key = jit_cache.kernel_key(source, jit.compiler_info())
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(jit.build, source, "slow")
        compiler, grandchild = _wait_for_pid(pid_file)
        assert _running(compiler) and _running(grandchild)
        with pytest.raises(CompileError) as error:
            job.result(timeout=60)
    message = str(error.value)
    assert "'slow'" in message and "did not finish within 1.5 s" in message
    assert "LAZYKERNELS_COMPILE_TIMEOUT" in message and f"{key}.cpp" in message
    _assert_gone(compiler, grandchild)
    assert jit_process.live_compilers() == []
    assert not list(cache.glob("*tmp-*")) and not (cache / f"{key}.so").exists()
    monkeypatch.delenv("LK_TEST_HANG")
    assert _call_sum(jit.build(source, "slow"), np.arange(3.0)) == 5.0  # the cache works


def test_compile_timeout_setting(monkeypatch):
    monkeypatch.delenv("LAZYKERNELS_COMPILE_TIMEOUT", raising=False)
    assert jit_process.compile_timeout() == jit_process.DEFAULT_TIMEOUT
    monkeypatch.setenv("LAZYKERNELS_COMPILE_TIMEOUT", "none")
    assert jit_process.compile_timeout() is None
    monkeypatch.setenv("LAZYKERNELS_COMPILE_TIMEOUT", "2.5")
    assert jit_process.compile_timeout() == 2.5
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("LAZYKERNELS_COMPILE_TIMEOUT", bad)
        with pytest.raises(CompileError, match="LAZYKERNELS_COMPILE_TIMEOUT"):
            jit_process.compile_timeout()


# The builder runs in the main thread, or in a worker thread with the main thread waiting
# (as cpu.prepare_many does); it reports how its compile ended on stdout.
SIGNALLED_CHILD = textwrap.dedent(
    """\
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from lazykernels import jit
    from lazykernels.errors import CompileError
    source = Path(sys.argv[1]).read_text()
    jit.compiler_info()
    try:
        if sys.argv[2] == "thread":
            with ThreadPoolExecutor(1) as pool:
                job = pool.submit(jit.build, source, "victim")
                try:
                    job.result()
                except KeyboardInterrupt:
                    try:
                        job.result()
                    except CompileError as exc:
                        print("worker:", str(exc).splitlines()[0], flush=True)
                    raise
        else:
            jit.build(source, "victim")
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
        sys.exit(3)
    """
)


@pytest.mark.cpu
@needs_compiler
@pytest.mark.parametrize(
    ("signum", "where"),
    [(signal.SIGINT, "main"), (signal.SIGINT, "thread"), (signal.SIGTERM, "main")],
    ids=["SIGINT", "SIGINT-worker-thread", "SIGTERM"],
)
def test_signal_stops_the_compile_and_its_children(cache, tmp_path, monkeypatch, signum, where):
    pid_file = _install_fake_compiler(tmp_path, monkeypatch)
    info = jit.compiler_info()
    source = _unique(SUM_SOURCE)
    source_file = tmp_path / "victim.cpp"
    source_file.write_text(source)
    child = subprocess.Popen(
        [sys.executable, "-c", SIGNALLED_CHILD, str(source_file), where],
        env=_child_env(cache, LK_TEST_HANG=str(pid_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        compiler, grandchild = _wait_for_pid(pid_file, child)
        key = jit_cache.kernel_key(source, info)
        assert list(cache.glob(f"{key}.tmp-*.so"))  # half a library, being written
        os.kill(child.pid, signum)  # the process only, as `kill` or a supervisor would
        out, err = child.communicate(timeout=60)
        _assert_gone(compiler, grandchild)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        _kill_quietly(int(pid_file.read_text()) if pid_file.exists() else 0)
    if signum == signal.SIGTERM:
        assert child.returncode == -signal.SIGTERM, err.decode()  # it still dies of SIGTERM
    else:
        assert child.returncode == 3, err.decode()
        lines = out.decode().splitlines()
        assert lines[-1] == "KeyboardInterrupt"
        if where == "thread":
            assert "compilation of kernel 'victim' failed" in lines[0]
            assert "stopped by SIGINT" in lines[0]
    assert not list(cache.glob("*tmp-*"))  # no half-written artefact
    assert not (cache / f"{key}.so").exists()
    lib = jit.build(source, "after the signal")  # the cache still works
    assert _call_sum(lib, np.arange(4.0)) == 14.0


def test_signal_guard_chains_to_the_previous_handlers():
    seen = []
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # not guarded: left alone
    signal.signal(signal.SIGUSR1, previous)
    jit_process.install_signal_guard()
    assert signal.getsignal(signal.SIGINT) is jit_process._on_signal
    assert signal.getsignal(signal.SIGTERM) is jit_process._on_signal
    old = jit_process._PREVIOUS[signal.SIGINT]
    jit_process._PREVIOUS[signal.SIGINT] = lambda signum, frame: seen.append(signum)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        jit_process._PREVIOUS[signal.SIGINT] = old
    assert seen == [signal.SIGINT]


# ---------------------------------------------------------------- size budget


def test_source_over_the_budget_is_refused_before_compiling(cache, monkeypatch):
    monkeypatch.setenv("LAZYKERNELS_MAX_SOURCE_MB", "0.001")
    source = _unique(SUM_SOURCE) + "// padding\n" * 200
    with pytest.raises(CompileError) as error:
        jit.build(source, "big", "Sum of a formula of 7 nodes")
    message = str(error.value)
    assert "'big' (Sum of a formula of 7 nodes) is too large to compile" in message
    assert f"{len(source) / 1e6:.1f} MB" in message and "LAZYKERNELS_MAX_SOURCE_MB" in message
    assert not cache.exists() or not list(cache.iterdir())  # nothing written, no compiler
    monkeypatch.setenv("LAZYKERNELS_MAX_SOURCE_MB", "zero")
    with pytest.raises(CompileError, match="LAZYKERNELS_MAX_SOURCE_MB"):
        jit.build(source, "big")


@pytest.mark.cpu
@needs_compiler
def test_huge_unrolled_formula_is_refused_with_its_size(cache, monkeypatch):
    from lazykernels.numpy import Genred

    # 20,000 one-hot components used to print ~21 MB of unrolled C++; since the kernel IR
    # loops over large dimensions the source is ~10 kB, so the budget is lowered below it.
    monkeypatch.setenv("LAZYKERNELS_MAX_SOURCE_MB", "0.004")
    routine = Genred("OneHot(x, 20000)", ["x = Vi(1)"], reduction_op="Sum", axis=0)
    with pytest.raises(CompileError) as error:
        routine(np.zeros((3, 1)), backend="CPU")
    message = str(error.value)
    assert "is too large to compile" in message and "budget of 0.004 MB" in message
    assert "output dimension 20000" in message and "nodes" in message
