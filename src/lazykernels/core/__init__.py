"""The array-library-neutral core: plan and call contract, validation, dispatch.

Pipeline position: between the formula engine and the backends. :mod:`.plan` defines what a
backend receives (``ReductionPlan``, ``BoundCall``, ``Ranges``, ``ArgSlot``), :mod:`.genred`
builds plans from ``Genred``'s arguments, :mod:`.arrays` is the interface an array library
implements (the adapter every array goes through), :mod:`.bind` validates the arrays of a
call and allocates its outputs, and :mod:`.backends` picks the function that fills them
for the arrays' device. The NumPy, PyTorch and JAX front ends are thin adapters over this
package.
"""
