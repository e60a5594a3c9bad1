"""``lazykernels precompile``: build kernels ahead of time (e.g. before a cluster job).

A kernel is compiled by calling ``Genred(..., backend="CPU")`` once on tiny dummy arrays of
the right dimensions and dtype: the compiled code depends on the formula, the reduction and
the dtype, not on the numbers of points M and N. Specifications come from the command line
or from a JSON file (a list of objects; read with :func:`json.loads`, nothing is evaluated)::

    [{"formula": "Exp(-SqDist(x, y)) * b",
      "aliases": ["x = Vi(3)", "y = Vj(3)", "b = Vj(1)"],
      "reduction_op": "Sum", "axis": 1, "dtypes": ["float32", "float64"]}]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArgumentError, LazyKernelsError
from ._common import CACHE_ENV_HELP, error, human_seconds, plural

DTYPES = ("float16", "float32", "float64")
SPEC_KEYS = ("formula", "aliases", "reduction_op", "axis", "opt_arg", "formula2", "dtypes")


@dataclass(frozen=True)
class KernelSpec:
    """What one ``Genred`` needs: formula, aliases, reduction options, and the dtypes."""

    formula: str
    aliases: tuple[str, ...] = ()
    reduction_op: str = "Sum"
    axis: int = 0
    opt_arg: int | None = None
    formula2: str | None = None
    dtypes: tuple[str, ...] = field(default=("float32",))

    def describe(self) -> str:
        """A one-line summary, e.g. ``Sum(axis=1) of Exp(-SqDist(x,y))``."""
        extra = f", K={self.opt_arg}" if self.opt_arg is not None else ""
        weight = f", formula2={self.formula2}" if self.formula2 is not None else ""
        return f"{self.reduction_op}(axis={self.axis}{extra}{weight}) of {self.formula}"


def register(subparsers: Any) -> None:
    """Add the ``precompile`` command to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "precompile",
        help="compile kernels ahead of time, from arguments or a JSON file",
        description=(
            "Compile kernels into the cache ahead of time (e.g. before a cluster job), so "
            "that later calls load them instead of compiling. Put the formulas first: "
            "lazykernels precompile 'Exp(-SqDist(x,y))*b' --aliases 'x=Vi(3)' 'y=Vj(3)' "
            "'b=Vj(1)' --reduction Sum --axis 1 --dtype float32 float64"
        ),
        epilog=(
            "The --file format is a JSON list of objects with the keys formula (required), "
            "aliases (list of strings), reduction_op (default Sum), axis (0 or 1, default 0), "
            "opt_arg (K of the KMin family), formula2 (the weight of LogSumExp/"
            'SumSoftMaxWeight) and dtypes (default ["float32"]). ' + CACHE_ENV_HELP
        ),
    )
    parser.add_argument("formulas", nargs="*", metavar="FORMULA", help="formula strings")
    parser.add_argument(
        "--aliases", nargs="+", default=[], metavar="ALIAS", help='e.g. "x=Vi(3)" "y=Vj(3)"'
    )
    parser.add_argument("--reduction", default="Sum", help="reduction_op (default: Sum)")
    parser.add_argument(
        "--axis", type=int, choices=(0, 1), default=0, help="1: reduce over j (default: 0)"
    )
    parser.add_argument("--opt-arg", type=int, default=None, metavar="K", help="K of KMin...")
    parser.add_argument("--formula2", default=None, help="weight formula of LogSumExp...")
    parser.add_argument(
        "--dtype",
        nargs="+",
        choices=DTYPES,
        default=["float32"],
        dest="dtypes",
        help="one or more dtypes (default: float32)",
    )
    parser.add_argument("--file", type=Path, help="a JSON list of kernel specifications")
    parser.set_defaults(run=run)


def _check_type(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ArgumentError(f"{where}: {key!r} must be {names}, got {json.dumps(value)}")


def _string_list(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ArgumentError(f"{where}: {key!r} must be a list of strings, got {json.dumps(value)}")
    return tuple(value)


def spec_from_json(entry: Any, where: str) -> KernelSpec:
    """Validate one JSON object of a specification file.

    Raises:
        ArgumentError: the entry is not an object, lacks ``formula``, has an unknown key or a
            value of the wrong type; the message starts with ``where``.
    """
    if not isinstance(entry, dict):
        raise ArgumentError(f'{where}: expected an object {{"formula": ...}}, got {entry!r}')
    unknown = sorted(set(entry) - set(SPEC_KEYS))
    if unknown:
        raise ArgumentError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(SPEC_KEYS)}"
        )
    if "formula" not in entry:
        raise ArgumentError(f"{where}: the key 'formula' is required")
    _check_type(where, "formula", entry["formula"], str)
    for key in ("reduction_op",):
        if key in entry:
            _check_type(where, key, entry[key], str)
    for key in ("formula2",):
        if entry.get(key) is not None:
            _check_type(where, key, entry[key], str)
    for key in ("axis", "opt_arg"):
        if entry.get(key) is not None:
            _check_type(where, key, entry[key], int)
    if entry.get("axis", 0) not in (0, 1):
        raise ArgumentError(f"{where}: 'axis' must be 0 or 1, got {entry['axis']}")
    dtypes = _string_list(where, "dtypes", entry.get("dtypes", ["float32"]))
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ArgumentError(
            f"{where}: 'dtypes' must list some of {', '.join(DTYPES)}, got {json.dumps(dtypes)}"
        )
    return KernelSpec(
        formula=entry["formula"],
        aliases=_string_list(where, "aliases", entry.get("aliases", [])),
        reduction_op=entry.get("reduction_op", "Sum"),
        axis=entry.get("axis", 0),
        opt_arg=entry.get("opt_arg"),
        formula2=entry.get("formula2"),
        dtypes=dtypes,
    )


def load_spec_file(path: Path) -> list[KernelSpec]:
    """Read and validate a JSON specification file (a list of objects).

    Raises:
        ArgumentError: unreadable file, invalid JSON, or an invalid entry (named by index).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ArgumentError(f"cannot read the specification file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    if not isinstance(data, list) or not data:
        raise ArgumentError(
            f"{path}: expected a non-empty JSON list of kernel specifications "
            f'[{{"formula": ..., "aliases": [...]}}, ...], got {type(data).__name__}'
        )
    return [spec_from_json(entry, f"{path}: entry {k}") for k, entry in enumerate(data)]


def dummy_arguments(routine: Any, dtype: str, seed: int = 0) -> list[np.ndarray]:
    """Tiny arrays matching ``routine``'s inputs: 2 points (at least K) per index."""
    from ..formula.ir import Cat  # import cost

    plan = routine.plan
    points = max(2, plan.k or 0)
    rng = np.random.default_rng(seed)
    arrays = []
    for slot in plan.slots:
        shape = (slot.dim,) if slot.cat is Cat.PARAM else (points, slot.dim)
        arrays.append(rng.uniform(0.5, 1.5, size=shape).astype(dtype))
    return arrays


def _libraries(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.so") if ".tmp-" not in p.name}


def build_kernel(spec: KernelSpec, dtype: str) -> tuple[list[str], float]:
    """Compile (or find in the cache) the kernel of ``spec`` for ``dtype``.

    Returns:
        The cache keys of the libraries this call compiled (empty when already cached) and
        the seconds it took.

    Raises:
        LazyKernelsError: a bad formula or option, or a compilation failure.
    """
    from ..jit import cache_dir  # import cost
    from ..numpy import Genred  # import cost

    routine = Genred(
        spec.formula,
        list(spec.aliases),
        reduction_op=spec.reduction_op,
        axis=spec.axis,
        opt_arg=spec.opt_arg,
        formula2=spec.formula2,
    )
    arrays = dummy_arguments(routine, dtype)
    directory = cache_dir()
    before = _libraries(directory)
    start = time.perf_counter()
    routine(*arrays, backend="CPU")
    seconds = time.perf_counter() - start
    built = sorted(name[:-3] for name in _libraries(directory) - before)
    return built, seconds


def specs_from_args(args: argparse.Namespace) -> list[KernelSpec]:
    """The specifications given on the command line and in ``--file``."""
    specs = [
        KernelSpec(
            formula=formula,
            aliases=tuple(args.aliases),
            reduction_op=args.reduction,
            axis=args.axis,
            opt_arg=args.opt_arg,
            formula2=args.formula2,
            dtypes=tuple(dict.fromkeys(args.dtypes)),
        )
        for formula in args.formulas
    ]
    if args.file is not None:
        specs += load_spec_file(args.file)
    if not specs:
        raise ArgumentError("nothing to compile: give FORMULA arguments or --file SPECS.json")
    return specs


def run(args: argparse.Namespace) -> int:
    """Build every requested kernel; 1 if any failed (the others are still built)."""
    from ..core.backends import resolve  # import cost

    specs = specs_from_args(args)  # a malformed file stops here, before any compilation
    resolve("CPU")  # BackendError with the reason when no compiler works
    failures = 0
    total = sum(len(spec.dtypes) for spec in specs)
    done = 0
    for spec in specs:
        for dtype in spec.dtypes:
            done += 1
            label = f"[{done}/{total}] {spec.describe()} [{dtype}]"
            try:
                keys, seconds = build_kernel(spec, dtype)
            except LazyKernelsError as exc:
                failures += 1
                error(f"{label}: {exc}")
                continue
            if keys:
                print(
                    f"{label}: built {', '.join(k[:16] for k in keys)} in {human_seconds(seconds)}"
                )
            else:
                print(f"{label}: already cached")
    built = total - failures
    print(f"{built} of {plural(total, 'kernel')} ready")
    return 1 if failures else 0
