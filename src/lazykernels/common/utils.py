"""KeOps's ``pykeops.common.utils``: axis conventions, array tools, messages, broadcasting."""

from __future__ import annotations

from typing import Any

from .. import config
from ..errors import ArgumentError, ShapeError

c_type = {"float16": "half2", "float32": "float", "float64": "double"}
"""The C type KeOps names each dtype with."""


def axis2cat(axis: int) -> int:
    """The category of a reduction's output (0: i, 1: j) for the summed ``axis`` (0 or 1)."""
    if axis not in (0, 1):
        raise ArgumentError(f"axis should be 0 or 1, got {axis!r}")
    return (axis + 1) % 2


def cat2axis(cat: int) -> int:
    """The summed axis for an output of category ``cat`` (0: i, 1: j)."""
    if cat not in (0, 1):
        raise ArgumentError(f"the category should be 0 (Vi) or 1 (Vj), got {cat!r}")
    return (cat + 1) % 2


def get_tools(lang: str) -> Any:
    """KeOps's array tools of ``lang``: ``"numpy"``, ``"torch"`` or ``"pytorch"``."""
    if lang == "numpy":
        from ..numpy.utils import numpytools  # torch is optional

        return numpytools()
    if lang in ("torch", "pytorch"):
        from ..torch.utils import torchtools  # torch is optional

        return torchtools()
    raise ArgumentError(f"unknown array library {lang!r}: expected 'numpy' or 'torch'")


def WarmUpGpu(lang: str) -> None:  # noqa: N802 (KeOps's name)
    """Run a small reduction twice (KeOps warms up its GPU; here it compiles one kernel)."""
    tools = get_tools(lang)
    routine = tools.Genred("SqDist(x,y)", ["x = Vi(1)", "y = Vj(1)"], reduction_op="Sum", axis=1)
    dummy = tools.rand(10, 1, "float64") if lang == "numpy" else tools.rand(10, 1, None, None)
    routine(dummy, dummy)
    routine(dummy, dummy)


def max_tuple(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Element-wise maximum of two tuples."""
    return tuple(max(x, y) for x, y in zip(a, b))


def check_broadcasting(
    dims_1: tuple[int, ...] | None, dims_2: tuple[int, ...] | None
) -> tuple[int, ...] | None:
    """The broadcast of two batch shapes; raises ShapeError when they do not broadcast."""
    if dims_1 is None:
        return dims_2
    if dims_2 is None:
        return dims_1
    padded_1 = (1,) * (len(dims_2) - len(dims_1)) + tuple(dims_1)
    padded_2 = (1,) * (len(dims_1) - len(dims_2)) + tuple(dims_2)
    for a, b in zip(padded_1, padded_2):
        if a != 1 and b != 1 and a != b:
            raise ShapeError(f"incompatible batch dimensions: {dims_1} and {dims_2}")
    return max_tuple(padded_1, padded_2)


def pyKeOps_Print(message: str, **kwargs: Any) -> None:  # noqa: N802 (KeOps's name)
    """Print ``message`` when verbose (:func:`lazykernels.set_verbose`)."""
    if config.verbose:
        print(message, **kwargs)


def pyKeOps_Message(message: str, use_tag: bool = True, **kwargs: Any) -> None:  # noqa: N802
    """Print ``[pyKeOps] message`` when verbose."""
    if config.verbose:
        print(("[pyKeOps] " if use_tag else "") + message, **kwargs)


def pyKeOps_Warning(message: str) -> None:  # noqa: N802 (KeOps's name)
    """Print ``[pyKeOps] Warning : message`` when verbose."""
    if config.verbose:
        print("[pyKeOps] Warning : " + message)


__all__ = [
    "WarmUpGpu",
    "axis2cat",
    "c_type",
    "cat2axis",
    "check_broadcasting",
    "get_tools",
    "max_tuple",
    "pyKeOps_Message",
    "pyKeOps_Print",
    "pyKeOps_Warning",
]
