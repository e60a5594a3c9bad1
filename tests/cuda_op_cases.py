"""The op-coverage cases of the CUDA kernels: formulas calling every op card helper function
(Rsqrt, SinXDivX, XLogX, Pow, Round, Sign, Step, Mod, the clamps, Fence), forward and
gradients, with their data and an independent dense float64 NumPy computation.

Shared by tests/test_cuda_ops.py (NVRTC, host emulation) and tests/test_cuda_gpu.py (the
``cuda`` tier, on hardware). The data sit on a grid, so x - y and |x - y|^2 are exactly 0
for some pairs (``zero``: Rsqrt(0) = 0, SinXDivX(0) = 1, XLogX(0) = 0, Sign(0) = 0,
Step(0) = 1, the clamps' bounds), or on a grid shifted by a quarter (``shift``: never 0,
negative for half the pairs: negative powers, halves of Round).
"""

from __future__ import annotations

import numpy as np

from lazykernels.core.genred import build_plan


def aliases(d: int) -> list[str]:
    return [f"x=Vi({d})", f"y=Vj({d})", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)", f"u=Vi({d})"]


def _where(mask, value, x):
    return np.where(mask, value, x)


def _rsqrt(v):
    return _where(v == 0, 0.0, 1 / np.sqrt(_where(v == 0, 1.0, v)))


def _sinc(v):
    return _where(v == 0, 1.0, np.sin(v) / _where(v == 0, 1.0, v))


def _xlogx(v):
    return _where(v == 0, 0.0, v * np.log(_where(v == 0, 1.0, v)))


def _round1(v):  # one decimal, halves away from zero
    return np.sign(v) * np.floor(np.abs(v) * 10 + 0.5) / 10


# name -> (formula, data grid, vector dim, ops covered, per-pair dense terms (m, n, width)).
# The terms read a dict: d = x_i - y_j (m, n, D), r2 = |d|^2 (m, n, 1), b, g, e, u
# broadcast to (m, n, .).
CASES = {
    "rsqrt": ("Rsqrt(SqDist(x,y)) * b", "zero", 2, {"Rsqrt"}, lambda a: _rsqrt(a["r2"]) * a["b"]),
    "sinxdivx": ("SinXDivX(x - y)", "zero", 2, {"SinXDivX"}, lambda a: _sinc(a["d"])),
    "xlogx": ("XLogX(SqDist(x,y)) * b", "zero", 2, {"XLogX"}, lambda a: _xlogx(a["r2"]) * a["b"]),
    "pow_negative": (
        "Concat(Pow(x - y, -3), Pow(x - y, -2))",
        "shift",
        2,
        {"Pow"},
        lambda a: np.concatenate([a["d"] ** -3, a["d"] ** -2], -1),
    ),
    "pow_zero_positive": (  # Pow(f, 0) simplifies to 1 (0 ** 0 = 1, as NumPy)
        "Concat(Pow(x - y, 5), Concat(Pow(x - y, 0), Pow(x - y, 2)))",
        "zero",
        2,
        {"Pow"},
        lambda a: np.concatenate([a["d"] ** 5, a["d"] ** 0, a["d"] ** 2], -1),
    ),
    "round": ("Round(x - y, 1)", "shift", 2, {"Round"}, lambda a: _round1(a["d"])),
    "sign_step": (
        "Concat(Sign(x - y), Step(x - y))",
        "zero",
        2,
        {"Sign", "Step"},
        lambda a: np.concatenate([np.sign(a["d"]), (a["d"] >= 0) * 1.0], -1),
    ),
    "mod": (
        "Mod(x - y, g, y)",
        "shift",
        2,
        {"Mod"},
        lambda a: a["d"] - a["g"] * np.floor((a["d"] - a["y"]) / a["g"]),
    ),
    "clamps": (
        "Concat(Clamp(x - y, -g, y), Concat(ClampInt(x - y, -1, 1), DiffClampInt(x - y, -1, 1)))",
        "zero",
        2,
        {"Clamp", "ClampInt", "DiffClampInt"},
        lambda a: np.concatenate(
            [
                np.where(a["d"] < -a["g"], -a["g"], np.where(a["d"] > a["y"], a["y"], a["d"])),
                np.clip(a["d"], -1, 1),
                ((a["d"] >= -1) & (a["d"] <= 1)) * 1.0,
            ],
            -1,
        ),
    ),
    "fence": (  # the identity (the CPU's is a barrier to reassociation, CUDA's is not)
        "Exp(Fence(-SqDist(x,y))) * b",
        "shift",
        2,
        {"Fence"},
        lambda a: np.exp(-a["r2"]) * a["b"],
    ),
    "looped": (  # dimension 40: the templates inside the kernel IR's loops
        "Sum(SinXDivX(x - y) + XLogX(Abs(x - y)))",
        "zero",
        40,
        {"SinXDivX", "XLogX"},
        lambda a: (_sinc(a["d"]) + _xlogx(np.abs(a["d"]))).sum(-1, keepdims=True),
    ),
    "grad_fence": (  # the derivative of a fenced formula keeps the fence
        "Grad(Exp(Fence(-SqDist(x,y))), x, e)",
        "shift",
        2,
        {"Fence"},
        lambda a: -2 * a["e"] * a["d"] * np.exp(-a["r2"]),
    ),
    # gradients: Rsqrt's calls Pow, Sqrt's calls Rsqrt, Abs's Sign, ReLU's Step, ClampInt's
    # DiffClampInt; d/dx Rsqrt(|x-y|^2) = -(x-y) |x-y|^-3, 0 where x = y (Rsqrt(0)^3 = 0)
    "grad_rsqrt": (
        "Grad(Rsqrt(SqDist(x,y)) * b, x, e)",
        "zero",
        2,
        {"Rsqrt", "Pow"},
        lambda a: -a["e"] * a["b"] * a["d"] * _rsqrt(a["r2"]) ** 3,
    ),
    "grad_sinxdivx": (
        "Grad(SinXDivX(x - y), x, u)",
        "shift",
        2,
        {"SinXDivX"},
        lambda a: a["u"] * (np.cos(a["d"]) - np.sin(a["d"]) / a["d"]) / a["d"],
    ),
    "grad_xlogx": (
        "Grad(XLogX(SqDist(x,y)), x, e)",
        "shift",
        2,
        {"XLogX"},
        lambda a: a["e"] * (np.log(a["r2"]) + 1) * 2 * a["d"],
    ),
    "grad_pow": (
        "Grad(Pow(x - y, -3) + Pow(x - y, 3), x, u)",
        "shift",
        2,
        {"Pow"},
        lambda a: a["u"] * (-3 * a["d"] ** -4 + 3 * a["d"] ** 2),
    ),
    "grad_sqrt_abs": (
        "Grad(Sqrt(SqDist(x,y)) + Abs(x - y), x, u)",
        "shift",
        2,
        {"Rsqrt", "Sign"},
        lambda a: (
            a["u"].sum(-1, keepdims=True) * a["d"] / np.sqrt(a["r2"]) + a["u"] * np.sign(a["d"])
        ),
    ),
    "grad_piecewise": (
        "Grad(ReLU(x - y) + ClampInt(x - y, -1, 1) + Mod(x - y, g, y), x, u)",
        "shift",
        2,
        {"Step", "DiffClampInt"},
        lambda a: a["u"] * ((a["d"] >= 0) * 1.0 + (np.abs(a["d"]) <= 1) + 1.0),
    ),
}
SIZES = [(37, 45), (1, 3)]  # tails of the 32-thread blocks; one row, one partial tile
# float16: storage in half, arithmetic in float (the half dialect)
DTYPES = [(n, t) for n in sorted(CASES) for t in ("float16", "float32", "float64")]


def plan(name):
    formula, _, dim, _, _ = CASES[name]
    return build_plan(formula, aliases(dim), axis=1)


def data(rng: np.random.Generator, name: str, m: int, n: int) -> list[np.ndarray]:
    """x, y, b, g, e, u of case ``name``: on the half-integers in [-1.5, 1.5] (exact in
    float16); with the ``shift`` grid, y moves by a quarter, so x - y is never 0."""
    _, grid, dim, _, _ = CASES[name]
    x = rng.integers(-3, 4, (m, dim)) * 0.5
    y = rng.integers(-3, 4, (n, dim)) * 0.5 + (0.25 if grid == "shift" else 0.0)
    b = rng.integers(-3, 4, (n, 1)) * 0.5
    e = rng.integers(-3, 4, (m, 1)) * 0.5
    u = rng.integers(-3, 4, (m, dim)) * 0.5
    if grid == "zero" and m > 1 and n > 3:  # the singular points are in the data: x_i = y_j
        same = x[:, None, :] == y[None, :, :]
        assert (same.all(-1) if dim == 2 else same).any()
    return [x, y, b, np.array([1.5]), e, u]


def dense(name: str, args: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The float64 sum over j of the case's terms, and the sum of their absolute values."""
    x, y, b, g, e, u = (np.asarray(a, dtype=np.float64) for a in args)
    d = x[:, None, :] - y[None, :, :]
    values = {
        "d": d,
        "r2": (d**2).sum(-1, keepdims=True),
        "y": y[None, :, :],
        "b": b[None, :, :],
        "g": g[None, None, :],
        "e": e[:, None, :],
        "u": u[:, None, :],
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = CASES[name][4](values)
    return terms.sum(1), np.abs(terms).sum(1)


TOL = {"float16": 2e-3, "float32": 1e-5, "float64": 1e-13}


def check(name: str, dtype: str, got: np.ndarray, args: list[np.ndarray]) -> None:
    """``got`` (case ``name`` computed in ``dtype`` on ``args``) against :func:`dense`:
    error within ``TOL[dtype]`` times the sum of the terms' magnitudes (plus the rounding to
    float16 of the stored result)."""
    want, scale = dense(name, args)
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape, (got.dtype, got.shape)
    assert np.isfinite(want).all()  # the data keep clear of the undefined points
    tol = TOL[dtype]
    bound = tol * (scale + np.abs(want)) + (tol if dtype == "float16" else 0.0)
    err = np.abs(got.astype(np.float64) - want)
    assert (err <= bound).all(), f"{name} {dtype} {got.shape}: max error {err.max()}"
