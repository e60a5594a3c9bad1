"""KeOps's ``pykeops.torch.utils``: the torch array tools and the dense test kernels."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import DtypeError
from .cluster import swap_axes as torch_swap_axes
from .genred import Genred
from .lazytensor import KernelSolve

_DTYPES = {
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
}


def is_on_device(x: torch.Tensor) -> bool:
    """True for a CUDA tensor."""
    return x.is_cuda


class torchtools:  # noqa: N801 (KeOps's name)
    """torch versions of the array operations KeOps's generic code needs."""

    copy = staticmethod(torch.clone)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    norm = staticmethod(torch.norm)
    swap_axes = staticmethod(torch_swap_axes)
    Genred = Genred
    KernelSolve = KernelSolve
    arraytype = torch.Tensor
    float_types = [float]

    @staticmethod
    def eq(x: Any, y: Any) -> torch.Tensor:
        return torch.eq(x, y)

    @staticmethod
    def transpose(x: torch.Tensor) -> torch.Tensor:
        return x.t()

    @staticmethod
    def permute(x: torch.Tensor, *args: Any) -> torch.Tensor:
        return x.permute(*args)

    @staticmethod
    def contiguous(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()

    @staticmethod
    def solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # noqa: N803
        return torch.linalg.solve(A, b)

    @staticmethod
    def arraysum(x: torch.Tensor, axis: int | None = None) -> torch.Tensor:
        return x.sum() if axis is None else x.sum(dim=axis)

    @staticmethod
    def long(x: torch.Tensor) -> torch.Tensor:
        return x.long()

    @staticmethod
    def size(x: torch.Tensor) -> int:
        return x.numel()

    @staticmethod
    def tile(*args: Any) -> torch.Tensor:
        return torch.Tensor.repeat(*args)

    @staticmethod
    def numpy(x: torch.Tensor) -> Any:
        return x.detach().cpu().numpy()

    @staticmethod
    def view(x: torch.Tensor, s: Any) -> torch.Tensor:
        return x.view(s)

    @staticmethod
    def is_tensor(x: Any) -> bool:
        return isinstance(x, torch.Tensor)

    @staticmethod
    def dtype(x: Any) -> Any:
        return x.dtype if hasattr(x, "dtype") else type(x)

    @staticmethod
    def detect_complex(x: Any) -> bool:
        if isinstance(x, list):
            return any(isinstance(v, complex) for v in x)
        if isinstance(x, torch.Tensor):
            return x.is_complex()
        return isinstance(x, complex)

    @staticmethod
    def view_as_complex(x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_complex(x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2))

    @staticmethod
    def view_as_real(x: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(x).reshape(*x.shape[:-1], 2 * x.shape[-1])

    @staticmethod
    def dtypename(dtype: Any) -> Any:
        names = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16"}
        if dtype in names:
            return names[dtype]
        if dtype is int:
            return int
        if dtype is list:
            return "float32"
        raise DtypeError(f"{dtype} data type incompatible with lazykernels")

    @staticmethod
    def rand(m: int, n: int, dtype: Any, device: Any) -> torch.Tensor:
        return torch.rand(m, n, dtype=dtype, device=device)

    @staticmethod
    def randn(m: int, n: int, dtype: Any, device: Any) -> torch.Tensor:
        return torch.randn(m, n, dtype=dtype, device=device)

    @staticmethod
    def zeros(shape: Any, dtype: Any, device: Any, requires_grad: bool = False) -> torch.Tensor:
        return torch.zeros(*shape, dtype=dtype, device=device, requires_grad=requires_grad)

    @staticmethod
    def empty(shape: Any, dtype: Any, device: Any, requires_grad: bool = False) -> torch.Tensor:
        return torch.empty(*shape, dtype=dtype, device=device, requires_grad=requires_grad)

    @staticmethod
    def eye(n: int, dtype: Any, device: Any) -> torch.Tensor:
        return torch.eye(n, dtype=dtype, device=device)

    @staticmethod
    def array(x: Any, dtype: Any, device: Any) -> torch.Tensor:
        if dtype not in _DTYPES:
            raise DtypeError(f"data type {dtype} is incompatible with lazykernels")
        return torch.tensor(x, dtype=_DTYPES[dtype], device=device)

    @staticmethod
    def device(x: Any) -> Any:
        return x.device if isinstance(x, torch.Tensor) else None

    @staticmethod
    def get_pointer(x: torch.Tensor) -> int:
        return x.data_ptr()

    @staticmethod
    def device_type_index(x: Any) -> tuple[Any, Any]:
        if isinstance(x, torch.Tensor):
            return x.device.type, x.device.index
        return None, None

    @staticmethod
    def device_dict(x: Any) -> dict[str, Any]:
        device_type, index = torchtools.device_type_index(x)
        return {"cat": device_type, "index": index}

    @staticmethod
    def pointer(x: torch.Tensor) -> int:
        return x.data.data_ptr()


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``|x_i - y_j|^2`` as an (M, N) tensor, by the norm expansion."""
    x_norm = (x**2).sum(1).reshape(-1, 1)
    y_norm = (y**2).sum(1).reshape(1, -1)
    return x_norm + y_norm - 2.0 * torch.matmul(x, torch.transpose(y, 0, 1))


def torch_kernel(x: torch.Tensor, y: torch.Tensor, s: Any, kernel: str) -> torch.Tensor:
    """Radial kernels: "gaussian", "laplacian", "cauchy", "inverse_multiquadric"."""
    sq = squared_distances(x, y)
    table = {
        "gaussian": lambda: torch.exp(-sq / (s * s)),
        "laplacian": lambda: torch.exp(-torch.sqrt(sq) / s),
        "cauchy": lambda: 1.0 / (1 + sq / (s * s)),
        "inverse_multiquadric": lambda: torch.rsqrt(1 + sq / (s * s)),
    }
    return table[kernel]()


__all__ = ["is_on_device", "squared_distances", "torch_kernel", "torchtools"]
