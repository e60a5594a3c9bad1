"""Helpers of the CPU benchmark suite (``bench_cpu.py``): timing, the limit kernel, result
rows with their targets, the printed table, the JSON file and the log-log plot.

Not a test module: nothing here asserts timings. Everything is measured in one run, so the
ratios (ours / limit / NumPy / FAISS) compare numbers taken under the same machine load.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LIMIT_FLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp")


Probe = Callable[[], tuple[float | None, Any]]  # one timed call: (seconds, result)


def wall(fn: Callable[[], Any], calls: int = 1) -> Probe:
    """A probe timing ``fn`` with the wall clock: the best of ``calls`` calls in a row (as
    many as a :meth:`LimitKernel.probe` makes inside its process, when paired with it)."""

    def probe() -> tuple[float, Any]:
        best, result = math.inf, None
        for _ in range(calls):
            t0 = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - t0)
        return best, result

    return probe


def interleaved(
    probes: list[Probe], repeats: int, warmups: list[Callable[[], Any]] | None = None
) -> list[tuple[float | None, Any]]:
    """Best time and last result of each probe, the probes taking turns ``repeats`` times.

    Taking turns makes the ratio of two timings robust to the load of a shared machine
    drifting during the run: both see the same moments. ``warmups`` run first (compile,
    page faults; a small-size call saves a full-size warm-up at large sizes).
    """
    for warm in warmups or []:
        warm()
    best: list[float] = [math.inf] * len(probes)
    last: list[Any] = [None] * len(probes)
    for _ in range(max(1, repeats)):
        for k, probe in enumerate(probes):
            seconds, last[k] = probe()
            if seconds is not None:
                best[k] = min(best[k], seconds)
    return [(b if math.isfinite(b) else None, r) for b, r in zip(best, last)]


def best_time(
    fn: Callable[[], Any], repeats: int, warmup: Callable[[], Any] | None = None
) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    ((seconds, _),) = interleaved([wall(fn)], repeats, [warmup or fn])
    assert seconds is not None
    return seconds


def fmt_count(n: int) -> str:
    """``10000`` -> ``'1e4'``; other numbers as they are."""
    if n >= 1000:
        exp = round(math.log10(n))
        if 10**exp == n:
            return f"1e{exp}"
    return str(n)


# --------------------------------------------------------------------------- limit kernel


@dataclass
class LimitKernel:
    """The compiled hand-tuned Gaussian kernel (D=3, E=1, float32) of ``limit_gauss.cpp``.

    ``best`` keeps the best time seen per (M, N, threads): every run adds to it.
    """

    exe: Path
    best: dict[tuple[int, int, int], float] = field(default_factory=dict)

    def run(self, m: int, n: int, repeats: int = 1, threads: int = 0) -> float | None:
        """Best time of ``repeats`` runs of the kernel (its own timer), in a subprocess."""
        env = dict(os.environ)
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = [str(self.exe), str(m), str(n), str(max(1, repeats))]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        seconds = parse_limit_output(out.stdout, m, n)
        key = (m, n, threads)
        if seconds is not None:
            self.best[key] = min(seconds, self.best.get(key, math.inf))
        return seconds

    def probe(self, m: int, n: int, threads: int = 0) -> Probe:
        """A probe for :func:`interleaved`: one run of the kernel (best of
        :func:`inner_calls` inside the process, where the OpenMP team's start-up would
        weigh)."""
        return lambda: (self.run(m, n, inner_calls(m, n), threads), None)

    def seconds(self, m: int, n: int, repeats: int, threads: int = 0) -> float | None:
        """The best time seen for M x N, running the kernel first if it never ran there."""
        if (m, n, threads) not in self.best:
            self.run(m, n, repeats, threads)
        return self.best.get((m, n, threads))


def inner_calls(m: int, n: int) -> int:
    """Calls per probe at M x N: 3 below 1e9 pairs (the limit kernel's runs in one process;
    ours is timed as often, so that both sides get the same number of tries), else 1."""
    return 1 if m * n >= 1e9 else 3


def parse_limit_output(text: str, m: int, n: int) -> float | None:
    """Seconds from the limit kernel's line ``... best=0.0760 s  1.32 Gpairs/s ...``.

    The time is printed with 4 decimals: below 10 ms, the Gpairs/s figure is the more
    precise of the two and the time is derived from it.
    """
    t = re.search(r"best=([0-9.eE+-]+) s", text)
    r = re.search(r"([0-9.eE+-]+) Gpairs/s", text)
    if t is None:
        return None
    seconds = float(t.group(1))
    if seconds < 0.01 and r is not None and float(r.group(1)) > 0:
        seconds = m * n / (float(r.group(1)) * 1e9)
    return seconds


def build_limit(source: Path | None) -> tuple[LimitKernel | None, str]:
    """Compile the limit kernel; (None, reason) when the source or ``g++`` is missing."""
    if source is None or not source.exists():
        return None, f"no limit source at {source}"
    if shutil.which("g++") is None:
        return None, "no g++ on PATH"
    exe = Path(tempfile.mkdtemp(prefix="lk_bench_")) / "limit_gauss"
    proc = subprocess.run(
        ["g++", *LIMIT_FLAGS, str(source), "-o", str(exe)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None, "limit kernel did not compile: " + proc.stderr.strip()[-300:]
    return LimitKernel(exe), f"g++ {' '.join(LIMIT_FLAGS)} {source}"


# --------------------------------------------------------------------------- result rows


@dataclass
class Row:
    """One line of the table. Time ratios ``x ...`` are "how many times faster are we"."""

    case: str
    m: int = 0
    n: int = 0
    seconds: float | None = None
    limit_seconds: float | None = None
    numpy_seconds: float | None = None
    faiss_seconds: float | None = None
    measured: float | None = None  # the number the target is about
    unit: str = ""  # what ``measured`` is, e.g. "x limit", "x fwd", "us"
    target: str = ""  # e.g. ">= 0.70"
    passed: bool | None = None
    correct: bool | None = None  # result checked against an independent computation
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gpairs(self) -> float | None:
        if not self.seconds or not self.m or not self.n:
            return None
        return self.m * self.n / self.seconds / 1e9

    def ratio(self, other: float | None) -> float | None:
        """``other / seconds``: how many times faster than ``other`` this row is."""
        if other is None or not self.seconds:
            return None
        return other / self.seconds

    def check(self, measured: float | None, unit: str, op: str, bound: float) -> Row:
        """Set the measured value and evaluate the target ``measured op bound``."""
        self.measured, self.unit = measured, unit
        self.target = f"{op} {bound:g}"
        if measured is not None and math.isfinite(measured):
            self.passed = measured >= bound if op == ">=" else measured <= bound
        return self

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["gpairs_per_s"] = self.gpairs
        d["x_limit"] = self.ratio(self.limit_seconds)
        d["x_numpy"] = self.ratio(self.numpy_seconds)
        d["x_faiss"] = self.ratio(self.faiss_seconds)
        return d


def _num(v: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{spec}}"


def _seconds(v: float | None) -> str:
    if v is None:
        return f"{'-':>9}"
    return f"{v:>9.4f}" if v >= 1e-3 else f"{v * 1e6:>7.1f}us"


def _result(row: Row) -> str:
    if row.correct is False:
        return "WRONG"
    if row.passed is None:
        return "-"
    return "PASS" if row.passed else "FAIL"


HEADER = (
    f"{'case':<24} {'M x N':>11} {'seconds':>9} {'Gpairs/s':>8} {'x limit':>7} "
    f"{'x numpy':>7} {'x faiss':>7} {'measured':>15} {'target':>8} {'result':>6}  note"
)


def format_row(row: Row) -> str:
    """One printed table line."""
    size = f"{fmt_count(row.m)}x{fmt_count(row.n)}" if row.m and row.n else "-"
    measured = "-" if row.measured is None else f"{row.measured:.3g} {row.unit}"
    return (
        f"{row.case:<24} {size:>11} {_seconds(row.seconds)} {_num(row.gpairs, 8, '.3f')} "
        f"{_num(row.ratio(row.limit_seconds), 7, '.2f')} "
        f"{_num(row.ratio(row.numpy_seconds), 7, '.1f')} "
        f"{_num(row.ratio(row.faiss_seconds), 7, '.2f')} {measured:>15} "
        f"{row.target or '-':>8} {_result(row):>6}  {row.note}"
    ).rstrip()


def summary(rows: list[Row]) -> str:
    """``'PASS 9 / FAIL 3 / WRONG 0'`` over the rows that carry a target or a check."""
    results = [_result(r) for r in rows]
    return " / ".join(f"{k} {results.count(k)}" for k in ("PASS", "FAIL", "WRONG"))


# --------------------------------------------------------------------------- machine, output


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS does not tell)."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU model name as ``lscpu`` prints it (``platform.processor()`` otherwise)."""
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_revision(repo: Path) -> str | None:
    """The checked-out commit (read-only ``git rev-parse``), None outside a git tree."""
    if shutil.which("git") is None:
        return None
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


def machine_info(repo: Path) -> dict[str, Any]:
    """Date, CPU, core count, load and versions, for the JSON file and the table header."""
    import numpy as np

    info: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "revision": git_revision(repo),
    }
    for name in ("torch", "faiss"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    return info


def write_json(path: Path, info: dict[str, Any], rows: list[Row], curves: dict) -> None:
    """Write the machine info, every row and the plotted curves as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, "rows": [r.to_json() for r in rows], "curves": curves}
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


def write_png(path: Path, curves: dict[str, dict[int, float]], title: str) -> bool:
    """Log-log plot of time vs N (M = N) for every curve; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    styles = {"limit": "k--", "dense NumPy": "s-"}
    fig, ax = plt.subplots(figsize=(7, 5))
    for label, points in curves.items():
        if not points:
            continue
        ns = sorted(points)
        ax.loglog(ns, [points[n] for n in ns], styles.get(label, "o-"), label=label)
    ax.set_xlabel("M = N (points)")
    ax.set_ylabel("seconds (best of N)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
