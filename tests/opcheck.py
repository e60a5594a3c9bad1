"""Shared harness of the registry-driven op tests.

Each family test module holds ``REFERENCE``: for every op name of its family, an
independent, hand-written NumPy expression ``ref(*arg_values, *params)``. This module builds
the op from its card's ``test`` spec, draws inputs from the card's domain, and compares
(values in float64 and float32, derivatives against central finite differences).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pytest

from lazykernels.formula import OPS, Cat, Node, evaluate, grad, make, var
from lazykernels.formula.opspec import OpSpec

from .lowercheck import run_lowering

TOL = {np.float64: 1e-10, np.float32: 2e-4}
N_POINTS = 7


def per_row(fn: Callable) -> Callable:
    """Apply a per-point reference (1-D arrays in, 1-D array out) to every row."""

    def ref(*values_and_params):
        n_arrays = sum(isinstance(v, np.ndarray) for v in values_and_params)
        arrays, params = values_and_params[:n_arrays], values_and_params[n_arrays:]
        return np.array([np.atleast_1d(fn(*row, *params)) for row in zip(*arrays)])

    return ref


def build(card: OpSpec) -> tuple[Node, list[Node]]:
    """The op applied to fresh i-variables of the test dimensions."""
    spec = card.test
    variables = [var(k, d, Cat.I) for k, d in enumerate(spec.arg_dims)]
    return make(card, tuple(variables), spec.params), variables


def draw(card: OpSpec, rng: np.random.Generator, n: int = N_POINTS) -> list[np.ndarray]:
    spec = card.test
    return [rng.uniform(spec.low, spec.high, size=(n, d)) for d in spec.arg_dims]


def check_forward(card: OpSpec, reference, dtype, seed: int = 0) -> None:
    node, variables = build(card)
    values = [v.astype(dtype) for v in draw(card, np.random.default_rng(seed))]
    got = evaluate(node, dict(zip(variables, values)), dtype)
    want = reference(*[v.astype(np.float64) for v in values], *card.test.params)
    got = np.broadcast_to(got, np.broadcast_shapes(got.shape, np.shape(want)))
    assert got.shape[-1] == node.dim, f"{card.name}: dim {got.shape[-1]} != {node.dim}"
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=card.name)


def _fd_vjp(f_of, values: list[np.ndarray], k: int, cot: np.ndarray, h: float) -> np.ndarray:
    """Central finite differences of sum(F * cot) w.r.t. values[k], pointwise."""
    out = np.zeros_like(values[k])
    for c in range(values[k].shape[-1]):
        plus = [v.copy() for v in values]
        minus = [v.copy() for v in values]
        plus[k][..., c] += h
        minus[k][..., c] -= h
        diff = (f_of(plus) - f_of(minus)) * cot
        out[..., c] = diff.sum(-1) / (2 * h)
    return out


def check_grad(node: Node, variables: list[Node], values: list[np.ndarray], seed: int = 1):
    """First- and second-order reverse derivatives of ``node`` vs finite differences."""
    rng = np.random.default_rng(seed)
    n = values[0].shape[0]
    e = var(len(variables), node.dim, Cat.I)
    e_val = rng.standard_normal((n, node.dim))

    def value_of(formula: Node, extra: dict):
        def f(vals):
            env = dict(zip(variables, vals)) | extra
            out = evaluate(formula, env, np.float64)
            return np.broadcast_to(out, (n, formula.dim))

        return f

    for k, v in enumerate(variables):
        g = grad(node, v, e)
        got = np.broadcast_to(
            evaluate(g, dict(zip(variables, values)) | {e: e_val}, float), (n, v.dim)
        )
        want = _fd_vjp(value_of(node, {}), values, k, e_val, 1e-6)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{node} d/d{v}")
        # second order: d/dv <Grad(F, v, e), e2>
        e2 = var(len(variables) + 1, v.dim, Cat.I)
        e2_val = rng.standard_normal((n, v.dim))
        g2 = grad(g, v, e2)
        env2 = dict(zip(variables, values)) | {e: e_val, e2: e2_val}
        got2 = np.broadcast_to(evaluate(g2, env2, float), (n, v.dim))
        want2 = _fd_vjp(value_of(g, {e: e_val}), values, k, e2_val, 1e-5)
        np.testing.assert_allclose(got2, want2, rtol=1e-4, atol=1e-5, err_msg=f"{node} d2/d{v}2")


def check_card_grad(card: OpSpec, seed: int = 1) -> None:
    node, variables = build(card)
    values = draw(card, np.random.default_rng(seed))
    check_grad(node, variables, values, seed)


def check_lowering(card: OpSpec, tol: float = 1e-13) -> None:
    """The card's ``lower`` rule, interpreted on drawn inputs, vs its NumPy evaluation."""
    node, variables = build(card)
    values = draw(card, np.random.default_rng(3))
    want = evaluate(node, dict(zip(variables, values)), np.float64)
    got, _ = run_lowering(card, values, card.test.params)
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=tol, atol=tol)


class FamilyTests(NamedTuple):
    """The standard tests of one op family (see :func:`family_tests`)."""

    forward: Callable
    gradient: Callable
    lowering: Callable
    completeness: Callable


def family_tests(family_cards: Sequence[OpSpec], reference: dict) -> FamilyTests:
    """The tests every op family runs, for its test module to bind to ``test_*`` names.

    Over the family's cards with a ``test`` spec: the forward value vs ``reference`` in
    float64 and float32, first and second derivatives vs finite differences (cards whose
    spec says ``grad``), the ``lower`` rule vs the NumPy evaluation (cards that have one),
    and that ``reference`` covers exactly these cards, each registered in ``OPS``.
    """
    tested = [c for c in family_cards if c.test is not None]

    @pytest.mark.parametrize("card", tested, ids=lambda c: c.name)
    @pytest.mark.parametrize("dtype", [np.float64, np.float32])
    def test_forward_matches_numpy(card, dtype):
        check_forward(card, reference[card.name], dtype)

    @pytest.mark.parametrize("card", [c for c in tested if c.test.grad], ids=lambda c: c.name)
    def test_gradient_matches_finite_differences(card):
        check_card_grad(card)

    @pytest.mark.parametrize(
        "card", [c for c in tested if c.lower is not None], ids=lambda c: c.name
    )
    def test_lowering_matches_numpy_evaluation(card):
        check_lowering(card)

    def test_every_card_of_the_family_has_a_reference():
        assert {c.name for c in tested} == set(reference)
        assert all(OPS[c.name] is c for c in family_cards)

    return FamilyTests(
        test_forward_matches_numpy,
        test_gradient_matches_finite_differences,
        test_lowering_matches_numpy_evaluation,
        test_every_card_of_the_family_has_a_reference,
    )
