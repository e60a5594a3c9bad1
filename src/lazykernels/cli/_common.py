"""Small helpers shared by the command modules: formatting and package versions."""

from __future__ import annotations

import sys
from importlib import metadata

CACHE_ENV_HELP = (
    "The kernel cache lives in $LAZYKERNELS_CACHE when set, else in the user cache "
    "directory; it must be yours and writable by nobody else ($LAZYKERNELS_CACHE_PRIVATE=1: "
    "use a private user-<uid> subfolder of a shared one). The compiler is $CXX when set, else "
    "g++, c++ or clang++ on PATH; $LAZYKERNELS_COMPILE_TIMEOUT bounds a compile (seconds) and "
    "$LAZYKERNELS_MAX_SOURCE_MB the size of a kernel's source."
)


def human_bytes(size: int) -> str:
    """``size`` in bytes as a short human-readable string.

    Example:
        >>> human_bytes(0), human_bytes(2048), human_bytes(3_500_000)
        ('0 B', '2.0 KiB', '3.3 MiB')
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an "s" unless the count is 1.

    Example:
        >>> plural(1, "kernel"), plural(3, "kernel")
        ('1 kernel', '3 kernels')
    """
    return f"{count} {noun}{'' if count == 1 else 's'}"


def human_seconds(seconds: float) -> str:
    """A duration with a unit that keeps 3 significant digits.

    Example:
        >>> human_seconds(0.000123), human_seconds(0.0456), human_seconds(12.345)
        ('123 us', '45.6 ms', '12.3 s')
    """
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (without importing it), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def error(message: str) -> None:
    """Print ``message`` to stderr, prefixed like argparse's own errors."""
    print(f"lazykernels: error: {message}", file=sys.stderr)
