"""The command line: ``scflow benchmark`` writes its table, JSON and figure."""

from __future__ import annotations

import json
import os
import re
import stat
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


def test_benchmark_table_shows_time_labels_and_names_the_split_half_w1(tmp_path, capsys,
                                                                       monkeypatch):
    """Held-out times as the data set's labels (its uns['scflow_dataset']), else 3
    significant digits; the W1 between two halves of the held-out cells is named for what
    it is; the Markdown is what render() makes again from the JSON."""
    import numpy as np

    import scflow
    from scflow.benchmark.report import SPLIT_HALF, render

    sim = scflow.datasets.simulate

    def labelled():
        a = sim()
        days = np.unique(a.obs["day"].to_numpy())
        a.uns["scflow_dataset"] = {"time_values": days,
                                   "time_labels": np.asarray([f"d{d:g}" for d in days])}
        return a

    monkeypatch.setattr(scflow.datasets, "simulate", labelled)
    assert main(["benchmark", "--dataset", "simulate", "--methods", "static_ot", "--seeds",
                 "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| static_ot | d1 |" in out and "| static_ot | d3 |" in out
    assert "| split-half W1 |" in out and "floor (W1)" not in out and SPLIT_HALF in out
    record = json.loads((tmp_path / "benchmark_simulate.json").read_text())
    md = (tmp_path / "benchmark_simulate.md").read_text()
    assert render(record) == md
    # without labels: three significant digits, as the plots
    from scflow.benchmark.report import held_label
    assert held_label(1 / 3) == "0.333" and held_label(1 / 3, {1 / 3: "8h"}) == "8h"


def test_quick_benchmark_is_a_first_look_with_the_full_tables_one_flag_away(tmp_path, capsys):
    """`make demo` runs --quick: one seed, 500 steps, otcfm beside static_ot, unless the
    command says otherwise; its tables are <stem>_quick, and it says how to get the full
    ones."""
    import argparse

    from scflow.cli import QUICK, _apply_quick

    ns = argparse.Namespace(quick=True, argv=["benchmark", "--quick"], seeds=[0, 1, 2],
                            n_steps=3000, methods=None, dataset="default")
    assert _apply_quick(ns) == "_quick"
    assert (ns.seeds, ns.n_steps, ns.methods) == ([0], 500, QUICK["methods"])
    ns = argparse.Namespace(quick=True, argv=["benchmark", "--quick", "--seeds", "1,2",
                                              "--methods=icfm"], seeds=[1, 2], n_steps=3000,
                            methods="icfm", dataset="default")
    _apply_quick(ns)
    assert (ns.seeds, ns.n_steps, ns.methods) == ([1, 2], 500, "icfm")
    full = argparse.Namespace(quick=False, argv=[], seeds=[0, 1, 2], n_steps=3000,
                              methods=None, dataset="default")
    assert _apply_quick(full) == "" and full.n_steps == 3000
    assert main(["benchmark", "--dataset", "simulate", "--quick", "--methods", "static_ot",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "benchmark_simulate_quick.json").read_text())
    assert data["config"]["seeds"] == [0] and data["config"]["n_steps"] == 500
    assert {r["method"] for r in data["rows"]} == {"static_ot"}
    assert "make demo FULL=1" in out and not (tmp_path / "benchmark_simulate.json").exists()
    # the Makefile's demo is the quick run, the full one a flag away
    from pathlib import Path
    make = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "scflow benchmark $(if $(FULL),,--quick) --out results" in make


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
    capsys.readouterr()
    assert main(["benchmark", "--dataset", "simulate", "--seeds", "0,1", "--out",
                 str(tmp_path), "--methods", "static_ot", "--append"]) == 2
    assert re.search("scflow: error: --append: .*other settings .*seeds",
                     capsys.readouterr().err)
    assert main([*base, "--methods", "static_partial", "--mass", "1,2", "--append"]) == 2
    assert "mass must hold one finite number > 0" in capsys.readouterr().err
    assert (tmp_path / "benchmark_simulate.json").read_bytes() == before


def test_unknown_dataset_and_method_fail_clearly(tmp_path, capsys):
    assert main(["benchmark", "--dataset", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scflow: error: unknown --dataset 'nope'")
    assert main(["benchmark", "--dataset", "simulate", "--methods", "magic", "--out",
                 str(tmp_path)]) == 2
    assert "scflow: error: methods must be among" in capsys.readouterr().err


def test_python_dash_m_entry_point(monkeypatch, capsys):
    """``python -m scflow --help``, in this process: runpy runs ``scflow/__main__.py`` as
    ``-m`` does (a real ``python -m scflow`` is started by test_checkpoint's kill-and-resume
    test and by test_distributed's ``torchrun -m scflow fit``)."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["scflow", "--help"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("scflow", run_name="__main__", alter_sys=True)
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: scflow") and "benchmark" in out and "fit" in out


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
    capsys.readouterr()
    assert main(["benchmark", "--dataset", "eb", "--out", str(tmp_path)]) == 2
    assert "scflow: error: --dataset eb needs --path" in capsys.readouterr().err
    assert main(["benchmark", "--dataset", "eb", "--path", str(path), "--sha256", "0" * 64,
                 "--methods", "static_ot", "--out", str(tmp_path)]) == 2
    assert "sha256" in capsys.readouterr().err


@pytest.mark.data
def test_rollout_protocol_prints_ours_beside_the_published_table(mouse_quarter, tmp_path,
                                                                capsys, monkeypatch):
    """On a quarter of the mouse cells (``datasets.weinreb`` stands in for the loader): the
    table's layout, not its numbers, is checked here."""
    import scflow

    monkeypatch.setattr(scflow.datasets, "weinreb", mouse_quarter.copy)
    rc = main(["benchmark", "--protocol", "rollout", "--dataset", "weinreb", "--methods",
               "otcfm", "--seeds", "0", "--n-steps", "50", "--out", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert ("Roll-out from t0, trained on all timepoints (scores fit to the training cells, "
            "not prediction): weinreb") in out and "raw units" in out
    assert "| published Var-RUOT | 0.1200 | 0.1431 |" in out
    # the no-network reference is in every roll-out table
    assert "| no network: chained OT plans from t0 | " in out
    assert "| split-half W1 of the real cells |" in out
    data = json.loads((tmp_path / "rollout_weinreb.json").read_text())
    assert {r["time_index"] for r in data["rows"]} == {1, 2}
    assert {r["method"] for r in data["rows"]} == {"otcfm", "static_chain"}
    assert all(r["protocol"] == "all" and r["w1"] > 0 for r in data["rows"])
    md = (tmp_path / "rollout_weinreb.md").read_text()
    assert md.startswith("## Roll-out from t0") and "scflow benchmark" in md


# ----- errors: one line, status 2, checked before any work -----
@pytest.fixture
def small_h5ad(tmp_path):
    import anndata as ad
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    day = np.repeat([0.0, 1.0, 2.0], 20)
    adata = ad.AnnData(np.zeros((len(day), 2), dtype=np.float32),
                       obs=pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(60)]))
    adata.obsm["X_pca"] = rng.normal(size=(len(day), 3)) + day[:, None]
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path


FIT = ["--n-steps", "5", "--batch-size", "8", "--hidden", "8", "--device", "cpu"]


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_bad_input_is_one_line_with_status_2(small_h5ad, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SCFLOW_DEBUG", raising=False)
    out = str(tmp_path / "out.h5ad")
    assert main(["fit", str(small_h5ad), "--time-key", "when", "--out", out, *FIT]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith("scflow: error: time_key='when' is not a column of adata.obs")
    assert main(["fit", str(tmp_path / "nope.h5ad"), "--out", out]) == 2
    assert _error_lines(capsys) == [f"scflow: error: input file "
                                    f"{str(tmp_path / 'nope.h5ad')!r} does not exist"]
    assert not (tmp_path / "out.h5ad").exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback(small_h5ad, tmp_path, capsys, monkeypatch, how):
    argv = ["fit", str(small_h5ad), "--time-key", "when", "--out", str(tmp_path / "o.h5ad")]
    if how == "flag":
        argv = ["--debug", *argv]
    else:
        monkeypatch.setenv("SCFLOW_DEBUG", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError" in err
    assert err.rstrip().splitlines()[-1].startswith("scflow: error: time_key='when'")


def test_bugs_still_raise(small_h5ad, tmp_path, monkeypatch):
    import scflow

    def bug(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(scflow.tl, "fit", bug)
    with pytest.raises(TypeError, match="a bug"):
        main(["fit", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), *FIT])


@pytest.mark.parametrize(("out", "match"), [
    ("", r"--out '.*' is a directory; expected the path of the output \.h5ad file"),
    ("missing/out.h5ad", r"--out '.*missing/out\.h5ad': its folder '.*missing' does not "
                         "exist"),
])
def test_fit_checks_out_before_loading_or_training(small_h5ad, tmp_path, capsys, monkeypatch,
                                                   out, match):
    import anndata as ad

    import scflow

    def never(*args, **kwargs):
        raise AssertionError("should fail before this")

    monkeypatch.setattr(scflow.tl, "fit", never)
    monkeypatch.setattr(ad, "read_h5ad", never)
    assert main(["fit", str(small_h5ad), "--out", str(tmp_path / out), *FIT]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("scflow: error: --out")
    assert re.search(match, lines[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_fit_refuses_a_read_only_out_folder(small_h5ad, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["fit", str(small_h5ad), "--out", str(folder / "o.h5ad"), *FIT]) == 2
    finally:
        folder.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err


def test_fit_output_takes_the_umask_mode(small_h5ad, tmp_path):
    old = os.umask(0o022)
    try:
        assert main(["fit", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), *FIT]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "o.h5ad").stat().st_mode) == 0o644


@pytest.mark.parametrize(("argv", "match"), [
    (["--out", "FILE"], r"--out '.*file\.txt' is a file; expected a folder"),
    (["--seeds", ""], r"--seeds must list at least one seed"),
    (["--methods", ","], r"--methods must name at least one method"),
])
def test_benchmark_checks_its_arguments_first(tmp_path, capsys, monkeypatch, argv, match):
    from scflow import cli

    def never(*args, **kwargs):
        raise AssertionError("should fail before this")

    monkeypatch.setattr(cli, "_load", never)
    (tmp_path / "file.txt").write_text("x")
    argv = [str(tmp_path / "file.txt") if a == "FILE" else a for a in argv]
    base = {"--out": str(tmp_path / "res"), "--seeds": "0", "--methods": "static_ot"}
    base.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    assert main(["benchmark", "--dataset", "simulate",
                 *[x for kv in base.items() for x in kv]]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and re.search(match, lines[0])


def test_fit_uotcfm_takes_its_growth_options_and_mass(small_h5ad, tmp_path):
    import anndata as ad

    out = tmp_path / "g.h5ad"
    assert main(["fit", str(small_h5ad), "--out", str(out), "--method", "uotcfm", "--reg-m",
                 "2", "--growth-weight", "0.5", "--mass", "1,2,4", *FIT]) == 0
    params = ad.read_h5ad(out).uns["scflow"]["params"]
    assert params["method"] == "uotcfm" and params["growth_from"] == "mass"
    assert (params["reg_m"], params["growth_weight"], params["reg"]) == (2.0, 0.5, 0.1)
    assert list(params["masses"]) == [0.25, 0.5, 1.0] and not params["growth_prior"]
    assert main(["fit", str(small_h5ad), "--out", str(out), "--mass", "none", *FIT]) == 2
    # a prior growth rate from an obs column
    adata = ad.read_h5ad(small_h5ad)
    adata.obs["gp"] = adata.obsm["X_pca"][:, 0]
    src = tmp_path / "with_prior.h5ad"
    adata.write_h5ad(src)
    assert main(["fit", str(src), "--out", str(out), "--method", "uotcfm", "--growth-prior",
                 "gp", *FIT]) == 0
    assert ad.read_h5ad(out).uns["scflow"]["params"]["growth_prior"]
    assert main(["fit", str(src), "--out", str(tmp_path / "x.h5ad"), "--method", "uotcfm",
                 "--growth-prior", "nope", *FIT]) == 2
    assert not (tmp_path / "x.h5ad").exists()


def test_fit_auto_chooses_and_stores_the_inner_scores(small_h5ad, tmp_path):
    import anndata as ad

    out = tmp_path / "auto.h5ad"
    assert main(["fit", str(small_h5ad), "--out", str(out), *FIT, "--method", "auto",
                 "--candidates", "otcfm,icfm"]) == 0
    sel = ad.read_h5ad(out).uns["scflow"]["selection"]
    assert list(sel["summary"]["candidate"]) == ["otcfm", "icfm"]
    assert sel["chosen"] in ("otcfm", "icfm") and list(sel["inner_holdouts"]) == ["1"]
    assert ad.read_h5ad(out).uns["scflow"]["params"]["method"] == sel["chosen"]
    assert main(["fit", str(small_h5ad), "--out", str(out), *FIT, "--method", "auto",
                 "--candidates", "static_ot"]) == 2


def test_benchmark_tables_show_bootstrap_intervals(tmp_path, capsys):
    assert main(["benchmark", "--dataset", "simulate", "--methods", "static_ot", "--seeds", "0",
                 "--n-boot", "10", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "benchmark_simulate.json").read_text())["rows"]
    assert all(r["w1_lo"] < r["w1_hi"] for r in rows)
    md = (tmp_path / "benchmark_simulate.md").read_text()
    r = rows[0]
    assert f"| {r['w1']:.3f} [{r['w1_lo']:.3f}, {r['w1_hi']:.3f}] |" in md
    assert main(["benchmark", "--dataset", "simulate", "--methods", "static_ot", "--n-boot",
                 "5", "--out", str(tmp_path)]) == 2
    assert "--n-boot must be 0 (no interval) or at least 10" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["junk", "truncated"])
def test_fit_on_a_file_that_is_not_h5ad_is_one_line(small_h5ad, tmp_path, capsys, content):
    bad = tmp_path / "bad.h5ad"
    data = small_h5ad.read_bytes()
    bad.write_bytes(b"not an hdf5 file\n" * 50 if content == "junk" else data[: len(data) // 2])
    assert main(["fit", str(bad), "--out", str(tmp_path / "o.h5ad"), *FIT]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"scflow: error: input file {str(bad)!r} cannot be read as an "
                               ".h5ad (AnnData) file")
    assert not (tmp_path / "o.h5ad").exists()


@pytest.mark.parametrize("command", ["fit", "benchmark"])
def test_a_bad_device_is_one_line(small_h5ad, tmp_path, capsys, command):
    argv = (["fit", str(small_h5ad), "--out", str(tmp_path / "o.h5ad"), *FIT] if command == "fit"
            else ["benchmark", "--dataset", "simulate", "--out", str(tmp_path / "res")])
    assert main([*argv, "--device", "nonsense"]) == 2
    assert _error_lines(capsys) == ["scflow: error: device must be 'auto', 'cpu', 'cuda', "
                                    "'cuda:N' or another torch device, got 'nonsense'"]


@pytest.mark.parametrize(("argv", "flags"), [
    (["--protocol", "rollout"], "--protocol"),
    (["--n-dims", "3", "--time-scale", "real"], "--n-dims, --time-scale"),
    (["--whiten", "no", "--mass", "1,2,3"], "--whiten, --mass"),
])
def test_larry_refuses_the_flags_it_does_not_use(tmp_path, capsys, monkeypatch, argv, flags):
    from scflow.benchmark import larry as fate_benchmark

    def never(*args, **kwargs):
        raise AssertionError("should fail before this")

    monkeypatch.setattr(fate_benchmark, "larry_fate", never)
    assert main(["benchmark", "--dataset", "larry", "--out", str(tmp_path / "res"),
                 *argv]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1
    assert f"does not use {flags}; drop them" in lines[0]
    assert not (tmp_path / "res").exists()


def test_larry_passes_the_training_flags_and_records_them(tmp_path, capsys, monkeypatch):
    import numpy as np
    import pandas as pd

    from scflow import TrainConfig
    from scflow.benchmark import larry as fate_benchmark

    seen = {}

    def fake(methods, seeds, **kwargs):
        seen.update(kwargs, methods=methods, seeds=seeds)
        key = fate_benchmark.prediction_name("default", 0, "auto")
        truth = np.linspace(0, 1, 20)
        df = pd.DataFrame([dict(method="default", seed=0, readout="auto", r=0.5, r_low=0.4,
                                r_high=0.6, n_cells=10, fit_method="otcfm",
                                fate_mode="transport", seconds=1.0, n_neighbors=15,
                                label_rule="x", prediction=key)])
        return df, {"cells": np.array([f"c{i}" for i in range(20)]),
                    "heldout": np.arange(20) < 10, "truth": truth,
                    "predictions": {key: truth[::-1].copy()}}

    monkeypatch.setattr(fate_benchmark, "larry_fate", fake)
    assert main(["benchmark", "--dataset", "larry", "--methods", "default", "--seeds", "0",
                 "--lr", "0.01", "--hidden", "3", "--batch-size", "7", "--n-steps", "50",
                 "--out", str(tmp_path)]) == 0
    config = seen["config"]
    assert isinstance(config, TrainConfig)
    assert (config.lr, config.hidden, config.batch_size, seen["n_steps"]) == (0.01, (3,), 7, 50)
    data = json.loads((tmp_path / "larry_fate.json").read_text())
    assert data["config"]["training"] == {"lr": 0.01, "hidden": [3], "batch_size": 7}
    md = (tmp_path / "larry_fate.md").read_text()
    assert "50 steps, batch_size=7, lr=0.01, hidden=[3])" in md


def test_larry_refuses_a_flag_that_changes_a_rows_own_setting(monkeypatch):
    from scflow import TrainConfig, datasets
    from scflow.benchmark import larry as fate_benchmark

    def never(*args, **kwargs):
        raise AssertionError("should fail before this")

    monkeypatch.setattr(datasets, "larry", never)
    with pytest.raises(ValueError, match=r"the 'sbcfm' row sets \['sigma'\] itself"):
        fate_benchmark.larry_fate(["default", "sbcfm"], [0], config=TrainConfig(sigma=0.3))
