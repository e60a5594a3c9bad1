"""Tests of the JIT layer: compiler discovery, flags, content keys, atomic cached builds.

Tests marked ``cpu`` compile C++ and are skipped when no compiler exists; the others need
none. Process-level races and crashes run real subprocesses (a fake compiler script makes
"killed mid-build" deterministic).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import lazykernels
from lazykernels import jit
from lazykernels.errors import CacheWarning, CompileError
from lazykernels.jit import cache as jit_cache
from lazykernels.jit import compiler as jit_compiler
from lazykernels.jit import load as jit_load
from lazykernels.jit import trust


def _have_compiler() -> bool:
    try:
        jit_compiler.find_compiler()
    except CompileError:
        return False
    return True


needs_compiler = pytest.mark.skipif(not _have_compiler(), reason="no C++ compiler")


@pytest.fixture
def cache(empty_cache):
    """A fresh cache directory, no debug traces, and an empty in-process table."""
    return empty_cache


def _unique(source: str) -> str:
    """Make a source new to every cache (the comment changes the key, not the code)."""
    return f"// {uuid.uuid4().hex}\n{source}"


SUM_SOURCE = """\
extern "C" double lk_sum(const double* __restrict x, long n) {
    double s = 0.0;
    for (long i = 0; i < n; ++i) s += x[i] * x[i];
    return s;
}
"""

ANSWER_SOURCE = 'extern "C" int lk_answer(void) { return 42; }\n'


def _call_sum(lib: ctypes.CDLL, x: np.ndarray) -> float:
    lib.lk_sum.restype = ctypes.c_double
    lib.lk_sum.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_long]
    pointer = x.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    return float(lib.lk_sum(pointer, x.size))


# ---------------------------------------------------------------- no compiler needed


def test_cxx_pointing_nowhere_names_the_value(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-such-compiler")
    monkeypatch.setenv("CXX", missing)
    with pytest.raises(CompileError, match="no C\\+\\+ compiler found") as error:
        jit.compiler_info()
    assert missing in str(error.value)


def test_no_compiler_on_path(monkeypatch, tmp_path):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory
    with pytest.raises(CompileError) as error:
        jit.compiler_info()
    assert str(error.value) == "no C++ compiler found: set CXX or install g++"


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(target))
    assert jit.cache_dir() == target.resolve()
    assert target.is_dir()


@pytest.mark.skipif(sys.platform != "linux", reason="XDG layout")
def test_cache_dir_default_is_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("LAZYKERNELS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jit.cache_dir() == (tmp_path / "xdg" / "lazykernels").resolve()


def _info(**changes) -> jit.CompilerInfo:
    info = jit.CompilerInfo("/usr/bin/g++", "g++ 12.2.0", ("-O3", "-fPIC"), True, "-march=x")
    return dataclasses.replace(info, **changes)


def test_key_is_full_sha256_of_content(monkeypatch):
    key = jit_cache.kernel_key("int f();", _info())
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert jit_cache.kernel_key("int f();", _info()) == key
    others = {
        jit_cache.kernel_key("int g();", _info()),
        jit_cache.kernel_key("int f();", _info(flags=("-O3", "-fPIC", "-g"))),
        jit_cache.kernel_key("int f();", _info(flags=("-O2", "-fPIC"))),
        jit_cache.kernel_key("int f();", _info(version="g++ 13.1.0")),
        jit_cache.kernel_key("int f();", _info(path="/opt/bin/g++")),
        jit_cache.kernel_key("int f();", _info(target="-march=y")),
    }
    assert key not in others
    assert len(others) == 6
    monkeypatch.setattr(lazykernels.version, "__version__", "999.0")
    assert jit_cache.kernel_key("int f();", _info()) != key


def test_key_fields_are_separated():
    # Moving text between neighbouring fields must change the key (no plain concatenation).
    a = jit_cache.kernel_key("ab", _info(path="c"))
    b = jit_cache.kernel_key("a", _info(path="bc"))
    assert a != b


def test_select_flags_fast_math_without_finite_math():
    capabilities = {"march_native": True, "prefer_vector_width_512": True, "openmp": True}
    flags = jit_compiler.select_flags(capabilities, "-DFOO=1 -g")
    assert flags[:3] == ("-O3", "-march=native", "-mprefer-vector-width=512")
    assert {"-fPIC", "-shared", "-std=c++17", "-fopenmp"} <= set(flags)
    assert set(jit_compiler.FAST_MATH_FLAGS) <= set(flags)
    assert not {"-ffast-math", "-ffinite-math-only", "-Ofast"} & set(flags)
    assert flags[-2:] == ("-DFOO=1", "-g")  # CXXFLAGS last, so they can override
    bare = jit_compiler.select_flags(dict.fromkeys(capabilities, False))
    assert "-fopenmp" not in bare and "-march=native" not in bare
    assert "-mprefer-vector-width=512" not in bare


def test_cache_info_and_clean_cache_touch_only_our_files(cache):
    cache.mkdir(parents=True)
    key = "ab" * 32
    (cache / f"{key}.so").write_bytes(b"x" * 100)
    (cache / f"{key}.cpp").write_bytes(b"y" * 10)
    (cache / f"{key}.json").write_text("{}")
    (cache / f"{key}.tmp-1-2.so").write_bytes(b"z" * 5)
    (cache / ("cd" * 32 + ".so")).write_bytes(b"w" * 7)
    (cache / "notes.txt").write_text("mine, keep me")
    info = jit.cache_info()
    assert info == {"path": str(cache.resolve()), "num_kernels": 2, "total_bytes": 124}
    jit.clean_cache()
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]
    assert jit.cache_info()["num_kernels"] == 0
    assert lazykernels.clean_cache is jit.clean_cache
    assert lazykernels.cache_info is jit.cache_info


# ---------------------------------------------------------------- compiled


@pytest.mark.cpu
@needs_compiler
def test_build_load_and_metadata(cache):
    source = _unique(SUM_SOURCE)
    lib = jit.build(source, "sumsq")
    x = np.random.default_rng(0).standard_normal(1001)
    assert _call_sum(lib, x) == pytest.approx(float(np.dot(x, x)), rel=1e-12)
    assert jit.build(source, "other name") is lib  # warm: same CDLL object

    info = jit.compiler_info()
    key = jit_cache.kernel_key(source, info)
    assert Path(lib._name) == cache.resolve() / f"{key}.so"
    assert (cache / f"{key}.cpp").read_text() == source
    meta = jit_cache.read_metadata(key)
    assert meta is not None
    assert meta["name"] == "sumsq"
    assert meta["compiler"] == info.path
    assert meta["flags"] == list(info.flags)
    assert meta["pid"] == os.getpid()
    assert jit.cache_info()["num_kernels"] == 1
    assert not list(cache.glob("*tmp-*"))


@pytest.mark.cpu
@needs_compiler
def test_compiler_info_shape():
    info = jit.compiler_info()
    assert os.path.isabs(info.path) and os.access(info.path, os.X_OK)
    assert info.version
    assert info.flags[0] == "-O3"
    assert ("-fopenmp" in info.flags) == info.openmp
    assert not {"-ffast-math", "-ffinite-math-only"} & set(info.flags)
    assert ("-march=native" in info.flags) == bool(info.target)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.path = "x"  # type: ignore[misc]


INF_SOURCE = """\
#include <algorithm>
#include <cmath>
template <typename T> static int checks(T x) {
    // bit k set = check k holds; under -ffinite-math-only GCC folds these to constants.
    int r = 0;
    if (std::max(x, T(-INFINITY)) == x) r |= 1;
    if (!(x < T(INFINITY))) r |= 2;
    if (std::isinf(x)) r |= 4;
    if (std::isnan(x)) r |= 8;
    if (x != x) r |= 16;
    return r;
}
extern "C" int lk_checks_f(float x) { return checks(x); }
extern "C" int lk_checks_d(double x) { return checks(x); }
extern "C" double lk_running_max(const double* __restrict x, long n) {
    double m = -INFINITY;
    for (long i = 0; i < n; ++i) m = std::max(m, x[i]);
    return m;
}
extern "C" double lk_logsumexp(const double* __restrict x, long n) {
    double m = -INFINITY;
    for (long i = 0; i < n; ++i) m = std::max(m, x[i]);
    if (std::isinf(m)) return m;
    double s = 0.0;
    for (long i = 0; i < n; ++i) s += std::exp(x[i] - m);
    return m + std::log(s);
}
"""


@pytest.mark.cpu
@needs_compiler
def test_inf_and_nan_survive_the_flags(cache):
    lib = jit.build(INF_SOURCE, "inf")
    lib.lk_checks_f.argtypes = [ctypes.c_float]
    lib.lk_checks_d.argtypes = [ctypes.c_double]
    for check in (lib.lk_checks_f, lib.lk_checks_d):
        assert check(1.5) == 1
        assert check(float("inf")) == 1 | 2 | 4
        assert check(float("-inf")) == 1 | 4
        assert check(float("nan")) & (2 | 8 | 16) == 2 | 8 | 16
    for fn in (lib.lk_running_max, lib.lk_logsumexp):
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_long]

    def call(fn, values):
        x = np.asarray(values, dtype=np.float64)
        return fn(x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), x.size)

    assert call(lib.lk_running_max, [-np.inf] * 37) == -np.inf
    assert call(lib.lk_running_max, [-np.inf, 3.0, np.inf, 1.0] * 9) == np.inf
    assert call(lib.lk_logsumexp, [-np.inf] * 33) == -np.inf
    x = np.array([-np.inf, 0.5, -np.inf, 2.0] * 8)
    expected = np.log(np.sum(np.exp(x - 2.0))) + 2.0
    assert call(lib.lk_logsumexp, x) == pytest.approx(expected, rel=1e-14)


OPENMP_SOURCE = """\
#ifdef _OPENMP
#include <omp.h>
#endif
extern "C" int lk_has_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
extern "C" double lk_parallel_sum(long n) {
    double s = 0.0;
#pragma omp parallel for reduction(+ : s)
    for (long i = 1; i <= n; ++i) s += 1.0 / (double(i) * double(i));
    return s;
}
"""


@pytest.mark.cpu
@needs_compiler
def test_openmp_guarded_source_builds_with_and_without_openmp(cache):
    info = jit.compiler_info()
    variants = [info]
    if info.openmp:
        flags = tuple(f for f in info.flags if f != "-fopenmp")
        variants.append(dataclasses.replace(info, flags=flags, openmp=False))
    n = 100_000
    expected = float(np.sum(1.0 / np.arange(1, n + 1, dtype=np.float64) ** 2))
    for variant in variants:
        path, built = jit_cache.build_artifact(OPENMP_SOURCE, "omp", variant)
        assert built
        lib = ctypes.CDLL(str(path))
        assert lib.lk_has_openmp() == int(variant.openmp)
        lib.lk_parallel_sum.restype = ctypes.c_double
        lib.lk_parallel_sum.argtypes = [ctypes.c_long]
        assert lib.lk_parallel_sum(n) == pytest.approx(expected, rel=1e-12)
    assert jit.cache_info()["num_kernels"] == len(variants)


@pytest.mark.cpu
@needs_compiler
def test_flags_vectorise_a_float_reduction(cache):
    # A float sum only vectorises when reassociation is allowed: proves the flags take effect.
    info = jit.compiler_info()
    if "clang" in info.version.lower():
        pytest.skip("the -fopt-info report is GCC's")
    source = cache / "vec.cpp"
    cache.mkdir(parents=True, exist_ok=True)
    source.write_text(
        'extern "C" float lk_vsum(const float* __restrict x, int n) {\n'
        "    float s = 0.0f;\n"
        "    for (int i = 0; i < n; ++i) s += x[i] * x[i];\n"
        "    return s;\n}\n"
    )
    flags = [f for f in info.flags if f not in ("-shared", "-fopenmp")]
    command = [info.path, *flags, "-fopt-info-vec-optimized", "-c", "-o", os.devnull, str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "fopt-info" in result.stderr:
        pytest.skip("this compiler has no -fopt-info report")
    assert result.returncode == 0, result.stderr
    assert "loop vectorized" in result.stderr


@pytest.mark.cpu
@needs_compiler
def test_cxxflags_are_appended(cache, monkeypatch):
    source = '#include <cstdio>\nextern "C" int lk_value(void) { return LK_JIT_TEST_VALUE; }\n'
    monkeypatch.setenv("CXXFLAGS", "-DLK_JIT_TEST_VALUE=7")
    info = jit.compiler_info()
    assert info.flags[-1] == "-DLK_JIT_TEST_VALUE=7"
    assert jit.build(source, "cxxflags").lk_value() == 7
    monkeypatch.setenv("CXXFLAGS", "-DLK_JIT_TEST_VALUE=8")
    assert jit.build(source, "cxxflags").lk_value() == 8  # new flags, new key, new library
    assert jit.cache_info()["num_kernels"] == 2


@pytest.mark.cpu
@needs_compiler
def test_compile_error_carries_command_source_and_log(cache):
    source = _unique('extern "C" int lk_bad(void) { return lk_undeclared_identifier_xyz; }\n')
    with pytest.raises(CompileError) as error:
        jit.build(source, "bad")
    message = str(error.value)
    key = jit_cache.kernel_key(source, jit.compiler_info())
    source_path = cache.resolve() / f"{key}.cpp"
    assert str(source_path) in message
    assert source_path.read_text() == source  # kept for inspection
    assert "lk_undeclared_identifier_xyz" in message  # the compiler's own diagnostic
    assert jit.compiler_info().path in message and "-O3" in message  # the command
    assert "'bad'" in message
    assert not (cache / f"{key}.so").exists()
    assert not list(cache.glob("*tmp-*"))
    with pytest.raises(CompileError):  # a failure is not cached as a success
        jit.build(source, "bad")


@pytest.mark.cpu
@needs_compiler
def test_debug_traces(cache, monkeypatch, capsys):
    monkeypatch.setenv("LAZYKERNELS_DEBUG", "1")
    source = _unique(ANSWER_SOURCE)
    jit.build(source, "traced")
    key = jit_cache.kernel_key(source, jit.compiler_info())
    err = capsys.readouterr().err
    assert f"source {cache.resolve() / (key + '.cpp')}" in err
    assert f"command: {jit.compiler_info().path} -O3" in err
    assert "compiler output" in err
    assert f"{key}.so (built now)" in err
    jit_load.forget_loaded()  # as in a new process: the library is on disk only
    assert jit.build(source, "traced").lk_answer() == 42
    err = capsys.readouterr().err
    assert f"{key}.so (cached artefact)" in err and "command:" not in err
    monkeypatch.setenv("LAZYKERNELS_DEBUG", "0")
    jit_load.forget_loaded()
    jit.build(source, "traced")
    assert capsys.readouterr().err == ""


@pytest.mark.cpu
@needs_compiler
def test_clean_cache_forces_a_rebuild(cache):
    source = _unique(ANSWER_SOURCE)
    assert jit.build(source).lk_answer() == 42
    assert jit.cache_info()["num_kernels"] == 1
    assert jit.cache_info()["total_bytes"] > 1000
    jit.clean_cache()
    assert jit.cache_info()["num_kernels"] == 0
    key = jit_cache.kernel_key(source, jit.compiler_info())
    assert jit.build(source).lk_answer() == 42
    assert (cache / f"{key}.so").is_file()


@pytest.mark.cpu
@needs_compiler
def test_damaged_artefact_and_stale_temporaries_are_never_loaded(cache):
    source = _unique(SUM_SOURCE)
    key = jit_cache.kernel_key(source, jit.compiler_info())
    cache.mkdir(parents=True, exist_ok=True)
    stale = [cache / f"{key}.tmp-99999-dead.so", cache / f"{key}.cpp.tmp-99999-dead"]
    for path in stale:
        path.write_bytes(b"\x7fELF half written")
    lib = jit.build(source, "fresh")
    assert _call_sum(lib, np.arange(4.0)) == 14.0
    assert not any(path.exists() for path in stale)

    # A library without recorded metadata (not something our builds produce) is not
    # trusted: rebuilt, with a warning.
    source = _unique(SUM_SOURCE)
    key = jit_cache.kernel_key(source, jit.compiler_info())
    (cache / f"{key}.so").write_bytes(b"garbage, not a shared object")
    with pytest.warns(CacheWarning, match="json: it is missing; rebuilding it"):
        assert _call_sum(jit.build(source, "repaired"), np.arange(3.0)) == 5.0
    assert (cache / f"{key}.so").read_bytes()[:4] == b"\x7fELF"

    # One that passes the trust checks (its hash recorded) but does not load is rebuilt once.
    source = _unique(SUM_SOURCE)
    info = jit.compiler_info()
    key = jit_cache.kernel_key(source, info)
    library, _ = jit_cache.build_artifact(source, "unloaded", info, key=key)
    library.write_bytes(b"garbage, not a shared object")
    meta_path = cache / f"{key}.json"
    metadata = json.loads(meta_path.read_text())
    metadata["sha256"] = trust.file_sha256(library)
    meta_path.write_text(json.dumps(metadata))
    assert jit_cache.library_problem(cache.resolve(), key) is None
    assert _call_sum(jit.build(source, "repaired"), np.arange(3.0)) == 5.0
    assert library.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.cpu
@needs_compiler
def test_threads_building_the_same_source_share_one_library(cache, monkeypatch, capsys):
    monkeypatch.setenv("LAZYKERNELS_DEBUG", "1")
    source = _unique(ANSWER_SOURCE)
    barrier = threading.Barrier(4)

    def work(_: int) -> ctypes.CDLL:
        barrier.wait()
        return jit.build(source, "threads")

    with ThreadPoolExecutor(4) as pool:
        libraries = list(pool.map(work, range(4)))
    assert all(lib is libraries[0] for lib in libraries)
    assert libraries[0].lk_answer() == 42
    assert capsys.readouterr().err.count("[lazykernels.jit] command:") == 1
