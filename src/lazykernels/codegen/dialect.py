"""Dialects: how a target's source language prints the kernel IR of :mod:`.kir`.

The IR is neutral: infix templates use the C family's operators, numbers are values and
maths functions have neutral names (``exp``, ``floor``, ``atan2``). A :class:`Dialect`
prints it; what differs between targets is a few hooks:

* :meth:`Dialect.literal`: a number of the kernel's type (suffixes, infinities, NaN);
* :meth:`Dialect.function`: the spelling of a neutral maths function (the C++ library's, a
  vectorisable polynomial, ``expf`` or ``__expf``) and the helpers it needs;
* :attr:`Dialect.helper_qualifier`: what a helper function's definition is marked with
  (nothing on the CPU, ``__device__`` in CUDA); :meth:`Dialect.helper` prints the op
  cards' helpers (:mod:`.helpers`, written once in a neutral spelling) with it;
* :attr:`Dialect.fuse_scaled_exp`: whether the lowering rewrites ``Exp(s * c)`` into the
  dialect's ``lk_exp_scaled`` helper.

The loop, statement and expression syntax printed here is common to C++ and CUDA C++.
"""

from __future__ import annotations

import re
from string import Template

import numpy as np

from ..errors import FormulaError
from .helpers import HELPERS
from .kir import (
    Acc,
    Array,
    Assign,
    Call,
    Expr,
    Fmt,
    If,
    Ix,
    Let,
    Lit,
    Load,
    Loop,
    Set,
    Stmt,
    Store,
    Sym,
    While,
)

# The neutral maths functions op cards and lowering rules may call.
MATH_FUNCTIONS = frozenset(
    ["exp", "log", "pow", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan", "atan2"]
    + ["floor", "ceil", "trunc", "round", "fabs"]
)


_FIELD = re.compile(r"\$\{?([A-Za-z_][A-Za-z_0-9]*)")  # a helper's $name or ${name}


class Dialect:
    """Prints kernel IR; subclasses give the target's hooks (see the module docstring)."""

    scalar = "T"  # the kernel's scalar type name in the source
    helper_qualifier = ""
    fuse_scaled_exp = False

    def __init__(self, dtype: np.dtype | str) -> None:
        self.dtype = np.dtype(dtype)

    # --- hooks ---------------------------------------------------------------------------

    def literal(self, value: float) -> str:
        raise NotImplementedError

    def function(self, fn: str) -> tuple[str, frozenset[str]]:
        """(spelling, helper names) of the neutral maths function ``fn``."""
        raise NotImplementedError

    def helper(self, name: str) -> str:
        """The definition of the op cards' helper ``name`` (:data:`.helpers.HELPERS`) in
        this dialect: ``$qualifier`` is :attr:`helper_qualifier`, ``$fn`` the spelling of
        the neutral maths function ``fn``.

        Raises:
            FormulaError: ``name`` is not a neutral helper (a target's own helper, such as
                the CPU's ``lk_exp``, is printed by that target), or it calls a function
                whose spelling needs a helper of its own.
        """
        if name not in HELPERS:
            raise FormulaError(f"{type(self).__name__} has no source for the helper {name!r}")
        text = Template(HELPERS[name])
        fields = {"qualifier": f"{self.helper_qualifier} " if self.helper_qualifier else ""}
        for fn in sorted(set(_FIELD.findall(HELPERS[name]))):  # (get_identifiers: 3.11+)
            if fn in fields:
                continue
            if fn not in MATH_FUNCTIONS:
                raise FormulaError(f"the helper {name} calls {fn}, not a neutral maths function")
            spelling, needs = self.function(fn)
            if needs:
                raise FormulaError(f"the helper {name} calls {fn}, which needs {sorted(needs)}")
            fields[fn] = spelling
        return text.substitute(fields)

    # --- printing ------------------------------------------------------------------------

    def call_helpers(self, fn: str) -> frozenset[str]:
        """Helpers a call of ``fn`` needs (a helper's own name for ``lk_*`` functions)."""
        if fn in MATH_FUNCTIONS:
            return self.function(fn)[1]
        return frozenset()

    def expr(self, e: Expr) -> str:
        if isinstance(e, Sym):
            return e.name
        if isinstance(e, Lit):
            return self.literal(e.value)
        if isinstance(e, Ix):
            return e.text
        if isinstance(e, Load):
            return f"{e.array}[{e.index.text}]"
        if isinstance(e, Fmt):
            keys = {k: str(v) if isinstance(v, int | str) else self.expr(v) for k, v in e.keys}
            return e.template.format(*(self.expr(a) for a in e.args), T=self.scalar, **keys)
        if isinstance(e, Call):
            name = self.function(e.fn)[0] if e.fn in MATH_FUNCTIONS else e.fn
            return f"{name}({', '.join(self.expr(a) for a in e.args)})"
        raise TypeError(f"not an expression: {e!r}")

    def stmt(self, s: Stmt, out: list[str], indent: str = "") -> None:
        if isinstance(s, Let):
            const = "" if s.mutable else "const "
            out.append(f"{indent}{const}{s.ctype} {s.sym.name} = {self.expr(s.expr)};")
        elif isinstance(s, Acc):
            out.append(f"{indent}{s.sym.name} += {self.expr(s.expr)};")
        elif isinstance(s, Set):
            out.append(f"{indent}{s.sym.name} = {self.expr(s.expr)};")
        elif isinstance(s, Store):
            out.append(f"{indent}{s.array}[{s.index.text}] = {self.expr(s.expr)};")
        elif isinstance(s, Array):
            items = ", ".join(self.expr(e) for e in s.items)
            out.append(f"{indent}const {self.scalar} {s.sym.name}[{len(s.items)}] = {{{items}}};")
        elif isinstance(s, Loop):
            v = s.var
            out.append(f"{indent}for (int64_t {v} = 0; {v} < {s.extent}; ++{v}) {{")
            for t in s.body:
                self.stmt(t, out, indent + "  ")
            out.append(f"{indent}}}")
        elif isinstance(s, Assign):
            out.append(f"{indent}{self.expr(s.target)} {s.op} {self.expr(s.expr)};")
        elif isinstance(s, If):
            out.append(f"{indent}if ({self.expr(s.cond)}) {{")
            for t in s.then:
                self.stmt(t, out, indent + "  ")
            if s.orelse:
                out.append(f"{indent}}} else {{")
                for t in s.orelse:
                    self.stmt(t, out, indent + "  ")
            out.append(f"{indent}}}")
        elif isinstance(s, While):
            out.append(f"{indent}while ({self.expr(s.cond)}) {{")
            for t in s.body:
                self.stmt(t, out, indent + "  ")
            out.append(f"{indent}}}")
        else:
            raise TypeError(f"not a statement: {s!r}")

    def lines(self, stmts: list[Stmt]) -> list[str]:
        """The printed statements, one line each (loop bodies indented)."""
        out: list[str] = []
        for s in stmts:
            self.stmt(s, out)
        return out
