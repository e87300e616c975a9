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


def test_append_adds_methods_to_the_table_already_written(tmp_path, capsys):
    base = ["benchmark", "--dataset", "simulate", "--seeds", "0", "--out", str(tmp_path)]
    main([*base, "--methods", "otcfm,static_ot", "--n-steps", "60"])
    first = json.loads((tmp_path / "benchmark_simulate.json").read_text())
    otcfm = [r for r in first["rows"] if r["method"] == "otcfm"]
    assert main([*base, "--methods", "static_ot,static_partial", "--append"]) == 0
    data = json.loads((tmp_path / "benchmark_simulate.json").read_text())
    methods = [r["method"] for r in data["rows"]]
    # otcfm kept as it was, static_ot replaced (not doubled), static_partial added
    assert methods.count("otcfm") == 3 and methods.count("static_ot") == 3
    assert methods.count("static_partial") == 3
    assert [r for r in data["rows"] if r["method"] == "otcfm"] == otcfm
    assert data["config"]["methods"] == ["otcfm", "static_ot", "static_partial"]
    assert len(data["config"]["command"]) == 2 and "--append" in data["config"]["command"][1]
    md = (tmp_path / "benchmark_simulate.md").read_text()
    assert md.count("| otcfm |") == 3 and md.count("| static_partial |") == 3
    assert "and then `scflow benchmark" in md
    # another set-up is refused before anything is written
    before = (tmp_path / "benchmark_simulate.json").read_bytes()
    with pytest.raises(SystemExit, match="other settings .*seeds"):
        main(["benchmark", "--dataset", "simulate", "--seeds", "0,1", "--out",
              str(tmp_path), "--methods", "static_ot", "--append"])
    with pytest.raises(ValueError, match="mass must hold one finite number > 0"):
        main([*base, "--methods", "static_partial", "--mass", "1,2", "--append"])
    assert (tmp_path / "benchmark_simulate.json").read_bytes() == before


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


def test_benchmark_on_a_published_file_prints_the_published_numbers(tmp_path, capsys):
    """EB's file format (TrajectoryNet's npz), written here; checked by its sha256."""
    import hashlib

    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 40)
    pcs = (rng.normal(size=(200, 100)) + labels[:, None] * 0.5).astype(np.float32)
    path = tmp_path / "eb_velocity_v5.npz"
    np.savez(path, pcs=pcs, sample_labels=labels)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rc = main(["benchmark", "--dataset", "eb", "--path", str(path), "--sha256", digest,
               "--n-dims", "5", "--methods", "static_ot", "--seeds", "0",
               "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "5 dims, whitened" in out
    assert "| otcfm | – | 0.790 |" in out and "| Metric FM (best known) | – | 0.713 |" in out
    data = json.loads((tmp_path / "benchmark_eb_5d.json").read_text())
    ours = np.mean([r["w1"] for r in data["rows"]])
    assert f"| static_ot | {ours:.3f} | – |" in out
    # above 5 dims the published protocol does not whiten
    main(["benchmark", "--dataset", "eb", "--path", str(path), "--sha256", digest,
          "--n-dims", "50", "--methods", "static_ot", "--seeds", "0", "--out", str(tmp_path)])
    assert "50 dims, raw units" in capsys.readouterr().out
    assert (tmp_path / "benchmark_eb_50d.md").is_file()
    with pytest.raises(SystemExit, match="needs --path"):
        main(["benchmark", "--dataset", "eb", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="sha256"):
        main(["benchmark", "--dataset", "eb", "--path", str(path), "--sha256", "0" * 64,
              "--methods", "static_ot", "--out", str(tmp_path)])


@pytest.mark.data
def test_rollout_protocol_prints_ours_beside_the_published_table(data_dir, tmp_path, capsys):
    rc = main(["benchmark", "--protocol", "rollout", "--dataset", "weinreb", "--methods",
               "otcfm", "--seeds", "0", "--n-steps", "50", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Roll-out from t0: weinreb" in out and "raw units" in out
    assert "| published Var-RUOT | 0.1200 | 0.1431 |" in out
    assert "| sampling floor |" in out
    data = json.loads((tmp_path / "rollout_weinreb.json").read_text())
    assert {r["time_index"] for r in data["rows"]} == {1, 2}
    assert all(r["protocol"] == "all" and r["w1"] > 0 for r in data["rows"])
    md = (tmp_path / "rollout_weinreb.md").read_text()
    assert md.startswith("## Roll-out from t0") and "scflow benchmark" in md
