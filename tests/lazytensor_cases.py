"""The LazyTensor method table shared by the NumPy and PyTorch LazyTensor tests.

Each row of ``CASES`` is (id, lazy builder, dense builder). The lazy builder gets
LazyTensors (``X`` = Vi dim 3, ``Y`` = Vj dim 3, ``S`` = Vi dim 1, ``T`` = Vj dim 1, ``A`` =
Vj dim 9, ``P`` = Pm dim 3, ``Q`` = sorted knots Pm dim 7, ``H`` = Vj integers in 0..3) and
the raw array ``R3`` = [1, 2, 3] of the adapter's library; the dense builder gets the same
data as NumPy arrays broadcastable as ``(..., M, 1, D)`` / ``(..., 1, N, D)`` /
``(..., 1, 1, D)``. :func:`run_case` reduces the LazyTensor with a Sum over j on the
reference backend; the dense values summed over j are the independent reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

M, N, BATCH = 5, 4, 2
TOL = {np.float32: dict(rtol=3e-4, atol=3e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}


def make_data(dtype, batch: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    b = (BATCH,) if batch else ()

    def uni(*shape, low=-0.9, high=0.9):
        return rng.uniform(low, high, size=(*b, *shape)).astype(dtype)

    return {
        "X": uni(M, 1, 3),
        "Y": uni(1, N, 3),
        "S": uni(M, 1, 1, low=0.1, high=0.9),
        "T": uni(1, N, 1, low=-0.8, high=0.8),
        "A": uni(1, N, 9),
        "P": uni(1, 1, 3, low=0.2, high=1.0),
        "Q": np.sort(uni(1, 1, 7, low=0.0, high=1.0), axis=-1),
        "H": rng.integers(0, 4, size=(*b, 1, N, 1)).astype(dtype),
        "R3": np.arange(1, 4).astype(dtype),  # a raw array operand, not a LazyTensor
    }


# --- independent dense references of the structural ops --------------------------------


def bspline_ref(t: np.ndarray, x: np.ndarray, order: int) -> np.ndarray:
    """Cox-de Boor recursion; t (..., K) knots, x (..., 1)."""
    t, x = np.broadcast_arrays(t, x[..., :1] * np.ones_like(t))
    x = x[..., 0]
    nk = t.shape[-1]
    basis = [((t[..., k] <= x) & (x < t[..., k + 1])).astype(float) for k in range(nk - 1)]
    for d in range(1, order + 1):
        basis = [
            (x - t[..., k]) / (t[..., k + d] - t[..., k]) * basis[k]
            + (t[..., k + d + 1] - x) / (t[..., k + d + 1] - t[..., k + 1]) * basis[k + 1]
            for k in range(nk - 1 - d)
        ]
    return np.stack(basis, axis=-1)


def softdtw_ref(x: np.ndarray, y: np.ndarray, gamma: float) -> np.ndarray:
    """Soft-DTW with squared differences between the series x (..., n) and y (..., m)."""
    x, y = np.broadcast_arrays(x[..., :, None], y[..., None, :])
    n, m = x.shape[-2], y.shape[-1]
    r = np.full((*x.shape[:-2], n + 1, m + 1), np.inf)
    r[..., 0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = np.stack([r[..., i - 1, j - 1], r[..., i - 1, j], r[..., i, j - 1]])
            soft = -gamma * np.log(np.exp(-prev / gamma).sum(0))
            r[..., i, j] = (x[..., i - 1, j - 1] - y[..., i - 1, j - 1]) ** 2 + soft
    return r[..., n, m][..., None]


def sq(v: np.ndarray) -> np.ndarray:
    return (v**2).sum(-1, keepdims=True)


def outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    prod = a[..., :, None] * b[..., None, :]
    return prod.reshape(*prod.shape[:-2], -1)


# (id, lazy(L), dense(d)); L and d are dicts of LazyTensors / arrays.
CASES = [
    # arithmetic and KeOps's shortcuts
    ("add", lambda L: L["X"] + L["Y"], lambda d: d["X"] + d["Y"]),
    ("radd_float", lambda L: 2.5 + L["X"], lambda d: 2.5 + d["X"]),
    ("add_int", lambda L: L["X"] + 3, lambda d: d["X"] + 3),
    ("sub", lambda L: L["X"] - L["Y"], lambda d: d["X"] - d["Y"]),
    ("rsub_float", lambda L: 1.5 - L["X"], lambda d: 1.5 - d["X"]),
    ("rsub_zero", lambda L: 0 - L["X"], lambda d: -d["X"]),
    ("mul", lambda L: L["X"] * L["Y"], lambda d: d["X"] * d["Y"]),
    ("mul_scalar_broadcast", lambda L: L["S"] * L["Y"], lambda d: d["S"] * d["Y"]),
    ("rmul_int", lambda L: 3 * L["X"], lambda d: 3 * d["X"]),
    ("mul_minus_one", lambda L: L["X"] * -1, lambda d: -d["X"]),
    ("div", lambda L: L["X"] / (abs(L["Y"]) + 1), lambda d: d["X"] / (abs(d["Y"]) + 1)),
    ("rdiv_one", lambda L: 1 / L["S"], lambda d: 1 / d["S"]),
    ("rdiv_float", lambda L: 2.5 / L["S"], lambda d: 2.5 / d["S"]),
    ("div_float", lambda L: L["X"] / 0.25, lambda d: d["X"] / 0.25),
    ("neg", lambda L: -L["X"], lambda d: -d["X"]),
    ("abs", lambda L: abs(L["X"]), lambda d: abs(d["X"])),
    ("abs_method", lambda L: L["X"].abs(), lambda d: abs(d["X"])),
    ("pow2", lambda L: L["X"] ** 2, lambda d: d["X"] ** 2),
    ("pow3", lambda L: L["X"] ** 3, lambda d: d["X"] ** 3),
    ("pow_half", lambda L: L["S"] ** 0.5, lambda d: np.sqrt(d["S"])),
    ("pow_minus_half", lambda L: L["S"] ** -0.5, lambda d: 1 / np.sqrt(d["S"])),
    ("pow_float", lambda L: L["S"] ** 1.7, lambda d: d["S"] ** 1.7),
    ("pow_lazy", lambda L: L["S"] ** L["T"], lambda d: d["S"] ** d["T"]),
    ("power", lambda L: L["X"].power(3), lambda d: d["X"] ** 3),
    ("array_operand", lambda L: L["X"] * L["R3"], lambda d: d["X"] * [1, 2, 3]),
    # comparisons
    ("lt", lambda L: L["X"] < L["Y"], lambda d: d["X"] < d["Y"]),
    ("gt", lambda L: L["X"] > L["Y"], lambda d: d["X"] > d["Y"]),
    ("le", lambda L: L["X"] <= 0.1, lambda d: d["X"] <= 0.1),
    ("ge", lambda L: L["X"] >= L["Y"], lambda d: d["X"] >= d["Y"]),
    ("eq", lambda L: L["H"] == 2, lambda d: d["H"] == 2),
    ("ne", lambda L: L["H"] != L["S"].round(), lambda d: d["H"] != np.round(d["S"])),
    # math functions
    ("exp", lambda L: L["X"].exp(), lambda d: np.exp(d["X"])),
    ("log", lambda L: L["S"].log(), lambda d: np.log(d["S"])),
    ("xlogx", lambda L: L["S"].xlogx(), lambda d: d["S"] * np.log(d["S"])),
    ("sin", lambda L: L["X"].sin(), lambda d: np.sin(d["X"])),
    ("cos", lambda L: L["X"].cos(), lambda d: np.cos(d["X"])),
    ("sinxdivx", lambda L: L["X"].sinxdivx(), lambda d: np.sin(d["X"]) / d["X"]),
    ("sinc", lambda L: L["X"].sinc(), lambda d: np.sinc(d["X"])),
    ("asin", lambda L: L["X"].asin(), lambda d: np.arcsin(d["X"])),
    ("acos", lambda L: L["X"].acos(), lambda d: np.arccos(d["X"])),
    ("atan", lambda L: L["X"].atan(), lambda d: np.arctan(d["X"])),
    ("atan2", lambda L: L["X"].atan2(L["Y"]), lambda d: np.arctan2(d["X"], d["Y"])),
    ("sqrt", lambda L: L["S"].sqrt(), lambda d: np.sqrt(d["S"])),
    ("rsqrt", lambda L: L["S"].rsqrt(), lambda d: 1 / np.sqrt(d["S"])),
    ("square", lambda L: L["X"].square(), lambda d: d["X"] ** 2),
    ("sign", lambda L: L["X"].sign(), lambda d: np.sign(d["X"])),
    ("step", lambda L: L["X"].step(), lambda d: (d["X"] >= 0) * 1.0),
    ("relu", lambda L: L["X"].relu(), lambda d: np.maximum(d["X"], 0)),
    ("round", lambda L: (L["X"] * 10).round(), lambda d: np.round(d["X"] * 10)),
    ("round_decimals", lambda L: L["X"].round(1), lambda d: np.round(d["X"], 1)),
    ("clamp_int", lambda L: (L["X"] * 4).clamp(-1, 2), lambda d: np.clip(d["X"] * 4, -1, 2)),
    ("clamp_float", lambda L: L["X"].clamp(-0.2, 0.5), lambda d: np.clip(d["X"], -0.2, 0.5)),
    (
        "clamp_lazy",
        lambda L: L["X"].clamp(-abs(L["T"]), 0.5),
        lambda d: np.clip(d["X"], -abs(d["T"]), 0.5),
    ),
    ("ifelse", lambda L: L["X"].ifelse(L["Y"], 2.0), lambda d: np.where(d["X"] >= 0, d["Y"], 2)),
    (
        "mod",
        lambda L: L["X"].mod(0.7, 0.1),
        lambda d: d["X"] - 0.7 * np.floor((d["X"] - 0.1) / 0.7),
    ),
    # norms and distances
    ("sqnorm2", lambda L: L["X"].sqnorm2(), lambda d: sq(d["X"])),
    ("norm2", lambda L: L["X"].norm2(), lambda d: np.sqrt(sq(d["X"]))),
    ("norm", lambda L: L["X"].norm(-1), lambda d: np.sqrt(sq(d["X"]))),
    ("normalize", lambda L: L["X"].normalize(), lambda d: d["X"] / np.sqrt(sq(d["X"]))),
    ("sqdist", lambda L: L["X"].sqdist(L["Y"]), lambda d: sq(d["X"] - d["Y"])),
    ("scalprod", lambda L: L["X"] | L["Y"], lambda d: (d["X"] * d["Y"]).sum(-1, keepdims=True)),
    ("wsqnorm_iso", lambda L: L["X"].weightedsqnorm(L["S"]), lambda d: d["S"] * sq(d["X"])),
    (
        "wsqnorm_diag",
        lambda L: L["X"].weightedsqnorm(L["P"]),
        lambda d: (d["P"] * d["X"] ** 2).sum(-1, keepdims=True),
    ),
    (
        "wsqnorm_full",
        lambda L: L["X"].weightedsqnorm(L["A"]),
        lambda d: (d["A"] * outer(d["X"], d["X"])).sum(-1, keepdims=True),
    ),
    (
        "wsqdist",
        lambda L: L["X"].weightedsqdist(L["Y"], L["S"]),
        lambda d: d["S"] * sq(d["X"] - d["Y"]),
    ),
    # indexing, concatenation
    ("elem", lambda L: L["X"][1], lambda d: d["X"][..., 1:2]),
    ("elem_negative", lambda L: L["X"][-1], lambda d: d["X"][..., 2:3]),
    ("elem_method", lambda L: L["X"].elem(0), lambda d: d["X"][..., 0:1]),
    ("slice", lambda L: L["X"][0:2], lambda d: d["X"][..., 0:2]),
    ("slice_open", lambda L: L["X"][1:], lambda d: d["X"][..., 1:]),
    ("extract", lambda L: L["X"].extract(1, 2), lambda d: d["X"][..., 1:3]),
    (
        "concat",
        lambda L: L["X"].concat(L["T"]),
        lambda d: np.concatenate([_b(d["X"], d["T"]), _b(d["T"], d["X"])], -1),
    ),
    (
        "concatenate",
        lambda L: type(L["X"]).concatenate((L["X"], L["Y"], L["S"])),
        lambda d: np.concatenate(
            [_b(d["X"], d["Y"]), _b(d["Y"], d["X"]), _b(d["S"], d["Y"])], axis=-1
        ),
    ),
    (
        "cat",
        lambda L: type(L["S"]).cat((L["S"], L["X"]), dim=-1),
        lambda d: np.concatenate([d["S"], d["X"]], axis=-1),
    ),
    (
        "one_hot",
        lambda L: L["H"].one_hot(4),
        lambda d: (d["H"] == np.arange(4)).astype(float),
    ),
    # tensor algebra
    (
        "matvecmult",
        lambda L: L["A"].matvecmult(L["X"]),
        lambda d: np.einsum("...ij,...j->...i", _mat(d["A"]), d["X"]),
    ),
    (
        "vecmatmult",
        lambda L: L["X"].vecmatmult(L["A"]),
        lambda d: np.einsum("...j,...ji->...i", d["X"], _mat(d["A"])),
    ),
    ("tensorprod", lambda L: L["X"].tensorprod(L["Y"]), lambda d: outer(d["X"], d["Y"])),
    (
        "tensordot",
        lambda L: L["A"].keops_tensordot(L["X"], (3, 3), (3,), (1,), (0,)),
        lambda d: np.einsum("...ij,...j->...i", _mat(d["A"]), d["X"]),
    ),
    (
        "tensordot_permute",
        lambda L: L["X"].keops_tensordot(L["Y"], (3,), (3,), (), (), (1, 0)),
        lambda d: outer(d["Y"], d["X"]),
    ),
    ("kron", lambda L: L["X"].keops_kron(L["Y"], (3,), (3,)), lambda d: outer(d["X"], d["Y"])),
    ("difference_matrix", lambda L: L["X"].difference_matrix(L["Y"]), lambda d: _diffm(d)),
    # special functions
    ("bspline0", lambda L: L["Q"].bspline(L["S"], 0), lambda d: bspline_ref(d["Q"], d["S"], 0)),
    ("bspline2", lambda L: L["Q"].bspline(L["S"], 2), lambda d: bspline_ref(d["Q"], d["S"], 2)),
    (
        "softdtw",
        lambda L: L["X"].softdtw_sqdist(L["Y"], 0.5),
        lambda d: softdtw_ref(d["X"], d["Y"], 0.5),
    ),
    # inner-dimension reductions (axis=-1: operations, not reductions)
    ("inner_sum", lambda L: L["X"].sum(), lambda d: d["X"].sum(-1, keepdims=True)),
    ("inner_sum_dim", lambda L: L["X"].sum(dim=-1), lambda d: d["X"].sum(-1, keepdims=True)),
    (
        "inner_min",
        lambda L: (L["X"] + L["Y"]).min(),
        lambda d: (d["X"] + d["Y"]).min(-1)[..., None],
    ),
    ("inner_max", lambda L: L["X"].max(-1), lambda d: d["X"].max(-1, keepdims=True)),
    ("inner_argmin", lambda L: L["X"].argmin(), lambda d: d["X"].argmin(-1)[..., None] * 1.0),
    ("inner_argmax", lambda L: L["Y"].argmax(), lambda d: d["Y"].argmax(-1)[..., None] * 1.0),
    # symbolic calculus
    (
        "grad",
        lambda L: L["X"].sqdist(L["Y"]).grad(L["X"], L["T"]),
        lambda d: 2 * (d["X"] - d["Y"]) * d["T"],
    ),
    (
        "diff",
        lambda L: L["X"].sqdist(L["Y"]).diff(L["X"], L["Y"]),
        lambda d: (2 * (d["X"] - d["Y"]) * d["Y"]).sum(-1, keepdims=True),
    ),
    (
        "laplacian",
        lambda L: (-L["X"].sqdist(L["Y"])).exp().laplacian(L["X"]),
        lambda d: (4 * sq(d["X"] - d["Y"]) - 6) * np.exp(-sq(d["X"] - d["Y"])),
    ),
    (
        "divergence",
        lambda L: (L["X"] * L["Y"]).divergence(L["X"]),
        lambda d: d["Y"].sum(-1, keepdims=True),
    ),
    (
        "trace_operator",
        lambda L: (L["X"] * L["Y"] * L["S"]).trace_operator(L["X"]),
        lambda d: d["S"] * d["Y"].sum(-1, keepdims=True),
    ),
    (
        "grad_matrix",
        lambda L: (L["X"].sqnorm2() * L["Y"]).grad_matrix(L["X"]),
        lambda d: outer(d["Y"], 2 * d["X"]),
    ),
    (
        "factorize",
        lambda L: (L["X"].sqdist(L["Y"]) * L["X"].sqdist(L["Y"]).exp()).factorize(
            L["X"].sqdist(L["Y"])
        ),
        lambda d: sq(d["X"] - d["Y"]) * np.exp(sq(d["X"] - d["Y"])),
    ),
    ("auto_factorize", lambda L: (L["X"] * L["Y"]).auto_factorize(), lambda d: d["X"] * d["Y"]),
]


def _b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` broadcast against ``b`` on every axis but the last."""
    shape = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return np.broadcast_to(a, (*shape, a.shape[-1]))


def _mat(a: np.ndarray) -> np.ndarray:
    return a.reshape(*a.shape[:-1], 3, 3)


def _diffm(d: dict[str, np.ndarray]) -> np.ndarray:
    diff = d["X"][..., :, None] - d["Y"][..., None, :]
    return diff.reshape(*diff.shape[:-2], 9)


RAW = frozenset({"R3"})
"""Entries of ``make_data`` given to the lazy builders as raw arrays, not LazyTensors."""


def lazy_of(
    data: dict[str, np.ndarray], lazytensor: Callable[[Any], Any], convert: Callable[[Any], Any]
) -> dict[str, Any]:
    """The lazy builders' argument: ``lazytensor(convert(array))`` per entry (raw: converted).

    ``lazytensor`` is an adapter's LazyTensor class, ``convert`` maps a NumPy array to that
    array library.
    """
    return {
        name: convert(value) if name in RAW else lazytensor(convert(value))
        for name, value in data.items()
    }


def run_case(case: tuple, dtype: Any, batch: bool, lazytensor: Any, convert: Any) -> tuple:
    """Build ``case``'s formula with ``lazytensor`` and Sum-reduce it over j (reference).

    Returns:
        (the reduction's result, the dense float64 NumPy reference summed over j).
    """
    _, lazy, dense = case
    data = make_data(dtype, batch)
    formula = lazy(lazy_of(data, lazytensor, convert))
    with np.errstate(all="ignore"):
        expected = np.asarray(dense(data), dtype=np.float64)
    # a formula without j (or i) variable has one column (row): KeOps's N (M) = 1
    full = ((BATCH,) if batch else ()) + (formula.ni or 1, formula.nj or 1, formula.ndim)
    expected = np.broadcast_to(expected, full).sum(-2)
    got = formula.sum(axis=formula.nbatchdims + 1, backend="reference")
    return got, expected
