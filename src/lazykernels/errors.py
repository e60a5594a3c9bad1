"""Exception classes of lazykernels.

Every problem is raised where it is found, with a message that names the offending input
and says what was expected.
"""

from __future__ import annotations


class LazyKernelsError(Exception):
    """Base class of every error raised by lazykernels."""


class FormulaError(LazyKernelsError, ValueError):
    """A formula (string or IR) is malformed.

    When the formula came from text, ``text`` and ``column`` locate the problem and the
    message shows the text with a caret under the offending column.
    """

    def __init__(self, message: str, text: str | None = None, column: int | None = None):
        self.reason = message
        self.text = text
        self.column = column
        if text is not None and column is not None:
            caret = " " * column + "^"
            message = f"{message}\n    {text}\n    {caret}"
        super().__init__(message)


class DimensionError(FormulaError):
    """The vector dimensions of an operation's arguments do not fit its rule."""


class ShapeError(LazyKernelsError, ValueError):
    """An input array's shape does not match the alias it is bound to."""


class DtypeError(LazyKernelsError, TypeError):
    """An input array has an unsupported dtype (not floating, complex, or mixed dtypes)."""


class ArgumentError(LazyKernelsError, ValueError):
    """A call argument or an option has an invalid value (ranges, NaN input, K, ``out``...)."""


class CompileError(LazyKernelsError, RuntimeError):
    """The C++ compiler failed or is missing; the message carries the command and its log."""


class BackendError(LazyKernelsError, ValueError):
    """An unknown or unavailable backend was requested."""


class IndexingError(LazyKernelsError, IndexError):
    """A LazyTensor index selects something other than components of its last axis."""


class DenseSizeError(LazyKernelsError, MemoryError):
    """A LazyTensor is too large to be made dense (the message gives its size)."""


class CompatibilityError(LazyKernelsError, ImportError):
    """lazykernels cannot stand in for KeOps here (e.g. the real pykeops is already imported)."""


class CacheError(LazyKernelsError, RuntimeError):
    """The kernel cache directory cannot be trusted or used (owner, permissions, creation).

    The message names the folder, the problem and how to fix it.
    """


class CacheWarning(UserWarning):
    """A cached kernel failed a trust check (owner, mode or sha256) and was rebuilt."""
