"""Complex cards (interleaved [re, im] pairs) against NumPy complex arithmetic.

Values: every card vs a NumPy ``complex128`` expression, in float64 and float32, including
the broadcast of a single complex number (dim 2) against a vector. Derivatives: first and
second order of the real representation vs central finite differences. Lowering: the
scalar C expressions of the primitive cards are evaluated by a tiny interpreter of the
C subset they use, and compared with NumPy.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lazykernels.errors import DimensionError
from lazykernels.formula import OPS, Cat, evaluate, make, var
from lazykernels.formula.ops import complex as complex_ops

from .lowercheck import RecordingCtx
from .opcheck import check_card_grad, check_forward, check_grad


def c(x: np.ndarray) -> np.ndarray:
    """Interleaved reals -> complex (written independently of the library's helper)."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(*x.shape[:-1], -1, 2) @ np.array([1.0, 1j])


def r(z: np.ndarray) -> np.ndarray:
    """Complex -> interleaved reals."""
    z = np.asarray(z, dtype=np.complex128)
    out = np.empty((*z.shape[:-1], 2 * z.shape[-1]))
    out[..., 0::2] = z.real
    out[..., 1::2] = z.imag
    return out


REFERENCE = {
    "ComplexAdd": lambda a, b: r(c(a) + c(b)),
    "ComplexSubtract": lambda a, b: r(c(a) - c(b)),
    "ComplexMult": lambda a, b: r(c(a) * c(b)),
    "ComplexDivide": lambda a, b: r(c(a) / c(b)),
    "ComplexExp": lambda a: r(np.exp(c(a))),
    "ComplexExp1j": lambda x: r(np.exp(1j * x)),
    "ComplexImag": lambda a: c(a).imag,
    "ComplexReal": lambda a: c(a).real,
    "ComplexRealScal": lambda s, a: r(s * c(a)),
    "ComplexSquareAbs": lambda a: abs(c(a)) ** 2,
    "ComplexAbs": lambda a: abs(c(a)),
    "ComplexAngle": lambda a: np.angle(c(a)),
    "ComplexSum": lambda a: r(c(a).sum(-1, keepdims=True)),
    "ComplexSumT": lambda a, d: r(np.repeat(c(a), d // 2, axis=-1)),
    "Conj": lambda a: r(np.conj(c(a))),
    "Imag2Complex": lambda x: r(1j * x),
    "Real2Complex": lambda x: r(x + 0j),
}
CARDS = complex_ops.CARDS


def test_the_family_has_the_17_names_of_keops_and_a_reference_for_each():
    assert len(CARDS) == 17
    assert {card.name for card in CARDS} == set(REFERENCE)
    assert all(OPS[card.name] is card for card in CARDS)


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy_complex(card, dtype):
    check_forward(card, REFERENCE[card.name], dtype)


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card.name)
def test_gradient_matches_finite_differences(card):
    check_card_grad(card)


# --- broadcasting a single complex number (dim 2) against a vector ---------------------------

BINARY = ["ComplexAdd", "ComplexSubtract", "ComplexMult", "ComplexDivide"]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dims", [(2, 6), (6, 2), (2, 2)])
def test_binary_ops_broadcast_a_single_number(name, dims):
    z, w = var(0, dims[0], Cat.I), var(1, dims[1], Cat.J)
    node = make(name, (z, w))
    assert node.dim == max(dims)
    rng = np.random.default_rng(3)
    values = [rng.uniform(0.5, 2.0, (5, d)) for d in dims]
    got = evaluate(node, {z: values[0], w: values[1]}, np.float64)
    np.testing.assert_allclose(got, REFERENCE[name](*values), rtol=1e-12, atol=1e-12)
    check_grad(node, [z, w], values)


def test_real_scalar_times_complex_in_either_order():
    x, z = var(0, 1, Cat.I), var(1, 4, Cat.J)
    rng = np.random.default_rng(4)
    X, Z = rng.standard_normal((5, 1)), rng.standard_normal((5, 4))
    for node in (make("ComplexRealScal", (x, z)), make("ComplexRealScal", (z, x))):
        assert node.dim == 4
        got = evaluate(node, {x: X, z: Z}, np.float64)
        np.testing.assert_allclose(got, r(X * c(Z)), rtol=1e-13)
        check_grad(node, [x, z], [X, Z])


def test_division_by_a_vector_of_numbers():
    # the SPEC identity uses Real2Complex(1/|w|^2): each number gets its own scale
    z, w = var(0, 2, Cat.I), var(1, 6, Cat.J)
    rng = np.random.default_rng(5)
    Z, W = rng.standard_normal((4, 2)), rng.standard_normal((4, 6))
    got = evaluate(make("ComplexDivide", (z, w)), {z: Z, w: W}, np.float64)
    np.testing.assert_allclose(got, r(c(Z) / c(W)), rtol=1e-11)


def test_complex_sum_then_sumt_round_trip():
    z = var(0, 6, Cat.I)
    node = make("ComplexSumT", (make("ComplexSum", (z,)),), (4,))
    Z = np.random.default_rng(6).standard_normal((3, 6))
    total = c(Z).sum(-1, keepdims=True)
    np.testing.assert_allclose(evaluate(node, {z: Z}, np.float64), r(np.repeat(total, 2, -1)))


@pytest.mark.parametrize(
    ("name", "dims", "params"),
    [
        ("ComplexMult", (4, 6), ()),
        ("ComplexMult", (3, 3), ()),
        ("ComplexAdd", (4, 6), ()),
        ("ComplexSubtract", (3, 2), ()),
        ("ComplexDivide", (4, 6), ()),
        ("ComplexExp", (5,), ()),
        ("Conj", (3,), ()),
        ("ComplexReal", (3,), ()),
        ("ComplexSquareAbs", (1,), ()),
        ("ComplexAbs", (3,), ()),
        ("ComplexAngle", (5,), ()),
        ("ComplexSum", (5,), ()),
        ("ComplexSumT", (4,), (6,)),
        ("ComplexSumT", (2,), (5,)),
        ("ComplexSumT", (2,), (4.0,)),
        ("ComplexRealScal", (2, 4), ()),
        ("ComplexRealScal", (1, 3), ()),
    ],
)
def test_bad_dimensions_raise_a_dimension_error_naming_the_op(name, dims, params):
    args = tuple(var(k, d, Cat.I) for k, d in enumerate(dims))
    with pytest.raises(DimensionError, match=name):
        make(name, args, params)


# --- lowering: evaluate the emitted scalar C expressions --------------------------------------

_TOKEN = re.compile(r"\s*(std::[a-z]+|[A-Za-z_]\w*|\d+\.?\d*(?:[eE][-+]?\d+)?|[-+*/(),])")
_FUNCS = {"std::exp": np.exp, "std::cos": np.cos, "std::sin": np.sin}


class _CExpr:
    """Recursive-descent evaluator of the C subset the lowering rules emit."""

    def __init__(self, text: str, env: dict[str, np.ndarray]):
        self.tokens = _TOKEN.findall(text)
        assert "".join(self.tokens) == re.sub(r"\s+", "", text), f"unexpected text in {text!r}"
        self.pos = 0
        self.env = env

    def value(self) -> np.ndarray:
        out = self.sum()
        assert self.pos == len(self.tokens), f"trailing tokens in {self.tokens}"
        return out

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def sum(self) -> np.ndarray:
        out = self.product()
        while self.peek() in ("+", "-"):
            out = out + self.product() if self.take() == "+" else out - self.product()
        return out

    def product(self) -> np.ndarray:
        out = self.unary()
        while self.peek() in ("*", "/"):
            out = out * self.unary() if self.take() == "*" else out / self.unary()
        return out

    def unary(self) -> np.ndarray:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.atom()

    def atom(self) -> np.ndarray:
        token = self.take()
        if token == "(":
            out = self.sum()
            assert self.take() == ")"
            return out
        if token in _FUNCS:
            assert self.take() == "("
            out = _FUNCS[token](self.sum())
            assert self.take() == ")"
            return out
        if token[0].isdigit():
            return np.float64(token)
        return self.env[token]


class _FakeCtx(RecordingCtx):
    """The lowering context, printing C++ text, that evaluates each emitted value."""

    def __init__(self, env: dict[str, np.ndarray]):
        super().__init__()
        self.env = env

    def emit(self, expr: str) -> str:
        name = f"t{len(self.env)}"
        self.env[name] = _CExpr(expr, self.env).value()
        return name


def _lowered(node, values: list[np.ndarray]) -> np.ndarray:
    env: dict[str, np.ndarray] = {}
    atoms = []
    for k, v in enumerate(values):
        names = [f"a{k}_{i}" for i in range(v.shape[-1])]
        env.update({n: v[..., i] for i, n in enumerate(names)})
        atoms.append(names)
    ctx = _FakeCtx(env)
    out = node.op.lower(ctx, atoms, node.params)
    assert len(out) == node.dim
    columns = np.broadcast_arrays(*(_CExpr(expr, env).value() for expr in out), values[0][..., 0])
    return np.stack(columns[:-1], axis=-1)


PRIMITIVES = [card for card in CARDS if card.expand is None]


@pytest.mark.parametrize("card", PRIMITIVES, ids=lambda card: card.name)
def test_lowering_computes_the_numpy_value(card):
    assert card.lower is not None and card.vjp is not None
    dims = card.test.arg_dims
    if card.arity == 2:
        dims = (2, 6)  # also exercises the broadcast of a single number
    args = tuple(var(k, d, Cat.I) for k, d in enumerate(dims))
    node = make(card, args, card.test.params)
    rng = np.random.default_rng(7)
    values = [rng.uniform(-2.0, 2.0, (4, d)) for d in dims]
    want = REFERENCE[card.name](*values, *card.test.params)
    np.testing.assert_allclose(_lowered(node, values), want, rtol=1e-12, atol=1e-12)


def test_lowering_of_complex_exp_binds_the_exponential_once():
    node = make("ComplexExp", (var(0, 2, Cat.I),))
    emitted: list[str] = []

    class Ctx(_FakeCtx):
        def emit(self, expr: str) -> str:
            emitted.append(expr)
            return super().emit(expr)

    out = node.op.lower(Ctx({"a": np.float64(0.3), "b": np.float64(1.1)}), [["a", "b"]], ())
    assert emitted == ["std::exp(a)"]
    assert all("std::exp" not in expr for expr in out)
