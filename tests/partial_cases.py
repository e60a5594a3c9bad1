"""One Genred case per canonical reduction, shared by the partial-state and dask tests.

``CASES`` rows are ``(reduction, formula, opt_arg, formula2)`` over the aliases
:data:`ALIASES`; :func:`data` gives float64 inputs (positive weights ``b``, no ties).
"""

from __future__ import annotations

import numpy as np

ALIASES = ["x = Vi(2)", "y = Vj(2)", "b = Vj(2)", "p = Pm(1)"]

CASES = [
    ("Sum", "Exp(-SqDist(x,y)*p)*b", None, None),
    ("LogSumExp", "-SqDist(x,y)*p", None, None),
    ("LogSumExpWeight", "-SqDist(x,y)", None, "b"),
    ("SumSoftMaxWeight", "-SqDist(x,y)", None, "b"),
    ("Max_SumShiftExp", "-SqDist(x,y)", None, None),
    ("Max_SumShiftExpWeight", "-SqDist(x,y)", None, "b"),
    ("Min", "SqDist(x,y)*b", None, None),
    ("Max", "SqDist(x,y)*b", None, None),
    ("ArgMin", "SqDist(x,y)*b", None, None),
    ("ArgMax", "SqDist(x,y)*b", None, None),
    ("Min_ArgMin", "SqDist(x,y)*b", None, None),
    ("Max_ArgMax", "SqDist(x,y)*b", None, None),
    ("KMin", "SqDist(x,y)", 3, None),
    ("ArgKMin", "Square(x-y)", 3, None),
    ("KMin_ArgKMin", "SqDist(x,y)", 3, None),
]
IDS = [c[0] for c in CASES]


def data(m: int, n: int, seed: int = 0, dtype=np.float64) -> list[np.ndarray]:
    """``[x (m, 2), y (n, 2), b (n, 2), p (1,)]``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 2))
    y = rng.normal(size=(n, 2))
    b = rng.uniform(0.5, 1.5, size=(n, 2))
    return [a.astype(dtype) for a in (x, y, b, np.array([2.0]))]


def assert_same(got, want, rtol: float = 1e-10) -> None:
    """Equal indices, values within ``rtol`` (tuples compared entry by entry)."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype == np.int64:
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


def chunked(args: list[np.ndarray], rows_i: int, rows_j: int) -> list:
    """``data``'s arrays with x, y and b as dask arrays of the given row chunks."""
    import dask.array as da  # optional: only the dask tests call this

    x, y, b, p = args
    return [
        da.from_array(x, chunks=(rows_i, -1)),
        da.from_array(y, chunks=(rows_j, -1)),
        da.from_array(b, chunks=(rows_j, -1)),
        p,
    ]
