"""Alias declarations: ``"x = Vi(3)"``, ``"y = Vj(1, 3)"``, ``"p = Pm(2, 1)"`` (SPEC §3).

An alias names one input variable of a formula: its position in the call's argument list,
its vector dimension and its category (``Vi`` indexed by i, ``Vj`` by j, ``Pm`` a
parameter). Without an explicit position, an alias takes its index in the list. The legacy
``Vx`` / ``Vy`` spellings are accepted with a warning, and ``Var(position, dim, cat)`` is
accepted too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import FormulaError
from .ir import Cat, Node, var
from .lexer import END, INT, NAME, OP, Token, TokenCursor

CATEGORY_NAMES: Mapping[str, Cat] = {"Vi": Cat.I, "Vj": Cat.J, "Pm": Cat.PARAM}
"""Alias constructors and the category each declares."""

LEGACY_CATEGORY_NAMES: Mapping[str, str] = {"Vx": "Vi", "Vy": "Vj"}
"""Old KeOps spellings, accepted with a warning, and their replacements."""

# Names a formula gives a meaning of their own; an alias may not shadow them.
SPECIAL_FORMS = ("Var", "IntCst", "RatCst", "FloatCst", "Zero", "Grad")


@dataclass(frozen=True)
class Alias:
    """A named input variable.

    Attributes:
        name: the name used in formula strings, or None for an unnamed ``"Vi(3)"`` entry.
        node: the ``Var(position, dim, cat)`` node.
    """

    name: str | None
    node: Node

    @property
    def position(self) -> int:
        """Index of the argument this alias binds."""
        return self.node.params[0]

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.node.dim

    @property
    def cat(self) -> Cat:
        """Category (``Cat.I``, ``Cat.J`` or ``Cat.PARAM``)."""
        return self.node.params[2]


def describe_var(node: Node) -> str:
    """``Var(0,3,0)`` text of a variable node, for messages."""
    index, dim, cat = node.params
    return f"Var({index},{dim},{cat.value})"


def describe_alias(alias: Alias) -> str:
    """``alias 'x' = Var(0,3,0)``, for messages."""
    if alias.name is None:
        return f"alias {describe_var(alias.node)}"
    return f"alias {alias.name!r} = {describe_var(alias.node)}"


def parse_aliases(aliases: Sequence[str] | str) -> list[Alias]:
    """Parse alias declarations such as ``["x = Vi(3)", "y = Vj(1, 3)", "p = Pm(2, 1)"]``.

    Args:
        aliases: one declaration per input (a single string is read as a list of one).

    Returns:
        One :class:`Alias` per declaration, in order.

    Raises:
        FormulaError: a malformed declaration, a duplicated name, or two declarations of
            one position with different dimensions or categories.

    Example:
        >>> [str(a.node) for a in parse_aliases(["x = Vi(3)", "p = Pm(2, 1)"])]
        ['Var(0,3,0)', 'Var(2,1,2)']
    """
    if isinstance(aliases, str):
        aliases = [aliases]
    result = []
    names: dict[str, int] = {}
    positions: dict[int, Alias] = {}
    for number, text in enumerate(aliases):
        alias, name_token = _parse_one(text, number)
        if alias.name is not None:
            if alias.name in names:
                raise FormulaError(
                    f"duplicate alias name {alias.name!r} (already declared by alias "
                    f"{names[alias.name]})",
                    text,
                    name_token.column if name_token else 0,
                )
            names[alias.name] = number
        other = positions.get(alias.position)
        if other is not None and other.node is not alias.node:
            raise FormulaError(
                f"{describe_alias(alias)} conflicts with {describe_alias(other)}: "
                f"position {alias.position} is declared twice",
                text,
                0,
            )
        positions.setdefault(alias.position, alias)
        result.append(alias)
    return result


def check_aliases(aliases: Iterable[Alias]) -> dict[int, Alias]:
    """Validate already-built aliases; return them by position.

    Raises:
        FormulaError: duplicated names, non-variable nodes, or conflicting positions.
    """
    names: set[str] = set()
    positions: dict[int, Alias] = {}
    for alias in aliases:
        if not isinstance(alias, Alias) or alias.node.op.name != "Var":
            raise FormulaError(f"expected an Alias of a Var node, got {alias!r}")
        if alias.name is not None:
            if alias.name in names:
                raise FormulaError(f"duplicate alias name {alias.name!r}")
            names.add(alias.name)
        other = positions.setdefault(alias.position, alias)
        if other.node is not alias.node:
            raise FormulaError(
                f"{describe_alias(alias)} conflicts with {describe_alias(other)}: "
                f"position {alias.position} is declared twice"
            )
    return positions


def as_aliases(aliases: Sequence[str] | Sequence[Alias] | str | None) -> list[Alias]:
    """Alias declarations given as strings (parsed) or as :class:`Alias` objects (checked)."""
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    aliases = list(aliases)
    if all(isinstance(a, Alias) for a in aliases):
        check_aliases(aliases)  # type: ignore[arg-type]
        return aliases  # type: ignore[return-value]
    if all(isinstance(a, str) for a in aliases):
        return parse_aliases(aliases)  # type: ignore[arg-type]
    raise FormulaError("aliases must be all strings ('x = Vi(3)') or all Alias objects")


def alias_names(aliases: Iterable[Alias]) -> dict[Node, str]:
    """``{var node: name}`` of the named aliases, for :func:`~.printer.to_string`."""
    return {a.node: a.name for a in aliases if a.name is not None}


def complete_aliases(aliases: Sequence[Alias], *formulas: Node) -> tuple[Alias, ...]:
    """``aliases`` followed by an unnamed alias for every other variable of ``formulas``.

    This is KeOps's ``complete_aliases``: ``Var(3,1,1)`` written directly in a formula (or
    created by ``Grad`` without a gradient input) is an input too. The added aliases come
    in the order of their positions.

    Raises:
        FormulaError: a variable of the formulas conflicts with an alias at its position.
    """
    positions = check_aliases(aliases)
    extra: dict[int, Alias] = {}
    for formula in formulas:
        for v in formula.variables():
            known = positions.get(v.params[0]) or extra.get(v.params[0])
            if known is None:
                extra[v.params[0]] = Alias(None, v)
            elif known.node is not v:
                raise FormulaError(
                    f"variable {describe_var(v)} of the formula conflicts with "
                    f"{describe_alias(known)}"
                )
    return (*aliases, *(extra[p] for p in sorted(extra)))


# --- one declaration ---------------------------------------------------------------------


class _Cursor(TokenCursor):
    """Token cursor over one declaration, raising errors located in its text."""

    def signed_int(self, what: str) -> tuple[int, Token]:
        tok = self.peek()
        sign = 1
        if tok.kind == OP and tok.text == "-" and self.peek(1).kind == INT:
            self.advance()
            sign = -1
        num = self.peek()
        if num.kind != INT:
            raise self.error(f"expected an integer ({what}), got {num.describe()}", num)
        self.advance()
        return sign * int(num.value), tok  # type: ignore[call-overload]


_EXAMPLE = "e.g. 'x = Vi(3)', 'y = Vj(1, 3)' or 'p = Pm(2, 1)'"


def _parse_one(text: object, number: int) -> tuple[Alias, Token | None]:
    if not isinstance(text, str):
        raise FormulaError(f"alias {number} must be a string ({_EXAMPLE}), got {text!r}")
    cur = _Cursor(text)
    name_token = None
    if cur.peek().kind == NAME and cur.peek(1).kind == OP and cur.peek(1).text == "=":
        name_token = cur.advance()
        cur.advance()
        _check_name(cur, name_token)
    kind = cur.peek()
    if kind.kind != NAME:
        raise cur.error(f"expected an alias declaration ({_EXAMPLE}), got {kind.describe()}")
    cur.advance()
    cat, replacement = _category(cur, kind)
    if replacement is not None:
        warnings.warn(
            f"alias {text.strip()!r}: {kind.text!r} is the old name of {replacement!r}; "
            f"write {replacement!r} instead",
            UserWarning,
            stacklevel=3,
        )
    cur.expect("(", f"expected '(' after {kind.text!r}")
    values: list[tuple[int, Token]] = [cur.signed_int("dimension or position")]
    while cur.peek().kind == OP and cur.peek().text == ",":
        cur.advance()
        values.append(cur.signed_int("dimension"))
    close = cur.expect(")", "expected ',' or ')'")
    if cur.peek().kind != END:
        raise cur.error(f"unexpected {cur.peek().describe()} after the alias")
    position, dim, cat = _fields(cur, kind, cat, values, close, number)
    name = name_token.text if name_token is not None else None
    return Alias(name, var(position, dim, cat)), name_token


def _check_name(cur: _Cursor, name_token: Token) -> None:
    from .ops import OPS  # the registry imports the IR: resolved at call time

    name = name_token.text
    if name in OPS or name in SPECIAL_FORMS:
        raise cur.error(f"alias name {name!r} is the name of an operation", name_token)
    if name in CATEGORY_NAMES or name in LEGACY_CATEGORY_NAMES:
        raise cur.error(f"alias name {name!r} is reserved", name_token)


def _category(cur: _Cursor, kind: Token) -> tuple[Cat | None, str | None]:
    if kind.text in CATEGORY_NAMES:
        return CATEGORY_NAMES[kind.text], None
    if kind.text in LEGACY_CATEGORY_NAMES:
        replacement = LEGACY_CATEGORY_NAMES[kind.text]
        return CATEGORY_NAMES[replacement], replacement
    if kind.text == "Var":
        return None, None  # the category is the third number
    raise cur.error(
        f"unknown variable category {kind.text!r}: expected Vi (indexed by i), "
        "Vj (indexed by j) or Pm (parameter)",
        kind,
    )


def _fields(
    cur: _Cursor,
    kind: Token,
    cat: Cat | None,
    values: list[tuple[int, Token]],
    close: Token,
    number: int,
) -> tuple[int, int, Cat]:
    """(position, dim, category) from the numbers of ``Vi(...)`` or ``Var(...)``."""
    if cat is None:
        if len(values) != 3:
            raise cur.error("Var expects 3 integers (position, dim, cat)", close)
        (code, code_tok) = values[2]
        if code not in (0, 1, 2):
            raise cur.error(
                f"bad variable category {code}: expected 0 (indexed by i), 1 (indexed by j) "
                "or 2 (parameter)",
                code_tok,
            )
        cat = Cat(code)
        values = values[:2]
    if len(values) == 1:
        (position, pos_tok), (dim, dim_tok) = (number, kind), values[0]
    elif len(values) == 2:
        (position, pos_tok), (dim, dim_tok) = values
    else:
        raise cur.error(f"{kind.text} expects (dim) or (position, dim)", values[2][1])
    if position < 0:
        raise cur.error(f"the position must be >= 0, got {position}", pos_tok)
    if dim < 1:
        raise cur.error(f"the dimension must be >= 1, got {dim}", dim_tok)
    return position, dim, cat
