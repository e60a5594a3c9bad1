"""Tests of the ``lazykernels`` command line (``lazykernels.cli.main``).

Each test runs ``main([...])`` in-process with its own ``LAZYKERNELS_CACHE``. Tests that
compile C++ are marked ``cpu``; compiled kernels are shared through one module-wide cache
directory so that each is built once.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lazykernels.cli import main
from lazykernels.cli import precompile as precompile_cli
from lazykernels.cli._demo_tasks import TASK_TITLES, Data, numpy_run, relative_error
from lazykernels.cli.check import missing_compiler_reason, simd_summary
from lazykernels.errors import ArgumentError
from lazykernels.jit import load as jit_load


def _have_compiler() -> bool:
    return missing_compiler_reason() is None


needs_compiler = pytest.mark.skipif(not _have_compiler(), reason="no C++ compiler")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache directory for the compiling tests of this module."""
    return tmp_path_factory.mktemp("lk-cli-cache")


@pytest.fixture
def cache(shared_cache, monkeypatch):
    """Point the JIT at the shared test cache; no debug traces."""
    monkeypatch.setenv("LAZYKERNELS_CACHE", str(shared_cache))
    monkeypatch.delenv("LAZYKERNELS_DEBUG", raising=False)
    return shared_cache


def _libraries(directory: Path) -> set[str]:
    """The kernel libraries in a cache (not the shared runtime, built with the first kernel)."""
    return {
        p.name
        for p in directory.glob("*.so")
        if p.with_suffix(".cpp").read_text().startswith("// lazykernels CPU kernel")
    }


# ---- main ------------------------------------------------------------------------------


def test_help_of_every_command(capsys):
    for argv in (
        ["--help"],
        ["check", "--help"],
        ["cache", "--help"],
        ["cache", "info", "--help"],
        ["cache", "clean", "--help"],
        ["precompile", "--help"],
        ["demo", "--help"],
    ):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: lazykernels"), argv
    assert main(["demo", "--help"]) == 0
    assert "--max-n" in capsys.readouterr().out


def test_no_command_and_bad_usage(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["demo", "--max-n", "ten"]) == 2
    assert "not a number" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "lazykernels", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("lazykernels ")


# ---- check -----------------------------------------------------------------------------


def test_check_without_compiler_fails_with_the_reason(empty_cache, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert main(["check"]) == 1
    captured = capsys.readouterr()
    assert "no C++ compiler found: CXX points to /nonexistent/c++" in captured.err
    assert "compiler     NOT FOUND" in captured.out
    assert f"cache        {empty_cache.resolve()}" in captured.out
    assert "numpy        " + np.__version__ in captured.out
    assert "kernel test" not in captured.out  # nothing compiled without a compiler
    assert not _libraries(empty_cache)


def test_check_with_an_empty_path_names_the_compilers(empty_cache, monkeypatch, capsys):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(empty_cache))
    assert main(["check", "--no-kernel"]) == 1
    assert "none of g++, c++, clang++ is on PATH" in capsys.readouterr().err


def test_simd_summary_reads_the_native_target():
    target = "-march=skylake-avx512 -mavx2 -mfma -mavx512f -mno-avx512fp16 -msse4.2"
    flags = ("-O3", "-march=native", "-mprefer-vector-width=512")
    assert simd_summary(flags, target) == (
        "-march=native (skylake-avx512): sse4.2 avx2 fma avx512f; -mprefer-vector-width=512"
    )
    clang = "-target-cpu neoverse-v1 -target-feature +neon -target-feature +sve"
    assert simd_summary(("-march=native",), clang) == "-march=native (neoverse-v1): neon sve"
    assert simd_summary(("-O3",), "").startswith("baseline only")


@pytest.mark.cpu
@needs_compiler
def test_check_compiles_and_runs_the_test_kernel(cache, monkeypatch, capsys):
    monkeypatch.delenv("CXX", raising=False)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "(from PATH)" in out
    assert "OpenMP       " in out and "SIMD         " in out
    assert "kernel test: Gaussian kernel sum" in out
    error = float(out.split("max relative error vs dense NumPy (float64): ")[1].split()[0])
    assert error < 1e-4
    assert out.rstrip().endswith("OK")


def test_check_without_a_gpu_says_so_and_compile_checks_with_nvrtc(capsys):
    from lazykernels.cli.check_gpu import report_gpu
    from lazykernels.cuda import driver, nvrtc

    if driver.unavailable_reason() is None:
        pytest.skip("a GPU is present")
    assert report_gpu() is None  # no GPU is not a failure of the CPU install
    out = capsys.readouterr().out
    assert "GPU          none: " in out
    assert "NVIDIA driver" in out or "cuda-bindings" in out or "no GPU" in out
    if nvrtc.available():
        major, minor = nvrtc.version()
        assert f"NVRTC        {major}.{minor}" in out
        assert "compile      Gaussian kernel sum for sm_80: " in out and "bytes of cubin" in out
    else:
        assert "NVRTC        not available" in out and "compile" not in out
    assert report_gpu(run_kernels=False) is None
    assert "compile " not in capsys.readouterr().out


# ---- cache -----------------------------------------------------------------------------


def test_cache_info_and_clean(empty_cache, capsys):
    empty_cache.mkdir()
    fake = "ab" * 32
    (empty_cache / f"{fake}.so").write_bytes(b"\0" * 3000)
    (empty_cache / f"{fake}.json").write_text(json.dumps({"name": "cpu_Sum"}))
    (empty_cache / "notes.txt").write_text("not ours")  # clean must leave it alone

    assert main(["cache", "info", "--list"]) == 0
    out = capsys.readouterr().out
    assert f"cache directory: {empty_cache.resolve()}" in out
    assert "kernels:         1" in out
    assert fake[:16] in out and "cpu_Sum" in out

    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_kernels"] == 1
    assert info["total_bytes"] == 3000 + len(json.dumps({"name": "cpu_Sum"}))

    assert main(["cache", "clean"]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 kernel (2.9 KiB) from {empty_cache.resolve()}" in out
    assert sorted(p.name for p in empty_cache.iterdir()) == ["notes.txt"]
    assert main(["cache", "clean"]) == 0
    assert "removed 0 kernels (0 B)" in capsys.readouterr().out


def test_cache_needs_an_action(capsys):
    assert main(["cache"]) == 2
    assert "required: ACTION" in capsys.readouterr().err


# ---- precompile ------------------------------------------------------------------------


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "specs.json"
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"formula": "x", ', "is not valid JSON: "),
        ('{"formula": "x"}', "expected a non-empty JSON list"),
        ("[]", "expected a non-empty JSON list"),
        ('["SqDist(x,y)"]', "entry 0: expected an object"),
        ('[{"aliases": []}]', "entry 0: the key 'formula' is required"),
        ('[{"formula": "x", "alias": []}]', "entry 0: unknown key 'alias'"),
        ('[{"formula": "x", "aliases": "x=Vi(3)"}]', "'aliases' must be a list of strings"),
        ('[{"formula": "x"}, {"formula": "x", "axis": 2}]', "entry 1: 'axis' must be 0 or 1"),
        ('[{"formula": "x", "axis": true}]', "'axis' must be int"),
        ('[{"formula": "x", "opt_arg": "10"}]', "'opt_arg' must be int"),
        ('[{"formula": "x", "dtypes": ["int32"]}]', "'dtypes' must list some of"),
        ('[{"formula": 3}]', "'formula' must be str"),
    ],
)
def test_precompile_rejects_a_malformed_file(tmp_path, empty_cache, capsys, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(ArgumentError) as info:
        precompile_cli.load_spec_file(path)
    assert message in str(info.value)
    assert main(["precompile", "--file", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lazykernels: error: ") and message in err
    assert not empty_cache.exists() or not _libraries(empty_cache)  # nothing was compiled


def test_precompile_missing_file_and_no_specs(tmp_path, capsys):
    assert main(["precompile", "--file", str(tmp_path / "nope.json")]) == 1
    assert "cannot read the specification file" in capsys.readouterr().err
    assert main(["precompile"]) == 1
    assert "nothing to compile" in capsys.readouterr().err


def test_spec_file_defaults_and_dummy_shapes(tmp_path):
    path = _write(
        tmp_path,
        json.dumps(
            [
                {"formula": "SqDist(x, y)", "aliases": ["x=Vi(3)", "y=Vj(3)"]},
                {
                    "formula": "SqDist(x, y) * p",
                    "aliases": ["x=Vi(2)", "y=Vj(2)", "p=Pm(1)"],
                    "reduction_op": "ArgKMin",
                    "axis": 1,
                    "opt_arg": 5,
                    "dtypes": ["float64", "float32"],
                },
            ]
        ),
    )
    first, second = precompile_cli.load_spec_file(path)
    assert first == precompile_cli.KernelSpec("SqDist(x, y)", ("x=Vi(3)", "y=Vj(3)"))
    assert (first.reduction_op, first.axis, first.dtypes) == ("Sum", 0, ("float32",))
    assert (second.opt_arg, second.dtypes) == (5, ("float64", "float32"))
    from lazykernels.numpy import Genred

    routine = Genred(second.formula, list(second.aliases), "ArgKMin", axis=1, opt_arg=5)
    shapes = [a.shape for a in precompile_cli.dummy_arguments(routine, "float64")]
    assert shapes == [(5, 2), (5, 2), (1,)]  # K points at least, so that K <= N


@pytest.mark.cpu
@needs_compiler
def test_precompile_from_arguments_builds_each_kernel(cache, capsys):
    # kernels loaded by earlier tests (another cache) would be reported "already cached"
    jit_load.forget_loaded()
    before = _libraries(cache)
    argv = [
        "precompile",
        "Exp(-SqDist(x,y) * 0.625)*b",
        "--aliases",
        "x=Vi(3)",
        "y=Vj(3)",
        "b=Vj(1)",
    ]
    argv += ["--reduction", "Sum", "--axis", "1", "--dtype", "float32", "float64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(": built ") == 2 and "[float32]" in out and "[float64]" in out
    assert "2 of 2 kernels ready" in out
    built = _libraries(cache) - before
    assert len(built) == 2
    assert all(name[:16] in out for name in built)
    # Later calls with other sizes load these kernels: nothing new is compiled.
    jit_load.forget_loaded()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("already cached") == 2
    from lazykernels.numpy import Genred

    g = Genred("Exp(-SqDist(x,y) * 0.625)*b", ["x=Vi(3)", "y=Vj(3)", "b=Vj(1)"], axis=1)
    x, y, b = np.random.default_rng(0).random((3, 40, 3))
    g(x, y, b[:, :1], backend="CPU")
    assert _libraries(cache) - before == built


@pytest.mark.cpu
@needs_compiler
def test_precompile_from_a_file(cache, tmp_path, capsys):
    specs = [
        {
            "formula": "SqDist(x,y)",
            "aliases": ["x=Vi(3)", "y=Vj(3)"],
            "reduction_op": "ArgKMin",
            "axis": 1,
            "opt_arg": 10,
        },
        {"formula": "Foo(x)", "aliases": ["x=Vi(3)"]},  # fails; the others are still built
    ]
    path = _write(tmp_path, json.dumps(specs))
    before = _libraries(cache)
    assert main(["precompile", "--file", str(path)]) == 1
    captured = capsys.readouterr()
    assert "[1/2] ArgKMin(axis=1, K=10) of SqDist(x,y) [float32]:" in captured.out
    assert "1 of 2 kernels ready" in captured.out
    assert "unknown operation 'Foo'" in captured.err
    assert len(_libraries(cache) - before) == 1


def test_precompile_without_compiler(empty_cache, monkeypatch, capsys):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert main(["precompile", "SqDist(x,y)", "--aliases", "x=Vi(3)", "y=Vj(3)"]) == 1
    assert "backend 'CPU' is not available" in capsys.readouterr().err


# ---- demo ------------------------------------------------------------------------------


def test_demo_checks_are_real():
    """The demo's error measure is 0 for the exact answer and large for a wrong one."""
    data = Data.random(300, seed=3)
    for task in ("sum", "grad", "knn"):
        assert relative_error(task, numpy_run(task, data), data) < 1e-5
    wrong = numpy_run("sum", data) * 1.01
    assert relative_error("sum", wrong, data) == pytest.approx(0.01, rel=1e-3)
    shuffled = numpy_run("knn", data)[::-1]
    assert relative_error("knn", shuffled, data) > 1.0


def _run_demo(tmp_path: Path, capsys, *extra: str) -> tuple[int, str, Path]:
    png = tmp_path / "tmp.png"
    status = main(["demo", "--max-n", "2000", "--out", str(png), *extra])
    return status, capsys.readouterr().out, png


def _check_demo_output(out: str, png: Path) -> None:
    assert "all results agree with float64 NumPy within tolerance" in out
    rows = [line for line in out.splitlines() if line.startswith(tuple(TASK_TITLES.values()))]
    assert len(rows) == 3  # one row per task, N = 1,000 only
    assert all(row[22:].split()[0] == "1,000" for row in rows)
    for row in rows:
        assert float(row.split()[-1]) < 1e-2  # lazykernels's relative error
    pytest.importorskip("matplotlib")
    assert f"plot saved to {png.resolve()}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_on_the_reference_backend(tmp_path, empty_cache, capsys):
    status, out, png = _run_demo(tmp_path, capsys, "--backend", "reference")
    assert status == 0, out
    assert "lazykernels backend: reference" in out
    _check_demo_output(out, png)


@pytest.mark.cpu
@needs_compiler
def test_demo_on_the_compiled_backend(tmp_path, cache, capsys):
    status, out, png = _run_demo(tmp_path, capsys)
    assert status == 0, out
    assert "lazykernels backend: CPU" in out
    _check_demo_output(out, png)


def test_demo_without_compiler_uses_the_reference_backend(
    tmp_path, empty_cache, monkeypatch, capsys
):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    status, out, png = _run_demo(tmp_path, capsys, "--memory-budget", "0.001", "--no-plot")
    assert status == 0, out
    assert "backend: the NumPy reference backend (CPU backend unavailable: no C++ compiler" in out
    assert "lazykernels backend: reference" in out
    dense_methods = 2 if importlib.util.find_spec("torch") else 1  # NumPy (+ PyTorch)
    assert out.count("out of memory") == 3 * dense_methods  # 3 tasks
    assert not png.exists()
    assert main(["demo", "--backend", "CPU", "--max-n", "100"]) == 1
    assert "backend 'CPU' is not available: no C++ compiler" in capsys.readouterr().err
