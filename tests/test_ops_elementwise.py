"""Element-wise op cards against hand-written NumPy, and their derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.formula import OPS
from lazykernels.formula.ops import arith, elementwise

from .opcheck import check_card_grad, check_forward

REFERENCE = {
    "Add": lambda a, b: a + b,
    "Minus": lambda a: -a,
    "Mult": lambda a, b: a * b,
    "Inv": lambda a: 1.0 / a,
    "Subtract": lambda a, b: a - b,
    "Divide": lambda a, b: a / b,
    "Sum": lambda a: a.sum(-1, keepdims=True),
    "SumT": lambda a, d: np.tile(a, (1, d)),
    "Exp": lambda a: np.exp(a),
    "Log": lambda a: np.log(a),
    "Square": lambda a: a * a,
}
CARDS = [c for c in (*arith.CARDS, *elementwise.CARDS) if c.test is not None]


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy(card, dtype):
    check_forward(card, REFERENCE[card.name], dtype)


@pytest.mark.parametrize("card", [c for c in CARDS if c.test.grad], ids=lambda c: c.name)
def test_gradient_matches_finite_differences(card):
    check_card_grad(card)


def test_every_card_of_the_family_has_a_reference():
    assert {c.name for c in CARDS} <= set(REFERENCE)
    assert all(name in OPS for name in REFERENCE)
