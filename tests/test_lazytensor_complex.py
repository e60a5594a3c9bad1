"""NumPy ComplexLazyTensor: complex arithmetic and methods against dense complex NumPy.

Rows of ``CASES`` are (id, lazy builder, dense builder) over ``Z`` (Vi, 2 complex numbers),
``U`` (Vj, 2 complex numbers), ``S`` (Vi, real scalar) and ``R`` (Vj, 2 reals). The formula is
reduced with a Sum over j (complex results come back as complex arrays).
"""

from __future__ import annotations

import numpy as np
import pytest

from lazykernels.errors import ArgumentError
from lazykernels.numpy import ComplexLazyTensor, LazyTensor, Vi, Vj

M, N = 4, 3
TOL = {np.float32: dict(rtol=3e-4, atol=3e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
CDTYPE = {np.float32: np.complex64, np.float64: np.complex128}


def make_data(dtype, batch: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    b = (2,) if batch else ()

    def cplx(*shape):
        z = rng.uniform(0.3, 1.2, size=(*b, *shape)) + 1j * rng.uniform(-1, 1, size=(*b, *shape))
        return z.astype(CDTYPE[dtype])

    return {
        "Z": cplx(M, 1, 2),
        "U": cplx(1, N, 2),
        "S": rng.uniform(0.5, 1.5, size=(*b, M, 1, 1)).astype(dtype),
        "R": rng.uniform(-1, 1, size=(*b, 1, N, 2)).astype(dtype),
    }


CASES = [
    ("add", lambda L: L["Z"] + L["U"], lambda d: d["Z"] + d["U"]),
    ("sub", lambda L: L["Z"] - L["U"], lambda d: d["Z"] - d["U"]),
    ("mul", lambda L: L["Z"] * L["U"], lambda d: d["Z"] * d["U"]),
    ("div", lambda L: L["Z"] / L["U"], lambda d: d["Z"] / d["U"]),
    ("mul_real_scalar", lambda L: L["Z"] * L["S"], lambda d: d["Z"] * d["S"]),
    ("rmul_real_scalar", lambda L: L["S"] * L["U"], lambda d: d["S"] * d["U"]),
    ("div_real_scalar", lambda L: L["Z"] / L["S"], lambda d: d["Z"] / d["S"]),
    ("mul_real_vector", lambda L: L["R"] * L["Z"], lambda d: d["R"] * d["Z"]),
    ("add_real", lambda L: L["R"] + L["Z"], lambda d: d["R"] + d["Z"]),
    ("rsub_real", lambda L: L["R"] - L["Z"], lambda d: d["R"] - d["Z"]),
    ("add_float", lambda L: L["Z"] + 1.5, lambda d: d["Z"] + 1.5),
    ("add_complex_number", lambda L: L["Z"] + (0.5 - 2j), lambda d: d["Z"] + (0.5 - 2j)),
    ("rmul_float", lambda L: 2.5 * L["Z"], lambda d: 2.5 * d["Z"]),
    ("rsub_float", lambda L: 1.0 - L["Z"], lambda d: 1.0 - d["Z"]),
    ("rdiv_float", lambda L: 2.0 / L["Z"], lambda d: 2.0 / d["Z"]),
    ("neg", lambda L: -L["Z"], lambda d: -d["Z"]),
    ("conj", lambda L: L["Z"].conj(), lambda d: np.conj(d["Z"])),
    ("exp", lambda L: L["Z"].exp(), lambda d: np.exp(d["Z"])),
    ("real", lambda L: L["Z"].real * L["U"].imag, lambda d: d["Z"].real * d["U"].imag),
    ("angle", lambda L: L["Z"].angle(), lambda d: np.angle(d["Z"])),
    ("abs", lambda L: abs(L["Z"] - L["U"]), lambda d: np.abs(d["Z"] - d["U"])),
    ("abs_method", lambda L: L["Z"].abs(), lambda d: np.abs(d["Z"])),
    (
        "inner_sum",
        lambda L: (L["Z"] * L["U"]).sum(),
        lambda d: (d["Z"] * d["U"]).sum(-1)[..., None],
    ),
    ("real2complex", lambda L: L["R"].real2complex() * L["Z"], lambda d: d["R"] * d["Z"]),
    ("imag2complex", lambda L: L["R"].imag2complex(), lambda d: 1j * d["R"]),
    ("exp1j", lambda L: L["R"].exp1j() * L["Z"], lambda d: np.exp(1j * d["R"]) * d["Z"]),
    ("from_real_array", lambda L: L["ZR"] * L["U"], lambda d: d["S"] * d["U"]),
]


@pytest.mark.parametrize("batch", [False, True], ids=["plain", "batch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_complex_against_dense(case, dtype, batch):
    _, lazy, dense = case
    data = make_data(dtype, batch)
    L = {name: LazyTensor(v) for name, v in data.items()}
    L["ZR"] = ComplexLazyTensor(data["S"])  # real data in a complex LazyTensor
    formula = lazy(L)
    full = (*formula.batchdims, formula.ni or 1, formula.nj or 1, formula._shape[-1])
    expected = np.broadcast_to(dense(data), full)
    got = formula.sum(axis=formula.nbatchdims + 1, backend="reference")
    if formula.is_complex:
        assert got.dtype == CDTYPE[dtype]
    else:
        assert got.dtype == dtype
    np.testing.assert_allclose(got, expected.sum(-2), **TOL[dtype])


def test_complex_construction_and_properties():
    z = np.array([[1 + 2j, 3 - 1j]])  # a (1, 2) complex array: along i
    zi = LazyTensor(z, axis=0)
    assert isinstance(zi, ComplexLazyTensor) and zi.is_complex
    assert zi.ndim == 4 and zi.shape == (1, 1, 2) and zi.dtype == np.complex128
    assert isinstance(LazyTensor(np.ones(2), is_complex=True), ComplexLazyTensor)
    assert isinstance(LazyTensor(1j), ComplexLazyTensor)
    assert not zi.real.is_complex and zi.real.shape == (1, 1, 2)
    np.testing.assert_allclose(zi.sum(axis=1, backend="reference"), z)


def test_complex_refusals():
    zi = Vi(np.ones((3, 1), dtype=complex))
    for method in ("real2complex", "imag2complex", "exp1j"):
        with pytest.raises(ArgumentError, match="real LazyTensors"):
            getattr(zi, method)()
    with pytest.raises(ArgumentError, match="real LazyTensors"):
        zi.keops_tensordot(zi, (2,), (2,), (0,), (0,))
    assert (zi + 0) is zi and zi * 0 == 0 and (zi * 1) is zi
    assert (0 - zi).node.op.name == "Minus"
    np.testing.assert_allclose((zi * Vj(np.ones((2, 1)))).sum(axis=0, backend="reference"), 3)


def test_complex_lazytensors_reduce_by_sum_only():
    z = np.array([[1 + 2j], [3 - 1j], [-2 + 0.5j]])
    w = np.array([[0.5 - 1j], [2 + 2j]])
    k = Vi(z) * Vj(w)
    for name, reduce in [
        ("Min", lambda: k.min(axis=1)),
        ("ArgMax", lambda: k.argmax(axis=0)),
        ("LogSumExp", lambda: k.logsumexp(axis=1)),
        ("KMin", lambda: k.Kmin(1, axis=1)),
        ("SumSoftMaxWeight", lambda: k.sumsoftmaxweight(Vj(np.ones((2, 1))), axis=1)),
        ("Max", lambda: k.reduction("Max", axis=1)),
    ]:
        with pytest.raises(ArgumentError, match=f"{name} reduction of a complex LazyTensor"):
            reduce()
    want = (z * w.T).sum(1, keepdims=True)
    np.testing.assert_allclose(k.sum(axis=1, backend="reference"), want)
    np.testing.assert_allclose(k.reduction("Sum", axis=1, backend="reference"), want)
    np.testing.assert_allclose(
        k.abs().max(axis=1, backend="reference"), np.abs(z * w.T).max(1)[:, None]
    )
    np.testing.assert_allclose((Vi(z) * Vj(np.ones((2, 1)))) @ np.array([1.0, 2.0]), 3 * z[:, 0])
