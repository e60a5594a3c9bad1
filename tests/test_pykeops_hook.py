"""``lazykernels.install_as_pykeops()`` (issue 12, item 4): ``import pykeops`` is lazykernels.

The hook is process-wide and cannot be removed, so these tests install it in the test
process (nothing else here imports the real pykeops); the refusals run in subprocesses,
where the real (or a stand-in) pykeops is imported first.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import lazykernels
from lazykernels import config
from lazykernels.errors import CompatibilityError
from lazykernels.pykeops_hook import PYKEOPS_MODULES, KeOpsModule

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def pykeops():
    lazykernels.install_as_pykeops()
    lazykernels.install_as_pykeops()  # a second call does nothing
    import pykeops

    return pykeops


def test_every_module_of_the_table_imports_through_the_hook(pykeops):
    for name, ours in PYKEOPS_MODULES.items():
        if name.startswith("pykeops.torch") and not config.torch_found:
            continue
        module = importlib.import_module(name)
        assert isinstance(module, KeOpsModule), name
        assert module.__name__ == name
        target = importlib.import_module(ours)
        for attr in getattr(target, "__all__", []):
            if (name, attr) == ("pykeops", "__version__"):
                continue  # KeOps's version, see test_version_is_keops_compatible
            assert getattr(module, attr) is getattr(target, attr), f"{name}.{attr}"


@pytest.mark.cpu
def test_keops_spellings_give_lazykernels_objects(pykeops):
    import pykeops.config
    import pykeops.numpy
    from pykeops.common.gpu_utils import get_gpu_number
    from pykeops.numpy import Genred, LazyTensor
    from pykeops.numpy.cluster import grid_cluster
    from pykeops.numpy.lazytensor.LazyTensor import Vi

    import lazykernels.numpy as lkn

    assert LazyTensor is lkn.LazyTensor and Genred is lkn.Genred and Vi is lkn.Vi
    assert pykeops.config.gpu_available is False and get_gpu_number() == 0
    assert pykeops.numpy.cluster.grid_cluster is grid_cluster  # the module attribute
    assert pykeops.set_verbose is lazykernels.set_verbose
    x = np.linspace(0.0, 1.0, 9)[:, None]
    np.testing.assert_array_equal(grid_cluster(x, 0.5), (x[:, 0] // 0.5).astype(np.int64))
    k = Genred("Exp(-SqDist(x,y))", ["x = Vi(1)", "y = Vj(1)"], axis=1)(x, x)
    np.testing.assert_allclose(k[:, 0], np.exp(-((x - x.T) ** 2)).sum(1), rtol=1e-12)


def test_version_is_keops_compatible(pykeops):
    from packaging.version import Version
    from pykeops.numpy.utils import IsGpuAvailable

    from lazykernels.pykeops_hook import KEOPS_VERSION

    assert pykeops.__version__ == KEOPS_VERSION == "2.3"
    # the checks downstream code makes on it
    assert Version(pykeops.__version__) >= Version("2.0")
    assert pykeops.__version__.startswith("2.")
    assert tuple(int(p) for p in pykeops.__version__.split(".")[:2]) >= (2, 0)
    assert lazykernels.__version__ == "0.1.0"  # lazykernels' own is unchanged
    assert IsGpuAvailable() is False  # KeOps 1.x's helper: the CPU branch of scripts


def test_setting_a_flag_sets_it_on_lazykernels(pykeops):
    import pykeops.config

    before = config.verbose
    try:
        pykeops.config.verbose = True
        assert config.verbose is True
        pykeops.set_verbose(False)
        assert pykeops.config.verbose is False
    finally:
        config.verbose = before


def test_a_module_without_counterpart_is_named(pykeops):
    with pytest.raises(ModuleNotFoundError, match="pykeops.common.keops_io"):
        import pykeops.common.keops_io  # noqa: F401
    # without torch, pykeops.torch itself is what is missing (as with the real pykeops)
    missing = "pykeops.torch.half2_convert" if config.torch_found else "torch"
    with pytest.raises(ModuleNotFoundError, match=missing):
        importlib.import_module("pykeops.torch.half2_convert")


@pytest.mark.cpu
def test_keops_talk_metrics_run_unchanged_through_the_hook(pykeops):
    torch = pytest.importorskip("torch")
    from pykeops.torch import LazyTensor  # the talk's import, unchanged

    N, D, K = 200, 3, 4
    x = torch.rand(N, D, dtype=torch.float64) + 0.1
    x_i = LazyTensor(x.view(N, 1, D))
    x_j = LazyTensor(x.view(1, N, D))
    D_ij = ((x_i - x_j) ** 2).sum(-1)
    H_ij = D_ij / (x_i[..., 0] * x_j[..., 0])
    sq = ((x[:, None] - x[None]) ** 2).sum(-1)
    dense = sq / (x[:, None, 0] * x[None, :, 0])
    torch.testing.assert_close(H_ij.Kmin(K=K, dim=1), dense.topk(K, dim=1, largest=False).values)


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_refuses_when_a_pykeops_is_already_imported():
    proc = _run(
        """
        import sys, types
        sys.modules["pykeops"] = types.ModuleType("pykeops")  # what an earlier import leaves
        import lazykernels
        try:
            lazykernels.install_as_pykeops()
        except lazykernels.CompatibilityError as e:
            print("REFUSED", e)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED install_as_pykeops(): the real KeOps is already imported (pykeops" in (
        proc.stdout
    )
    assert "before anything imports pykeops" in proc.stdout
    assert issubclass(CompatibilityError, ImportError)


def _real_pykeops_installed() -> bool:
    # find_spec would find our own hook once it is installed in this process
    try:
        importlib.metadata.distribution("pykeops")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(not _real_pykeops_installed(), reason="the real pykeops is not installed")
def test_refuses_after_the_real_pykeops():
    proc = _run(
        """
        import os
        os.environ["PYKEOPS_VERBOSE"] = "0"
        import pykeops
        import lazykernels
        try:
            lazykernels.install_as_pykeops()
        except lazykernels.CompatibilityError as e:
            print("REFUSED", e)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "REFUSED" in proc.stdout and "site-packages" in proc.stdout
