"""``Genred`` on dask arrays: KeOps's constructor, lazy dask arrays out.

The constructor is the NumPy ``Genred``'s (the plan is built once, in the client); a call
validates the arrays (:mod:`.inputs`), picks a plan and builds its graph (:mod:`.plans`).
Nothing runs until ``.compute()`` (or ``dask.compute``, ``client.compute``...).

Options of a call, each defaulting to dask's configuration (``dask.config.set``):
``plan`` (``"lazykernels.plan"``: ``"auto"``, ``"i"``, ``"ij"``), ``split_every``
(``"lazykernels.split-every"``, 4) and ``backend`` (the engine's backend on the workers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da

from ..core.genred import GenredCore
from ..core.plan import ReductionPlan
from ..errors import ArgumentError
from .inputs import check_inputs
from .plans import reduce


def options(plan: str | None, split_every: int | None) -> tuple[str, int]:
    """``plan`` and ``split_every``, from dask's configuration where not given."""
    if plan is None:
        plan = dask.config.get("lazykernels.plan", "auto")
    if split_every is None:
        split_every = dask.config.get("lazykernels.split-every", 4)
    return plan, split_every  # type: ignore[return-value]


def dask_reduce(
    plan: ReductionPlan,
    args: Sequence[Any],
    backend: str = "auto",
    ranges: Any = None,
    out: Any = None,
    sharding: str | None = None,
    split_every: int | None = None,
) -> tuple[da.Array, ...]:
    """Run ``plan`` on dask (or NumPy) arrays; the outputs as lazy dask arrays.

    Args:
        plan: the reduction plan.
        args: one array per slot: dask or NumPy arrays ``(n, D)`` for i/j variables, NumPy
            arrays ``(D,)`` for parameters.
        backend: the engine's backend in each task.
        ranges, out: not supported (ArgumentError when given).
        sharding: ``"auto"``, ``"i"`` or ``"ij"`` (:func:`lazykernels.dask.plans.choose`).
        split_every: fan-in of the merge tree of the ``"ij"`` plan.

    Raises:
        ArgumentError, ShapeError, DtypeError: see :mod:`lazykernels.dask.inputs`.
    """
    if ranges is not None:
        raise ArgumentError("lazykernels.dask does not support ranges (block-sparse reductions)")
    if out is not None:
        raise ArgumentError("lazykernels.dask returns new dask arrays: out= is not supported")
    sharding, split_every = options(sharding, split_every)
    inputs = check_inputs(plan, args)
    return reduce(inputs, backend=backend, plan=sharding, split_every=split_every)


class Genred(GenredCore):
    """A generic reduction whose i- and/or j-variables are dask arrays.

    Same constructor as :class:`lazykernels.numpy.Genred` (KeOps's ``Genred``).

    Example:
        >>> import dask.array as da
        >>> import numpy as np
        >>> g = Genred("SqDist(x, y)", ["x = Vi(1)", "y = Vj(1)"], "ArgMin", axis=1)
        >>> x = da.from_array(np.array([[0.1], [2.9], [1.2]]), chunks=2)
        >>> y = da.from_array(np.arange(4.0)[:, None], chunks=2)
        >>> g(x, y, plan="ij", backend="reference").compute().ravel().tolist()
        [0, 3, 1]
    """

    def __call__(
        self,
        *args: Any,
        backend: str = "auto",
        plan: str | None = None,
        split_every: int | None = None,
        ranges: Any = None,
        out: Any = None,
        device_id: int = -1,
    ) -> da.Array | tuple[da.Array, ...]:
        """Reduce over ``args`` (one array per alias, in position order); lazily.

        Args:
            args: dask or NumPy arrays ``(n, D)`` for ``Vi`` / ``Vj``, NumPy ``(D,)`` for
                ``Pm``; float32 or float64, one dtype.
            backend: the engine's backend on the workers (``"auto"``, ``"CPU"``,
                ``"reference"``).
            plan: ``"auto"``, ``"i"`` (i-sharded) or ``"ij"`` (i x j-sharded).
            split_every: fan-in of the ``"ij"`` plan's merge tree.
            ranges, out: not supported here (ArgumentError).
            device_id: ignored (CPU only).

        Returns:
            A dask array, or a tuple (values, int64 indices) for the two-output reductions,
            chunked along the output index like its inputs.
        """
        results = dask_reduce(self.plan, args, backend, ranges, out, plan, split_every)
        return results[0] if len(results) == 1 else results


__all__ = ["Genred", "dask_reduce", "options"]
