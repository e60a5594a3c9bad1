"""The contract between ``Genred`` and the backends, as the core layer hands it on.

The classes are defined in :mod:`lazykernels.reductions.plan` (code generation reads plans
too, and sits below the core); backends and front ends import them from here or there.
"""

from __future__ import annotations

from ..reductions.plan import HOST, SUM_SCHEMES, ArgSlot, BoundCall, Device, Ranges, ReductionPlan

__all__ = ["HOST", "SUM_SCHEMES", "ArgSlot", "BoundCall", "Device", "Ranges", "ReductionPlan"]
