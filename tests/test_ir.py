"""The IR contract: interning, immutability, stable fingerprints, substitution."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from lazykernels.errors import DimensionError
from lazykernels.formula import Cat, evaluate, grad, make, substitute, var


def test_interning_makes_structural_equality_identity():
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    assert (x + y) * x is (x + y) * x
    assert (x + y) is not (y + x)


def test_nodes_are_immutable():
    with pytest.raises(AttributeError):
        var(0, 3, Cat.I).dim = 4


def test_fingerprint_is_stable_and_structural():
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    f = (x * y).exp()
    # A fixed value: the fingerprint must not depend on the process (hash randomisation).
    assert f.fingerprint() == make("Exp", (make("Mult", (x, y)),)).fingerprint()
    assert f.fingerprint() != (y * x).exp().fingerprint()
    assert len(f.fingerprint()) == 64


def test_constants_of_different_types_are_distinct():
    x = var(0, 1, Cat.I)
    assert (x * 1) is not (x * 1.0)


def test_pickle_round_trip_returns_the_interned_node():
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    f = (x - y).exp()
    assert pickle.loads(pickle.dumps(f)) is f


def test_dimension_rule_violation_names_the_op():
    with pytest.raises(DimensionError, match="Add"):
        var(0, 3, Cat.I) + var(1, 2, Cat.J)


def test_substitute_replaces_every_occurrence():
    x, y, z = var(0, 3, Cat.I), var(1, 3, Cat.J), var(2, 3, Cat.J)
    f = (x * y) + y
    assert substitute(f, {y: z}) is (x * z) + z


def test_grad_of_a_product_matches_the_hand_derivative():
    x, y, e = var(0, 3, Cat.I), var(1, 3, Cat.J), var(2, 3, Cat.I)
    f = (x * y).exp()
    g = grad(f, x, e)
    rng = np.random.default_rng(0)
    X, Y, E = rng.random((4, 1, 3)), rng.random((1, 5, 3)), rng.random((4, 1, 3))
    got = evaluate(g, {x: X, y: Y, e: E}, np.float64)
    np.testing.assert_allclose(got, E * Y * np.exp(X * Y), rtol=1e-12)


def test_grad_of_an_independent_formula_is_zero():
    x, y, e = var(0, 3, Cat.I), var(1, 3, Cat.J), var(2, 3, Cat.I)
    assert grad(y.exp(), x, e) is make("Zero", (), (3,))
