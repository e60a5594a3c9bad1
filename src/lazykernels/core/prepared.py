"""Prepared calls: the warm path of :func:`lazykernels.core.genred.run_plan` on the CPU.

A call to the compiled CPU backend does the same work every time its arrays have the same
layout: the binding's checks, the dispatch, the kernel's lookup, the offset tables. Once a
call of a plan has run, :func:`remember` asks the backend for a *prepared call*
(:func:`lazykernels.cpu.prepare_call`): a callable fixed to the plan and to the exact layout
of that call's arrays (shape, dtype and strides of each, on the host, through one array
adapter, for one backend name), which allocates the outputs from the remembered layout,
checks the inputs for NaN (in C, every call) and calls the kernel. :func:`lookup` finds it
again for a call with the very same layout; any other layout (another shape, dtype,
contiguity, adapter or backend) is a different key, so a prepared call never serves one.

Calls with ``ranges``, ``out`` or a ``device_id`` do not come here (see ``run_plan``), nor
do arrays the adapter does not describe exactly (:meth:`~.arrays.ArrayAdapter.layout_key`
returns None: lists, tensor subclasses, GPU memory...). The memo is an LRU of
:data:`MAX_PREPARED` entries; an entry holds its plan, so the plan's id is not reused
meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .arrays import ArrayAdapter
from .backends import _cpu_module
from .plan import BoundCall, ReductionPlan

MAX_PREPARED = 256

Prepared = Callable[[Any], tuple[Any, ...]]

# (id(plan), backend, adapter, layout key) -> (plan, prepared call or None: not preparable)
_MEMO: OrderedDict[tuple[Any, ...], tuple[ReductionPlan, Prepared | None]] = OrderedDict()
_LOCK = threading.Lock()
MISSING = object()
"""What :func:`lookup` returns for a layout not seen yet."""


def lookup(plan: ReductionPlan, backend: str, adapter: ArrayAdapter, key: Any) -> Any:
    """The prepared call of ``plan`` for arrays of layout ``key`` (from ``adapter``), None
    when that layout was seen and cannot be prepared, or :data:`MISSING`."""
    memo_key = (id(plan), backend, adapter, key)
    entry = _MEMO.get(memo_key)
    if entry is None or entry[0] is not plan:
        return MISSING
    try:  # (not contextlib.suppress: it costs 0.5 us of a 10 us call)
        _MEMO.move_to_end(memo_key)
    except KeyError:  # evicted meanwhile by another thread: prepared again
        return MISSING
    return entry[1]


def remember(call: BoundCall, backend: str, adapter: ArrayAdapter, key: Any) -> None:
    """Prepare (once) the call of ``call.plan`` for the layout ``key`` of ``call``'s arrays,
    which the CPU backend has just run."""
    cpu = _cpu_module()
    prepared = None if cpu is None else cpu.prepare_call(call)
    plan = call.plan
    with _LOCK:
        _file((id(plan), backend, adapter, key), (plan, prepared))


def alias(plan: ReductionPlan, backend: str, adapter: ArrayAdapter, key: Any, known: Any) -> None:
    """File under the layout key ``key`` the prepared call remembered for the layout
    ``known`` of ``plan``'s arrays (None: that there is none, also when ``known`` was not
    remembered, e.g. a call the GPU ran)."""
    with _LOCK:
        entry = None if known is None else _MEMO.get((id(plan), backend, adapter, known))
        if entry is None or entry[0] is not plan:
            entry = (plan, None)
        _file((id(plan), backend, adapter, key), entry)


def _file(memo_key: tuple[Any, ...], entry: tuple[ReductionPlan, Prepared | None]) -> None:
    """Store ``entry`` under ``memo_key``, evicting the least recently used beyond
    :data:`MAX_PREPARED` (the caller holds the lock)."""
    _MEMO[memo_key] = entry
    while len(_MEMO) > MAX_PREPARED:
        _MEMO.popitem(last=False)


def clear() -> None:
    """Forget every prepared call (tests)."""
    with _LOCK:
        _MEMO.clear()


def size() -> int:
    """The number of layouts remembered (tests)."""
    return len(_MEMO)
