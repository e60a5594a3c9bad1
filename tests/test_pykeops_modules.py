"""KeOps's module paths and helpers under lazykernels (issue 12, item 3).

``MODULE_NAMES`` lists every ``pykeops`` module and name that KeOps 2.3's tutorials,
examples, tests and API docs import, and those GeomLoss and GPyTorch import. Each has a
lazykernels counterpart (``pykeops.X`` -> ``lazykernels.X``, the table of
:data:`lazykernels.pykeops_hook.PYKEOPS_MODULES`) holding the same names; the helpers are then
checked to behave as KeOps's (dense NumPy / torch as the reference).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import lazykernels
from lazykernels import config
from lazykernels.errors import ArgumentError, ShapeError
from lazykernels.pykeops_hook import PYKEOPS_MODULES

from .test_front_end_names import KEOPS_NAMES

# pykeops module -> the names scripts import from it (``import pykeops.X`` has no name)
MODULE_NAMES = {
    "pykeops": [
        "clean_pykeops",
        "check_health",
        "default_device_id",
        "get_build_folder",
        "set_build_folder",
        "set_verbose",
        "test_numpy_bindings",
        "test_torch_bindings",
        "config",
        "numpy",
        "torch",
        "common",
        "__version__",
    ],
    "pykeops.config": ["gpu_available", "numpy_found", "torch_found", "get_build_folder"],
    "pykeops.common": [],
    "pykeops.common.gpu_utils": ["get_gpu_number", "IsGpuAvailable"],
    "pykeops.common.utils": [
        "axis2cat",
        "cat2axis",
        "c_type",
        "check_broadcasting",
        "get_tools",
        "max_tuple",
        "pyKeOps_Message",
        "pyKeOps_Print",
        "pyKeOps_Warning",
        "WarmUpGpu",
    ],
    "pykeops.common.lazy_tensor": ["GenericLazyTensor", "ComplexGenericLazyTensor"],
    "pykeops.common.operations": ["ConjugateGradientSolver"],
    "pykeops.numpy.utils": [
        "numpytools",
        "squared_distances",
        "differences",
        "np_kernel",
        "np_kernel_sphere",
        "log_np_kernel",
        "grad_np_kernel",
        "chain_rules",
        "log_sum_exp",
        "WarmUpGpu",
        "IsGpuAvailable",  # KeOps 1.x (its tutorials: from pykeops.numpy.utils import ...)
    ],
    "pykeops.torch.utils": ["torchtools", "is_on_device", "squared_distances", "torch_kernel"],
}
CLUSTER = [
    "grid_cluster",
    "cluster_ranges_centroids",
    "cluster_ranges",
    "cluster_centroids",
    "sort_clusters",
    "from_matrix",
    "swap_axes",
]
LAZYTENSOR = ["LazyTensor", "ComplexLazyTensor", "Vi", "Vj", "Pm"]
GENERIC_OPS = ["generic_sum", "generic_logsumexp", "generic_argmin", "generic_argkmin"]
for _lib in ("numpy", "torch"):  # what both front ends have, module by module
    MODULE_NAMES.update(
        {
            f"pykeops.{_lib}": KEOPS_NAMES,
            f"pykeops.{_lib}.operations": ["KernelSolve"],
            f"pykeops.{_lib}.cluster": CLUSTER,
            f"pykeops.{_lib}.lazytensor": LAZYTENSOR,
            f"pykeops.{_lib}.lazytensor.LazyTensor": LAZYTENSOR,
            f"pykeops.{_lib}.generic": ["Genred"],
            f"pykeops.{_lib}.generic.generic_red": ["Genred"],
            f"pykeops.{_lib}.generic.generic_ops": GENERIC_OPS,
        }
    )


def _needs_torch(module: str) -> bool:
    return module.startswith("pykeops.torch")


@pytest.mark.parametrize("keops_module", sorted(MODULE_NAMES))
def test_every_keops_module_has_a_counterpart_with_its_names(keops_module):
    if _needs_torch(keops_module):
        pytest.importorskip("torch")
    ours = PYKEOPS_MODULES[keops_module]
    assert ours == "lazykernels" + keops_module[len("pykeops") :] or keops_module.startswith(
        ("pykeops.numpy.", "pykeops.torch.")
    ), f"{keops_module} -> {ours}"
    module = importlib.import_module(ours)
    missing = [
        name
        for name in MODULE_NAMES[keops_module]
        if not (name in ("numpy", "torch") and not config.torch_found)
        and getattr(module, name, None) is None
    ]
    assert not missing, f"{ours} lacks {missing} (KeOps's {keops_module} has them)"


def test_the_listing_covers_the_hook_table():
    """Every module the hook answers is listed here, so none is answered untested."""
    assert set(PYKEOPS_MODULES) - {
        f"pykeops.{lib}.cluster.{sub}"
        for lib in ("numpy", "torch")
        for sub in ("grid_cluster", "matrix", "utils")
    } - {"pykeops.numpy.cluster", "pykeops.torch.cluster"} <= set(MODULE_NAMES)
    assert set(MODULE_NAMES) <= set(PYKEOPS_MODULES)


def test_front_end_objects_are_the_same_across_module_paths():
    import lazykernels.numpy as lkn
    from lazykernels.numpy import operations, utils
    from lazykernels.numpy.genred import Genred

    assert operations.KernelSolve is lkn.KernelSolve
    assert utils.numpytools.Genred is Genred is lkn.Genred
    assert lazykernels.numpy is lkn  # the package attribute, imported on first use


def test_config_and_gpu_utils_say_cpu_only():
    from lazykernels.common.gpu_utils import IsGpuAvailable, get_gpu_number
    from lazykernels.numpy.utils import IsGpuAvailable as numpy_is_gpu_available

    assert config.gpu_available is False
    assert get_gpu_number() == 0
    assert numpy_is_gpu_available is IsGpuAvailable
    assert IsGpuAvailable() is config.gpu_available is False
    assert config.numpy_found is True
    assert config.torch_found == (importlib.util.find_spec("torch") is not None)


def test_set_verbose_drives_the_pykeops_messages(capsys):
    from lazykernels.common.utils import pyKeOps_Message, pyKeOps_Print, pyKeOps_Warning

    before = config.verbose
    try:
        lazykernels.set_verbose(False)
        pyKeOps_Message("hidden")
        assert capsys.readouterr().out == ""
        lazykernels.set_verbose(True)
        pyKeOps_Message("shown")
        pyKeOps_Warning("careful")
        pyKeOps_Print("plain")
        assert capsys.readouterr().out == ("[pyKeOps] shown\n[pyKeOps] Warning : careful\nplain\n")
    finally:
        config.verbose = before


@pytest.mark.cpu
def test_build_folder_moves_the_cache_and_clean_pykeops_empties_it(tmp_path, monkeypatch):
    import lazykernels.numpy as lkn

    monkeypatch.delenv("LAZYKERNELS_CACHE", raising=False)
    default = lazykernels.get_build_folder()
    lazykernels.set_build_folder(tmp_path / "keops-cache")
    try:
        assert lazykernels.get_build_folder() == str(tmp_path / "keops-cache")
        assert config.get_build_folder() == str(tmp_path / "keops-cache")
        lazykernels.clean_pykeops()  # forget what this process loaded: the next call builds here
        x = np.linspace(0, 1, 7)[:, None]
        lkn.Genred("SqDist(x,y)", ["x = Vi(1)", "y = Vj(1)"], axis=1)(x, x)
        assert any((tmp_path / "keops-cache").iterdir())
        lazykernels.clean_pykeops(recompile_jit_binaries=False)
        assert lazykernels.cache_info()["num_kernels"] == 0
    finally:
        lazykernels.set_build_folder(None)
    assert lazykernels.get_build_folder() == default
    assert "LAZYKERNELS_CACHE" not in os.environ


def test_axis_conventions_and_broadcasting():
    from lazykernels.common.utils import axis2cat, cat2axis, check_broadcasting, max_tuple

    assert [axis2cat(0), axis2cat(1), cat2axis(0), cat2axis(1)] == [1, 0, 1, 0]
    with pytest.raises(ArgumentError, match="axis should be 0 or 1"):
        axis2cat(2)
    with pytest.raises(ArgumentError, match="category"):
        cat2axis(-1)
    assert max_tuple((1, 4), (3, 2)) == (3, 4)
    assert check_broadcasting((2, 1, 3), (4, 1)) == (2, 4, 3)
    assert check_broadcasting(None, (5,)) == (5,)
    with pytest.raises(ShapeError, match="incompatible batch dimensions"):
        check_broadcasting((2, 3), (4, 3))


def test_get_tools_and_conjugate_gradient_solver():
    from lazykernels.common.operations import ConjugateGradientSolver
    from lazykernels.common.utils import get_tools
    from lazykernels.numpy.utils import numpytools

    assert isinstance(get_tools("numpy"), numpytools)
    with pytest.raises(ArgumentError, match="unknown array library"):
        get_tools("jax")
    rng = np.random.default_rng(3)
    m = rng.standard_normal((20, 20))
    a = m @ m.T + 20 * np.eye(20)
    for b in (rng.standard_normal(20), rng.standard_normal((20, 3))):
        x = ConjugateGradientSolver("numpy", lambda v, a=a: a @ v, b, eps=1e-12)
        assert x.shape == b.shape
        np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    with pytest.raises(ArgumentError, match="unknown binding"):
        ConjugateGradientSolver("jax", lambda v: v, np.ones(3))


def test_numpy_test_kernels_match_their_definitions():
    from lazykernels.numpy import utils as u

    rng = np.random.default_rng(5)
    x, y = rng.random((6, 3)), rng.random((4, 3))
    sq = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(u.squared_distances(x, y), sq, atol=1e-12)
    np.testing.assert_allclose(u.differences(x, y), np.moveaxis(x[:, None] - y[None], -1, 0))
    s = 0.7
    np.testing.assert_allclose(u.np_kernel(x, y, s, "gaussian"), np.exp(-sq / s**2))
    np.testing.assert_allclose(u.np_kernel(x, y, s, "cauchy"), 1 / (1 + sq / s**2))
    for kernel in ("gaussian", "laplacian", "cauchy", "inverse_multiquadric"):
        np.testing.assert_allclose(
            u.log_np_kernel(x, y, s, kernel), np.log(u.np_kernel(x, y, s, kernel)), atol=1e-12
        )
        # grad_np_kernel is d kernel / d sq: central differences in sq
        h = 1e-6
        bumped = [np.exp(_log_kernel(sq + t, s, kernel)) for t in (h, -h)]
        np.testing.assert_allclose(
            u.grad_np_kernel(x, y, s, kernel), (bumped[0] - bumped[1]) / (2 * h), rtol=1e-5
        )
    mat = rng.standard_normal((5, 4)) * 30
    np.testing.assert_allclose(u.log_sum_exp(mat, axis=1), np.log(np.exp(mat).sum(1)))
    nx = x / np.linalg.norm(x, axis=1, keepdims=True)
    ny = y / np.linalg.norm(y, axis=1, keepdims=True)
    np.testing.assert_allclose(u.np_kernel_sphere(nx, ny, s, "linear"), nx @ ny.T)


def _log_kernel(sq: np.ndarray, s: float, kernel: str) -> np.ndarray:
    r = sq / s**2
    return {
        "gaussian": -r,
        "laplacian": -np.sqrt(r),
        "cauchy": -np.log1p(r),
        "inverse_multiquadric": -0.5 * np.log1p(r),
    }[kernel]


def test_numpytools_and_torchtools_operations():
    from lazykernels.numpy.utils import numpytools

    x = np.arange(6.0).reshape(2, 3)
    assert numpytools.dtypename(np.float32) == "float32"
    np.testing.assert_array_equal(numpytools.transpose(x), x.T)
    assert numpytools.view_as_real(numpytools.view_as_complex(x[:, :2].copy())).shape == (2, 2)
    assert numpytools.is_tensor(x) and not numpytools.is_tensor([1.0])
    torch = pytest.importorskip("torch")
    from lazykernels.torch.utils import is_on_device, torch_kernel, torchtools

    t = torch.from_numpy(x)
    assert torchtools.dtypename(torch.float64) == "float64"
    assert torchtools.transpose(t).shape == (3, 2)
    c = torchtools.view_as_complex(t[:, :2].contiguous())
    assert c.shape == (2, 1) and torch.equal(torchtools.view_as_real(c), t[:, :2])
    assert torchtools.array([1, 2], "float32", "cpu").dtype == torch.float32
    assert not is_on_device(t)
    sq = ((t[:, None] - t[None]) ** 2).sum(-1)
    torch.testing.assert_close(torch_kernel(t, t, 2.0, "gaussian"), torch.exp(-sq / 4.0))


@pytest.mark.cpu
def test_bindings_self_tests_pass(capsys):
    lazykernels.test_numpy_bindings()
    assert "the NumPy bindings work" in capsys.readouterr().out
    pytest.importorskip("torch")
    lazykernels.test_torch_bindings()
    assert "the torch bindings work" in capsys.readouterr().out
