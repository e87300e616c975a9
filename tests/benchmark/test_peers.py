"""The harness of ``benchmarks/peers.py`` without the peers installed: the kept-cell scaler,
the prediction caches, the paired scoring, the inner choice of moscot's epsilon and the
report re-scored from caches (tiny synthetic clouds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers_core as core  # noqa: E402
import peers_report  # noqa: E402


def _course(shift_holdout: float = 0.0):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(30, 2)) + [i, 2 * i] for i in range(4)])
    x[30:60] += shift_holdout  # timepoint 1
    return core.holdout_course(x, np.repeat([0.0, 0.5, 1.0, 3.0], 30), 1)


def test_holdout_course_fits_the_scaler_on_kept_cells_only():
    tc, moved = _course(), _course(shift_holdout=50.0)
    kept = np.concatenate([tc.xs[i].numpy() for i in (0, 2, 3)])
    np.testing.assert_allclose(kept.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(kept.std(0), 1.0, atol=1e-5)
    for i in (0, 2, 3):  # moving the held-out cells changes nothing that was fitted
        np.testing.assert_array_equal(tc.xs[i].numpy(), moved.xs[i].numpy())
    np.testing.assert_allclose(moved.xs[1].numpy() - tc.xs[1].numpy(),
                               np.broadcast_to(50.0 / tc.scale, (30, 2)), rtol=1e-4)
    np.testing.assert_array_equal(tc.times, [0, 1, 2, 3])  # index time
    assert core.digest(tc.xs[1]) != core.digest(moved.xs[1])


def test_cache_round_trip_keeps_other_rows_and_refuses_other_cells(tmp_path):
    a, b = np.ones((5, 2)), np.zeros((4, 2))
    core.save_rows("toy", 1, {"moscot_default": {0: (a, None), 1: (a + 1, None)}},
                   {"moscot_default": {"epsilon": 0.001}}, real_digest="d1", folder=tmp_path)
    core.save_rows("toy", 1, {"scflow_x": {0: (b, np.arange(4.0))}}, {"scflow_x": {}},
                   real_digest="d1", folder=tmp_path)
    clouds, facts = core.load_cache("toy", 1, tmp_path)
    assert set(clouds) == {"moscot_default", "scflow_x"}
    np.testing.assert_array_equal(clouds["moscot_default"][1][0], a + 1)
    assert clouds["moscot_default"][0][1] is None
    np.testing.assert_array_equal(clouds["scflow_x"][0][1], np.arange(4.0))
    assert facts["rows"]["moscot_default"]["epsilon"] == 0.001
    before = (tmp_path / "loo_toy_k1.npz").read_bytes()
    with pytest.raises(ValueError, match="real_digest"):
        core.save_rows("toy", 1, {"scflow_x": {0: (a, None)}}, {}, real_digest="other",
                       folder=tmp_path)
    assert (tmp_path / "loo_toy_k1.npz").read_bytes() == before  # nothing written
    with pytest.raises(ValueError, match="rows"):
        core.save_rows("toy", 1, {"a|b": {0: (a, None)}}, {}, real_digest="d1",
                       folder=tmp_path)


def test_score_rows_pairs_the_rows_on_shared_draws():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(60, 2))
    near = rng.normal(size=(50, 2))
    clouds = {"same_a": {0: (near, None)}, "same_b": {0: (near.copy(), None)},
              "far": {0: (near + 3.0, None), 1: (near + 3.5, None)}}
    out = core.score_rows(clouds, real, n_boot=30, pairs=[("same_a", "same_b"),
                                                           ("far", "same_a")])
    rows, diffs = out["rows"], out["diffs"]
    same = diffs["same_a - same_b"]
    assert same["diff"] == 0 and same["lo"] == pytest.approx(0) and same["hi"] == pytest.approx(0)
    assert not same["separated"]
    assert rows["far"]["seeds"] == 2
    assert rows["far"]["w1"] == pytest.approx(np.mean(rows["far"]["w1_seeds"]))
    assert rows["far"]["w1_seeds"][1] > rows["far"]["w1_seeds"][0]
    far = diffs["far - same_a"]
    assert far["separated"] and far["lo"] > 2.0
    assert core.verdict(far) == "second better" and core.verdict(same).startswith("no")
    for r in rows.values():
        assert r["lo"] <= r["w1"] <= r["hi"]


def test_choose_epsilon_reads_inner_scores_only_and_ties_go_to_the_default():
    grid = (1e-3, 1e-2, 5e-2)
    assert core.choose_epsilon({1e-3: [0.5, 0.7], 1e-2: [0.4, 0.6], 5e-2: [0.9]}, grid) == 1e-2
    assert core.choose_epsilon({1e-3: [0.5], 1e-2: [0.5], 5e-2: [0.6]}, grid) == 1e-3
    with pytest.raises(ValueError, match="scores"):
        core.choose_epsilon({1e-3: [0.5], 1e-2: []}, grid)
    assert core.inner_holdouts(5, 2) == [(0, 1, 3), (1, 3, 4)]
    assert core.inner_holdouts(3, 1) == []


def test_report_rescores_caches_and_names_missing_default_rows(tmp_path):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=(40, 2)) + [i, 0] for i in range(3)])
    labels = np.repeat([0.0, 1.0, 2.0], 40)

    def load_set(name, k):
        return core.holdout_course(x, labels, k)

    tc = load_set("toy", 1)
    mid = 0.5 * (tc.xs[0].numpy() + tc.xs[2].numpy())  # a fair guess of timepoint 1
    default = f"scflow_{core.scflow_default()}"
    rows = {"moscot_default": {s: (mid + 0.3 * s, None) for s in range(3)},
            "moscot_nested": {0: (mid, None)}, "scflow_static_ot": {0: (mid, None)}}
    facts = {"moscot_nested": {"epsilon": 0.05, "why": "inner", "converged": True}}
    core.save_rows("toy", 1, rows, facts, real_digest=core.digest(tc.xs[1]), folder=tmp_path)
    out = tmp_path / "out"
    entries = peers_report.write_loo_report(["toy"], load_set, n_boot={"toy": 20},
                                            command="cmd", folder=tmp_path, out=out)
    assert entries[0]["missing"] == [default]
    md = (out / "peers_loo.md").read_text()
    assert "missing" in md and "--scflow-only" in md and "0.05" in md
    saved = json.loads((out / "peers_loo.json").read_text())
    assert saved["entries"][0]["rows"]["moscot_default"]["seeds"] == 3
    core.save_rows("toy", 1, {default: {0: (mid, None)}}, {default: {}},
                   real_digest=core.digest(tc.xs[1]), folder=tmp_path)
    entries = peers_report.write_loo_report(["toy"], load_set, n_boot={"toy": 20},
                                            command="cmd", folder=tmp_path, out=out)
    d = entries[0]["diffs"][f"{default} - moscot_nested"]
    assert d["diff"] == 0 and not entries[0]["missing"]  # identical clouds: paired, 0
    assert entries[0]["diffs"][f"{default} - moscot_default"]["diff"] < 0
    moved = np.concatenate([x[:40], x[40:80] + 1.0, x[80:]])
    with pytest.raises(ValueError, match="other held-out cells"):
        peers_report.write_loo_report(["toy"], lambda n, k: core.holdout_course(moved, labels,
                                                                                 k),
                                      n_boot={}, command="cmd", folder=tmp_path, out=out)


def test_cost_table_gives_ratios_to_scflow_and_says_what_stopped_a_peer():
    import peers_stages

    rows = [{"tool": "scflow", "n": 10, "status": "ok", "cpu_seconds": 4.0, "seconds": 5.0,
             "peak_mb": 100.0, "fit_seconds": 4.0, "fate_seconds": 1.0, "wall": 6.0},
            {"tool": "moscot", "n": 10, "status": "ok", "cpu_seconds": 10.0, "seconds": 12.0,
             "peak_mb": 300.0, "solve_seconds": 9.0, "converged": False, "wall": 13.0},
            {"tool": "cellrank", "n": 10, "status": "stopped after the 60 CPU-s budget",
             "wall": 70.0}]
    md = peers_stages.cost_markdown(rows, 60, "cmd")
    moscot = next(line for line in md.splitlines() if "| moscot |" in line)
    assert "| 2.50 | 3.00 |" in moscot and "converged False" in moscot
    stopped = next(line for line in md.splitlines() if "| cellrank |" in line)
    assert "60 CPU-s budget" in stopped and stopped.count("–") >= 4


def test_interpolation_batch_keeps_moscots_default_until_the_kernel_does_not_fit():
    from peers_moscot import MOSCOT_INTERPOLATION_BATCH, interpolation_batch

    assert interpolation_batch(500, 800) == MOSCOT_INTERPOLATION_BATCH  # 0.4 GB at 256
    b = interpolation_batch(1429, 5788)  # mouse 2-D: 8.5 GB at 256
    assert 1 <= b < MOSCOT_INTERPOLATION_BATCH
    assert 4 * 1429 * 5788 * b <= 2**30 < 4 * 1429 * 5788 * (b + 1)
    assert interpolation_batch(40000, 40000) == 2  # never below two columns
    with pytest.raises(ValueError, match="n0 and n1"):
        interpolation_batch(0, 10)


def _fate_files(tmp_path):
    import peers_fates

    rng = np.random.default_rng(3)
    n = 400
    cells = np.array([f"c{i}" for i in range(n)])
    truth = rng.uniform(size=n)
    held = rng.uniform(size=n) < 0.6
    near = truth + rng.normal(scale=0.1, size=n)
    far = truth + rng.normal(scale=0.6, size=n)
    fa = peers_fates.save_predictions(tmp_path / "a.npz", cells, held, truth,
                                      {"near|s0": near, "near|s1": near + 0.01,
                                       "far": far})
    order = rng.permutation(n)  # the other file lists the same cells in another order
    fb = peers_fates.save_predictions(tmp_path / "b.npz", cells[order], held[order],
                                      truth[order], {"peer": near[order], "bad": far[order]})
    return fa, fb, (cells, truth, held, near)


def test_pair_files_pairs_predictions_of_the_same_cells(tmp_path):
    import peers_fates

    fa, fb, (cells, truth, held, near) = _fate_files(tmp_path)
    same = peers_fates.pair_files(fa, "near|s0", fb, "peer", n_boot=200)
    assert same["diff"] == pytest.approx(0, abs=1e-12)  # the same values, reordered
    assert same["lo"] == pytest.approx(0, abs=1e-12) and not same["separated"]
    assert same["n_cells"] == int(held.sum())
    r = np.corrcoef(near[held], truth[held])[0, 1]
    assert same["r_a"] == pytest.approx(r) and same["r_a_lo"] < r < same["r_a_hi"]
    better = peers_fates.pair_files(fa, ["near|s0", "near|s1"], fb, "bad", n_boot=200)
    assert better["separated"] and better["lo"] > 0.1
    # paired: the difference's interval is narrower than the two rows' intervals side by side
    assert better["hi"] - better["lo"] < (better["r_a_hi"] - better["r_a_lo"]) + (
        better["r_b_hi"] - better["r_b_lo"])
    worse = peers_fates.pair_files(fa, "far", fb, "peer", n_boot=200)
    assert worse["hi"] < 0


def test_pair_files_refuses_other_cells_truth_or_names(tmp_path):
    import peers_fates

    fa, _, (cells, truth, held, near) = _fate_files(tmp_path)
    other = peers_fates.save_predictions(tmp_path / "c.npz", cells, held, truth + 1.0,
                                         {"peer": near})
    with pytest.raises(ValueError, match="truth"):
        peers_fates.pair_files(fa, "near|s0", other, "peer")
    fewer = peers_fates.save_predictions(tmp_path / "d.npz", cells[:-1], held[:-1],
                                         truth[:-1], {"peer": near[:-1]})
    with pytest.raises(ValueError, match="cells"):
        peers_fates.pair_files(fa, "near|s0", fewer, "peer")
    with pytest.raises(KeyError, match="names_b"):
        peers_fates.pair_files(fa, "near|s0", fa, "nope")
    with pytest.raises(ValueError, match="one value per cell"):
        peers_fates.save_predictions(tmp_path / "e.npz", cells, held, truth, {"x": near[:3]})
    assert not (tmp_path / "e.npz").exists()
    np.savez(tmp_path / "f.npz", cells=cells)
    with pytest.raises(KeyError, match="heldout"):
        peers_fates.load_predictions(tmp_path / "f.npz")


def test_prediction_groups_one_entry_per_table_row():
    import peers_fates

    rows = [{"method": "default", "seed": 0, "prediction": "default|0"},
            {"method": "default", "seed": 1, "prediction": "default|1"},
            {"method": "pull", "seed": 0, "readout": "15", "prediction": "pull|15|0"},
            {"method": "null: no motion", "seed": -1, "prediction": "null"}]
    assert peers_fates.prediction_groups(rows) == {"default": ["default|0", "default|1"],
                                                   "pull (15)": ["pull|15|0"]}


def test_peer_rows_keep_moscots_row_when_cellrank_is_stopped():
    import peers_stages

    moscot = {"status": "ok", "tool": "moscot", "n": 5, "cpu_seconds": 7.0, "seconds": 9.0,
              "peak_mb": 50.0, "solve_seconds": 6.0, "converged": True}
    out = "noise\n" + json.dumps({"part": moscot}) + "\n{not json\n"
    partial = peers_stages._json_lines(out)
    assert partial == [{"part": moscot}]
    stopped = {"status": "stopped after the 60 CPU-s budget", "wall": 99.0, "partial": partial}
    m, c = peers_stages.peer_rows(stopped, 5)
    assert m["status"] == "ok" and m["cpu_seconds"] == 7.0 and m["wall"] == 9.0
    assert c["tool"] == "cellrank" and c["status"].startswith("stopped") and "partial" not in c
    early = peers_stages.peer_rows({"status": "out of memory", "wall": 3.0, "partial": []}, 5)
    assert [r["status"] for r in early] == ["out of memory"] * 2
    assert [r["tool"] for r in early] == ["moscot", "cellrank"]
    cr = {"kernel_seconds": 2.0, "fate_seconds": 1.0, "transition_nnz": 1234}
    ok = {"status": "ok", "tool": "cellrank", "n": 5, "cpu_seconds": 14.0, "seconds": 20.0,
          "peak_mb": 80.0, "moscot": moscot, "cellrank": cr, "wall": 21.0}
    m, c = peers_stages.peer_rows(ok, 5)
    assert m["cpu_seconds"] == 7.0 and c["cpu_seconds"] == 14.0
    scflow = {"tool": "scflow", "n": 5, "status": "ok", "cpu_seconds": 3.5, "seconds": 4.0,
              "peak_mb": 40.0, "fit_seconds": 3.0, "fate_seconds": 1.0, "wall": 5.0}
    md = peers_stages.cost_markdown([scflow, m, c], 60, "cmd")
    line = next(x for x in md.splitlines() if "| cellrank |" in x)
    assert "| 4.00 | 2.00 |" in line and "moscot part 7 CPU s" in line and "1,234" in line


def test_subsample_middle_keeps_the_first_and_last_day_and_n_of_each_day_between():
    import peers_larry

    days = np.repeat([2.0, 4.0, 5.0, 6.0], [50, 80, 30, 70])
    keep = peers_larry.subsample_middle(days, 40)
    assert keep[days == 2].all() and keep[days == 6].all()  # scored and labelled cells
    assert keep[days == 4].sum() == 40
    assert keep[days == 5].all()  # fewer than n: all kept
    np.testing.assert_array_equal(keep, peers_larry.subsample_middle(days, 40))  # seeded
    assert peers_larry.subsample_middle(days, None).all()
    with pytest.raises(ValueError, match="subsample"):
        peers_larry.subsample_middle(days, 0)


def test_larry_tries_of_another_setting_are_kept_as_earlier(tmp_path, monkeypatch):
    import peers_larry

    monkeypatch.setattr(core, "RESULTS", tmp_path)
    (tmp_path / "peers_larry.json").write_text(json.dumps({"tried": [
        {"epsilon": 0.05, "batch_size": 4096, "status": "stopped", "wall": 10.0},
        {"epsilon": 0.05, "batch_size": None, "subsample": 12000, "status": "ok",
         "wall": 5.0}]}))
    kept = peers_larry.earlier_tries({"epsilon": 0.05, "batch_size": None,
                                      "subsample": 12000})
    assert [t["batch_size"] for t in kept] == [4096] and kept[0]["earlier"]
    text = peers_larry._tries_text(kept)
    assert "all cells" in text and "an earlier run" in text


def test_predictions_of_cells_named_by_a_pandas_index_load_without_pickle(tmp_path):
    import pandas as pd
    import peers_fates

    cells = pd.Index(["c1", "c2", "c3"])  # object dtype, as LARRY's obs_names
    path = peers_fates.save_predictions(tmp_path / "p.npz", cells, [True, False, True],
                                        [0.1, 0.5, 0.9], {"moscot": np.array([0.2, 0.4, 0.8])})
    back = peers_fates.load_predictions(path)
    assert list(back["cells"]) == ["c1", "c2", "c3"]
    np.testing.assert_allclose(back["predictions"]["moscot"], [0.2, 0.4, 0.8], rtol=1e-6)


def test_reuse_solve_reads_the_earlier_run_or_names_what_is_missing(tmp_path, monkeypatch):
    import peers_larry

    monkeypatch.setattr(core, "CACHE", tmp_path)
    with pytest.raises(FileNotFoundError, match="reuse-solve"):
        peers_larry.reused_solve(0.05, None, 12000)
    problem, facts, npz = peers_larry._paths(0.05, None, 12000)
    problem.write_bytes(b"x")
    npz.write_bytes(b"x")
    facts.write_text(json.dumps({"solve_seconds": 10.0, "solve_cpu_seconds": 9.0,
                                 "all_converged": True}))
    res = peers_larry.reused_solve(0.05, None, 12000)
    assert res["status"].startswith("ok (") and res["wall"] == 10.0
    assert "solve 9 CPU s" in peers_larry._tries_text([{"epsilon": 0.05, **res}])


def test_cost_skips_a_peer_at_sizes_above_one_it_could_not_finish():
    import peers_stages

    rows = [{"tool": "moscot", "n": 1000, "status": "ok"},
            {"tool": "moscot", "n": 10000, "status": "stopped after the 1200 CPU-s budget"},
            {"tool": "scflow", "n": 10000, "status": "ok"}]
    assert peers_stages.stopped_below(rows, 40000) == 10000
    assert peers_stages.stopped_below(rows, 10000) is None  # only smaller sizes count
    assert peers_stages.stopped_below(rows[:1], 40000) is None


def test_cost_scflow_only_keeps_the_peers_rows_and_gives_no_ratio_across_runs(tmp_path,
                                                                               monkeypatch):
    import argparse

    import peers_core
    import peers_stages

    old = [{"tool": t, "n": 10, "status": "ok", "cpu_seconds": c, "seconds": c,
            "peak_mb": 100.0, "wall": c, **extra}
           for t, c, extra in (("scflow", 4.0, {"fit_seconds": 3.0, "fate_seconds": 1.0}),
                               ("moscot", 10.0, {"solve_seconds": 9.0, "converged": True}))]
    (tmp_path / "peers_cost.json").write_text(json.dumps({"rows": old}))
    monkeypatch.setattr(peers_core, "RESULTS", tmp_path)
    calls = []

    def child(argv, budget, cap=None):
        calls.append(argv)
        return {"status": "ok", "cpu_seconds": 8.0, "seconds": 8.0, "peak_mb": 100.0,
                "fit_seconds": 6.0, "fate_seconds": 2.0, "wall": 8.0}

    monkeypatch.setattr(peers_stages, "_child", child)
    monkeypatch.setattr(peers_stages.sys, "argv", ["peers.py", "cost", "--scflow-only"])
    args = argparse.Namespace(sizes="10", budget=60.0, batch_size=None, scflow_only=True)
    peers_stages.run_cost(args)
    assert [a[2] for a in calls] == ["scflow"]  # no peer child
    rows = json.loads((tmp_path / "peers_cost.json").read_text())["rows"]
    assert sorted(r["tool"] for r in rows) == ["moscot", "scflow"]
    assert next(r for r in rows if r["tool"] == "scflow")["cpu_seconds"] == 8.0
    md = (tmp_path / "peers_cost.md").read_text()
    moscot = next(line for line in md.splitlines() if "| moscot |" in line)
    assert "| 10 | 10 | 100 | – | – |" in moscot  # measured in another run: no ratio
