"""``Genred`` and the ``generic_*`` shortcuts for NumPy arrays (SPEC §4.2, §4.4)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.genred import GenredCore, generic_genred


class Genred(GenredCore):
    """A generic reduction ``reduction_op_j F(x_i, y_j, p)`` compiled once, called many times.

    Same constructor as KeOps's ``pykeops.numpy.Genred``: ``Genred(formula, aliases,
    reduction_op="Sum", axis=0, dtype=None, opt_arg=None, formula2=None, cuda_type=None,
    dtype_acc="auto", use_double_acc=False, sum_scheme="auto", enable_chunks=True,
    rec_multVar_highdim=False, use_fast_math=True)``.

    Example:
        >>> import numpy as np
        >>> g = Genred("SqNorm2(x - y)", ["x = Vi(3)", "y = Vj(3)"], axis=1)
        >>> x = np.arange(6.0).reshape(2, 3)
        >>> g(x, np.zeros((1, 3)), backend="reference")
        array([[ 5.],
               [50.]])
    """

    def __call__(
        self,
        *args: Any,
        backend: str = "auto",
        device_id: int = -1,
        ranges: Any = None,
        out: Any = None,
    ) -> np.ndarray | tuple[np.ndarray, ...]:
        """Reduce over the inputs ``args`` (one array per alias, in position order).

        Args:
            args: float16/float32/float64 arrays, all of one dtype; ``Vi(D)`` takes
                ``(..., M, D)``, ``Vj(D)`` takes ``(..., N, D)``, ``Pm(D)`` takes ``(..., D)``.
            backend: ``"auto"``, ``"CPU"``, ``"reference"``, or ``"GPU"`` / ``"GPU_1D"``
                (the arrays are copied to the GPU and the results back); ``"auto"`` picks
                the GPU when one is present, as KeOps does.
            device_id: the GPU of a GPU backend (-1: ``lazykernels.default_device_id``).
            ranges: KeOps's 6-tuple of block-sparse ranges.
            out: preallocated output array(s), filled in place and returned.

        Returns:
            One array, or a tuple (values, int64 indices) for Min_ArgMin, Max_ArgMax and
            KMin_ArgKMin.
        """
        results = self.run(args, backend=backend, ranges=ranges, out=out, device_id=device_id)
        return results[0] if len(results) == 1 else results


def _generic(reduction_op: str, formula: str, output: str, aliases: tuple[str, ...], **kwargs):
    return generic_genred(Genred, reduction_op, formula, output, aliases, **kwargs)


def generic_sum(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "Sum")`` with the axis given by the output alias.

    Example:
        >>> import numpy as np
        >>> f = generic_sum("x * y", "out = Vi(1)", "x = Vi(1)", "y = Vj(1)")
        >>> f(np.ones((2, 1)), np.full((3, 1), 2.0), backend="reference").ravel()
        array([6., 6.])
    """
    return _generic("Sum", formula, output, aliases, **kwargs)


def generic_logsumexp(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "LogSumExp")`` with the axis given by the output alias."""
    return _generic("LogSumExp", formula, output, aliases, **kwargs)


def generic_argmin(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "ArgMin")`` with the axis given by the output alias."""
    return _generic("ArgMin", formula, output, aliases, **kwargs)


def generic_argkmin(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "ArgKMin", opt_arg=K)``; K is the output alias's dim."""
    return _generic("ArgKMin", formula, output, aliases, **kwargs)
