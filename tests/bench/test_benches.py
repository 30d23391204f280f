"""The benchmark scripts still start: each imports what it measures and parses its options.

The benchmarks themselves print numbers instead of asserting times (see the README); this only
catches a script that rotted while the code it measures moved on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

BENCHES = sorted(Path(__file__).resolve().parent.glob("*_bench.py"))


@pytest.mark.parametrize("script", BENCHES, ids=[p.stem for p in BENCHES])
def test_the_bench_starts_and_explains_its_options(script: Path) -> None:
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
