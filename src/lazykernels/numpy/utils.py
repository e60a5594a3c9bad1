"""KeOps's ``pykeops.numpy.utils``: the NumPy array tools and the dense test kernels.

``numpytools`` is the "template" class KeOps's generic code (and some libraries) use to
write one algorithm for NumPy and torch; the functions below are the dense NumPy kernels
KeOps's tests and benchmarks compare against. ``IsGpuAvailable`` is KeOps 1.x's (its
tutorials import it from here): False, there is no GPU backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cluster import swap_axes as np_swap_axes
from .genred import Genred
from .lazytensor import KernelSolve


class numpytools:  # noqa: N801 (KeOps's name)
    """NumPy versions of the array operations KeOps's generic code needs."""

    norm = staticmethod(np.linalg.norm)
    arraysum = staticmethod(np.sum)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    Genred = Genred
    KernelSolve = KernelSolve
    swap_axes = staticmethod(np_swap_axes)
    arraytype = np.ndarray
    float_types = [float, np.float16, np.float32, np.float64]

    @staticmethod
    def is_tensor(x: Any) -> bool:
        return isinstance(x, np.ndarray)

    @staticmethod
    def copy(x: np.ndarray) -> np.ndarray:
        return np.copy(x)

    @staticmethod
    def eq(x: Any, y: Any) -> np.ndarray:
        return np.equal(x, y)

    @staticmethod
    def transpose(x: np.ndarray) -> np.ndarray:
        return x.T

    @staticmethod
    def permute(x: np.ndarray, *args: Any) -> np.ndarray:
        return x.transpose(*args)

    @staticmethod
    def contiguous(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x)

    @staticmethod
    def numpy(x: np.ndarray) -> np.ndarray:
        return x

    @staticmethod
    def tile(*args: Any) -> np.ndarray:
        return np.tile(*args)

    @staticmethod
    def solve(*args: Any) -> np.ndarray:
        return np.linalg.solve(*args)

    @staticmethod
    def size(x: np.ndarray) -> int:
        return x.size

    @staticmethod
    def view(x: np.ndarray, s: Any) -> np.ndarray:
        return np.reshape(x, s)

    @staticmethod
    def long(x: np.ndarray) -> np.ndarray:
        return x.astype("int64")

    @staticmethod
    def dtype(x: np.ndarray) -> np.dtype:
        return x.dtype

    @staticmethod
    def detect_complex(x: Any) -> bool:
        if isinstance(x, list):
            return any(isinstance(v, complex) for v in x)
        if isinstance(x, np.ndarray):
            return bool(np.iscomplexobj(x))
        return isinstance(x, complex)

    @staticmethod
    def view_as_complex(x: np.ndarray) -> np.ndarray:
        return x.view({"float32": "complex64", "float64": "complex128"}[x.dtype.name])

    @staticmethod
    def view_as_real(x: np.ndarray) -> np.ndarray:
        return x.view({"complex64": "float32", "complex128": "float64"}[x.dtype.name])

    @staticmethod
    def dtypename(dtype: Any) -> str:
        return np.dtype(dtype).name

    @staticmethod
    def rand(m: int, n: int, dtype: Any) -> np.ndarray:
        return np.random.rand(m, n).astype(dtype)

    @staticmethod
    def randn(m: int, n: int, dtype: Any) -> np.ndarray:
        return np.random.randn(m, n).astype(dtype)

    @staticmethod
    def zeros(shape: Any, dtype: Any, device: Any = None, requires_grad: Any = None) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    @staticmethod
    def empty(shape: Any, dtype: Any, device: Any = None, requires_grad: Any = None) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def eye(n: int, dtype: Any) -> np.ndarray:
        return np.eye(n, dtype=dtype)

    @staticmethod
    def array(x: Any, dtype: Any, device: Any = None) -> np.ndarray:
        return np.array(x).astype(dtype)

    @staticmethod
    def get_pointer(x: np.ndarray) -> int:
        return x.__array_interface__["data"][0]

    @staticmethod
    def device(x: Any) -> str:
        return "cpu"

    @staticmethod
    def device_type_index(x: Any) -> tuple[str, None]:
        return "cpu", None

    @staticmethod
    def device_dict(x: Any) -> dict[str, str]:
        return {"cat": "cpu"}


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|x_i - y_j|^2`` as an (M, N) array, by the norm expansion."""
    x_norm = (x**2).sum(1).reshape(-1, 1)
    y_norm = (y**2).sum(1).reshape(1, -1)
    return x_norm + y_norm - 2.0 * np.matmul(x, y.T)


def differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x_i[k] - y_j[k]`` as a (D, M, N) array."""
    return x.T[:, :, np.newaxis] - y.T[:, np.newaxis, :]


def np_kernel_sphere(nalpha: np.ndarray, nbeta: np.ndarray, s: float, kernel: str) -> np.ndarray:
    """Kernels on unit vectors: "binet", "linear", "gaussian_unoriented", "gaussian_oriented"."""
    prs = nalpha @ nbeta.T
    table = {
        "binet": lambda: prs**2,
        "linear": lambda: prs,
        "gaussian_unoriented": lambda: np.exp((-2.0 + 2.0 * prs * prs) / (s * s)),
        "gaussian_oriented": lambda: np.exp((-2.0 + 2.0 * prs) / (s * s)),
    }
    return table[kernel]()


def np_kernel(x: np.ndarray, y: np.ndarray, s: float, kernel: str) -> np.ndarray:
    """Radial kernels: "gaussian", "laplacian", "cauchy", "inverse_multiquadric"."""
    sq = squared_distances(x, y)
    table = {
        "gaussian": lambda: np.exp(-sq / (s * s)),
        "laplacian": lambda: np.exp(-np.sqrt(sq) / s),
        "cauchy": lambda: 1.0 / (1 + sq / (s * s)),
        "inverse_multiquadric": lambda: np.sqrt(1.0 / (1 + sq / (s * s))),
    }
    return table[kernel]()


def log_np_kernel(x: np.ndarray, y: np.ndarray, s: float, kernel: str) -> np.ndarray:
    """The logarithm of :func:`np_kernel`."""
    sq = squared_distances(x, y)
    table = {
        "gaussian": lambda: -sq / (s * s),
        "laplacian": lambda: -np.sqrt(sq) / s,
        "cauchy": lambda: -np.log(1 + sq / (s * s)),
        "inverse_multiquadric": lambda: -0.5 * np.log(1.0 + sq / (s * s)),
    }
    return table[kernel]()


def grad_np_kernel(x: np.ndarray, y: np.ndarray, s: float, kernel: str) -> np.ndarray:
    """The derivative of :func:`np_kernel` with respect to the squared distance."""
    sq = squared_distances(x, y)

    def laplacian() -> np.ndarray:
        t = -np.sqrt(sq / (s * s))
        return np.exp(t) / (2 * s * s * t)

    table = {
        "gaussian": lambda: -np.exp(-sq / (s * s)) / (s * s),
        "laplacian": laplacian,
        "cauchy": lambda: -1.0 / (s * (sq / (s * s) + 1)) ** 2,
        "inverse_multiquadric": lambda: -0.5 / ((s**2) * ((sq / (s * s) + 1) ** 1.5)),
    }
    return table[kernel]()


def chain_rules(q: np.ndarray, ax: np.ndarray, by: np.ndarray, Aa: np.ndarray, p: np.ndarray):  # noqa: N803
    """``sum_j q_i . (2 (ax_i - by_j) Aa_ij) p_j``, one column per dimension (float32)."""
    res = np.zeros(ax.shape).astype("float32")
    for i in range(ax.shape[1]):
        diff = ax[:, i][:, None] - by[:, i][None, :]
        res[:, i] = np.sum(q * ((2 * diff * Aa) @ p), axis=1)
    return res


def log_sum_exp(mat: np.ndarray, axis: int = 0) -> np.ndarray:
    """``log sum exp`` of ``mat`` along ``axis``, shifted by the maximum for stability."""
    max_rc = mat.max(axis=axis)
    return max_rc + np.log(np.sum(np.exp(mat - np.expand_dims(max_rc, axis=axis)), axis=axis))


def WarmUpGpu() -> None:  # noqa: N802 (KeOps's name)
    """KeOps warms up its GPU; lazykernels has none, so this does nothing."""


def IsGpuAvailable() -> bool:  # noqa: N802 (KeOps 1.x's name)
    """KeOps 1.x's ``pykeops.numpy.utils.IsGpuAvailable()``: whether reductions can run on a
    GPU. KeOps asked GPUtil for a device; lazykernels has no GPU backend, so it is False,
    as ``lazykernels.config.gpu_available`` (a layer above, not read here), and scripts take
    their CPU branch."""
    return False


__all__ = [
    "IsGpuAvailable",
    "WarmUpGpu",
    "chain_rules",
    "differences",
    "grad_np_kernel",
    "log_np_kernel",
    "log_sum_exp",
    "np_kernel",
    "np_kernel_sphere",
    "numpytools",
    "squared_distances",
]
