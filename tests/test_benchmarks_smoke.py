"""The CPU benchmark suite (benchmarks/bench_cpu.py) runs end to end at tiny sizes.

No timing is asserted (the suite's PASS/FAIL column is about speed targets on a real run);
what is checked: the script exits cleanly, every case produced a row, the numbers in the
JSON are consistent with each other, every kernel result agreed with its dense NumPy
reference, the neighbour recall is exact, and the plot was written.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lazykernels import cpu

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
CASES = {
    "gauss E1 f32",
    "gauss E3 f32",
    "gauss E1 f64",
    "gauss E3 f64",
    "grad_x Grad formula",
    "softmin LogSumExp",
    "knn K=10 D=3",
    "knn K=10 D=50",
    "threads=1",
    "threads=2",
    "gauss tall-N",
    "gauss tall-M",
    "compile first call",
    "compile 2nd formula",
    "warm call numpy",
    "memory peak-inputs",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable,
        str(BENCH / "bench_cpu.py"),
        "--quick",
        "--sizes",
        "150",
        "400",
        "--repeats",
        "1",
        "--json",
        str(out / "r.json"),
        "--png",
        str(out / "r.png"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out / "r.json").read_text()), out / "r.png"


def test_every_case_has_a_row(quick_run):
    stdout, data, _ = quick_run
    names = {r["case"] for r in data["rows"]}
    assert names >= CASES
    assert data["machine"]["mode"] == "quick"
    gauss = [r for r in data["rows"] if r["case"] == "gauss E1 f32"]
    assert {(150, 150), (400, 400)} <= {(r["m"], r["n"]) for r in gauss}
    for name in CASES:
        assert name in stdout  # the printed table has the same rows
    assert "PASS" in stdout or "FAIL" in stdout


def test_numbers_are_consistent(quick_run):
    _, data, _ = quick_run
    for r in data["rows"]:
        if r["m"] and r["n"] and r["seconds"]:
            assert r["gpairs_per_s"] == pytest.approx(r["m"] * r["n"] / r["seconds"] / 1e9)
        if r["limit_seconds"] and r["seconds"]:
            assert r["x_limit"] == pytest.approx(r["limit_seconds"] / r["seconds"])
        if r["target"] and r["measured"] is not None and math.isfinite(r["measured"]):
            op, bound = r["target"].split()
            want = r["measured"] >= float(bound) if op == ">=" else r["measured"] <= float(bound)
            assert r["passed"] is want, r
    threads2 = next(r for r in data["rows"] if r["case"] == "threads=2")
    threads1 = next(r for r in data["rows"] if r["case"] == "threads=1")
    assert threads2["measured"] == pytest.approx(threads1["seconds"] / threads2["seconds"])


def test_results_were_right(quick_run):
    _, data, _ = quick_run
    checked = [r for r in data["rows"] if r["correct"] is not None]
    assert len(checked) >= 10
    assert all(r["correct"] for r in checked), [r["case"] for r in checked if not r["correct"]]
    for r in data["rows"]:
        if r["case"].startswith("knn"):
            assert r["extra"]["recall"] == 1.0
    memory = next(r for r in data["rows"] if r["case"] == "memory peak-inputs")
    assert memory["extra"]["inputs_mb"] == pytest.approx((4000 * 3 + 100 * 4 + 1) * 4 / 2**20)
    assert 0 < memory["measured"] < 2000


def test_plot_written(quick_run):
    pytest.importorskip("matplotlib")
    _, data, png = quick_run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000
    assert {"150", "400"} <= set(data["curves"]["ours E1 float32"])


def test_limit_output_parsing():
    sys.path.insert(0, str(BENCH))
    try:
        from bench_util import fmt_count, parse_limit_output
    finally:
        sys.path.remove(str(BENCH))
    line = "M=10000 N=10000 best=0.0760 s  1.32 Gpairs/s  checksum=1.289399e+07 threads=2"
    assert parse_limit_output(line, 10_000, 10_000) == 0.076
    # below 10 ms the 3-digit Gpairs/s figure is the more precise one
    line = "M=1000 N=1000 best=0.0005 s  1.85 Gpairs/s  checksum=1.2e+05 threads=2"
    assert parse_limit_output(line, 1000, 1000) == pytest.approx(1e6 / 1.85e9)
    assert parse_limit_output("garbage", 1, 1) is None
    assert [fmt_count(n) for n in (100, 1000, 100_000, 1500)] == ["100", "1e3", "1e5", "1500"]
