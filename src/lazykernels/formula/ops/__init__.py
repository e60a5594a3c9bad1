"""The operation registry: every name of the formula language, listed explicitly.

Each family module defines its op cards and exports them as ``CARDS``; this module
concatenates them, in a fixed order, into :data:`OPS`. Nothing registers itself by import
side effect, and the registry is read-only after construction.
"""

from __future__ import annotations

from types import MappingProxyType

from ..opspec import OpSpec
from . import (
    arith,
    calculus,
    complex,
    elementwise,
    elementwise_piecewise,
    leaves,
    special,
    tensor,
    vector,
)

_FAMILIES = (
    leaves.CARDS,
    arith.CARDS,
    elementwise.CARDS,
    elementwise_piecewise.CARDS,
    complex.CARDS,
    calculus.CARDS,
    vector.CARDS,
    tensor.CARDS,
    special.CARDS,
)


def _build(families: tuple[tuple[OpSpec, ...], ...]) -> MappingProxyType[str, OpSpec]:
    table: dict[str, OpSpec] = {}
    for family in families:
        for card in family:
            if card.name in table:
                raise RuntimeError(f"operation {card.name!r} is registered twice")
            table[card.name] = card
    return MappingProxyType(table)


OPS: MappingProxyType[str, OpSpec] = _build(_FAMILIES)
"""Every operation card, by formula-string name."""
