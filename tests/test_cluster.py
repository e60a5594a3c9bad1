"""Cluster utilities (SPEC §4.7): each function vs a plain NumPy loop, for the NumPy and
torch adapters, and a block-sparse Gaussian sum vs the dense sum over the kept blocks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lazykernels import cluster as core
from lazykernels.errors import ArgumentError, ShapeError
from lazykernels.numpy import cluster as npc

HAS_TORCH = importlib.util.find_spec("torch") is not None
LIBS = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not HAS_TORCH, reason="torch"))]


class Lib:
    """One adapter under test: its module and conversions to / from NumPy."""

    def __init__(self, name: str):
        self.name = name
        if name == "numpy":
            self.mod = npc
            self.arr = np.asarray
            self.np = np.asarray
        else:
            import torch

            from lazykernels.torch import cluster as tc

            self.mod = tc
            self.arr = torch.as_tensor
            self.np = lambda t: t.detach().cpu().numpy()


@pytest.fixture(params=LIBS)
def lib(request) -> Lib:
    return Lib(request.param)


# ----------------------------------------------------------------- plain NumPy oracles


def voxel_labels(x: np.ndarray, size) -> np.ndarray:
    """Labels numbering the distinct voxels floor(x / size) in lexicographic order."""
    side = np.broadcast_to(np.asarray(size, dtype=float), (x.shape[1],))
    keys = [tuple(int(np.floor(v / s)) for v, s in zip(row, side)) for row in x]
    number = {key: k for k, key in enumerate(sorted(set(keys)))}
    return np.array([number[key] for key in keys], dtype=np.int64)


def loop_ranges(lab: np.ndarray, n: int) -> np.ndarray:
    out, start = [], 0
    for c in range(n):
        count = int(sum(1 for v in lab if v == c))
        out.append([start, start + count])
        start += count
    return np.array(out, dtype=np.int64).reshape(n, 2)


def loop_centroids(x, lab, n, w=None, wc=None) -> np.ndarray:
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    out = np.full((n, x.shape[1]), np.nan)
    for c in range(n):
        members = [m for m in range(len(x)) if lab[m] == c]
        total = sum(w[m] for m in members) if wc is None else wc[c]
        if total != 0:
            out[c] = sum(w[m] * x[m] for m in members) / total
    return out


# ----------------------------------------------------------------- grid_cluster


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_grid_cluster_numpy_matches_voxels(d):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(200, d))
    lab = npc.grid_cluster(x, 0.7)
    assert lab.dtype == np.int64 and lab.shape == (200,)
    np.testing.assert_array_equal(lab, voxel_labels(x, 0.7))
    sides = rng.uniform(0.3, 1.5, size=d)
    np.testing.assert_array_equal(npc.grid_cluster(x, sides), voxel_labels(x, sides))


def test_grid_cluster_labels_are_compact():
    x = np.array([[10.5, 0.0], [-3.2, 7.0], [10.1, 0.9], [100.0, 100.0]])
    lab = npc.grid_cluster(x, 1.0)
    np.testing.assert_array_equal(lab, [1, 0, 1, 2])
    assert npc.grid_cluster(np.zeros((0, 2)), 1.0).shape == (0,)


@pytest.mark.skipif(not HAS_TORCH, reason="torch")
def test_grid_cluster_torch_subtracts_min_without_grad():
    import torch

    from lazykernels.torch import cluster as tc

    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 3)) + 0.37
    xt = torch.tensor(x, requires_grad=True)
    lab = tc.grid_cluster(xt, 0.5)
    assert lab.dtype == torch.int64 and not lab.requires_grad
    np.testing.assert_array_equal(lab.numpy(), voxel_labels(x - x.min(0), 0.5))
    # the origin matters: NumPy bins from 0, torch from x.min(0)
    assert not np.array_equal(npc.grid_cluster(x, 0.5), lab.numpy())
    sides = torch.tensor([0.4, 0.9, 1.3], dtype=torch.float64)
    np.testing.assert_array_equal(
        tc.grid_cluster(xt, sides).numpy(), voxel_labels(x - x.min(0), sides.numpy())
    )


# ----------------------------------------------------------------- sort / ranges / centroids


def test_sort_clusters_is_stable_and_permutes_together(lib):
    rng = np.random.default_rng(2)
    lab = rng.integers(0, 4, size=30)
    x = rng.normal(size=(30, 2))
    ids = np.arange(30)
    order = [m for c in range(4) for m in range(30) if lab[m] == c]  # stable by definition
    xs, ls = lib.mod.sort_clusters(lib.arr(x), lib.arr(lab))
    np.testing.assert_array_equal(lib.np(xs), x[order])
    np.testing.assert_array_equal(lib.np(ls), lab[order])
    (xs2, is2), _ = lib.mod.sort_clusters((lib.arr(x), lib.arr(ids)), lib.arr(lab))
    np.testing.assert_array_equal(lib.np(is2), order)
    np.testing.assert_array_equal(lib.np(xs2), x[order])
    as_list, _ = lib.mod.sort_clusters([lib.arr(ids)], lib.arr(lab))
    assert isinstance(as_list, list)


def test_cluster_ranges(lib):
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 6, size=40)
    lab[lab == 2] = 5  # an empty cluster in the middle
    got = lib.mod.cluster_ranges(lib.arr(lab))
    np.testing.assert_array_equal(lib.np(got), loop_ranges(lab, 6))
    assert lib.np(got).dtype == np.int64
    wide = lib.np(lib.mod.cluster_ranges(lib.arr(lab), Nlab=8))
    np.testing.assert_array_equal(wide, loop_ranges(lab, 8))
    # the ranges index the label-sorted order
    _, sorted_lab = lib.mod.sort_clusters(lib.arr(lab), lib.arr(lab))
    sorted_lab = lib.np(sorted_lab)
    for c, (a, e) in enumerate(lib.np(got)):
        assert np.all(sorted_lab[a:e] == c)


def test_cluster_centroids(lib):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 3))
    lab = rng.integers(0, 5, size=25)
    lab[lab == 1] = 0  # cluster 1 is empty
    w = rng.uniform(0.5, 2.0, size=25)
    got = lib.np(lib.mod.cluster_centroids(lib.arr(x), lib.arr(lab)))
    np.testing.assert_allclose(got, loop_centroids(x, lab, 5), rtol=1e-12)
    assert np.all(np.isnan(got[1]))
    got_w = lib.np(lib.mod.cluster_centroids(lib.arr(x), lib.arr(lab), weights=lib.arr(w)))
    np.testing.assert_allclose(got_w, loop_centroids(x, lab, 5, w), rtol=1e-12)
    wc = rng.uniform(1.0, 3.0, size=7)
    got_c = lib.mod.cluster_centroids(lib.arr(x), lib.arr(lab), 7, lib.arr(w), lib.arr(wc))
    np.testing.assert_allclose(lib.np(got_c), loop_centroids(x, lab, 7, w, wc), rtol=1e-12)


def test_cluster_centroids_keeps_float32(lib):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    got = lib.np(lib.mod.cluster_centroids(lib.arr(x), lib.arr(np.array([0, 1, 0, 1, 0, 1]))))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, [[4.0, 5.0], [6.0, 7.0]])


def test_cluster_ranges_centroids(lib):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 2))
    lab = rng.integers(0, 4, size=30)
    w = rng.uniform(0.1, 1.0, size=30)
    ranges, cent, wc = (lib.np(a) for a in lib.mod.cluster_ranges_centroids(lib.arr(x), lab))
    np.testing.assert_array_equal(ranges, loop_ranges(lab, 4))
    np.testing.assert_allclose(cent, loop_centroids(x, lab, 4), rtol=1e-12)
    np.testing.assert_allclose(wc, np.bincount(lab, minlength=4))
    _, cent, wc = (lib.np(a) for a in lib.mod.cluster_ranges_centroids(x, lab, weights=w))
    np.testing.assert_allclose(cent, loop_centroids(x, lab, 4, w), rtol=1e-12)
    np.testing.assert_allclose(wc, [w[lab == c].sum() for c in range(4)], rtol=1e-12)


@pytest.mark.skipif(not HAS_TORCH, reason="torch")
def test_torch_cluster_ranges_centroids_clamps_and_differentiates():
    import torch

    from lazykernels.torch import cluster as tc

    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 5.0]], dtype=torch.float64)
    lab = torch.tensor([0, 0, 2])  # cluster 1 is empty
    _, cent, wc = tc.cluster_ranges_centroids(x, lab, min_weight=0.25)
    np.testing.assert_allclose(wc.numpy(), [2.0, 0.25, 1.0])
    np.testing.assert_allclose(cent.numpy(), [[2.0, 4.0], [0.0, 0.0], [5.0, 5.0]])
    xg = x.clone().requires_grad_(True)
    w = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    (tc.cluster_centroids(xg, lab, weights=w)[0].sum()).backward()
    np.testing.assert_allclose(xg.grad.numpy(), [[0.25, 0.25], [0.75, 0.75], [0.0, 0.0]])


# ----------------------------------------------------------------- from_matrix / swap_axes


def loop_from_matrix(ranges_i, ranges_j, keep):
    red_j = [
        ranges_j[cj] for ci in range(len(ranges_i)) for cj in range(len(ranges_j)) if keep[ci, cj]
    ]
    red_i = [
        ranges_i[ci] for cj in range(len(ranges_j)) for ci in range(len(ranges_i)) if keep[ci, cj]
    ]
    slices_i = np.cumsum([keep[ci].sum() for ci in range(len(ranges_i))])
    slices_j = np.cumsum([keep[:, cj].sum() for cj in range(len(ranges_j))])
    return (
        ranges_i,
        slices_i,
        np.array(red_j).reshape(-1, 2),
        ranges_j,
        slices_j,
        np.array(red_i).reshape(-1, 2),
    )


def test_from_matrix(lib):
    rng = np.random.default_rng(6)
    ranges_i = loop_ranges(rng.integers(0, 5, size=20), 5)
    ranges_j = loop_ranges(rng.integers(0, 3, size=12), 3)
    keep = rng.random((5, 3)) < 0.5
    keep[2] = False  # an i cluster with no block
    got = lib.mod.from_matrix(lib.arr(ranges_i), lib.arr(ranges_j), lib.arr(keep))
    assert len(got) == 6
    for name, g, want in zip(core.RANGE_NAMES, got, loop_from_matrix(ranges_i, ranges_j, keep)):
        g = lib.np(g)
        assert g.dtype == np.int64, name
        np.testing.assert_array_equal(g, want, err_msg=name)


def test_swap_axes(lib):
    ranges = lib.mod.from_matrix(
        np.array([[0, 2], [2, 5]]),
        np.array([[0, 1], [1, 4], [4, 6]]),
        np.array([[True, False, True], [False, False, True]]),
    )
    swapped = lib.mod.swap_axes(ranges)
    assert [id(a) for a in swapped] == [id(a) for a in (*ranges[3:], *ranges[:3])]
    assert lib.mod.swap_axes(None) is None
    with pytest.raises(ArgumentError, match="6-tuple"):
        lib.mod.swap_axes(ranges[:3])


# ----------------------------------------------------------------- bad input


def _zeros(*shape, dtype=float):
    return np.zeros(shape, dtype=dtype)


X4, LAB4 = _zeros(4, 2), np.array([0, 1, 1, 0])
R2, R3 = np.array([[0, 2], [2, 4]]), np.array([[0, 1], [1, 2], [2, 4]])
KEEP23 = np.ones((2, 3), dtype=bool)

# (exception, message pattern, function name, arguments as NumPy arrays / Python values)
ERROR_CASES = [
    (ShapeError, "x must be a", "grid_cluster", (_zeros(4), 1.0)),
    (ShapeError, "size must be a scalar or a", "grid_cluster", (X4, np.ones(3))),
    (ArgumentError, "size must be positive", "grid_cluster", (X4, -1.0)),
    (ArgumentError, "finite", "grid_cluster", (np.full((2, 2), np.nan), 1.0)),
    (ShapeError, "x must have one row", "sort_clusters", (_zeros(3), LAB4)),
    (ShapeError, r"x\[1\] must have one row", "sort_clusters", ((X4, _zeros(5)), LAB4)),
    (ArgumentError, "integer labels", "cluster_ranges", (_zeros(3),)),
    (ShapeError, "lab must be a 1D", "cluster_ranges", (_zeros(2, 2, dtype=int),)),
    (ArgumentError, "non-negative", "cluster_ranges", (np.array([0, -1]),)),
    (ArgumentError, "Nlab must be an integer >= max", "cluster_ranges", (LAB4, 1)),
    (ShapeError, "lab has 3 labels", "cluster_centroids", (X4, _zeros(3, dtype=int))),
    (ShapeError, "weights must have", "cluster_centroids", (X4, LAB4, None, np.ones(3))),
    (ShapeError, "weights_c must have", "cluster_centroids", (X4, LAB4, 2, None, np.ones(5))),
    (ArgumentError, "keep must be a boolean", "from_matrix", (R2, R3, np.ones((2, 3), int))),
    (ShapeError, r"keep must have shape \(Ci, Cj\) = \(2, 3\)", "from_matrix", (R2, R3, KEEP23.T)),
    (ShapeError, "ranges_j must have shape", "from_matrix", (R2, _zeros(3, dtype=int), KEEP23)),
    (ArgumentError, "ranges_i must be an integer", "from_matrix", (_zeros(2, 2), R3, KEEP23)),
]


def _convert(lib: Lib, value):
    if isinstance(value, tuple):
        return tuple(_convert(lib, v) for v in value)
    return lib.arr(value) if isinstance(value, np.ndarray) else value


@pytest.mark.parametrize(
    ("exc", "pattern", "func", "args"), ERROR_CASES, ids=[c[1][:24] for c in ERROR_CASES]
)
def test_errors_name_the_argument(lib, exc, pattern, func, args):
    assert issubclass(exc, ValueError)
    with pytest.raises(exc, match=pattern):
        getattr(lib.mod, func)(*(_convert(lib, a) for a in args))


# ----------------------------------------------------------------- end to end with Genred


def cpu_available() -> bool:
    from lazykernels.core import backends

    try:
        backends.resolve("CPU")
    except Exception:
        return False
    return True


BACKENDS = [
    "reference",
    pytest.param("CPU", marks=[pytest.mark.cpu, pytest.mark.skipif("not cpu_available()")]),
]


def clustered_problem(rng, lib: Lib):
    """Two clouds, voxel-clustered and sorted, with a partial block mask."""
    x = rng.uniform(0.0, 4.0, size=(300, 3))
    y = rng.uniform(0.0, 4.0, size=(250, 3))
    b = rng.normal(size=(250, 1))
    lx, ly = lib.mod.grid_cluster(lib.arr(x), 1.0), lib.mod.grid_cluster(lib.arr(y), 1.0)
    rx, cx, _ = lib.mod.cluster_ranges_centroids(lib.arr(x), lx)
    ry, cy, _ = lib.mod.cluster_ranges_centroids(lib.arr(y), ly)
    x, lx = lib.mod.sort_clusters(lib.arr(x), lx)
    (y, b), ly = lib.mod.sort_clusters((lib.arr(y), lib.arr(b)), ly)
    cx, cy = lib.np(cx), lib.np(cy)
    keep = ((cx[:, None, :] - cy[None, :, :]) ** 2).sum(-1) < 1.6**2
    assert 0.05 < keep.mean() < 0.6  # genuinely block-sparse
    ranges = lib.mod.from_matrix(rx, ry, lib.arr(keep))
    x, y, b, lx, ly = (lib.np(a) for a in (x, y, b, lx, ly))
    mask = keep[lx[:, None], ly[None, :]]  # (M, N) mask of the kept blocks
    ranges = tuple(lib.np(r) for r in ranges)
    return x, y, b, ranges, mask


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_sparse_gaussian_sum_matches_masked_dense(lib, backend):
    from lazykernels.numpy import Genred

    rng = np.random.default_rng(7)
    x, y, b, ranges, mask = clustered_problem(rng, lib)
    kernel = np.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"]
    formula = "Exp(-SqDist(x,y)) * b"

    out_i = Genred(formula, aliases, axis=1)(x, y, b, backend=backend, ranges=ranges)
    want_i = (kernel * mask) @ b
    np.testing.assert_allclose(out_i, want_i, rtol=1e-10, atol=1e-12)
    assert not np.allclose(want_i, kernel @ b)  # the mask does cut something

    out_j = Genred(formula, aliases, axis=0)(x, y, b, backend=backend, ranges=ranges)
    want_j = (kernel * mask).sum(0)[:, None] * b
    np.testing.assert_allclose(out_j, want_j, rtol=1e-10, atol=1e-12)

    # the transposed kernel (x indexed by j) takes the swapped ranges
    aliases_t = ["x = Vj(3)", "y = Vi(3)", "b = Vi(1)"]
    out_t = Genred(formula, aliases_t, axis=0)(x, y, b, backend=backend,
                                               ranges=npc.swap_axes(ranges))  # fmt: skip
    np.testing.assert_allclose(out_t, (kernel * mask) @ b, rtol=1e-10, atol=1e-12)
