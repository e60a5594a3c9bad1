"""The GPU backend (issue #11): NVRTC and the driver API from pip wheels, no CUDA toolkit.

Pipeline position: a plan's CUDA source is printed by
:func:`lazykernels.codegen.cuda.render_cuda`; here it is compiled by NVRTC (:mod:`.nvrtc`)
into a cubin cached on disk (:mod:`.cubin`), loaded and launched on a device
(:mod:`.device`: the driver, :mod:`.driver`, or the host emulation, :mod:`.emulation`) by
the runner (:mod:`.runner`), which host arrays reach through ``backend="GPU"`` and torch
CUDA tensors through :mod:`lazykernels.torch.cuda`. Nothing is imported from the driver
until a GPU is used, so ``import lazykernels`` works on any machine.
"""
