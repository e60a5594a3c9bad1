"""The array-library-neutral core of ``Genred``: options, plan building, dispatch.

``GenredCore`` checks the constructor options once and builds the
:class:`~lazykernels.core.plan.ReductionPlan` (parse the aliases and formulas, canonicalise
the reduction name, resolve ``dtype_acc`` / ``sum_scheme``, simplify). Each call validates the
arrays into a :class:`~lazykernels.core.plan.BoundCall` (:mod:`lazykernels.core.bind`) and
hands it to the backend chosen by :mod:`lazykernels.core.backends`. The NumPy and PyTorch
front ends are thin adapters around it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError, DimensionError, FormulaError
from ..formula.ir import Cat, Node
from ..formula.parse import parse_aliases, parse_formula_info
from ..formula.simplify import simplify
from ..reductions import SPECS, canonical_name
from . import prepared
from .arrays import NUMPY, ArrayAdapter, check_device_id
from .backends import dispatch
from .bind import bind_call, check_nan
from .plan import SUM_SCHEMES, ArgSlot, BoundCall, ReductionPlan

DTYPE_ACC = ("auto", "float32", "float64")

# The constructor arguments a pickled Genred is rebuilt from.
_STATE = (
    "formula",
    "aliases",
    "reduction_op",
    "axis",
    "opt_arg",
    "formula2",
    "dtype_acc",
    "use_double_acc",
    "sum_scheme",
    "gemm",
    "enable_chunks",
    "rec_multVar_highdim",
    "use_fast_math",
)


def build_plan(
    formula: str | Node,
    aliases: Sequence[Any] = (),
    reduction_op: str = "Sum",
    axis: int = 0,
    opt_arg: int | None = None,
    formula2: str | Node | None = None,
    dtype_acc: str = "auto",
    use_double_acc: bool = False,
    sum_scheme: str = "auto",
    gemm: Any = "auto",
) -> ReductionPlan:
    """The reduction plan of a ``Genred`` call (SPEC §4.2).

    Args:
        formula: formula string, or an IR node whose ``Var`` leaves are the inputs.
        aliases: alias strings (``"x = Vi(3)"``) or parsed ``Alias`` objects.
        reduction_op: a user-level reduction name (``"Sum"``, ``"SoftMax"``...).
        axis: 1 reduces over j (output indexed by i), 0 (default) over i.
        opt_arg: K of the KMin family.
        formula2: the weight of LogSumExp(Weight) / SumSoftMaxWeight.
        dtype_acc, use_double_acc, sum_scheme: accumulation options of sum-type reductions.
        gemm: "auto" (default), True or False: the dot-product path of high-dimensional
            inner products (docs/gemm.md; "auto": taken when the call's error bound allows).

    Raises:
        ArgumentError: an invalid option; FormulaError / DimensionError: a bad formula.

    Example:
        >>> from lazykernels.formula import Cat, var
        >>> x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
        >>> plan = build_plan((x - y).exp(), axis=1)
        >>> plan.reduction, plan.output_cat, plan.sum_scheme
        ('Sum', <Cat.I: 0>, 'block_sum')
    """
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or axis not in (0, 1):
        raise ArgumentError(f"axis must be 0 (reduce over i) or 1 (reduce over j), got {axis!r}")
    name = canonical_name(reduction_op, formula2 is not None)
    spec = SPECS[name]
    if spec.needs_weight and formula2 is None:
        raise ArgumentError(f"{name} needs a weight formula: pass formula2=...")
    if not spec.needs_weight and formula2 is not None:
        raise ArgumentError(f"{name} takes no formula2 (only the weighted log-sum-exp family)")
    k = _check_k(name, spec.needs_k, opt_arg)
    acc, scheme = _accumulation(name, spec.sum_type, dtype_acc, use_double_acc, sum_scheme)

    parsed_aliases = _parse_aliases(aliases)
    f, written = _parse(formula, parsed_aliases, "formula")
    g = None
    if formula2 is not None:
        g, written2 = _parse(formula2, parsed_aliases, "formula2")
        written += written2
    if spec.scalar_formula and f.dim != 1:
        raise DimensionError(f"{name}: the formula must be scalar (dimension 1), got {f.dim}")
    # inputs: the aliases and every variable of the formulas as written, even those that
    # simplify away (KeOps counts them: max position + 1)
    slots = _slots(parsed_aliases, [f, *written] if g is None else [f, g, *written])
    return ReductionPlan(
        formula=simplify(f),
        reduction=name,
        output_cat=Cat.I if axis == 1 else Cat.J,
        slots=slots,
        weight=None if g is None else simplify(g),
        k=k,
        dtype_acc=acc,
        sum_scheme=scheme,
        gemm=gemm_mode(gemm),
    )


def gemm_mode(value: object) -> str:
    """The plan's spelling ("auto", "on", "off") of a user's ``gemm=`` option (the
    dot-product path of high-dimensional inner products, ``lazykernels.cpu.gemm``).

    Raises:
        ArgumentError: anything but "auto", True or False.
    """
    if isinstance(value, str) and value == "auto":
        return "auto"
    if value is True or value is False:
        return "on" if value else "off"
    raise ArgumentError(f"gemm must be 'auto', True or False, got {value!r}")


def _check_k(name: str, needs_k: bool, opt_arg: Any) -> int | None:
    if not needs_k:
        if opt_arg is not None:
            with_k = ", ".join(n for n, card in SPECS.items() if card.needs_k)
            raise ArgumentError(f"{name} takes no opt_arg (only {with_k})")
        return None
    if opt_arg is None:
        raise ArgumentError(f"{name} needs K: pass opt_arg=K")
    if isinstance(opt_arg, bool) or not isinstance(opt_arg, numbers.Integral) or opt_arg < 1:
        raise ArgumentError(f"{name}: opt_arg (K) must be a positive integer, got {opt_arg!r}")
    return int(opt_arg)


def _accumulation(
    name: str, sum_type: bool, dtype_acc: str, use_double_acc: bool, sum_scheme: str
) -> tuple[str | None, str]:
    """Resolve (dtype_acc, sum_scheme) with KeOps's rules."""
    if dtype_acc not in DTYPE_ACC:
        raise ArgumentError(f"dtype_acc must be one of {', '.join(DTYPE_ACC)}, got {dtype_acc!r}")
    if use_double_acc and dtype_acc != "auto":
        raise ArgumentError("use_double_acc=True and dtype_acc cannot both be set")
    acc = "float64" if use_double_acc else (None if dtype_acc == "auto" else dtype_acc)
    if acc is not None and not sum_type:
        raise ArgumentError(
            f"dtype_acc / use_double_acc apply only to Sum, LogSumExp and SumSoftMaxWeight "
            f"reductions, not to {name}"
        )
    if sum_scheme not in ("auto", *SUM_SCHEMES):
        raise ArgumentError(
            f"sum_scheme must be one of auto, {', '.join(SUM_SCHEMES)}, got {sum_scheme!r}"
        )
    if sum_scheme == "auto":
        sum_scheme = "block_sum" if sum_type else "direct_sum"
    elif sum_scheme != "direct_sum" and not sum_type:
        raise ArgumentError(
            f"sum_scheme={sum_scheme!r} applies only to Sum, LogSumExp and SumSoftMaxWeight "
            f"reductions, not to {name}"
        )
    return acc, sum_scheme


def _parse_aliases(aliases: Sequence[Any]) -> list[Any]:
    if isinstance(aliases, str):
        raise ArgumentError("aliases must be a list of strings, not a single string")
    aliases = list(aliases)
    if all(not isinstance(a, str) for a in aliases):
        return aliases  # already parsed Alias objects (or none)
    return parse_aliases(aliases)


def _parse(formula: str | Node, aliases: list[Any], what: str) -> tuple[Node, tuple[Node, ...]]:
    """The formula's node and the variables its text declares (aliases included)."""
    if isinstance(formula, Node):
        return formula, ()
    if not isinstance(formula, str):
        raise ArgumentError(f"{what} must be a string, got {type(formula).__name__}")
    info = parse_formula_info(formula, aliases)
    return info.formula, tuple(a.node for a in info.aliases)


def _slots(aliases: list[Any], roots: list[Node]) -> tuple[ArgSlot, ...]:
    """One slot per input position, from the aliases and the formulas' Var leaves."""
    found: dict[int, ArgSlot] = {}
    leaves = [(a.name, a.node) for a in aliases]
    leaves += [(None, v) for root in roots for v in root.variables()]
    for name, node in leaves:
        position, dim, cat = node.params
        if cat is Cat.TEMP:
            raise FormulaError(f"the formula has an internal placeholder variable {node}")
        slot = found.get(position)
        if slot is None:
            found[position] = ArgSlot(position, dim, cat, name)
        elif (slot.dim, slot.cat) != (dim, cat):
            raise FormulaError(
                f"input position {position} is declared twice with different types: "
                f"{slot.describe()} and Var({position},{dim},{cat.value})"
            )
        elif slot.name is None and name is not None:
            found[position] = ArgSlot(position, dim, cat, name)
    missing = sorted(set(range(len(found))) - set(found))
    if missing:
        raise FormulaError(
            f"input positions must be 0..{max(found)} without gaps; no alias or variable "
            f"declares position {missing[0]}"
        )
    return tuple(found[p] for p in range(len(found)))


class GenredCore:
    """``Genred`` without an array library: KeOps's constructor, NumPy arrays in and out.

    Args: as :func:`build_plan`, plus KeOps's ``dtype`` / ``cuda_type`` (deprecated,
    ignored with a warning) and the GPU-only ``enable_chunks``, ``rec_multVar_highdim``,
    ``use_fast_math`` (accepted and ignored).
    """

    def __init__(
        self,
        formula: str | Node,
        aliases: Sequence[Any],
        reduction_op: str = "Sum",
        axis: int = 0,
        dtype: Any = None,
        opt_arg: int | None = None,
        formula2: str | Node | None = None,
        cuda_type: Any = None,
        dtype_acc: str = "auto",
        use_double_acc: bool = False,
        sum_scheme: str = "auto",
        gemm: Any = "auto",
        enable_chunks: bool = True,
        rec_multVar_highdim: Any = False,  # noqa: N803 (KeOps's keyword)
        use_fast_math: bool = True,
    ):
        for old, value in (("dtype", dtype), ("cuda_type", cuda_type)):
            if value is not None:
                warnings.warn(
                    f"Genred: {old}= is deprecated and ignored; the dtype is taken from the "
                    f"arguments at call time",
                    DeprecationWarning,
                    stacklevel=3,
                )
        self.formula = formula
        self.aliases = list(aliases) if not isinstance(aliases, str) else aliases
        self.reduction_op = reduction_op
        self.axis = axis
        self.opt_arg = opt_arg
        self.formula2 = formula2
        self.dtype_acc = dtype_acc
        self.use_double_acc = use_double_acc
        self.sum_scheme = sum_scheme
        self.gemm = gemm
        self.enable_chunks = enable_chunks
        self.rec_multVar_highdim = rec_multVar_highdim
        self.use_fast_math = use_fast_math
        self.plan = build_plan(
            formula,
            self.aliases,
            reduction_op,
            axis,
            opt_arg,
            formula2,
            dtype_acc,
            use_double_acc,
            sum_scheme,
            gemm,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Rebuilt from the constructor's arguments: no plan, backend or cache in the pickle.
        return {key: getattr(self, key) for key in _STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    @property
    def nargs(self) -> int:
        """Number of input arrays a call takes."""
        return len(self.plan.slots)

    def run(
        self,
        args: Sequence[Any],
        backend: str = "auto",
        ranges: Sequence[Any] | None = None,
        out: Any = None,
        device_id: int = -1,
    ) -> tuple[np.ndarray, ...]:
        """Validate ``args``, run the backend, return the user-level outputs.

        Raises:
            BackendError, ArgumentError, ShapeError, DtypeError: see :mod:`.bind`.
        """
        return run_plan(
            self.plan, args, backend=backend, ranges=ranges, out=out, device_id=device_id
        )


def run_plan(
    plan: ReductionPlan,
    args: Sequence[Any],
    backend: str = "auto",
    ranges: Sequence[Any] | None = None,
    out: Any = None,
    device_id: int = -1,
    adapter: ArrayAdapter = NUMPY,
) -> tuple[Any, ...]:
    """Bind ``args`` to ``plan``, run ``backend`` and return the outputs.

    ``adapter`` answers for the array library of ``args`` (:mod:`.arrays`; NumPy by
    default): the outputs are its arrays, on the inputs' device. float16 inputs are
    computed in float32 and the values cast back to float16. With ``out``, the results are
    written into it and ``out``'s arrays are returned. ``device_id`` picks the GPU of a GPU
    backend for host arrays (:func:`.arrays.check_device_id`).
    """
    key = None
    if ranges is None and out is None and type(device_id) is int and device_id == -1:
        key = adapter.layout_key(args)  # None: not plain host arrays (no prepared call)
        if key is not None:
            found = prepared.lookup(plan, backend, adapter, key)
            if found is not prepared.MISSING:
                if found is not None:
                    return found(args)
                key = None  # seen, and not preparable
    call, user_dtype = bind_call(plan, args, ranges, out, False, adapter)
    name, runner = dispatch(backend, call.device)
    compiled = name == "CPU"  # checks the inputs for NaN itself, in C, as it reads them
    if not compiled:
        check_nan(plan.slots, call.arrays, adapter)
    if type(device_id) is not int or device_id != -1:
        call.device_id = check_device_id(device_id, call.device)
    outputs = call.outputs
    if call.n_red and all(adapter.sizes(outputs)):
        runner(call)
    else:
        if compiled:
            check_nan(plan.slots, call.arrays, adapter)
        if call.n_red == 0:
            fill_neutral(call)  # empty reduction sets: no backend needs to handle N == 0
    if key is not None and compiled and all(a is b for a, b in zip(call.arrays, args)):
        prepared.remember(call, backend, adapter, key)  # (not after a cast: float16)
    if user_dtype == call.dtype:
        results = outputs
    else:  # float16 inputs, computed in float32: values back to float16, indices stay int64
        results = tuple(
            adapter.astype(o, user_dtype) if adapter.dtype(o) == call.dtype else o for o in outputs
        )
    if out is None:
        return results
    given = tuple(out) if isinstance(out, list | tuple) else (out,)
    for target, result in zip(given, results):
        if target is not result:
            adapter.copy_into(target, result)
    return given


def fill_neutral(call: BoundCall) -> None:
    """Fill every output with the neutral values of an empty reduction set."""
    spec = SPECS[call.plan.reduction]
    for out, ospec in zip(call.outputs, spec.outputs):
        out[...] = ospec.neutral
        if ospec.neutral_first is not None:
            out[..., 0] = ospec.neutral_first


def generic_genred(
    genred_cls: type[GenredCore],
    reduction_op: str,
    formula: str,
    output: str,
    aliases: tuple[str, ...],
    **kwargs: Any,
) -> GenredCore:
    """The ``generic_*`` shortcuts (SPEC §4.4): a ``Genred`` whose axis is set by ``output``.

    ``output`` is an alias such as ``"a = Vi(2)"``: an i-indexed output reduces over j
    (``axis=1``); for ArgKMin its dimension is K.

    Raises:
        ArgumentError: the output alias is a parameter.
    """
    (alias,) = parse_aliases([output])
    if alias.cat is Cat.PARAM:
        raise ArgumentError(f"the output alias {output!r} must be Vi(...) or Vj(...), not Pm")
    axis = 1 if alias.cat is Cat.I else 0
    if reduction_op == "ArgKMin":
        kwargs.setdefault("opt_arg", alias.dim)
    return genred_cls(formula, list(aliases), reduction_op=reduction_op, axis=axis, **kwargs)
