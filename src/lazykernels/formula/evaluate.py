"""NumPy evaluation of a formula: the test oracle of every other backend.

Values are arrays of shape ``(..., dim)``: the leading axes (for instance an (i, j) block)
broadcast, the last axis is the formula's vector dimension.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import FormulaError
from .ir import Node, constant_value, topological_order


def evaluate(root: Node, env: Mapping[Node, np.ndarray], dtype: np.dtype | type) -> np.ndarray:
    """Evaluate ``root`` with NumPy.

    Args:
        root: the formula.
        env: value of each ``Var`` node, an array of shape ``(..., var.dim)``.
        dtype: floating-point type of constants and of the computation.

    Returns:
        An array broadcast from the inputs' leading axes, with last axis ``root.dim``.

    Raises:
        FormulaError: a variable of the formula has no value in ``env``.
    """
    dtype = np.dtype(dtype)
    values: dict[Node, np.ndarray] = {}
    for node in topological_order(root):
        values[node] = _evaluate_node(node, values, env, dtype)
    return values[root]


def _evaluate_node(
    node: Node, values: dict[Node, np.ndarray], env: Mapping[Node, np.ndarray], dtype: np.dtype
) -> np.ndarray:
    name = node.op.name
    if name == "Var":
        if node not in env:
            raise FormulaError(f"no value was given for the variable {node}")
        return env[node]
    if name == "Zero":
        return np.zeros((node.params[0],), dtype=dtype)
    value = constant_value(node)
    if value is not None:
        return np.array([float(value)], dtype=dtype)
    if node.op.numpy is None:
        raise FormulaError(f"{name} has no NumPy evaluation")
    with np.errstate(all="ignore"):
        out = node.op.numpy(*(values[a] for a in node.args), *node.params)
    return np.asarray(out).astype(dtype, copy=False)
