"""The fuzz corpus (corpus.py) as a test: a CI slice, and a long run behind an environment
variable.

- CI slice (default): ``CI_CASES`` cases over a small subset of the kernel pool, so that it
  compiles a bounded number of kernels.
- Long run: ``LAZYKERNELS_FUZZ_CASES=20000 pytest tests/fuzz -s`` runs that many cases over
  the whole pool (``LAZYKERNELS_FUZZ_FORMULAS`` formulas, default 12) and prints its counts.

Shrinking is off (each shrink step may compile); the failure message holds the whole case.
"""

from __future__ import annotations

import os
import random
import warnings
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from lazykernels import cpu

from . import corpus

pytestmark = [
    pytest.mark.cpu,
    pytest.mark.skipif(not cpu.available(), reason="no working C++ compiler"),
]

CI_CASES = 150
CI_KERNELS = 14

LONG = int(os.environ.get("LAZYKERNELS_FUZZ_CASES", "0") or 0)
POOL = corpus.kernel_pool(int(os.environ.get("LAZYKERNELS_FUZZ_FORMULAS", "12")))
if not LONG:
    POOL = random.Random(14).sample(POOL, CI_KERNELS)

COUNTS: Counter = Counter()


@settings(
    max_examples=LONG or CI_CASES,
    derandomize=not LONG,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(case=corpus.cases(POOL))
def test_fuzz_cases(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf in the reference
        corpus.run_case(case, COUNTS)
    COUNTS["cases"] += 1


def test_fuzz_counts():
    """Prints (-s) and checks the counts of the run above: every case ended in agreement."""
    if not COUNTS:
        pytest.skip("run with test_fuzz_cases")
    print(f"\nfuzz: {len(POOL)} kernels in the pool; counts:")
    for name, count in sorted(COUNTS.items()):
        print(f"  {name:<55} {count:>7}")
    assert COUNTS["foreign exception"] == 0
    assert COUNTS["ok"] > 0
    assert sum(v for k, v in COUNTS.items() if k != "cases") == COUNTS["cases"]
