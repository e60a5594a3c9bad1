"""The three computations of ``lazykernels demo``, each done three ways, plus their checks.

Tasks (D = 3, float32, M = N points, Gaussian kernel ``K_ij = exp(-g |x_i - y_j|^2)``):

- ``sum``: ``out_i = sum_j K_ij b_j``;
- ``grad``: the gradient w.r.t. x of ``sum_i e_i out_i``, i.e.
  ``-2 g e_i sum_j K_ij b_j (x_i - y_j)``;
- ``knn``: the indices of the K = 10 nearest y_j of every x_i.

Methods: lazykernels (``Genred`` on the chosen backend; the gradient through torch autograd
when :mod:`lazykernels.torch` works, else the ``Grad`` formula), dense NumPy and dense
PyTorch (which build the N x N matrix). Every output is checked on a sample of rows against
a float64 NumPy computation, so the check works even when no dense method fits in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

K_NEIGHBOURS = 10
GAMMA = 8.0  # 1 / (2 sigma^2) with sigma = 0.25 on points in the unit cube
SAMPLED_ROWS = 100
TASKS = ("sum", "grad", "knn")
TASK_TITLES = {
    "sum": "Gaussian kernel sum",
    "grad": "gradient w.r.t. x",
    "knn": f"kNN (ArgKMin, K={K_NEIGHBOURS})",
}
# Relative errors above these (vs float64) count as a disagreement. kNN compares the
# distances of the neighbours found, which differ only when near-ties are broken the other
# way by float32 rounding (the dense methods compute distances as |x|^2 + |y|^2 - 2 x.y).
TOLERANCE = {"sum": 1e-3, "grad": 1e-3, "knn": 1e-2}
# About how many N x N float32 arrays the dense methods hold at once.
DENSE_ARRAYS = 3

SUM_FORMULA = "Exp(-g * SqDist(x, y)) * b"
ALIASES = ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)", "g = Pm(1)"]


@dataclass
class Data:
    """One problem size: float32 inputs and the rows checked against float64."""

    x: np.ndarray
    y: np.ndarray
    b: np.ndarray
    e: np.ndarray
    g: np.ndarray
    rows: np.ndarray

    @classmethod
    def random(cls, n: int, seed: int = 0) -> Data:
        """Uniform points in the unit cube, positive weights, ``SAMPLED_ROWS`` rows to check."""
        rng = np.random.default_rng(seed)
        x = rng.random((n, 3), dtype=np.float32)
        y = rng.random((n, 3), dtype=np.float32)
        b = rng.random((n, 1), dtype=np.float32)
        e = rng.random((n, 1), dtype=np.float32)
        rows = np.sort(rng.choice(n, size=min(n, SAMPLED_ROWS), replace=False))
        return cls(x, y, b, e, np.array([GAMMA], dtype=np.float32), rows)


def dense_bytes(n: int) -> int:
    """Memory the dense methods need at size N (M = N)."""
    return DENSE_ARRAYS * n * n * 4


# ---- lazykernels ------------------------------------------------------------------------


class LazyMethods:
    """The lazykernels routines, built once, run on ``backend``."""

    def __init__(self, backend: str):
        from ..numpy import Genred  # import cost

        self.backend = backend
        self.sum_routine = Genred(SUM_FORMULA, ALIASES, reduction_op="Sum", axis=1)
        self.grad_routine = Genred(
            f"Grad({SUM_FORMULA}, x, e)", [*ALIASES, "e = Vi(1)"], reduction_op="Sum", axis=1
        )
        self.knn_routine = Genred(
            "SqDist(x, y)",
            ["x = Vi(3)", "y = Vj(3)"],
            reduction_op="ArgKMin",
            axis=1,
            opt_arg=K_NEIGHBOURS,
        )
        self.torch_routine: Any = None  # lazykernels.torch.Genred, when it works

    def use_torch_autograd(self, data: Data) -> str | None:
        """Switch the gradient to torch autograd through lazykernels.torch.Genred.

        Returns None on success, else why it cannot be used (the Grad formula stays).
        """
        try:
            from ..torch import Genred as TorchGenred  # import cost

            self.torch_routine = TorchGenred(SUM_FORMULA, ALIASES, reduction_op="Sum", axis=1)
            got = self._grad_torch(data)
        # lazykernels.torch is optional and may be absent or incomplete: any failure here
        # only means the demo uses the Grad formula instead, which it reports.
        except Exception as exc:
            self.torch_routine = None
            return f"{type(exc).__name__}: {exc}"
        expected = self._grad_formula(data)
        if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * float(np.abs(expected).max())):
            self.torch_routine = None
            return "its gradient disagrees with the Grad formula"
        return None

    def gradient_method(self) -> str:
        """How the lazykernels gradient is computed, for the report."""
        if self.torch_routine is not None:
            return "torch autograd through lazykernels.torch.Genred"
        return "the Grad formula (NumPy Genred)"

    def _grad_torch(self, data: Data) -> np.ndarray:
        import torch

        x = torch.from_numpy(data.x).requires_grad_(True)
        tensors = [torch.from_numpy(a) for a in (data.y, data.b, data.g)]
        out = self.torch_routine(x, *tensors, backend=self.backend)
        out.backward(torch.from_numpy(data.e))
        return x.grad.numpy()

    def _grad_formula(self, data: Data) -> np.ndarray:
        args = (data.x, data.y, data.b, data.g, data.e)
        return self.grad_routine(*args, backend=self.backend)

    def run(self, task: str, data: Data) -> np.ndarray:
        """The output of ``task`` on ``data``."""
        if task == "sum":
            return self.sum_routine(data.x, data.y, data.b, data.g, backend=self.backend)
        if task == "grad":
            if self.torch_routine is not None:
                return self._grad_torch(data)
            return self._grad_formula(data)
        return self.knn_routine(data.x, data.y, backend=self.backend)


# ---- dense NumPy ------------------------------------------------------------------------


def _numpy_sqdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``|x_i - y_j|^2`` as ``|x|^2 + |y|^2 - 2 x.y``: one N x N array, built in place."""
    d2 = x @ y.T
    d2 *= -2.0
    d2 += (x * x).sum(1)[:, None]
    d2 += (y * y).sum(1)[None, :]
    return d2


def _numpy_kernel(data: Data) -> np.ndarray:
    k = _numpy_sqdist(data.x, data.y)
    k *= -data.g[0]
    np.exp(k, out=k)
    return k


def numpy_run(task: str, data: Data) -> np.ndarray:
    """``task`` with dense NumPy arrays (float32)."""
    if task == "sum":
        return _numpy_kernel(data) @ data.b
    if task == "grad":
        k = _numpy_kernel(data)
        kb = k @ data.b
        kby = k @ (data.b * data.y)
        return (-2.0 * data.g[0]) * data.e * (data.x * kb - kby)
    d2 = _numpy_sqdist(data.x, data.y)
    nearest = np.argpartition(d2, K_NEIGHBOURS - 1, axis=1)[:, :K_NEIGHBOURS]
    order = np.argsort(np.take_along_axis(d2, nearest, axis=1), axis=1)
    return np.take_along_axis(nearest, order, axis=1)


# ---- dense PyTorch ----------------------------------------------------------------------


def torch_run(task: str, data: Data) -> np.ndarray:
    """``task`` with dense PyTorch tensors (float32, CPU; autograd for the gradient)."""
    import torch

    x, y, b, e = (torch.from_numpy(a) for a in (data.x, data.y, data.b, data.e))
    gamma = float(data.g[0])

    def sqdist(u: Any) -> Any:
        return (u * u).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (u @ y.T)

    if task == "sum":
        with torch.no_grad():
            return (torch.exp(-gamma * sqdist(x)) @ b).numpy()
    if task == "grad":
        xg = x.clone().requires_grad_(True)
        out = torch.exp(-gamma * sqdist(xg)) @ b
        out.backward(e)
        return xg.grad.numpy()
    with torch.no_grad():
        return sqdist(x).topk(K_NEIGHBOURS, dim=1, largest=False).indices.numpy()


# ---- checks against float64 -------------------------------------------------------------


def _sampled_sqdist(data: Data) -> np.ndarray:
    """float64 ``|x_i - y_j|^2`` for the sampled rows i and every j, by differences."""
    x = data.x[data.rows].astype(np.float64)
    y = data.y.astype(np.float64)
    d2 = np.zeros((len(x), len(y)))
    for k in range(x.shape[1]):
        d2 += (x[:, k, None] - y[None, :, k]) ** 2
    return d2


def relative_error(task: str, output: np.ndarray, data: Data) -> float:
    """Error of ``output`` on the sampled rows against a float64 computation.

    Sums and gradients: ``||out - ref|| / ||ref||``. kNN: the largest gap between the
    squared distances of the neighbours found and the true K smallest, divided by the K-th.
    """
    d2 = _sampled_sqdist(data)
    if task == "knn":
        found = np.sort(np.take_along_axis(d2, output[data.rows].astype(np.int64), axis=1))
        exact = np.sort(np.partition(d2, K_NEIGHBOURS - 1, axis=1)[:, :K_NEIGHBOURS])
        scale = np.maximum(exact[:, -1:], np.finfo(np.float64).tiny)
        return float((np.abs(found - exact) / scale).max())
    kernel = np.exp(-float(data.g[0]) * d2)
    b = data.b.astype(np.float64)
    if task == "sum":
        reference = kernel @ b
    else:
        x = data.x[data.rows].astype(np.float64)
        y = data.y.astype(np.float64)
        e = data.e[data.rows].astype(np.float64)
        reference = -2.0 * float(data.g[0]) * e * (x * (kernel @ b) - kernel @ (b * y))
    got = output[data.rows].astype(np.float64)
    return float(np.linalg.norm(got - reference) / np.linalg.norm(reference))


RUNNERS: dict[str, Callable[[str, Data], np.ndarray]] = {
    "NumPy (dense)": numpy_run,
    "PyTorch (dense)": torch_run,
}
