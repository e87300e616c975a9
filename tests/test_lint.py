"""The code, tests, benchmark scripts and tutorials are ruff clean (pyproject's rules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.subprocess
def test_ruff_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "scflow",
                          "tests", "benchmarks", "tutorials"], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
