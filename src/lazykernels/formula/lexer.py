"""Tokenizer of formula strings and alias declarations.

The formula language is the subset of Python expressions that KeOps formula strings use:
names, calls, integer and float literals, ``[1, 2]`` lists of static parameters, and the
operators ``+ - * / ** | < > <= >= == !=``. Alias declarations add ``=``. Every token
records its column so that :class:`~lazykernels.errors.FormulaError` can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError

NAME = "NAME"
INT = "INT"
FLOAT = "FLOAT"
OP = "OP"
END = "END"

# Longest operators first so that "**" wins over "*" and "<=" over "<".
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f\v]+)
  | (?P<float>(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|<=|>=|==|!=|[-+*/|<>()\[\],=])
    """,
    re.VERBOSE,
)

# Integer literals longer than this are refused: they cannot be meant, and Python's int()
# itself refuses (ValueError) beyond 4300 digits.
MAX_INT_DIGITS = 100


@dataclass(frozen=True)
class Token:
    """One token: its kind (``NAME``, ``INT``, ``FLOAT``, ``OP``, ``END``), text and column.

    ``value`` holds the int / float of a number literal, the text otherwise.
    """

    kind: str
    text: str
    column: int
    value: object = None

    def describe(self) -> str:
        """How error messages name this token."""
        if self.kind == END:
            return "the end of the text"
        return repr(self.text)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``END`` token.

    Raises:
        FormulaError: a character that belongs to no token, or an unusable number literal.

    Example:
        >>> [t.text for t in tokenize("Exp(-x**2)")]
        ['Exp', '(', '-', 'x', '**', '2', ')', '']
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, got {type(text).__name__}")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FormulaError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup
        piece = m.group()
        if kind == "float":
            tokens.append(Token(FLOAT, piece, pos, _float_value(piece, text, pos)))
        elif kind == "int":
            if len(piece) > MAX_INT_DIGITS:
                raise FormulaError("integer literal too long", text, pos)
            tokens.append(Token(INT, piece, pos, int(piece)))
        elif kind == "name":
            tokens.append(Token(NAME, piece, pos, piece))
        elif kind == "op":
            tokens.append(Token(OP, piece, pos, piece))
        pos = m.end()
    tokens.append(Token(END, "", len(text)))
    return tokens


def _float_value(piece: str, text: str, pos: int) -> float:
    value = float(piece)  # rounds once, like Python's own literal; never raises here
    if value == float("inf"):
        raise FormulaError("float literal out of range", text, pos)
    return value


class TokenCursor:
    """A position in the tokens of ``text``, with errors located in that text.

    The alias reader and the formula parser both walk tokens with it.
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return tok

    def at(self, op: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == OP and tok.text == op

    def error(self, message: str, tok: Token | None = None) -> FormulaError:
        return FormulaError(message, self.text, (tok or self.peek()).column)

    def expect(self, op: str, message: str | None = None) -> Token:
        if not self.at(op):
            message = message or f"expected {op!r}"
            raise self.error(f"{message}, got {self.peek().describe()}")
        return self.advance()
