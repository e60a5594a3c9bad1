"""Bounded compiler processes: a time limit, and no orphan when the caller stops.

Each compiler runs in its own process group (``start_new_session``), so that it and every
child it starts (``cc1plus``, ``as``, ``ld``) can be killed at once with ``killpg``. A
compile ends early, the whole group killed and its output file removed, when:

- it runs past ``LAZYKERNELS_COMPILE_TIMEOUT`` seconds (default :data:`DEFAULT_TIMEOUT`;
  ``0`` or ``none`` disables the limit): :class:`~lazykernels.errors.CompileError`;
- the thread waiting for it is interrupted (``KeyboardInterrupt``, or any other exception):
  the exception propagates once the group is dead;
- the process gets SIGINT or SIGTERM while compiles run in any thread: a signal guard,
  installed from the main thread on the first build, kills every live compiler group first,
  then hands the signal to the handler that was there before (for SIGTERM's default: the
  process dies of SIGTERM as it would have; for SIGINT's: ``KeyboardInterrupt``). Compiles
  waited for in other threads then raise ``CompileError`` ("stopped by SIGINT").

Only SIGKILL of the Python process cannot be caught: its compilers then finish on their own
(their output is a temporary file that is never loaded and that the next build removes).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CompileError

TIMEOUT_ENV = "LAZYKERNELS_COMPILE_TIMEOUT"
DEFAULT_TIMEOUT = 900.0
"""Seconds: generous (the largest kernels the size budget admits compile in a few
minutes today), but a build never runs for ever."""

_GUARDED = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Live:
    process: subprocess.Popen[bytes]
    output: Path
    stopped_by: str = ""  # why we killed it: "", "timeout", "SIGINT", "SIGTERM"


_LIVE: dict[int, _Live] = {}
_LIVE_LOCK = threading.RLock()  # re-entered by the signal handler (main thread)
_PREVIOUS: dict[int, Any] = {}


def compile_timeout() -> float | None:
    """The time limit of one compile in seconds, from ``LAZYKERNELS_COMPILE_TIMEOUT``.

    Raises:
        CompileError: the variable is not a number.

    Example:
        >>> compile_timeout() is None or compile_timeout() > 0
        True
    """
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    if text.lower() in ("0", "none", "inf"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise CompileError(
            f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds (0 or 'none': no limit)"
        )
    return value


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process``'s process group (the compiler and its children) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
        process.wait(timeout=30)


def _kill_all(reason: str) -> None:
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for entry in live:
        entry.stopped_by = entry.stopped_by or reason
        kill_group(entry.process)
        entry.output.unlink(missing_ok=True)


def _on_signal(signum: int, frame: Any) -> None:
    _kill_all(signal.Signals(signum).name)
    previous = _PREVIOUS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # The default action (terminate): restore it and deliver the signal again.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_signal_guard() -> None:
    """Chain our SIGINT/SIGTERM handler in front of the current ones (once; main thread only).

    Called on the cold path of every build; a no-op in other threads (Python only lets the
    main thread set handlers) and when already installed.
    """
    if _PREVIOUS or threading.current_thread() is not threading.main_thread():
        return
    for signum in _GUARDED:
        try:
            current = signal.getsignal(signum)
            if current is _on_signal:
                continue
            _PREVIOUS[signum] = current if current is not None else signal.SIG_DFL
            signal.signal(signum, _on_signal)
        except (ValueError, OSError):  # an embedded interpreter without signal support
            continue


def _at_exit() -> None:
    _kill_all("exit")


atexit.register(_at_exit)


def run_compiler(
    command: list[str], output: Path, describe: Callable[[], str]
) -> tuple[int, str, float | None]:
    """Run ``command`` (which writes ``output``) under the time limit; return its result.

    Args:
        command: the compiler command line.
        output: the file it writes; removed here when the compile is stopped.
        describe: the command and source, for error messages.

    Returns:
        ``(returncode, combined stdout and stderr, the time limit used)``.

    Raises:
        CompileError: the compiler cannot be started, ran past the time limit, or was
            stopped by a signal; the group is dead and ``output`` removed by then.
        BaseException: whatever interrupted the waiting thread (``KeyboardInterrupt``),
            after the group is killed.
    """
    timeout = compile_timeout()
    # The log goes to a file, not a pipe: a child that outlives the compiler (and so keeps
    # a pipe open) must not make us wait; it is killed with the group below.
    with tempfile.TemporaryFile() as log_file:
        # Started and registered under the lock: a signal handled in the main thread while
        # another thread starts a compiler then waits for the registration, so it always
        # finds the new process (a compiler started but not yet registered would be missed
        # by the guard, and its thread would wait on it for ever).
        with _LIVE_LOCK:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise CompileError(f"cannot run the C++ compiler: {exc}\n{describe()}") from exc
            entry = _Live(process, output)
            _LIVE[process.pid] = entry
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            entry.stopped_by = "timeout"
            kill_group(process)
            output.unlink(missing_ok=True)
            raise CompileError(
                f"the compiler did not finish within {timeout:g} s and was stopped (it and its "
                f"children were killed); raise {TIMEOUT_ENV} (seconds, 0 for no limit) if this "
                f"kernel really needs longer\n{describe()}"
            ) from None
        except BaseException:
            entry.stopped_by = entry.stopped_by or "interrupt"
            kill_group(process)
            output.unlink(missing_ok=True)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.pop(process.pid, None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # stragglers of a finished compiler
        log_file.seek(0)
        log = log_file.read().decode("utf-8", errors="replace")
    if entry.stopped_by:
        output.unlink(missing_ok=True)
        raise CompileError(
            f"the compiler was stopped by {entry.stopped_by} (it and its children were "
            f"killed)\n{describe()}"
        )
    return process.returncode, log, timeout


def live_compilers() -> list[int]:
    """Process ids of the compilers running now (tests, diagnostics)."""
    with _LIVE_LOCK:
        return sorted(_LIVE)
