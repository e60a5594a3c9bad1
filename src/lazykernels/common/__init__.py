"""KeOps's ``pykeops.common`` module paths: helpers that scripts and libraries import.

- :mod:`.gpu_utils`: ``get_gpu_number`` (0: lazykernels has no GPU backend);
- :mod:`.utils`: ``axis2cat``, ``cat2axis``, ``get_tools``, the ``pyKeOps_*`` messages...;
- :mod:`.lazy_tensor`: ``GenericLazyTensor``, ``ComplexGenericLazyTensor``;
- :mod:`.operations`: ``ConjugateGradientSolver``.
"""
