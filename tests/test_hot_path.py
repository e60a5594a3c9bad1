"""The warm-call path and the compile-latency measures: behaviour, never timings.

Covers the per-signature layout cache of :mod:`lazykernels.core.bind` (every check still
fires on warm calls), the NaN test, the memoised backend resolution, the CPU backend's
pointer and offset fast paths, the concurrent kernel builds and the size-dependent
optimisation level of the JIT.
"""

from __future__ import annotations

import ctypes
import dataclasses
import time

import numpy as np
import pytest

from lazykernels import cpu, jit
from lazykernels.core import backends
from lazykernels.core.arrays import NUMPY, has_nan
from lazykernels.core.bind import bind
from lazykernels.core.genred import build_plan, run_plan
from lazykernels.errors import ArgumentError, BackendError, DtypeError, ShapeError
from lazykernels.jit import compiler as jit_compiler
from lazykernels.numpy import Genred

ALIASES = ["x = Vi(3)", "y = Vj(3)", "p = Pm(1)"]
RNG = np.random.default_rng(7)


def gauss_sum(x, y, p):
    """Independent NumPy reference of Sum_j exp(-p |x_i - y_j|^2)."""
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return np.exp(-p[0] * d2).sum(1, keepdims=True)


def rand(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# --- the layout cache of bind: new shapes and dtypes are validated anew ------------------


def test_changing_shapes_and_dtypes_on_one_plan_stay_correct():
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    p = np.array([0.5])
    for m, n in [(5, 4), (7, 2), (5, 4), (1, 9)]:
        x, y = rand(m, 3), rand(n, 3)
        out = g(x, y, p, backend="reference")
        assert out.shape == (m, 1) and out.dtype == np.float64
        np.testing.assert_allclose(out, gauss_sum(x, y, p), rtol=1e-12)
    x, y = rand(4, 3), rand(6, 3)
    for dtype, rtol in [(np.float32, 1e-5), (np.float64, 1e-12), (np.float16, 1e-2)]:
        out = g(x.astype(dtype), y.astype(dtype), p.astype(dtype), backend="reference")
        assert out.dtype == dtype
        np.testing.assert_allclose(out.astype(np.float64), gauss_sum(x, y, p), rtol=rtol)


def test_checks_still_fire_after_a_warm_call():
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    x, y, p = rand(5, 3), rand(4, 3), np.array([0.5])
    g(x, y, p, backend="reference")
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ArgumentError, match="argument 'x' .* contains NaN values"):
        g(bad, y, p, backend="reference")
    with pytest.raises(ShapeError, match="argument 'y'"):
        g(x, rand(4, 2), p, backend="reference")
    with pytest.raises(ShapeError, match="inconsistent N"):
        Genred("x*y+z", ["x = Vi(1)", "y = Vj(1)", "z = Vj(1)"], axis=1)(
            rand(2, 1), rand(3, 1), rand(4, 1), backend="reference"
        )
    with pytest.raises(DtypeError, match="same dtype"):
        g(x, y.astype(np.float32), p, backend="reference")
    with pytest.raises(ArgumentError, match="expected 3 input arrays, got 2"):
        g(x, y, backend="reference")
    np.testing.assert_allclose(g(x, y, p, backend="reference"), gauss_sum(x, y, p))


def test_k_larger_than_the_reduction_set_raises_on_every_call():
    g = Genred("SqDist(x,y)", ["x = Vi(2)", "y = Vj(2)"], reduction_op="KMin", opt_arg=3, axis=1)
    for _ in range(2):
        with pytest.raises(ArgumentError, match="K = 3 is larger .*j: 2"):
            g(rand(4, 2), rand(2, 2), backend="reference")
    assert g(rand(4, 2), rand(3, 2), backend="reference").shape == (4, 3)


def test_out_is_checked_and_filled_after_warm_calls():
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    x, y, p = rand(5, 3), rand(4, 3), np.array([0.5])
    g(x, y, p, backend="reference")
    out = np.empty((5, 1))
    assert g(x, y, p, backend="reference", out=out) is out
    np.testing.assert_allclose(out, gauss_sum(x, y, p))
    with pytest.raises(ArgumentError, match="out: expected shape"):
        g(x, y, p, backend="reference", out=np.empty((4, 1)))


def test_bound_calls_of_the_same_signature_get_fresh_outputs():
    plan = build_plan("x*y", ["x = Vi(1)", "y = Vj(1)"], axis=1)
    args = [rand(3, 1), rand(2, 1)]
    first, second = bind(plan, args), bind(plan, args)
    assert first.outputs[0] is not second.outputs[0]
    assert (first.batch_shape, first.ni, first.nj) == ((), 3, 2)


# --- the NaN test ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_has_nan_finds_every_position(dtype):
    a = np.linspace(-1, 1, 37, dtype=dtype).reshape(37, 1)
    assert not has_nan(a)
    for k in (0, 18, 36):
        b = a.copy()
        b[k, 0] = np.nan
        assert has_nan(b)
    c = np.zeros((6, 4), dtype=dtype)
    c[5, 3] = np.nan
    assert has_nan(c[::5, 1:])  # a non-contiguous view that holds the NaN
    assert not has_nan(c[::5, :3])  # one that does not


def test_has_nan_ignores_infinities_and_empty_arrays():
    assert not has_nan(np.array([np.inf, -np.inf, 1.0]))
    assert not has_nan(np.array([-np.inf, np.inf]))
    assert not has_nan(np.zeros((0, 3)))


@pytest.mark.cpu
@pytest.mark.parametrize("itemsize, dtype", [(4, np.float32), (8, np.float64)])
def test_lk_first_nan_finds_the_first_array_and_every_position(itemsize, dtype):
    cpu.prepare(build_plan("x", ["x = Vi(1)"], axis=1), dtype)  # builds the runtime library
    first_nan = cpu._FIRST_NAN[0]

    def scan(arrays, sizes):
        ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        lens = (ctypes.c_ssize_t * len(arrays))(*sizes)
        return first_nan(len(arrays), ctypes.addressof(ptrs), ctypes.addressof(lens), itemsize)

    clean = np.array([1.0, np.inf, -np.inf, 0.0], dtype=dtype)
    for n in range(1, 40):  # across vector widths and loop tails
        for k in range(n):
            a = np.arange(n, dtype=dtype)
            a[k] = np.nan
            assert scan([clean, a, a], [4, n, n]) == 1
            assert scan([clean, a], [4, k]) == -1  # the NaN lies past the given size
    assert scan([clean, clean], [4, 0]) == -1


@pytest.mark.cpu
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_compiled_backend_reports_nan_in_every_argument(dtype):
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    x, y, p = rand(9, 3, dtype=dtype), rand(11, 3, dtype=dtype), np.array([0.5], dtype=dtype)
    np.testing.assert_allclose(
        g(x, y, p, backend="CPU").astype(np.float64),
        gauss_sum(*(a.astype(np.float64) for a in (x, y, p))),
        rtol=1e-2 if dtype == np.float16 else 1e-5,
    )
    for name, position in [("x", (0, 0)), ("y", (10, 2)), ("p", (0,)), ("y", (5, 1))]:
        args = {"x": x.copy(), "y": y.copy(), "p": p.copy()}
        args[name][position] = np.nan
        with pytest.raises(ArgumentError, match=f"argument '{name}' .* contains NaN values"):
            g(args["x"], args["y"], args["p"], backend="CPU")


@pytest.mark.cpu
def test_the_compiled_backend_checks_views_copies_and_empty_reductions_for_nan():
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    p = np.array([0.5])
    stack = rand(4, 6, 3)
    stack[2, 4, 1] = np.nan
    ys = rand(2, 5, 3)
    with pytest.raises(ArgumentError, match="argument 'x' .* contains NaN"):
        g(stack[::2], ys, p.reshape(1, 1), backend="CPU")  # entries 0, 2: strided, in place
    got = g(stack[1::2], ys, p.reshape(1, 1), backend="CPU")
    np.testing.assert_allclose(got[1], gauss_sum(stack[3], ys[1], p))
    x = rand(6, 3)
    wide = np.zeros((6, 6))
    wide[:, ::2] = rand(6, 3)
    wide[3, 2] = np.nan
    with pytest.raises(ArgumentError, match="argument 'y' .* contains NaN"):
        g(x, wide[:, ::2], p, backend="CPU")  # copied before the kernel reads it
    bad_x = x.copy()
    bad_x[0, 0] = np.nan
    with pytest.raises(ArgumentError, match="argument 'x' .* contains NaN"):
        g(bad_x, rand(0, 3), p, backend="CPU")  # empty reduction: the kernel never runs
    with pytest.raises(ArgumentError, match="argument 'x' .* contains NaN"):
        cpu.run(bind(build_plan("x", ["x = Vi(1)"], axis=1), [np.full((3, 1), np.nan)]))
    inf_y = rand(4, 3)
    inf_y[1, 0] = np.inf  # infinities are values, not errors
    np.testing.assert_allclose(g(x, inf_y, p, backend="CPU"), gauss_sum(x, inf_y, p))


# --- backend resolution ------------------------------------------------------------------


def test_resolve_rejects_bad_names_every_time():
    for _ in range(2):
        with pytest.raises(BackendError, match="unknown backend"):
            backends.resolve("CPUU")
        with pytest.raises(BackendError, match="unknown backend"):
            backends.resolve(["CPU"])  # type: ignore[arg-type]
        assert backends.resolve("GPU_2D")[0] == "GPU"  # the 2D scheme of the GPU runner
    assert backends.resolve("reference")[0] == "reference"


needs_cpu = pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler")


@needs_cpu
def test_a_memoised_cpu_backend_follows_the_compiler_environment(monkeypatch, tmp_path):
    assert backends.resolve("CPU")[0] == "CPU"
    assert backends.resolve("cpu")[0] == "CPU"
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.raises(BackendError, match="backend 'CPU' is not available"):
        backends.resolve("CPU")
    assert backends.resolve("auto")[0] == "reference"
    monkeypatch.undo()
    assert backends.resolve("auto")[0] == "CPU"


# --- the CPU backend's argument fast paths -----------------------------------------------


def test_address_matches_numpy_for_every_kind_of_array():
    base = np.arange(24.0).reshape(4, 6)
    readonly = base.copy()
    readonly.flags.writeable = False
    views = [base, base[1:], base[:, 2:], base[::2], readonly, np.zeros(0), base.T]
    for view in views:
        (address,) = NUMPY.pointers([view])
        assert address == view.ctypes.data
        if view.size:
            assert ctypes.c_double.from_address(address).value == view.flat[0]
    assert NUMPY.pointers(views) == [v.ctypes.data for v in views]


@needs_cpu
@pytest.mark.cpu
def test_cpu_calls_with_batch_dimensions_of_one_and_more():
    g = Genred("Exp(-SqDist(x,y)*p)", ALIASES, axis=1)
    x, y, p = rand(2, 5, 3), rand(1, 4, 3), rand(2, 1)
    out = g(x, y, p, backend="CPU")
    for b in range(2):
        np.testing.assert_allclose(out[b], gauss_sum(x[b], y[0], p[b]), rtol=1e-12)
    one = g(x[:1], y, p[:1], backend="CPU")  # batch shape (1,): the shared zero offsets
    np.testing.assert_allclose(one[0], gauss_sum(x[0], y[0], p[0]), rtol=1e-12)
    strided = np.asfortranarray(x[0])  # not C-contiguous: copied
    np.testing.assert_allclose(
        g(strided, y[0], p[0], backend="CPU"), gauss_sum(x[0], y[0], p[0]), rtol=1e-12
    )
    readonly = x[1].copy()
    readonly.flags.writeable = False
    np.testing.assert_allclose(
        g(readonly, y[0], p[1], backend="CPU"), gauss_sum(x[1], y[0], p[1]), rtol=1e-12
    )


@needs_cpu
@pytest.mark.cpu
def test_prepare_many_builds_each_missing_kernel_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(tmp_path))
    # formulas no other test compiles (the constants), so the builds happen here
    plans = [build_plan(f"Exp(-SqDist(x,y)*IntCst({c}))*p", ALIASES, axis=1) for c in (37, 41)]
    backends.prepare([plans[0], plans[1], plans[0]], np.float64, "CPU")
    built = sorted(tmp_path.glob("*.so"))
    assert len(built) >= 2  # both kernels (and the runtime library, unless already loaded)
    backends.prepare(plans, np.float64, "CPU")  # nothing left to build
    assert sorted(tmp_path.glob("*.so")) == built
    x, y, p = rand(5, 3), rand(4, 3), np.array([1.0])
    for plan, c in zip(plans, (37, 41)):
        (out,) = run_plan(plan, [x, y, p], backend="CPU")
        np.testing.assert_allclose(out, gauss_sum(x, y, np.array([c])), rtol=1e-12)
    assert sorted(tmp_path.glob("*.so")) == built
    backends.prepare(plans, np.float64, "reference")  # nothing to prepare, no error
    backends.prepare(plans, np.float64, "no-such-backend")  # left for the run to report


# --- the optimisation level of large kernels ---------------------------------------------


def test_optimisation_level_drops_for_large_sources():
    (o1_lines, o1), (o2_lines, o2) = jit_compiler.SIZE_OPT_LEVELS
    assert (o1, o2) == ("-O1", "-O2") and o1_lines > o2_lines
    assert jit_compiler.optimisation_level("x\n" * (o2_lines - 1)) == "-O3"
    assert jit_compiler.optimisation_level("x\n" * o2_lines) == "-O2"
    assert jit_compiler.optimisation_level("x\n" * o1_lines) == "-O1"


def test_for_source_replaces_only_the_library_level():
    info = jit.CompilerInfo("/usr/bin/g++", "g++ 12", ("-O3", "-fPIC", "-Og"), True, "")
    big = "x\n" * jit_compiler.SIZE_OPT_LEVELS[0][0]
    assert jit_compiler.for_source(info, "x\n").flags == info.flags  # small: unchanged
    assert jit_compiler.for_source(info, big).flags == ("-O1", "-fPIC", "-Og")  # CXXFLAGS last
    bare = dataclasses.replace(info, flags=("-fPIC",))
    assert jit_compiler.for_source(bare, big) is bare


def test_large_and_small_sources_get_different_cache_keys():
    info = jit.CompilerInfo("/usr/bin/g++", "g++ 12", ("-O3", "-fPIC"), True, "")
    source = "// k\n" * jit_compiler.SIZE_OPT_LEVELS[1][0]
    sized = jit_compiler.for_source(info, source)
    assert sized.flags[0] == "-O2"
    assert jit.cache.kernel_key(source, sized) != jit.cache.kernel_key(source, info)


# --- compiler probes ---------------------------------------------------------------------


def test_probes_of_a_missing_compiler_answer_no(tmp_path, monkeypatch):
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(tmp_path))
    found = jit_compiler._run_probes(str(tmp_path / "no-such-compiler"))
    assert found == {"march_native": False, "prefer_vector_width_512": False, "openmp": False}
    assert not any(p.name.startswith("lk-probe-") for p in tmp_path.iterdir())  # cleaned up


def _gone(pid: int) -> bool:
    """Whether ``pid`` is dead (or a zombie waiting for a parent that may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_hanging_probe_is_stopped_with_its_children(tmp_path, monkeypatch):
    # A compiler that never finishes and leaves a child behind: the probes must give up at
    # the compile time limit and kill the whole process group, as kernel builds do.
    pids = tmp_path / "pids"
    fake = tmp_path / "hanging-cxx"
    fake.write_text(f"#!/bin/sh\nsleep 20 &\necho $! >> {pids}\nwait\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(tmp_path))
    monkeypatch.setenv("LAZYKERNELS_COMPILE_TIMEOUT", "1")
    start = time.monotonic()
    found = jit_compiler._run_probes(str(fake))
    assert time.monotonic() - start < 15
    assert found == {"march_native": False, "prefer_vector_width_512": False, "openmp": False}
    children = [int(line) for line in pids.read_text().split()]
    assert children  # the probes really ran the fake compiler
    assert all(_gone(pid) for pid in children)
    assert jit.process.live_compilers() == []


@needs_cpu
def test_concurrent_probes_agree_with_the_cached_answer(tmp_path, monkeypatch):
    info = jit.compiler_info()
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(tmp_path))
    found = jit_compiler._run_probes(info.path)
    assert set(found) == {"march_native", "prefer_vector_width_512", "openmp"}
    assert found["openmp"] == info.openmp
    assert found["march_native"] == ("-march=native" in info.flags)
    assert found["prefer_vector_width_512"] == ("-mprefer-vector-width=512" in info.flags)


# --- memoised formula work: simplify, variables, LazyTensor plans -------------------------


def test_simplify_remembers_default_results_and_bypasses_custom_rules():
    import importlib

    from lazykernels.formula import Cat, var

    simplify_module = importlib.import_module("lazykernels.formula.simplify")
    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    f = (x - y) * 1 + y * 0
    first = simplify_module.simplify(f)
    assert first is x - y and simplify_module._SIMPLIFIED[f] is first
    assert simplify_module.simplify(f) is first
    assert simplify_module.simplify(f, rules=()) is f  # a custom rule set is not memoised
    assert simplify_module.simplify(f, enabled=False) is f


def test_variables_are_computed_once_per_node():
    from lazykernels.formula import Cat, var

    x, y = var(0, 3, Cat.I), var(1, 3, Cat.J)
    f = (x - y).exp() + x
    assert f.variables() == (x, y) and f.variables() is f.variables()


def test_lazytensor_plans_are_reused_and_constants_stay_values():
    from lazykernels.numpy import LazyTensor
    from lazykernels.numpy import Vi as NVi
    from lazykernels.numpy import Vj as NVj

    x, y = rand(6, 3), rand(5, 3)
    plans, results = [], []
    for scale in (2.0, 3.0, 2.0):
        k = (-NVi(x).sqdist(NVj(y)) * scale).exp()
        reduced = k.sum(axis=1, call=False)
        plans.append(reduced._plan)
        results.append(reduced(backend="reference"))
    assert plans[0] is plans[1] is plans[2]  # the scale is a parameter, not part of the plan
    for scale, got in zip((2.0, 3.0, 2.0), results):
        np.testing.assert_allclose(got, gauss_sum(x, y, np.array([scale])), rtol=1e-12)
    k = (-LazyTensor(x[:, None, :]).sqdist(LazyTensor(y[None, :, :])) * 2.0).exp()
    kahan = k.sum(axis=1, call=False, sum_scheme="kahan_scheme")
    assert kahan._plan is not plans[0] and kahan._plan.sum_scheme == "kahan_scheme"
