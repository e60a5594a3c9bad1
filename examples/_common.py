"""Shared plumbing of the tutorials in ``examples/``: arguments, timing, figures.

Every tutorial is a script, ``python examples/NAME.py [--n N] [--out-dir DIR] [--seed S]``,
with a ``main(argv=None) -> dict`` that returns its key numbers (the tests call it at a
tiny size). This module keeps that boilerplate out of the tutorials themselves:

- :func:`make_parser` builds the common command line (``--n``, ``--out-dir``, ``--seed``);
- :func:`timed` runs a function and measures it; :func:`print_timings` prints one line
  per method, so each tutorial shows lazykernels next to the dense NumPy/PyTorch way;
- :func:`dense_fits` says whether a dense ``M x N`` matrix is small enough to build (the
  dense comparison is skipped, with a message, when ``--n`` is scaled up past it);
- :func:`new_figure` / :func:`save_figure` use matplotlib's non-interactive Agg backend.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # scripts and tests write PNGs; never open a window

import matplotlib.pyplot as plt  # noqa: E402 (after the backend choice)

#: Largest dense matrix (in entries) the tutorials build for their comparisons: 4e8 bytes
#: of float64. Above it the dense column of the timing table is skipped.
DENSE_LIMIT = 5 * 10**7


def make_parser(description: str, n_default: int) -> argparse.ArgumentParser:
    """The common command line of a tutorial.

    Args:
        description: the tutorial's one-line summary (shown by ``--help``).
        n_default: the default problem size, chosen to run in seconds on 2 cores.

    Returns:
        A parser with ``--n``, ``--out-dir`` and ``--seed``; tutorials add their own options.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=n_default, help="problem size (points)")
    parser.add_argument(
        "--out-dir", type=Path, default=Path("."), help="where the PNG figures are written"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv`` (``None``: the command line) and create the output directory."""
    args = parser.parse_args(None if argv is None else list(argv))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return args


def timed(fn: Callable[..., Any], *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[Any, float]:
    """Call ``fn(*args, **kwargs)`` ``repeat`` times; return the last result and the best time.

    The first call of a new lazykernels formula includes its JIT compilation (or the load
    of the cached library); ``repeat=2`` reports the warm time instead.
    """
    best = float("inf")
    result = None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


def dense_fits(m: int, n: int) -> bool:
    """Whether a dense ``m x n`` matrix is small enough for the dense comparison."""
    return m * n <= DENSE_LIMIT


def print_timings(
    title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[float | None]]]
) -> None:
    """Print a timing table: one row per case, one column (in ms) per method.

    Args:
        title: the table's heading.
        columns: the method names; the first is lazykernels, the reference of the ratio
            columns ``t_k / t_0`` (above 1: lazykernels is faster than method k).
        rows: ``(case, seconds per column)``; ``None`` marks a skipped dense computation.
    """
    width = max(16, *(len(c) + 2 for c in columns))
    print(f"\n{title}")
    header = "".join(f"{c:>{width}s}" for c in columns)
    ratios = "".join(f"{'t' + str(k) + '/t0':>9s}" for k in range(1, len(columns)))
    print(f"  {'case':<18s}{header}{ratios}")
    for case, seconds in rows:
        cells = "".join(
            f"{'skipped':>{width}s}" if s is None else f"{s * 1e3:>{width - 3}.1f} ms"
            for s in seconds
        )
        ref = seconds[0]
        extra = "".join(
            f"{'-':>9s}" if (s is None or not ref) else f"{s / ref:8.2f}x" for s in seconds[1:]
        )
        print(f"  {case:<18s}{cells}{extra}")


def new_figure(ncols: int = 1, nrows: int = 1, size: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib figure with a grid of ``nrows x ncols`` axes (squeezed)."""
    return plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=True)


def save_figure(fig: Any, out_dir: Path, name: str) -> Path:
    """Save ``fig`` as ``out_dir / name`` (a PNG), close it, and print where it went."""
    path = Path(out_dir) / name
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure: {path}")
    return path
