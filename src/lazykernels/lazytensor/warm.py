"""The warm path of a LazyTensor reduction: the bound arrays, as given, to a prepared call.

A LazyTensor keeps the arrays it binds as the user gave them (``x[:, None, :]`` stays of
shape (M, 1, D)); a call views them to the shapes its plan reads (:func:`.read_value`)
and runs :func:`lazykernels.core.genred.run_plan`, which remembers a *prepared call* for
that layout (:mod:`lazykernels.core.prepared`). :func:`file_as_given` files the same
prepared call under the layout of the arrays as given, so that the next call with that
layout goes from the bound arrays straight to the kernel (:func:`lookup_as_given` finds
it): no views, no binding, no dispatch. The prepared call reads only the arrays' data
pointers; the views a call would make share them, and the layout as given fixes the layout
of the views.

Only plain calls come here: no arguments for symbolic variables, no call options, no
ranges, real outputs, no bound Python numbers, and (torch) no derivative tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import prepared
from ..core.plan import ReductionPlan

_AS_GIVEN = "bound as given"  # tags the memo's layout keys of arrays as bound


def lookup_as_given(
    tools: Any, plan: ReductionPlan, values: Sequence[Any], backend: str
) -> tuple[Any, Any]:
    """(the prepared call filed for the layout of the bound arrays ``values``, None), or
    (None, the key to file the call's prepared call under, see :func:`file_as_given`),
    or (None, None): not plain arrays, a derivative tracked, or a layout not preparable."""
    adapter = tools.warm_adapter
    if adapter is None:
        return None, None
    key = adapter.layout_key(values)  # None: not plain arrays (Python numbers...)
    if key is None or not tools.untracked(values):
        return None, None
    key = (_AS_GIVEN, key)
    found = prepared.lookup(plan, backend, adapter, key)
    if found is prepared.MISSING:
        return None, key
    return found, None


def file_as_given(
    tools: Any, plan: ReductionPlan, key: Any, arrays: Sequence[Any], backend: str
) -> None:
    """After a call of ``plan`` on ``arrays`` (bound arrays viewed as the plan reads them),
    file its prepared call (or that there is none) under ``key`` (:func:`lookup_as_given`)."""
    adapter = tools.warm_adapter
    prepared.alias(plan, backend, adapter, key, adapter.layout_key(arrays))
