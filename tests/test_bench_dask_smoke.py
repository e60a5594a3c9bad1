"""The dask benchmark (benchmarks/bench_dask.py) runs end to end at tiny sizes.

No timing is asserted: the script exits cleanly, writes a row per case, and every
distributed result agreed with the single-process run (dask-ml is optional: its row is
either an agreement report or says why it was skipped).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lazykernels import cpu

pytest.importorskip("distributed")
pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dask.py"


def test_quick_run_writes_every_row_and_agrees(tmp_path):
    out = tmp_path / "dask.json"
    subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)], check=True, timeout=600
    )
    rows = {r["case"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {
        "gauss sum (i-sharded)",
        "gauss sum (ij, 4x4)",
        "knn K=10 (i-sharded)",
        "argmin (lazykernels)",
        "argmin (dask-ml)",
    }
    for name in set(rows) - {"argmin (dask-ml)"}:
        row = rows[name]
        assert row["agrees"] is True
        assert row["seconds_1_worker"] > 0 and row["seconds_2_workers"] > 0
    ml = rows["argmin (dask-ml)"]
    assert "skipped" in ml or ml["distances_close"]
