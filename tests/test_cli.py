"""The command line: ``scflow benchmark`` writes its table, JSON and figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scflow.cli import main


def test_benchmark_on_simulated_default(tmp_path, capsys):
    rc = main(["benchmark", "--dataset", "simulate", "--methods", "otcfm,static_ot",
               "--seeds", "0", "--n-steps", "60", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| otcfm |" in out and "| static_ot |" in out
    data = json.loads((tmp_path / "benchmark_simulate.json").read_text())
    rows = data["rows"]
    assert len(rows) == 2 * 3  # two methods x three interior timepoints x one seed
    assert {r["method"] for r in rows} == {"otcfm", "static_ot"}
    assert all(r["w1"] > 0 and r["floor"] > 0 for r in rows)
    assert data["config"]["n_dims"] == 5 and data["config"]["n_steps"] == 60
    md = (tmp_path / "benchmark_simulate.md").read_text()
    assert md.count("| otcfm |") == 3
    assert (tmp_path / "benchmark_simulate.png").stat().st_size > 1000


def test_unknown_dataset_and_method_fail_clearly(tmp_path):
    with pytest.raises(SystemExit, match="unknown --dataset"):
        main(["benchmark", "--dataset", "nope", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="methods must be among"):
        main(["benchmark", "--dataset", "simulate", "--methods", "magic", "--out",
              str(tmp_path)])


def test_python_dash_m_entry_point():
    res = subprocess.run([sys.executable, "-m", "scflow", "--help"], capture_output=True,
                         text=True, check=True)
    assert "benchmark" in res.stdout
