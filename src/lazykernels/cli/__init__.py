"""The ``lazykernels`` command line: ``check``, ``cache``, ``precompile``, ``demo``.

Pipeline position: a thin shell over the public API. ``check`` probes the JIT
(:mod:`lazykernels.jit`) and runs one kernel, ``cache`` wraps the cache functions,
``precompile`` calls ``Genred(backend="CPU")`` on dummy arrays to fill the cache, and
``demo`` times the library against dense NumPy and PyTorch. One module per command group;
each registers its parser and a ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import LazyKernelsError
from ..version import __version__
from . import cache, check, demo, precompile
from ._common import CACHE_ENV_HELP, error

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lazykernels`` command and its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="lazykernels",
        description="Symbolic kernel matrices, JIT-compiled to C++: tools for the "
        "compiler, the kernel cache, ahead-of-time builds and a benchmark demo.",
        epilog=CACHE_ENV_HELP,
    )
    parser.add_argument("--version", action="version", version=f"lazykernels {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (check, cache, precompile, demo):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Errors of lazykernels (no compiler, a bad formula, a malformed file...) are printed as
    one readable line on stderr with status 1; usage errors give status 2.

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        lazykernels 0.1.0
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return 2
    if getattr(args, "run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except LazyKernelsError as exc:
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
