"""Code generation: formula IR -> kernel IR -> a C++ (CPU) or CUDA map-reduce kernel.

Pipeline position: a backend hands a :class:`~lazykernels.reductions.plan.ReductionPlan` to
:func:`lazykernels.codegen.cpp.render_cpu` (or :func:`lazykernels.codegen.cuda.render_cuda`)
and gets source back (then the JIT or NVRTC compiles it). The steps:

- :mod:`.passes` rewrites the formula (products regrouped by level, scaled exponentials)
  and gives each node its level: parameters (once per batch entry), output index (once per
  row), reduction index (precomputed once per call, dimension-major) or both (the inner
  loop).
- :mod:`.lower` lowers the formula (and the weight formula) to kernel IR (:mod:`.kir`): SSA
  values, each interned node emitted once, names from a per-kernel context (the source is a
  pure function of the plan). A vector up to the target's ``unroll_max`` is that many
  scalars; a larger one stays a vector (:mod:`.loops`) read in loops, so the source size
  does not grow with the dimension. CSE, hoisting and dead-code removal run on the IR.
- :mod:`.dialect` prints the IR; op cards spell maths neutrally (``opspec.math``) and
  :mod:`.dialect_cpu` gives the CPU's spellings (C++ library names, ``lk_exp``, literals).
  :mod:`.target_cpu` holds the CPU skeleton's tiling constants.
- :mod:`.cpp` prints the one map-reduce skeleton every reduction shares (row blocks,
  reduction tiles, ``omp simd`` inner loops, threads, a split of the reduction range when
  rows are few, batch chunks, block-sparse ranges; :mod:`.schedule_cpp` its constants and
  work items). The reduction is the plan's card (:mod:`lazykernels.reductions`):
  :mod:`.cpu_reductions` prints it with its family's vectorised fragments
  (:mod:`.reductions_cpp`, :mod:`.reductions_lse_cpp`: lanes, masks and scans around the
  pieces of the card's program) or its own neutral program pair by pair, both through
  :mod:`.emit`; :mod:`.cuda` and :mod:`.reductions_cuda` print the same programs per CUDA
  thread with :mod:`.dialect_cuda`.
- :mod:`.sqdist_cpp`: squared distances of dimension >= 16 feeding a min-type reduction
  take a blocked ``|u|^2 + |w|^2 + 2 u.w`` path (a register-tiled micro-kernel writes lower
  bounds, candidates are recomputed exactly: the results are the exact path's).
- :mod:`.prelude`: the kernel's ``#include`` lines, collected from the C++ library names
  actually printed (headers dominate a small kernel's compile time), and the skeleton's
  header-free helpers (``lk_min``, ``lk_max``, ``lk_buf``).
- :mod:`.runtime`: the process's thread pool (passive waits, optional participation), passed
  to every kernel; OpenMP only vectorises (``omp simd``) and gives the default thread count.

Helper functions: :mod:`.helpers` (``HELPERS``, filled by op cards' authors, in a neutral
spelling that every dialect prints: :meth:`.dialect.Dialect.helper`) and :mod:`.fastmath`
(the CPU kernel's own: a vectorisable ``exp`` of documented accuracy, Kahan and K-min
steps, explicit vectors). Only identifiers chosen here and numbers printed here reach
the compiler, never user text.

This package's ``__init__`` imports nothing, so that op modules may import ``.helpers``
without import cycles.
"""
