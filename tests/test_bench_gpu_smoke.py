"""benchmarks/bench_gpu.py without a GPU: ``--dry`` compiles every case's kernel with NVRTC,
and a real run fails cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lazykernels.cuda import driver, nvrtc

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.nvrtc
@pytest.mark.skipif(not nvrtc.available(), reason="the cuda extra is not installed")
def test_dry_run_compiles_every_case(tmp_path):
    done = _run("--dry", "--quick", "--json", str(tmp_path / "dry.json"))
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "dry.json").read_text())["rows"]
    assert {r["case"] for r in rows} == {"gauss", "gauss_grad", "lse", "knn"}
    assert all(r["flops_per_pair"] > 0 for r in rows)
    for row in rows:  # D=50 (above the unrolling threshold) too: CUDA loops over it
        assert f"{row['scheme']} scheme" in row["status"], row
        assert "compiles for sm_90" in row["status"], row
    assert any(r["d"] == 50 and r["case"] == "knn" for r in rows)
    two = [r for r in rows if r["backend"] == "GPU_2D"]  # both passes compiled
    assert two and all(r["scheme"] == "2D" and " + " in r["status"] for r in two)


def test_a_real_run_without_a_gpu_fails_cleanly():
    if driver.unavailable_reason() is None:
        pytest.skip("a GPU is present")
    done = _run("--quick")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "bench_gpu: no GPU" in done.stdout and "nothing measured" in done.stdout
