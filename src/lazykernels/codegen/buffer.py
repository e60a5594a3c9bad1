"""``IndentedBuffer``: builds generated source line by line, with nested ``{ ... }`` blocks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class IndentedBuffer:
    """A list of source lines with a current indentation level.

    Example:
        >>> b = IndentedBuffer()
        >>> with b.block("for (int k = 0; k < 4; ++k)"):
        ...     b.line("acc += k;")
        >>> print(b.getvalue(), end="")
        for (int k = 0; k < 4; ++k) {
          acc += k;
        }
    """

    def __init__(self, indent: str = "  ") -> None:
        self._lines: list[str] = []
        self._level = 0
        self._indent = indent

    def line(self, text: str = "") -> None:
        """Append one line at the current indentation (an empty line stays empty)."""
        self._lines.append(self._indent * self._level + text if text else "")

    def lines(self, texts: list[str]) -> None:
        """Append several lines at the current indentation."""
        for text in texts:
            self.line(text)

    def pragma(self, text: str) -> None:
        """Append ``#pragma text`` at the current indentation."""
        self.line("#pragma " + text)

    @contextmanager
    def block(self, header: str = "", close: str = "}") -> Iterator[None]:
        """``header {`` ... ``}`` with the body indented one level."""
        if header.startswith(("else", "catch")) and self._lines and self._lines[-1].strip() == "}":
            self._lines[-1] += f" {header} {{"  # "} else {"
        else:
            self.line(f"{header} {{" if header else "{")
        self._level += 1
        try:
            yield
        finally:
            self._level -= 1
            self.line(close)

    def getvalue(self) -> str:
        """The whole text, one trailing newline."""
        return "\n".join(self._lines) + "\n"
