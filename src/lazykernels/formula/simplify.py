"""The simplifier: an ordered list of named rewrite rules applied bottom-up to a fixed point.

Each :class:`Rule` looks at one node whose arguments are already simplified and returns a
replacement node or ``None``. ``simplify`` rebuilds the DAG bottom-up, applying the first
rule that fires at each node, then re-simplifying the replacement, until nothing changes.
The rules themselves (SPEC §1.3: zeros, ones, constant folding, signs, collecting terms...)
live in :mod:`lazykernels.formula.rules`. Common sub-expressions need no rule: nodes are
interned, so equal sub-trees are one node.

Switch it off with ``LAZYKERNELS_SIMPLIFY=0`` (or ``simplify(node, enabled=False)``); with
``LAZYKERNELS_DEBUG_SIMPLIFY=1`` every rule that fires is printed with its name.
"""

from __future__ import annotations

import os
import sys

from . import rules as r
from . import rules_vector as rv
from .ir import Node, make, topological_order
from .rules import Rule

__all__ = ["RULES", "Rule", "enabled_by_default", "simplify"]

_MAX_PASSES = 10_000


# --- the ordered table ------------------------------------------------------------------


def _on(*names: str) -> frozenset[str]:
    return frozenset(names)


_ADD, _MULT, _MINUS = _on("Add"), _on("Mult"), _on("Minus")

RULES: tuple[Rule, ...] = (
    Rule("0 -> Zero(1)", r.rule_cst_zero, _on("IntCst", "RatCst", "FloatCst")),
    # zeros
    Rule("0+x -> x", r.rule_add_zero, _ADD),
    Rule("0*x -> 0", r.rule_mult_zero, _MULT),
    Rule("-0 -> 0", r.rule_minus_zero, _MINUS),
    Rule("x/0 -> error", r.rule_inv_zero, _on("Inv")),
    Rule("Sum(0) -> 0", r.rule_sum_zero, _on("Sum")),
    Rule("SumT(0,d) -> 0", r.rule_sumt_zero, _on("SumT")),
    Rule("Square(0) -> 0", r.rule_square_zero, _on("Square")),
    Rule("Exp(0) -> 1", r.rule_exp_zero, _on("Exp")),
    Rule("(0|x) -> 0", r.rule_scalprod_zero, _on("Scalprod")),
    # constant folding
    Rule("m+n -> (m+n)", r.rule_fold_add, _ADD),
    Rule("m*n -> (mn)", r.rule_fold_mult, _MULT),
    Rule("-(n) -> (-n)", r.rule_fold_minus, _MINUS),
    Rule("1/n -> (1/n)", r.rule_fold_inv, _on("Inv")),
    Rule("Square(n) -> n*n", r.rule_fold_square, _on("Square")),
    # ones
    Rule("1*f -> f", r.rule_mult_one, _MULT),
    Rule("-1*f -> -f", r.rule_mult_minus_one, _MULT),
    # broadcasting, sums
    Rule("SumT(f,1) -> f", r.rule_sumt_identity, _on("SumT")),
    Rule("op(SumT(f,d),..) -> fused", r.rule_elementwise_sumt, None),
    Rule("Sum(f) -> f (dim 1)", r.rule_sum_scalar, _on("Sum")),
    Rule("Sum(SumT(f,d)) -> d*f", r.rule_sum_sumt, _on("Sum")),
    Rule("Sum(a*b) -> a*Sum(b) (a scalar)", r.rule_sum_scalar_factor, _on("Sum")),
    Rule("Sum(-f) -> -Sum(f)", r.rule_sum_minus, _on("Sum")),
    Rule("Pow(f,1) -> f", r.rule_pow_one, _on("Pow")),
    Rule("Pow(f,0) -> 1", r.rule_pow_zero, _on("Pow")),
    Rule("Pow(f,2) -> Square(f)", r.rule_pow_two, _on("Pow")),
    Rule("Pow(n,m) -> n**m", r.rule_fold_pow, _on("Pow")),
    Rule("(f|g) -> f*Sum(g) (f scalar)", r.rule_scalprod_scalar, _on("Scalprod")),
    Rule("(f|f) -> Sum(f**2)", r.rule_scalprod_self, _on("Scalprod")),
    Rule("(a*f|g) -> a*(f|g) (a scalar)", r.rule_scalprod_scalar_factor, _on("Scalprod")),
    # signs
    Rule("-(-f) -> f", r.rule_minus_minus, _MINUS),
    Rule("-(n*g) -> (-n)*g", r.rule_minus_constant_product, _MINUS),
    Rule("Square(-f) -> Square(f)", r.rule_square_minus, _on("Square")),
    # sums: constants left, regrouped; collecting terms
    Rule("f+n -> n+f", r.rule_add_constant_left, _ADD),
    Rule("m+(n+g) -> (m+n)+g", r.rule_add_regroup_constants, _ADD),
    Rule("f+(n+g) -> n+(f+g)", r.rule_add_pull_constant, _ADD),
    Rule("x-x -> 0", r.rule_sub_self, _ADD),
    Rule("x+x -> 2*x", r.rule_add_self, _ADD),
    Rule("n*x+x -> (n+1)*x", r.rule_add_like_terms, _ADD),
    Rule("(-x)+(-y) -> -(x+y)", r.rule_add_minus_minus, _ADD),
    Rule("(-x)+y -> y-x", r.rule_add_minus_right, _ADD),
    Rule("a*b+a*c -> a*(b+c)", r.rule_add_factor, _ADD),
    # products: constants left, regrouped; signs out; squares and exponentials
    Rule("f*n -> n*f", r.rule_mult_constant_left, _MULT),
    Rule("m*(n*g) -> (mn)*g", r.rule_mult_regroup_constants, _MULT),
    Rule("f*(n*g) -> n*(f*g)", r.rule_mult_pull_constant, _MULT),
    Rule("(-f)*(-g) -> f*g", r.rule_mult_minus_minus, _MULT),
    Rule("(-f)*g -> -(f*g)", r.rule_mult_minus, _MULT),
    Rule("f*f -> Square(f)", r.rule_mult_self, _MULT),
    Rule("Exp(f)*Exp(g) -> Exp(f+g)", r.rule_mult_exp, _MULT),
    Rule("Exp(a)*g -> g*Exp(a)", r.rule_mult_exp_right, _MULT),
    Rule("(u*Exp(a))*Exp(b) -> u*Exp(a+b)", r.rule_mult_exp_regroup, _MULT),
    Rule("f*(v*Exp(b)) -> (f*v)*Exp(b)", r.rule_mult_exp_outward, _MULT),
    # structural vector ops (rules_vector.py)
    Rule("Elem(ElemT(a,n,k),m) -> a or 0", rv.rule_elem_of_elemt, _on("Elem")),
    Rule("Elem(SumT(a,d),m) -> a", rv.rule_elem_of_sumt, _on("Elem")),
    Rule("Elem(Concat(f,g),m) -> component", rv.rule_elem_of_concat, _on("Elem")),
    Rule("Elem(f,0) -> f (dim 1)", rv.rule_elem_of_scalar, _on("Elem")),
    Rule("Elem/ElemT(Zero) -> Zero", rv.rule_elem_of_zero, _on("Elem", "ElemT")),
    Rule("Extract(f,0,f.dim) -> f", rv.rule_extract_whole, _on("Extract")),
    Rule("Sum(ElemT(a,n,k)) -> a", rv.rule_sum_of_elemt, _on("Sum")),
    Rule("ElemT(a,n,k)*b -> ElemT(a*b_k,n,k)", rv.rule_mult_elemt, _MULT),
    Rule("ElemT(a)+ElemT(b) -> ElemT(a+b)", rv.rule_add_elemt, _ADD),
)
"""Every rule, in the order the engine tries them at each node."""


def enabled_by_default() -> bool:
    """False when the environment variable ``LAZYKERNELS_SIMPLIFY`` is ``0``."""
    return os.environ.get("LAZYKERNELS_SIMPLIFY", "1") != "0"


def simplify(
    root: Node, enabled: bool | None = None, rules: tuple[Rule, ...] | None = None
) -> Node:
    """``root`` rewritten by ``rules`` (default: all) until no rule fires.

    Args:
        root: the formula.
        enabled: False returns ``root`` unchanged; None follows ``LAZYKERNELS_SIMPLIFY``.
        rules: the rules to use (for tests of a single rule); default ``RULES``.

    Returns:
        An equivalent formula of the same dimension, at a fixed point of the rules (so
        ``simplify(simplify(f)) is simplify(f)``).

    Raises:
        FormulaError: the formula divides by a zero constant.
        RuntimeError: the rules do not reach a fixed point (a bug in the rules).

    Example:
        >>> from lazykernels.formula import Cat, var
        >>> x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
        >>> simplify(x * 0 + y) is y
        True
    """
    if enabled is None:
        enabled = enabled_by_default()
    if not enabled:
        return root
    trace = os.environ.get("LAZYKERNELS_DEBUG_SIMPLIFY") == "1"
    if rules is not None or trace:
        return _Simplifier(RULES if rules is None else rules, trace).run(root)
    # LazyTensor code rebuilds the same formula at every call: nodes are interned, so the
    # result of the default rules is remembered by the node itself
    done = _SIMPLIFIED.get(root)
    if done is None:
        done = _Simplifier(RULES, False).run(root)
        if len(_SIMPLIFIED) >= _MAX_SIMPLIFIED:
            _SIMPLIFIED.clear()
        _SIMPLIFIED[root] = done
    return done


_SIMPLIFIED: dict[Node, Node] = {}  # formula -> simplify(formula) under the default rules
_MAX_SIMPLIFIED = 4096


class _Simplifier:
    """One simplification pass: the rules indexed by op name, and the memo of results."""

    def __init__(self, rules: tuple[Rule, ...], trace: bool):
        self.rules = rules
        self.trace = trace
        self.done: dict[Node, Node] = {}  # node -> its simplified form (a fixed point)
        self._by_op: dict[str, tuple[Rule, ...]] = {}
        self._active: set[Node] = set()  # forms being rewritten now (cycle detection)

    def rules_for(self, name: str) -> tuple[Rule, ...]:
        found = self._by_op.get(name)
        if found is None:
            found = tuple(r for r in self.rules if r.ops is None or name in r.ops)
            self._by_op[name] = found
        return found

    def run(self, root: Node) -> Node:
        """Simplify ``root`` bottom-up, reusing every result already in ``done``."""
        done = self.done
        if root in done:
            return done[root]
        for node in topological_order(root):
            if node in done:
                continue
            if node in self._active:
                raise RuntimeError(f"simplify: the rules cycle on {node} (rewritten back to it)")
            done[node] = self.fixed_point(self.rebuild(node))
        return done[root]

    def rebuild(self, node: Node) -> Node:
        """``node`` over the simplified forms of its arguments (all already in ``done``)."""
        new_args = tuple(self.done[a] for a in node.args)
        if any(n is not o for n, o in zip(new_args, node.args)):
            return make(node.op, new_args, node.params)
        return node

    def fixed_point(self, node: Node) -> Node:
        """Apply rules at ``node`` (arguments simplified) until none fires.

        Iterative at this position: after a rewrite only the replacement's arguments are
        simplified recursively (they are mostly known nodes), then the loop goes on at the
        top, so long chains of rewrites at one place do not grow the Python stack.
        """
        chain = [node]
        self._active.add(node)
        for _ in range(_MAX_PASSES):
            out = self._first_rewrite(node)
            if out is None:
                break
            if out in self.done:
                node = self.done[out]
                break
            if out.args:
                for a in out.args:
                    self.run(a)
                out = self.rebuild(out)
            if out in self._active:
                raise RuntimeError(f"simplify: the rules cycle on {out} (rewritten back to it)")
            node = out
            chain.append(node)
            self._active.add(node)
        else:
            raise RuntimeError(
                f"simplify: no fixed point after {_MAX_PASSES} rewrites of {chain[0]}"
            )
        for seen in chain:  # every intermediate form has the same fixed point
            self.done[seen] = node
            self._active.discard(seen)
        return node

    def _first_rewrite(self, node: Node) -> Node | None:
        for rule in self.rules_for(node.op.name):
            out = rule.rewrite(node)
            if out is not None and out is not node:
                if out.dim != node.dim:
                    raise RuntimeError(
                        f"simplify: rule {rule.name!r} changed the dimension of {node} "
                        f"from {node.dim} to {out.dim}"
                    )
                if self.trace:
                    print(f"simplify: {rule.name}: {node} -> {out}", file=sys.stderr)
                return out
        return None
