"""The GPU backend (issue #11), in progress: NVRTC from pip wheels (:mod:`.nvrtc`).

The CUDA source of a kernel is printed by :func:`lazykernels.codegen.cuda.render_cuda`.
"""
