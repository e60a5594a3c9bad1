"""Check ``lower`` rules without a compiler: a recording context and a tiny C interpreter.

:class:`RecordingCtx` plays the code generator's lowering context: ``literal`` prints a
number, ``fmt``/``join``/``call`` print neutral expressions as C++ text, ``emit`` records
``T name = expr;`` and returns the name. :func:`run_lowering` then
evaluates the recorded statements and the returned expressions with :func:`c_eval`, a small
recursive-descent interpreter of the C++ expression subset the lowerings use (numbers,
names, unary ``-``/``!``, ``* / + -``, comparisons, ``&& ||``, ``?:``, parentheses and a few
``std::`` functions), vectorised over points with NumPy. Nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from lazykernels.formula.opspec import OpSpec


class RecordingCtx:
    """A lowering context that records the statements it is asked to emit."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, str]] = []

    def literal(self, value: float) -> str:
        return repr(float(value))

    def emit(self, expr: str) -> str:
        name = f"t{len(self.statements)}"
        self.statements.append((name, expr))
        return name

    def fmt(self, template: str, *args: str) -> str:
        return template.format(*args, T="double")

    def join(self, sep: str, items: list[str]) -> str:
        return sep.join(items)

    def call(self, fn: str, *args: str) -> str:
        return f"std::{fn}({', '.join(args)})"


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_]\w*(?:::[A-Za-z_]\w*)*)"
    r"|(?P<op>&&|\|\||<=|>=|==|!=|[-+*/<>?:()!,]))"
)
_FUNCTIONS = {"std::exp": np.exp, "std::log": np.log, "std::trunc": np.trunc, "std::sqrt": np.sqrt}
_BINARY = {  # operator -> (precedence, function); all left-associative
    "||": (1, np.logical_or),
    "&&": (2, np.logical_and),
    "==": (3, np.equal),
    "!=": (3, np.not_equal),
    "<": (4, np.less),
    "<=": (4, np.less_equal),
    ">": (4, np.greater),
    ">=": (4, np.greater_equal),
    "+": (5, np.add),
    "-": (5, np.subtract),
    "*": (6, np.multiply),
    "/": (6, np.divide),
}


def _tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot tokenize {text[pos:]!r} in {text!r}")
        tokens.append(m.group(m.lastgroup))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], env: dict[str, np.ndarray]):
        self.tokens, self.pos, self.env = tokens, 0, env

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected!r}, got {tok!r} in {' '.join(self.tokens)}")
        self.pos += 1
        return tok

    def expression(self):
        cond = self.binary(1)
        if self.peek() != "?":
            return cond
        self.take("?")
        then = self.expression()
        self.take(":")
        other = self.expression()
        return np.where(cond, then, other)

    def binary(self, min_prec: int):
        left = self.unary()
        while (tok := self.peek()) in _BINARY and _BINARY[tok][0] >= min_prec:
            prec, fn = _BINARY[self.take()]
            left = fn(left, self.binary(prec + 1))
        return left

    def unary(self):
        tok = self.take()
        if tok == "-":
            return np.negative(self.unary())
        if tok == "!":
            return np.logical_not(self.unary())
        if tok == "(":
            value = self.expression()
            self.take(")")
            return value
        if tok[0].isdigit():
            return float(tok)
        if tok in _FUNCTIONS:
            self.take("(")
            value = _FUNCTIONS[tok](self.expression())
            self.take(")")
            return value
        if tok in self.env:
            return self.env[tok]
        raise ValueError(f"unknown name {tok!r}")


def c_eval(text: str, env: dict[str, np.ndarray]) -> np.ndarray:
    """Value of the C++ expression ``text`` with the names bound in ``env``."""
    parser = _Parser(_tokenize(text), env)
    with np.errstate(all="ignore"):
        value = parser.expression()
    if parser.peek() is not None:
        raise ValueError(f"trailing tokens in {text!r}")
    return value


def arg_names(arg_dims: Sequence[int]) -> list[list[str]]:
    """Scalar atom names of the arguments: ``a{k}_{c}``."""
    return [[f"a{k}_{c}" for c in range(d)] for k, d in enumerate(arg_dims)]


def run_lowering(
    card: OpSpec, values: Sequence[np.ndarray], params: tuple
) -> tuple[np.ndarray, RecordingCtx]:
    """Lower ``card`` with a :class:`RecordingCtx` and interpret the result on ``values``.

    Args:
        values: one array of shape (n, dim) per argument.

    Returns:
        The (n, out_dim) values of the returned expressions, and the context (statements).
    """
    names = arg_names([v.shape[-1] for v in values])
    env = {
        name: np.asarray(v[:, c], dtype=np.float64)
        for v, row in zip(values, names)
        for c, name in enumerate(row)
    }
    ctx = RecordingCtx()
    outputs = card.lower(ctx, names, params)
    for name, expr in ctx.statements:
        env[name] = c_eval(expr, env)
    n = values[0].shape[0]
    cols = [np.broadcast_to(np.asarray(c_eval(o, env), dtype=np.float64), (n,)) for o in outputs]
    return np.stack(cols, axis=-1), ctx


def cpp_program(cases: Sequence[tuple[OpSpec, Sequence[np.ndarray], tuple]]) -> str:
    """One C++ program running every lowering in ``cases`` (in double) and printing results.

    Each case becomes a function ``case_k(const double* a0, ..., double* out)``; ``main``
    calls it on every point of the case's values and prints one line per point.
    """
    parts = ["#include <cmath>", "#include <cstdio>", ""]
    main = ["int main() {"]
    for k, (card, values, params) in enumerate(cases):
        names = arg_names([v.shape[-1] for v in values])
        ctx = RecordingCtx()
        outputs = card.lower(ctx, names, params)
        sig = ", ".join(f"const double* a{i}" for i in range(len(values)))
        body = [f"static void case_{k}({sig}, double* out) {{"]
        for i, row in enumerate(names):
            body += [f"    const double {name} = a{i}[{c}];" for c, name in enumerate(row)]
        body += [f"    const double {name} = {expr};" for name, expr in ctx.statements]
        body += [f"    out[{c}] = {expr};" for c, expr in enumerate(outputs)]
        parts += body + ["}", ""]
        n = values[0].shape[0]
        for i, v in enumerate(values):
            data = ", ".join(repr(float(x)) for x in np.asarray(v, dtype=np.float64).ravel())
            main.append(f"    static const double c{k}_a{i}[] = {{{data}}};")
        main.append(f"    double out{k}[{len(outputs)}];")
        main.append(f"    for (int p = 0; p < {n}; ++p) {{")
        args = ", ".join(f"c{k}_a{i} + p * {v.shape[-1]}" for i, v in enumerate(values))
        main.append(f"        case_{k}({args}, out{k});")
        main.append(f'        std::printf("{k}");')
        main.append(
            f'        for (int c = 0; c < {len(outputs)}; ++c) std::printf(" %.17g", out{k}[c]);'
        )
        main.append('        std::printf("\\n");')
        main.append("    }")
    main += ["    return 0;", "}"]
    return "\n".join(parts + main) + "\n"


def parse_program_output(text: str, n_cases: int) -> list[np.ndarray]:
    """The per-case (n, out_dim) arrays printed by :func:`cpp_program`'s program."""
    rows: list[list[list[float]]] = [[] for _ in range(n_cases)]
    for line in text.splitlines():
        head, *vals = line.split()
        rows[int(head)].append([float(v) for v in vals])
    return [np.array(r) for r in rows]
