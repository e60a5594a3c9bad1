"""``lazykernels demo``: the library's main job in one go, timed against dense arrays.

For growing N (1e3 ... 1e5, capped by ``--max-n``) it times a Gaussian kernel sum, its
gradient w.r.t. x and a K-nearest-neighbour search with lazykernels, dense NumPy and dense
PyTorch; prints a table with speed-ups and relative errors (vs float64 on sampled rows);
and saves a log-log plot of time vs N. Dense methods are skipped when their N x N matrices
would exceed ``--memory-budget``, and any measurement predicted (from the previous size,
quadratic cost) to overrun ``--time-budget`` is skipped, so the demo always ends in time,
even on the slow NumPy reference backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LazyKernelsError
from ._common import human_bytes, human_seconds, package_version
from ._demo_tasks import (
    RUNNERS,
    TASK_TITLES,
    TASKS,
    TOLERANCE,
    Data,
    LazyMethods,
    dense_bytes,
    relative_error,
)

DEFAULT_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
LAZY = "lazykernels"
METHODS = (LAZY, *RUNNERS)
WARMUP_SIZE = 256


@dataclass
class Cell:
    """One measurement: seconds, or a note saying why there is none; its relative error."""

    seconds: float | None = None
    note: str = ""
    error: float | None = None


def _size(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_integer() or value < 10:
        raise argparse.ArgumentTypeError(f"N must be an integer >= 10, got {text}")
    return int(value)


def register(subparsers: Any) -> None:
    """Add the ``demo`` command to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "demo",
        help="time kernel sums, gradients and kNN against dense NumPy/PyTorch; plot",
        description=(
            "Time a Gaussian kernel sum, its gradient w.r.t. x and a kNN search (ArgKMin, "
            "K=10) on N points in 3D (float32) for N = 1e3, 3e3, 1e4, 3e4, 1e5 (capped by "
            "--max-n), with lazykernels, dense NumPy and dense PyTorch. Prints a table with "
            "speed-ups and relative errors, and saves a log-log plot of time vs N."
        ),
        epilog="Install the optional dependencies with: pip install 'lazykernels[demo]'",
    )
    parser.add_argument(
        "--max-n",
        type=_size,
        default=DEFAULT_SIZES[-1],
        metavar="N",
        help="largest N (default: 100000; 3e4 is accepted)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lazykernels-demo.png"),
        metavar="FILE.png",
        help="where to save the plot (default: ./lazykernels-demo.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    parser.add_argument(
        "--backend",
        choices=("auto", "CPU", "reference"),
        default="auto",
        help="lazykernels backend (default: auto = CPU when a compiler works)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        default=2.0,
        metavar="GB",
        help="skip dense methods needing more memory than this (default: 2 GB)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=150.0,
        metavar="SECONDS",
        help="skip measurements predicted to end after this (default: 150 s)",
    )
    parser.set_defaults(run=run)


def sizes_up_to(max_n: int) -> list[int]:
    """The default sizes not above ``max_n`` (``[max_n]`` when it is below them all).

    Example:
        >>> sizes_up_to(20_000), sizes_up_to(500)
        ([1000, 3000, 10000], [500])
    """
    return [n for n in DEFAULT_SIZES if n <= max_n] or [max_n]


def choose_backend(requested: str) -> tuple[str, str]:
    """The lazykernels backend to use and a sentence saying why."""
    if requested == "reference":
        return "reference", "the NumPy reference backend, as requested"
    from ..cpu import unavailable_reason  # import cost

    reason = unavailable_reason()
    if reason is None:
        return "CPU", "the compiled CPU backend"
    if requested == "CPU":
        raise LazyKernelsError(f"backend 'CPU' is not available: {reason}")
    return "reference", f"the NumPy reference backend (CPU backend unavailable: {reason})"


class Progress:
    """A tqdm progress bar on stderr, or a plain text line when tqdm is not installed."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.visible = sys.stderr.isatty()  # no bar in logs and pipes
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, file=sys.stderr, leave=False, unit="run", disable=None)

    def step(self, label: str) -> None:
        """Announce the next measurement."""
        if self.bar is not None:
            self.bar.set_description(label)
        elif self.visible:
            print(f"\r[{self.done + 1:>2}/{self.total}] {label:<48}", end="", file=sys.stderr)

    def advance(self) -> None:
        """Mark the current measurement done."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Remove the bar (or end the text line)."""
        if self.bar is not None:
            self.bar.close()
        elif self.visible:
            print(f"\r{' ' * 56}\r", end="", file=sys.stderr)


def measure(function: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    """Run ``function``; repeat quick ones (up to 5 runs, 0.3 s) and keep the fastest."""
    start = time.perf_counter()
    output = function()
    best = spent = time.perf_counter() - start
    runs = 1
    while best < 0.05 and runs < 5 and spent < 0.3:
        start = time.perf_counter()
        function()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return output, best


class Demo:
    """The measurement loop: which runs to skip, and the table of results."""

    def __init__(self, args: argparse.Namespace, lazy: LazyMethods, has_torch: bool, start: float):
        self.args, self.lazy, self.has_torch = args, lazy, has_torch
        self.sizes = sizes_up_to(args.max_n)
        self.cells: dict[tuple[str, str, int], Cell] = {}
        self.last: dict[tuple[str, str], tuple[int, float]] = {}
        self.start = start  # the time budget counts from here (compilation included)

    def skip_reason(self, task: str, method: str, n: int) -> str | None:
        """Why a run is skipped (not installed, out of memory, too slow), or None."""
        if method == "PyTorch (dense)" and not self.has_torch:
            return "not installed"
        if method != LAZY and dense_bytes(n) > self.args.memory_budget * 1e9:
            return "out of memory"
        previous = self.last.get((task, method))
        if previous is not None:
            predicted = previous[1] * (n / previous[0]) ** 2
            elapsed = time.perf_counter() - self.start
            if elapsed + predicted > self.args.time_budget:
                return f"too slow (~{predicted:.0f} s)"
        return None

    def run_one(self, task: str, method: str, n: int, data: Data) -> Cell:
        """Time one method on one task; check its output."""
        reason = self.skip_reason(task, method, n)
        if reason is not None:
            return Cell(note=reason)
        runner = self.lazy.run if method == LAZY else RUNNERS[method]
        try:
            output, seconds = measure(lambda: runner(task, data))
        except MemoryError:
            return Cell(note="out of memory")
        except (LazyKernelsError, RuntimeError) as exc:  # torch reports OOM as RuntimeError
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return Cell(note=f"failed: {first}")
        self.last[(task, method)] = (n, seconds)
        return Cell(seconds, error=relative_error(task, output, data))

    def run_all(self) -> None:
        """Measure every (size, task, method), with a progress bar."""
        progress = Progress(len(self.sizes) * len(TASKS) * len(METHODS))
        try:
            for n in self.sizes:
                data = Data.random(n)
                for task in TASKS:
                    for method in METHODS:
                        progress.step(f"N={n:,} {task} {method}")
                        self.cells[(task, method, n)] = self.run_one(task, method, n, data)
                        progress.advance()
        finally:
            progress.close()

    def table(self) -> str:
        """The results as an aligned text table."""
        header = f"{'task':<22}{'N':>8}" + "".join(f"{m:>19}" for m in METHODS)
        header += f"{'vs NumPy':>10}{'vs PyTorch':>12}{'rel. error':>12}"
        lines = [header, "-" * len(header)]
        for task in TASKS:
            for n in self.sizes:
                cells = [self.cells[(task, m, n)] for m in METHODS]
                text = [
                    human_seconds(c.seconds) if c.seconds is not None else c.note for c in cells
                ]
                line = f"{TASK_TITLES[task]:<22}{n:>8,}" + "".join(f"{t:>19}" for t in text)
                for dense in cells[1:]:
                    line += f"{_ratio(dense, cells[0]):>{10 if dense is cells[1] else 12}}"
                error = cells[0].error
                line += f"{'-' if error is None else f'{error:.1e}':>12}"
                lines.append(line)
        return "\n".join(lines)

    def disagreements(self) -> list[str]:
        """Every measurement whose relative error exceeds its task's tolerance."""
        found = []
        for (task, method, n), cell in self.cells.items():
            if cell.error is not None and not cell.error <= TOLERANCE[task]:
                found.append(
                    f"{method} {TASK_TITLES[task]} at N={n:,}: relative error {cell.error:.1e} "
                    f"> {TOLERANCE[task]:.0e}"
                )
        return found

    def failures(self) -> list[str]:
        """lazykernels runs that failed (dense failures are the dense libraries' business)."""
        return [
            f"{TASK_TITLES[task]} at N={n:,}: {cell.note}"
            for (task, method, n), cell in self.cells.items()
            if method == LAZY and cell.note.startswith("failed")
        ]


def _ratio(dense: Cell, lazy: Cell) -> str:
    if dense.seconds is None or lazy.seconds is None or lazy.seconds <= 0:
        return "-"
    return f"{dense.seconds / lazy.seconds:.1f}x"


def _first_skip(demo: Demo, task: str, method: str) -> str:
    """`` (out of memory from N=30,000)`` for a legend, or "" when nothing was skipped."""
    for n in demo.sizes:
        note = demo.cells[(task, method, n)].note
        if note:
            return f" ({note.split(' (')[0]} from N={n:,})"
    return ""


def save_plot(demo: Demo, path: Path, backend: str) -> None:
    """Draw time vs N (log-log), one panel per task and one line per method, into ``path``."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.8))
    axes = figure.subplots(1, len(TASKS), sharey=True)
    # A fixed layout: "constrained" would cost seconds for the same picture.
    figure.subplots_adjust(left=0.055, right=0.99, bottom=0.11, top=0.87, wspace=0.06)
    styles = {LAZY: ("C0", "o"), "NumPy (dense)": ("C1", "s"), "PyTorch (dense)": ("C2", "^")}
    for ax, task in zip(axes, TASKS):
        for method in METHODS:
            points = [
                (n, demo.cells[(task, method, n)].seconds)
                for n in demo.sizes
                if demo.cells[(task, method, n)].seconds is not None
            ]
            if not points:
                continue
            color, marker = styles[method]
            label = f"{method} ({backend})" if method == LAZY else method
            label += _first_skip(demo, task, method)
            ax.plot(*zip(*points), marker=marker, color=color, linewidth=2, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(TASK_TITLES[task])
        ax.set_xlabel("number of points N (M = N)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    axes[0].set_ylabel("time (seconds, lower is better)")
    figure.suptitle(
        f"lazykernels vs dense NumPy and PyTorch: Gaussian kernel, D=3, float32 "
        f"({os.cpu_count()} CPU cores)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def _warm_up(lazy: LazyMethods, has_torch: bool, requested: str) -> LazyMethods:
    """Compile (or load) the kernels before timing; fall back to the reference backend."""
    data = Data.random(WARMUP_SIZE, seed=1)
    start = time.perf_counter()
    try:
        for task in TASKS:
            lazy.run(task, data)
    except LazyKernelsError as exc:
        if requested != "auto" or lazy.backend == "reference":
            raise
        print(f"the CPU backend failed ({exc}); using the NumPy reference backend instead")
        lazy = LazyMethods("reference")
        for task in TASKS:
            lazy.run(task, data)
    if has_torch:
        reason = lazy.use_torch_autograd(data)
        if reason is not None:
            print(f"lazykernels.torch is not usable here ({reason})")
        for task in TASKS:
            RUNNERS["PyTorch (dense)"](task, data)
    seconds = time.perf_counter() - start
    print(f"warm-up (kernels compiled or loaded, first calls): {human_seconds(seconds)}")
    return lazy


def run(args: argparse.Namespace) -> int:
    """Run the demo; 1 when a lazykernels run failed or results disagree."""
    start = time.perf_counter()
    backend, why = choose_backend(args.backend)
    has_torch = package_version("torch") is not None
    print(f"lazykernels demo: M = N points in 3D, float32; backend: {why}")
    threads = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))
    print(f"threads: {threads}; dense methods skipped above {args.memory_budget:g} GB")
    lazy = _warm_up(LazyMethods(backend), has_torch, args.backend)
    print(f"lazykernels backend: {lazy.backend}; gradient via {lazy.gradient_method()}")
    if not has_torch:
        print("PyTorch is not installed: its column is skipped (pip install 'lazykernels[demo]')")
    demo = Demo(args, lazy, has_torch, start)
    demo.run_all()
    print()
    print(demo.table())
    largest = dense_bytes(demo.sizes[-1])
    print(f"(dense methods at N={demo.sizes[-1]:,} would need about {human_bytes(largest)})")
    print(
        "rel. error: lazykernels vs float64 NumPy on sampled rows "
        "(kNN: gap in the neighbours' squared distances)"
    )
    if not args.no_plot:
        if package_version("matplotlib") is None:
            print("matplotlib is not installed: no plot (pip install 'lazykernels[plot]')")
        else:
            save_plot(demo, args.out, lazy.backend)
            print(f"plot saved to {args.out.resolve()}")
    problems = demo.failures() + demo.disagreements()
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if not problems:
        print("all results agree with float64 NumPy within tolerance")
    print(f"total time: {human_seconds(time.perf_counter() - demo.start)}")
    return 1 if problems else 0
