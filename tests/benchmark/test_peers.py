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
