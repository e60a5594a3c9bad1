"""The front ends export KeOps's names, spelled out statically (IDEs and type checkers read
``__all__`` without running the package)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

# what pykeops.numpy and pykeops.torch both export (SPEC: the pykeops.numpy exports)
KEOPS_NAMES = [
    "ComplexLazyTensor",
    "Genred",
    "KernelSolve",
    "LazyTensor",
    "Pm",
    "Vi",
    "Vj",
    "generic_argkmin",
    "generic_argmin",
    "generic_logsumexp",
    "generic_sum",
]
SRC = Path(__file__).resolve().parents[1] / "src" / "lazykernels"


def static_all(path: Path) -> list[str]:
    """``__all__`` of a module, read from its source as a literal list."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no literal __all__ in {path}")


@pytest.mark.parametrize(
    "package, extra",
    [("numpy", []), ("torch", ["GenredFunction", "torch_reduce"]), ("jax", [])],
)
def test_front_ends_export_the_keops_names(package, extra):
    names = static_all(SRC / package / "__init__.py")
    assert names == [*KEOPS_NAMES, *extra]
    if package in ("torch", "jax"):
        pytest.importorskip(package)
    module = importlib.import_module(f"lazykernels.{package}")
    assert module.__all__ == names
    assert all(getattr(module, name) is not None for name in names)
