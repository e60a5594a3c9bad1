"""``Genred`` and the ``generic_*`` shortcuts for JAX arrays (SPEC §4.2, §4.4).

The constructor, options and plan are those of the array-neutral core
(:class:`~lazykernels.core.genred.GenredCore`); a call runs
:func:`lazykernels.jax.reduce.jax_reduce`, so it works under ``jax.jit``, ``vmap``,
``grad``, ``jvp`` (any order) and inside ``lax.scan`` / ``lax.while_loop``.
"""

from __future__ import annotations

from typing import Any

from ..core.genred import GenredCore, generic_genred
from .reduce import jax_reduce


class Genred(GenredCore):
    """A generic reduction ``reduction_op_j F(x_i, y_j, p)`` on JAX arrays.

    Same constructor as KeOps's ``Genred`` (``pykeops.numpy.Genred``). Min, Max, KMin,
    Min_ArgMin, Max_ArgMax and KMin_ArgKMin are differentiable: the derivatives flow
    through the selected entries. Index outputs are int64 under ``jax_enable_x64`` and
    int32 otherwise.

    Example:
        >>> import jax.numpy as jnp
        >>> g = Genred("SqNorm2(x - y)", ["x = Vi(3)", "y = Vj(3)"], axis=1)
        >>> x = jnp.arange(6.0).reshape(2, 3)
        >>> g(x, jnp.zeros((1, 3)), backend="reference").ravel().tolist()
        [5.0, 50.0]
    """

    def __call__(
        self,
        *args: Any,
        backend: str = "auto",
        device_id: int = -1,
        ranges: Any = None,
        out: Any = None,
    ) -> Any:
        """Reduce over the inputs ``args`` (one JAX array per alias, in position order).

        Args:
            args: float32/float64 arrays (float16 is computed in float32), all of one
                dtype; ``Vi(D)`` takes ``(..., M, D)``, ``Vj(D)`` takes ``(..., N, D)``,
                ``Pm(D)`` takes ``(..., D)``.
            backend: ``"auto"``, ``"CPU"`` or ``"reference"`` (GPU names raise).
            device_id: ignored (CPU only).
            ranges: KeOps's 6-tuple of block-sparse ranges (concrete integer arrays).
            out: not supported (JAX arrays are immutable).

        Returns:
            One array, or a tuple (values, indices) for Min_ArgMin, Max_ArgMax and
            KMin_ArgKMin.
        """
        results = jax_reduce(self.plan, args, backend=backend, ranges=ranges, out=out)
        return results[0] if len(results) == 1 else results


def _generic(reduction_op: str, formula: str, output: str, aliases: tuple[str, ...], **kwargs):
    return generic_genred(Genred, reduction_op, formula, output, aliases, **kwargs)


def generic_sum(formula: str, output: str, *aliases: str, **kwargs: Any) -> Genred:
    """``Genred(formula, aliases, "Sum")`` with the axis given by the output alias."""
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
