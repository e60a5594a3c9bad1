"""The runnable tutorials of ``examples/``, run at tiny sizes and checked against dense math.

Each tutorial's ``main(argv)`` returns its key numbers; here they are compared with
independent dense NumPy / SciPy / scikit-learn computations, and the PNGs must exist.
The examples import their helper as the top-level module ``_common``: :func:`load` puts
``examples/`` on ``sys.path`` only while a tutorial is imported, and puts back whatever
``_common`` module was there before.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

pytestmark = pytest.mark.cpu  # the tutorials use the default backend: compiled when possible

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (with ``examples/_common.py`` as helper)."""
    saved = sys.modules.pop("_common", None)
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"lk_example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("_common", None)
        if saved is not None:
            sys.modules["_common"] = saved
    return module


def run(name: str, tmp_path: Path, *args: str) -> dict:
    return load(name).main([*args, "--out-dir", str(tmp_path)])


def pngs(tmp_path: Path) -> list[str]:
    """Names of the non-empty PNG files written."""
    return sorted(p.name for p in tmp_path.glob("*.png") if p.stat().st_size > 1000)


def test_rbf_interpolation(tmp_path):
    res = run("rbf_interpolation", tmp_path, "--n", "150", "--grid", "12")
    assert pngs(tmp_path) == ["rbf_interpolation_1d.png", "rbf_interpolation_2d.png"]
    for case in ("1d_gaussian", "1d_laplacian", "2d_gaussian", "2d_laplacian"):
        r = res[case]
        assert r["residual"] < 1e-5
        assert r["interp_gap"] < 1e-4
        # independent dense solve of (alpha Id + K) a = b
        x, b = r["x"], r["b"]
        d2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
        sigma = {"gaussian": 0.05, "laplacian": 0.1}[case[3:]]
        K = np.exp(-d2 / (2 * sigma**2)) if "gaussian" in case else np.exp(-np.sqrt(d2) / sigma)
        a = np.linalg.solve(K + 0.5 * np.eye(len(x)), b)
        np.testing.assert_allclose(r["a"], a, atol=1e-5 * np.abs(a).max())


def test_knn_digits_matches_sklearn(tmp_path):
    pytest.importorskip("sklearn")
    res = run("knn_digits", tmp_path, "--n", "400", "--k", "5")
    assert pngs(tmp_path) == ["knn_digits.png"]
    assert res["accuracy"] == res["sklearn_accuracy"] == res["dense_accuracy"]
    assert res["n_disagree_sklearn"] == 0
    assert res["same_neighbour_distances"]
    assert res["accuracy"] > 0.9


def test_kmeans_assignments_equal_dense_argmin(tmp_path):
    res = run("kmeans", tmp_path, "--n", "3000", "--clusters", "12", "--iters", "5")
    assert pngs(tmp_path) == ["kmeans.png"]
    x, c = res["x"], res["centroids"]
    dense = np.argmin(((x[:, None, :] - c[None, :, :]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(res["labels"], dense)
    assert res["same_labels_every_step"]
    np.testing.assert_allclose(res["centroids"], res["dense_centroids"], rtol=1e-12)


def test_gaussian_mixture_loglik_increases(tmp_path):
    from scipy.stats import multivariate_normal

    res = run("gaussian_mixture", tmp_path, "--n", "1500", "--components", "3", "--iters", "8")
    assert pngs(tmp_path) == ["gaussian_mixture.png"]
    ll = np.array(res["loglik"])
    assert np.all(np.diff(ll) >= -1e-9 * np.abs(ll[:-1]))  # EM never decreases it
    assert ll[-1] > ll[0]
    np.testing.assert_allclose(ll, res["dense_loglik"], rtol=1e-10)
    # the fitted parameters' log-likelihood, by SciPy: at least the last recorded one
    weights, means, covs = res["params"]
    dens = sum(w * multivariate_normal(m, c).pdf(res["x"]) for w, m, c in zip(weights, means, covs))
    assert np.sum(np.log(dens)) >= ll[-1] - 1e-9 * abs(ll[-1])


def test_spectral_eigenvalues_equal_dense_eigh(tmp_path):
    pytest.importorskip("sklearn")
    res = run("spectral", tmp_path, "--n", "200")
    assert pngs(tmp_path) == ["spectral.png"]
    x, sigma = res["x"], res["sigma"]
    K = np.exp(-np.sum((x[:, None] - x[None]) ** 2, axis=-1) / (2 * sigma**2))
    s = 1 / np.sqrt(K.sum(1))
    top = np.linalg.eigvalsh(s[:, None] * K * s[None, :])[::-1][:3]
    np.testing.assert_allclose(res["eigenvalues"], top, atol=1e-10)
    np.testing.assert_allclose(res["eigvec_alignment"], 1.0, atol=1e-6)
    assert res["accuracy"] == 1.0


def test_sinkhorn_marginals(tmp_path):
    res = run("sinkhorn", tmp_path, "--n", "200", "--eps", "0.01", "--tol", "1e-8")
    assert pngs(tmp_path) == ["sinkhorn.png"]
    # the plan from the returned potentials, densely
    x, y, eps, f, g = res["x"], res["y"], res["eps"], res["f"], res["g"]
    C = np.sum((x[:, None] - y[None]) ** 2, axis=-1) / 2
    P = np.exp((f + g.T - C) / eps) / (len(x) * len(y))
    assert np.abs(P.sum(1) - 1 / len(x)).sum() < 1e-8
    assert np.abs(P.sum(0) - 1 / len(y)).sum() < 1e-12
    assert res["row_error"] < 1e-8 and res["col_error"] < 1e-12
    assert res["cost"] == pytest.approx(np.sum(P * C), rel=1e-10)
    assert res["potential_gap"] < 1e-10


def test_lddmm_energy_decreases(tmp_path):
    pytest.importorskip("torch")
    res = run("lddmm_shooting", tmp_path, "--n", "16", "--iters", "5", "--steps", "4")
    assert pngs(tmp_path) == ["lddmm_shooting.png"]
    energies = np.array(res["energies"])
    assert np.all(np.diff(energies) <= 1e-12)
    assert energies[-1] < 0.5 * energies[0]
    assert res["energy_gap"] < 1e-12
    assert res["grad_gap"] < 1e-10


def test_sinkhorn_jax_against_ott_jax():
    pytest.importorskip("jax")
    pytest.importorskip("ott")
    res = load("sinkhorn_jax").main(["--n", "400", "--dims", "3", "8", "--iters", "30"])
    for case in ("d3", "d8"):
        r = res[case]
        assert r["relative_gap"] < 1e-5  # the same regularised cost as OTT-JAX
        assert r["lazykernels"]["marginal_error"] < 1e-2
        assert r["time_ratio"] > 0
