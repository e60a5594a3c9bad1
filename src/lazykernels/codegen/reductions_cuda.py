"""Per-thread reduction fragments of the CUDA kernel (:mod:`.cuda`): state, fold, outputs.

In the 1D scheme a thread owns one output row and folds the values of its row one pair at
a time, so a fragment is scalar code (the CPU fragments of :mod:`.reductions_cpp` are
vectorised tile loops and do not carry over). A :class:`ThreadReduction` gives

* ``state``: the thread's accumulator declarations (the empty-reduction result);
* ``tile_begin`` / ``pair`` / ``tile_end``: statements around and inside the loop over one
  shared-memory tile (``pair`` sees ``j``, the reduction index, and the formula's atoms);
* ``finalize``: the stores of the row's outputs, through ``out(o, c)`` -> lvalue.

The semantics are the CPU kernel's: NaN never wins a Min/Max, the arg-reductions keep the
first index of the extremum (a NaN counts as the worst value, so an all-NaN row gets index
0), block sums add each tile's partial sum to the total.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FormulaError

Out = Callable[[int, int], str]  # (output, component) -> C lvalue


class ThreadReduction:
    """One reduction, per thread (see the module docstring)."""

    def __init__(self, name: str, d: int, scheme: str, inf: str) -> None:
        self.name, self.d, self.scheme, self.inf = name, d, scheme, inf

    def outputs(self) -> list[tuple[int, str]]:
        """(width, C type) of each output."""
        return [(self.d, "T")]

    def state(self) -> list[str]:
        raise NotImplementedError

    def tile_begin(self) -> list[str]:
        return []

    def pair(self, atoms: list[str], same: bool) -> list[str]:
        raise NotImplementedError

    def tile_end(self) -> list[str]:
        return []

    def finalize(self, out: Out) -> list[str]:
        raise NotImplementedError


class SumThread(ThreadReduction):
    """Sum: block sums (a partial per tile, added to the total) or direct sums."""

    def _direct(self) -> bool:
        return self.scheme == "direct_sum"

    def state(self) -> list[str]:
        return ["A " + ", ".join(f"acc{c} = 0" for c in range(self.d)) + ";"]

    def tile_begin(self) -> list[str]:
        if self._direct():
            return []
        return ["A " + ", ".join(f"ps{c} = 0" for c in range(self.d)) + ";"]

    def pair(self, atoms: list[str], same: bool) -> list[str]:
        p = "acc" if self._direct() else "ps"
        return [f"{p}{c} += {f if same else f'(A)({f})'};" for c, f in enumerate(atoms)]

    def tile_end(self) -> list[str]:
        return [] if self._direct() else [f"acc{c} += ps{c};" for c in range(self.d)]

    def finalize(self, out: Out) -> list[str]:
        return [f"{out(0, c)} = (T)acc{c};" for c in range(self.d)]


class MinMaxThread(ThreadReduction):
    """Min / Max per component; a NaN never compares true, so it never wins."""

    def _lt_init(self) -> tuple[str, str]:
        return ("<", self.inf) if "Min" in self.name else (">", f"(-{self.inf})")

    def state(self) -> list[str]:
        init = self._lt_init()[1]
        return ["T " + ", ".join(f"m{c} = {init}" for c in range(self.d)) + ";"]

    def pair(self, atoms: list[str], same: bool) -> list[str]:
        lt = self._lt_init()[0]
        return [f"m{c} = {f} {lt} m{c} ? {f} : m{c};" for c, f in enumerate(atoms)]

    def finalize(self, out: Out) -> list[str]:
        return [f"{out(0, c)} = m{c};" for c in range(self.d)]


class ArgMinMaxThread(MinMaxThread):
    """ArgMin / ArgMax / Min_ArgMin / Max_ArgMax: value and first index of the extremum."""

    def outputs(self) -> list[tuple[int, str]]:
        if self.name in ("ArgMin", "ArgMax"):
            return [(self.d, "int64_t")]
        return [(self.d, "T"), (self.d, "int64_t")]

    def state(self) -> list[str]:
        return [
            *super().state(),
            "int64_t " + ", ".join(f"ind{c} = -1" for c in range(self.d)) + ";",
        ]

    def pair(self, atoms: list[str], same: bool) -> list[str]:
        lt, init = self._lt_init()
        out = []
        for c, f in enumerate(atoms):
            out.append(f"const T v{c} = {f} != {f} ? {init} : {f};")
            out.append(f"if (v{c} {lt} m{c} || ind{c} < 0) {{ m{c} = v{c}; ind{c} = j; }}")
        return out

    def finalize(self, out: Out) -> list[str]:
        if self.name in ("ArgMin", "ArgMax"):
            return [f"{out(0, c)} = ind{c};" for c in range(self.d)]
        lines = [f"{out(0, c)} = m{c};" for c in range(self.d)]
        return lines + [f"{out(1, c)} = ind{c};" for c in range(self.d)]


_THREAD_REDUCTIONS = {
    "Sum": SumThread,
    "Min": MinMaxThread,
    "Max": MinMaxThread,
    "ArgMin": ArgMinMaxThread,
    "ArgMax": ArgMinMaxThread,
    "Min_ArgMin": ArgMinMaxThread,
    "Max_ArgMax": ArgMinMaxThread,
}
SUPPORTED = frozenset(_THREAD_REDUCTIONS)
"""The reductions the CUDA kernel prints so far."""


def thread_reduction(name: str, d: int, scheme: str, inf: str) -> ThreadReduction:
    """The per-thread fragment of reduction ``name`` over a formula of dimension ``d``.

    Raises:
        FormulaError: the CUDA kernel does not print this reduction (or scheme) yet.
    """
    if name not in _THREAD_REDUCTIONS:
        raise FormulaError(
            f"the CUDA kernel covers {', '.join(sorted(SUPPORTED))} so far, not {name}"
        )
    if name == "Sum" and scheme not in ("block_sum", "direct_sum"):
        raise FormulaError(f"the CUDA kernel has no {scheme!r} summation yet")
    return _THREAD_REDUCTIONS[name](name, d, scheme, inf)
