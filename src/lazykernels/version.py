"""The library's version (one place: the package, the JIT cache keys and the CLI read it)."""

__version__ = "0.1.0"
