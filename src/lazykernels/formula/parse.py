"""The parser of KeOps formula strings: a tokenizer plus recursive descent over ``OPS``.

KeOps ``eval``s formula strings as Python; this module reads the same language without
evaluating anything. The grammar is Python's expression grammar restricted to what
formulas use, with Python's precedences (loosest first)::

    comparison  a < b, a > b, a <= b, a >= b, a == b, a != b   (not chained)
    a | b       Scalprod
    a + b, a - b
    a * b, a / b
    -a, +a
    a ** b      (right-associative; binds tighter than a unary minus on its left)
    Name(formula args..., static params...), Var(i, d, c), alias names, literals, (...)

A call ``Name(...)`` is generic over the registry: the first ``card.arity`` arguments are
formulas, the rest static parameters (integers, or ``[1, 2]`` lists read as tuples). The
special forms are ``Var(i, d, c)``, ``IntCst(n)``, ``RatCst(p, q)``, ``FloatCst(x)``,
``Zero(d)`` and ``Grad(F, v)`` without gradient input (a new variable is created, as in
KeOps). Operators follow KeOps's overloads: ``f / n`` (integer n) is ``RatCst(1, n) * f``,
``1 / f`` is ``Inv(f)``, ``f ** 2`` is ``Square(f)``, ``f ** n`` is ``Pow(f, n)``,
``f ** 0.5`` is ``Sqrt(f)``, ``f ** -0.5`` is ``Rsqrt(f)``, other exponents give ``Powf``.
A minus sign directly in front of a number literal is part of the literal (``-3`` is
``IntCst(-3)``), except in front of ``**`` (``-2**2`` is ``-(2**2)``, as in Python).

Every problem raises :class:`~lazykernels.errors.FormulaError` with the column of the
offending token; nothing else escapes, whatever the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..errors import FormulaError, LazyKernelsError
from .aliases import (
    CATEGORY_NAMES,
    LEGACY_CATEGORY_NAMES,
    SPECIAL_FORMS,
    Alias,
    as_aliases,
    complete_aliases,
    describe_alias,
    describe_var,
    parse_aliases,
)
from .ir import Cat, Node, const, make, var, zero
from .lexer import END, FLOAT, INT, NAME, OP, Token, TokenCursor
from .opspec import OpSpec
from .syntax import (
    BINARY_POWER,
    CMP,
    ReductionSyntax,
    binary_node,
    close_matches,
    plural,
    power_node,
    signature,
)

__all__ = [
    "Alias",
    "ParsedFormula",
    "ParsedReduction",
    "ReductionSyntax",
    "binary_node",
    "parse_aliases",
    "parse_formula",
    "parse_formula_info",
    "parse_reduction",
    "power_node",
]

MAX_DEPTH = 100
"""Deepest nesting (parentheses, calls, operators) a formula string may have."""

# Exceptions an op's dimension rule or expansion may raise on nonsensical parameters.
_BUILD_ERRORS = (LazyKernelsError, KeyError, TypeError, ValueError, ArithmeticError, IndexError)


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed formula and what a caller needs to bind its inputs.

    Attributes:
        formula: the formula.
        aliases: the aliases completed with every other variable of the formula *as written*
            (KeOps's ``complete_aliases``: an inline ``Var(k, d, c)`` is an argument even
            when it simplifies away, as in ``Grad(Var(1,1,1), Var(0,1,0), Var(2,1,0))``):
            one per call argument.
        new_variables: variables the text created (``Grad(F, v)`` without gradient input).
    """

    formula: Node
    aliases: tuple[Alias, ...] = ()
    new_variables: tuple[Node, ...] = ()


@dataclass(frozen=True)
class ParsedReduction:
    """A parsed ``<Name>_Reduction(...)`` string.

    Attributes:
        name: the part before ``_Reduction`` (``"Sum"``, ``"KMin"``, ``"LogSumExp"``...).
        formula: the reduced formula F.
        output_cat: category of the OUTPUT (KeOps's tagI): ``Cat.I`` (tagI 0) means one
            output row per i, the reduction running over j.
        k: K of the KMin family, else None.
        formula2: the second formula (weight) of the log-sum-exp family, else None.
        aliases: the aliases completed with every other variable of both formulas, as
            written (see :class:`ParsedFormula`).
        new_variables: variables created by ``Grad(F, v)`` without gradient input.
    """

    name: str
    formula: Node
    output_cat: Cat
    k: int | None = None
    formula2: Node | None = None
    aliases: tuple[Alias, ...] = ()
    new_variables: tuple[Node, ...] = ()


# --- public entry points ---------------------------------------------------------------------


def parse_formula(text: str, aliases: Sequence[str] | Sequence[Alias] = ()) -> Node:
    """Parse a KeOps formula string.

    Args:
        text: e.g. ``"Exp(-SqDist(x, y)) * b"``.
        aliases: declarations of the names used in ``text`` (``["x = Vi(3)", ...]``), as
            strings or as :class:`Alias` objects.

    Returns:
        The formula's (interned) node.

    Raises:
        FormulaError: malformed text, unknown names, dimension errors; the message shows
            the text with a caret under the offending column.

    Example:
        >>> str(parse_formula("Exp(-(x - y)**2)", ["x = Vi(1)", "y = Vj(1)"]))
        'Exp(-(Var(0,1,0) - Var(1,1,1))**2)'
    """
    return parse_formula_info(text, aliases).formula


def parse_formula_info(text: str, aliases: Sequence[str] | Sequence[Alias] = ()) -> ParsedFormula:
    """:func:`parse_formula`, also returning the completed aliases and created variables."""
    parser = _Parser(text, as_aliases(aliases))
    formula = parser.run(parser.expression)
    aliases = complete_aliases(parser.aliases, formula, *parser.written)
    return ParsedFormula(formula, aliases, tuple(parser.new_variables))


def parse_reduction(
    text: str,
    aliases: Sequence[str] | Sequence[Alias],
    syntax: Mapping[str, ReductionSyntax],
) -> ParsedReduction:
    """Parse ``<Name>_Reduction(formula[, K], tagI[, formula2])``.

    ``tagI`` is the category of the output: 0 = indexed by i (reduction over j), 1 =
    indexed by j. ``Zero_Reduction(dim, tagI)`` gives the formula ``Zero(dim)``. The
    reductions and their arguments come from ``syntax`` (the reduction cards own it:
    :func:`lazykernels.reductions.parse_reduction` passes their table).

    Example:
        >>> from lazykernels.reductions import SYNTAX
        >>> r = parse_reduction("Sum_Reduction(x * y, 1)", ["x=Vi(3)", "y=Vj(3)"], SYNTAX)
        >>> r.name, r.output_cat
        ('Sum', <Cat.J: 1>)
    """
    parser = _Parser(text, as_aliases(aliases))
    parser.reduction_syntax = syntax
    return parser.run(parser.reduction)


# --- the parser ------------------------------------------------------------------------------


class _Parser(TokenCursor):
    """Recursive descent over one text; ``run`` converts stray errors into FormulaError."""

    def __init__(self, text: str, aliases: list[Alias]):
        super().__init__(text)
        self.depth = 0
        self.aliases = aliases
        self.names = {a.name: a.node for a in aliases if a.name is not None}
        self.by_position: dict[int, tuple[Node, str]] = {
            a.position: (a.node, describe_alias(a)) for a in aliases
        }
        self.new_variables: list[Node] = []
        self.reduction_syntax: Mapping[str, ReductionSyntax] = {}
        # every Var(k, d, c) of the text and every created gradient input, in text order
        self.written: list[Node] = []

    def run(self, rule):
        try:
            result = rule()
            if self.at("="):
                raise self.error("unexpected '=' (write '==' for the Equal operation)")
            if self.peek().kind != END:
                raise self.error(f"unexpected {self.peek().describe()} after the formula")
            return result
        except RecursionError:
            raise self.error("the formula is nested too deeply") from None

    def build(self, tok: Token, build, *args):
        """Call ``build(*args)``, re-raising its errors as FormulaError located at ``tok``."""
        try:
            return build(*args)
        except FormulaError as err:
            try:
                located = type(err)(err.reason, self.text, tok.column)
            except TypeError:
                located = FormulaError(err.reason, self.text, tok.column)
            raise located from None
        except KeyError as err:
            missing = err.args[0] if err.args else "an operation"
            raise self.error(f"{missing} is not available (needed by {tok.text!r})", tok) from err
        except _BUILD_ERRORS as err:
            raise self.error(f"invalid arguments for {tok.text!r}: {err}", tok) from err

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the formula is nested too deeply (more than {MAX_DEPTH} levels)")

    # expressions
    def expression(self, min_power: int = CMP) -> Node:
        self.enter()
        left = self.unary()
        compared = False
        while True:
            tok = self.peek()
            power = BINARY_POWER.get(tok.text) if tok.kind == OP else None
            if power is None or power < min_power:
                break
            if power == CMP:
                if compared:
                    raise self.error("chained comparisons are not supported: add parentheses")
                compared = True
            self.advance()
            right = self.expression(power + 1)
            left = self.build(tok, binary_node, tok.text, left, right)
        self.depth -= 1
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind != OP or tok.text not in ("+", "-"):
            return self.power()
        nxt = self.peek(1)
        if tok.text == "-" and nxt.kind in (INT, FLOAT) and not self.at("**", 2):
            self.advance()
            self.advance()
            return const(-nxt.value)  # type: ignore[operator]
        self.advance()
        self.enter()
        operand = self.unary()
        self.depth -= 1
        return operand if tok.text == "+" else self.build(tok, make, "Minus", (operand,))

    def power(self) -> Node:
        base = self.primary()
        if not self.at("**"):
            return base
        tok = self.advance()
        self.enter()
        exponent = self.unary()
        self.depth -= 1
        return self.build(tok, power_node, base, exponent)

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind in (INT, FLOAT):
            self.advance()
            return const(tok.value)  # type: ignore[arg-type]
        if tok.kind == NAME:
            if self.at("(", 1):
                return self.call()
            self.advance()
            return self.variable(tok)
        if self.at("("):
            self.advance()
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("["):
            raise self.error("a list [...] is only allowed as a static parameter of an operation")
        if tok.kind == END:
            raise self.error("unexpected end of the text: expected a formula")
        if self.at("="):
            raise self.error("unexpected '=' (write '==' for the Equal operation)")
        raise self.error(f"expected a formula, got {tok.describe()}")

    def variable(self, tok: Token) -> Node:
        from .ops import OPS

        name = tok.text
        if name in self.names:
            return self.names[name]
        if name in OPS or name in SPECIAL_FORMS:
            raise self.error(f"{name!r} is an operation: call it, as in '{name}(...)'", tok)
        hint = close_matches(name, list(self.names))
        raise self.error(
            f"unknown variable {name!r}: declare it in the aliases, e.g. '{name} = Vi(3)'{hint}",
            tok,
        )

    # calls
    def call(self) -> Node:
        from .ops import OPS

        tok = self.peek()
        name = tok.text
        special = _SPECIAL.get(name)
        if special is not None:
            self.advance()
            self.advance()  # "("
            return special(self, tok)
        if name in self.names:
            raise self.error(f"{name!r} is a variable, not an operation", tok)
        if name in CATEGORY_NAMES or name in LEGACY_CATEGORY_NAMES:
            kind = LEGACY_CATEGORY_NAMES.get(name, name)
            raise self.error(
                f"{name}(...) cannot be used inside a formula: declare the variable in the "
                f"aliases (e.g. 'x = {kind}(3)') and use its name, or write "
                "Var(position, dim, cat)",
                tok,
            )
        card = OPS.get(name)
        if card is None:
            if name.endswith("_Reduction"):
                raise self.error(f"{name} is a reduction: only allowed around a formula", tok)
            hint = close_matches(name, [*OPS, *SPECIAL_FORMS])
            raise self.error(f"unknown operation {name!r}{hint}", tok)
        self.advance()
        self.advance()  # "("
        return self.generic_call(tok, card)

    def generic_call(self, tok: Token, card: OpSpec) -> Node:
        args: list[Node] = []
        params: list[object] = []
        fixed = card.arity + card.nparams
        count = 0
        while not self.at(")"):
            if count < card.arity + card.optional_args:
                args.append(self.expression())
            elif count < fixed or card.variadic_params:
                params.append(self.static_param(card, count - card.arity))
            else:
                raise self.error(f"{card.name} expects {signature(card)}")
            count += 1
            if not self.at(","):
                break
            self.advance()
        if not self.at(")"):
            raise self.error(
                f"expected ',' or ')' in {card.name}(...), got {self.peek().describe()}"
            )
        if count < fixed:
            raise self.error(f"{card.name} expects {signature(card)}")
        self.advance()
        return self.build(tok, make, card.name, tuple(args), tuple(params))

    def static_param(self, card: OpSpec, k: int) -> object:
        what = card.param_names[k] if k < len(card.param_names) else f"parameter {k + 1}"
        if self.at("["):
            self.advance()
            items: list[int] = []
            while not self.at("]"):
                items.append(self.integer(f"an integer in the list {what} of {card.name}"))
                if not self.at(","):
                    break
                self.advance()
            self.expect("]", "expected ',' or ']'")
            return tuple(items)
        if self.peek(1 if self.at("-") else 0).kind == FLOAT:
            return self.number()
        return self.integer(f"an integer for {what} of {card.name}")

    def number(self) -> int | float:
        """A number literal, with an optional minus sign."""
        sign = -1 if self.at("-") else 1
        if sign < 0:
            self.advance()
        tok = self.advance()
        return sign * tok.value  # type: ignore[operator]

    def integer(self, what: str) -> int:
        """An integer literal, with an optional minus sign."""
        number = self.peek(1 if self.at("-") else 0)
        if number.kind != INT:
            raise self.error(f"expected {what}, got {number.describe()}", number)
        return self.number()  # type: ignore[return-value]

    def int_args(self, name: str, names: tuple[str, ...]) -> list[tuple[int, Token]]:
        """The integers of ``name(i, j, ...)`` after the "(", with their first tokens."""
        usage = f"{name} expects {plural(len(names), 'integer')} ({', '.join(names)})"
        values = []
        for k, what in enumerate(names):
            if k:
                self.expect(",", f"{usage}: expected ','")
            tok = self.peek()
            values.append((self.integer(f"an integer ({what}) in {name}(...)"), tok))
        if self.at(","):
            self.advance()
        if not self.at(")"):
            raise self.error(usage)
        self.advance()
        return values

    # special forms
    def var_form(self, tok: Token) -> Node:
        (index, _), (dim, _), (code, cat_tok) = self.int_args("Var", ("index", "dim", "cat"))
        if code not in (0, 1, 2):
            raise self.error(
                f"bad variable category {code}: expected 0 (indexed by i), 1 (indexed by j) "
                "or 2 (parameter)",
                cat_tok,
            )
        node = self.build(tok, var, index, dim, Cat(code))
        self.register(node, tok, describe_var(node))
        self.written.append(node)
        return node

    def register(self, node: Node, tok: Token, what: str) -> None:
        """Record the variable at its position; two different ones at one position clash."""
        known = self.by_position.setdefault(node.params[0], (node, what))
        if known[0] is not node:
            raise self.error(f"{what} conflicts with {known[1]} at position {node.params[0]}", tok)

    def intcst_form(self, tok: Token) -> Node:
        ((n, _),) = self.int_args("IntCst", ("n",))
        return const(n)

    def ratcst_form(self, tok: Token) -> Node:
        (p, _), (q, q_tok) = self.int_args("RatCst", ("p", "q"))
        if q == 0:
            raise self.error("RatCst: the denominator must not be 0", q_tok)
        return const(Fraction(p, q))

    def zero_form(self, tok: Token) -> Node:
        ((d, _),) = self.int_args("Zero", ("dim",))
        return self.build(tok, zero, d)

    def floatcst_form(self, tok: Token) -> Node:
        sign = -1.0 if self.at("-") else 1.0
        if sign < 0:
            self.advance()
        value_tok = self.advance()
        if value_tok.kind in (INT, FLOAT):
            value = float(value_tok.value)  # type: ignore[arg-type]
        elif value_tok.kind == NAME and value_tok.text in ("inf", "nan"):
            value = float(value_tok.text)
        else:
            raise self.error("FloatCst expects a number, inf or nan", value_tok)
        self.expect(")")
        return const(sign * value)

    def grad_form(self, tok: Token) -> Node:
        from .ops import OPS

        f = self.expression()
        self.expect(",", "Grad expects (formula, variable[, gradient input]): expected ','")
        v_tok = self.peek()
        v = self.expression()
        if v.op.name != "Var":
            raise self.error("Grad: the second argument must be a variable", v_tok)
        gradin = None
        if self.at(",") and not self.at(")", 1):
            self.advance()
            gradin = self.expression()
        if self.at(","):
            self.advance()
        self.expect(")", "Grad expects (formula, variable[, gradient input]): expected ')'")
        if gradin is None:
            gradin = self.new_gradient_input(tok, f, v)
        if "Grad" in OPS:
            return self.build(tok, make, "Grad", (f, v, gradin))
        from .grad import grad

        return self.build(tok, grad, f, v, gradin)

    def new_gradient_input(self, tok: Token, f: Node, v: Node) -> Node:
        """KeOps: ``Var(1 + max index, F.dim, 1 - v.cat)``; declared positions count too."""
        if v.params[2] not in (Cat.I, Cat.J):
            raise self.error(
                "Grad without a gradient input needs an i- or j-variable, not a parameter: "
                "write Grad(F, v, e)",
                tok,
            )
        taken = [u.params[0] for u in f.variables()] + [a.position for a in self.aliases]
        node = var(max(taken, default=-1) + 1, f.dim, v.params[2].opposite())
        self.register(node, tok, f"the gradient input {describe_var(node)} created by Grad")
        if node not in self.new_variables:
            self.new_variables.append(node)
            self.written.append(node)
        return node

    # reductions
    def reduction(self) -> ParsedReduction:
        tok = self.peek()
        if tok.kind != NAME or not self.at("(", 1) or not tok.text.endswith("_Reduction"):
            raise self.error(
                f"expected a reduction such as 'Sum_Reduction(formula, 0)', got {tok.describe()}"
            )
        name = tok.text[: -len("_Reduction")]
        table = self.reduction_syntax
        syntax = table.get(name)
        if syntax is None:
            hint = close_matches(tok.text, [f"{n}_Reduction" for n in table])
            raise self.error(f"unknown reduction {tok.text!r}{hint}", tok)
        self.advance()
        self.advance()
        if name == "Zero":
            dim_tok = self.peek()
            formula = self.build(dim_tok, zero, self.integer("an integer (the dimension)"))
        else:
            formula = self.expression()
        k = None
        if syntax.takes_k:
            self.expect(",", f"{tok.text} expects (formula, K, tagI): expected ','")
            k_tok = self.peek()
            k = self.integer("an integer K")
        shape = "(formula, K, tagI" if syntax.takes_k else "(formula, tagI"
        shape += {"none": ")", "optional": "[, formula2])", "required": ", formula2)"}[
            syntax.formula2
        ]
        self.expect(",", f"{tok.text} expects {shape}: expected ','")
        if k is not None and k < 1:
            raise self.error(f"K must be a positive integer, got {k}", k_tok)
        tag_tok = self.peek()
        tag = self.integer("an integer tagI (0 or 1)")
        if tag not in (0, 1):
            raise self.error(
                f"tagI must be 0 (output indexed by i, reduction over j) or 1 (output indexed "
                f"by j, reduction over i), got {tag}",
                tag_tok,
            )
        formula2 = None
        if self.at(",") and not self.at(")", 1):
            if syntax.formula2 == "none":
                raise self.error(f"{tok.text} expects {shape}", self.peek(1))
            self.advance()
            formula2 = self.expression()
        if self.at(","):
            self.advance()
        if not self.at(")"):
            raise self.error(
                f"{tok.text} expects {shape}: expected ')', got {self.peek().describe()}"
            )
        if formula2 is None and syntax.formula2 == "required":
            raise self.error(f"{tok.text} expects {shape}: the second formula is missing")
        self.advance()
        formulas = (formula,) if formula2 is None else (formula, formula2)
        return ParsedReduction(
            name=name,
            formula=formula,
            output_cat=Cat(tag),
            k=k,
            formula2=formula2,
            aliases=complete_aliases(self.aliases, *formulas, *self.written),
            new_variables=tuple(self.new_variables),
        )


_SPECIAL = {
    "Var": _Parser.var_form,
    "IntCst": _Parser.intcst_form,
    "RatCst": _Parser.ratcst_form,
    "FloatCst": _Parser.floatcst_form,
    "Zero": _Parser.zero_form,
    "Grad": _Parser.grad_form,
}
