"""The helpers of ``benchmarks/peer_torchcfm.py`` and ``benchmarks/speed_like_for_like.py``:
the validation split never touches the test timepoint, the scorers measure what they say,
older result rows get the EMA their recipe used, and TorchCFM's EMA leaves its training
unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from factories import translated

from scflow.flow.timecourse import TimeCourse

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peer_torchcfm  # noqa: E402
import speed_like_for_like as sl  # noqa: E402

V = torch.tensor([1.0, -2.0, 0.5])


@pytest.fixture(scope="module")
def translates() -> TimeCourse:
    """One cloud moving at constant velocity V per unit of index time, five timepoints."""
    base = np.random.default_rng(0).normal(size=(40, 3))
    return translated(base, [i * V.numpy() for i in range(5)])


def test_split_keeps_test_and_separates_validation(translates):
    train, val = sl.split(translates, 2, 0.25)
    assert set(val) == {0, 1, 3, 4}
    assert torch.equal(train.xs[2], translates.xs[2])  # the test timepoint untouched
    for i, v in val.items():
        assert len(v) == 10 and len(train.xs[i]) == 30
        rows = {tuple(r) for r in torch.cat([train.xs[i], v]).tolist()}
        assert rows == {tuple(r) for r in translates.xs[i].tolist()}  # a partition
        assert not {tuple(r) for r in v.tolist()} & {tuple(r) for r in train.xs[i].tolist()}


def test_scorer_test_w1_is_exact_for_the_true_field(translates):
    _, val = sl.split(translates, 2, 0.25)
    scorer = sl._Scorer(translates, 2, val)
    true = scorer.test(lambda t, x: V.expand_as(x))
    still = scorer.test(lambda t, x: torch.zeros_like(x))
    assert true == pytest.approx(0.0, abs=1e-4)
    assert still == pytest.approx(float(V.norm()), rel=1e-4)  # one unit of time unmoved
    assert scorer.pairs == [(0, 1), (1, 3), (3, 4)]  # the test timepoint is bridged


def test_reach_is_the_first_crossing():
    curve = [{"step": 1, "v": 0.5}, {"step": 2, "v": 0.3}, {"step": 3, "v": 0.2}]
    assert sl._reach(curve, "v", 0.3)["step"] == 2
    assert sl._reach(curve, "v", 0.1) is None


def test_fill_ema_gives_old_rows_their_recipe():
    df = pd.DataFrame({"library": ["torchcfm", "scflow", "scflow", "scflow"],
                       "method": ["otcfm", "otcfm", "static_ot", "icfm"],
                       "ema": [np.nan, np.nan, np.nan, 0.0]})
    assert peer_torchcfm._fill_ema(df)["ema"].tolist() == [0.0, 0.999, 0.0, 0.0]
    assert peer_torchcfm._fill_ema(df.drop(columns="ema"))["ema"].tolist() == [
        0.0, 0.999, 0.0, 0.999]


def test_ema_table_pairs_on_holdout_and_seed():
    rows = [("torchcfm", 0.0, 1, 0, 0.50), ("torchcfm", 0.999, 1, 0, 0.40),
            ("torchcfm", 0.0, 1, 1, 0.70),  # no EMA partner: left out
            ("torchcfm", 0.0, 2, 0, 0.30), ("torchcfm", 0.999, 2, 0, 0.36)]
    df = pd.DataFrame(rows, columns=["library", "ema", "holdout_index", "seed", "w1"]).assign(
        dataset="d", method="otcfm")
    line = peer_torchcfm.ema_table(df).splitlines()[-1]
    assert "| 0.400 | 0.380 | -0.020 (-0.100, +0.060) | 2 |" in line


def test_torchcfm_ema_leaves_training_unchanged(translates):
    pytest.importorskip("torchcfm")
    args = (translates, "otcfm", 2, 0, 30, 16, 0.1)
    raw, smooth = peer_torchcfm.torchcfm_train_ema(*args, ema=0.999)
    plain = peer_torchcfm.torchcfm_train(*args)
    for a, b, c in zip(raw.parameters(), plain.parameters(), smooth.parameters(), strict=True):
        assert torch.equal(a, b)  # the average never feeds back
        assert not torch.equal(a, c)


def test_merged_runs_listed_once():
    a, b = {"datasets": "emt", "seeds": "0"}, {"datasets": "emt", "seeds": "1,2"}
    assert peer_torchcfm._unique([a, b, dict(a), b]) == [a, b]


def test_goals_reports_plain_auto_and_optimistic_best(tmp_path, monkeypatch):
    nested = [{"dataset": "toy", "n_steps": 1000, "seeds": [0],
               "rows": [{"method": "auto", "w1": 0.4}, {"method": "auto", "w1": 0.6},
                        {"method": "static_ot", "w1": 9.0}]}]
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "nested_selection.json").write_text(json.dumps(nested))
    monkeypatch.setattr(peer_torchcfm, "HERE", tmp_path)
    rows = [("torchcfm", "otcfm", 0.0, 1.0), ("scflow", "otcfm", 0.999, 0.9),
            ("scflow", "mmfm", 0.999, 0.7), ("scflow", "static_ot", 0.0, 0.8)]
    df = pd.DataFrame([{"dataset": "toy", "library": lib, "method": m, "ema": e, "w1": w,
                        "floor": 0.1, "holdout_index": 1, "seed": 0}
                       for lib, m, e, w in rows])
    text = peer_torchcfm.goals(df)
    assert "optimistic" in text
    line = [ln for ln in text.splitlines() if ln.startswith("| toy | 0.900")][0].split(" | ")
    # plain otcfm, TorchCFM, static OT, nested auto (mean of the two auto rows), best
    assert line[1:5] == ["0.900", "1.000", "0.800", "0.500 (1000 steps, 1 seed)"]
    assert line[5] == "neural: mmfm 0.700"


def test_nested_table_says_which_candidates_each_set_had():
    import nested_selection as ns

    def rec(name, candidates):
        rows = [{"method": m, "seed": 0, "holdout_index": 1, "holdout": 1.0, "floor": 0.1,
                 "chosen": "otcfm" if m != "static_ot" else None, "fallback": False,
                 "w1": w, "w1_lo": w - 0.01, "w1_hi": w + 0.01}
                for m, w in (("auto", 0.5), ("fit_auto", 0.6), ("static_ot", 0.7))]
        return {"dataset": name, "candidates": candidates, "seeds": [0], "n_steps": 3000,
                "n_boot": 10, "seconds": 60.0, "rows": rows}

    from scflow.protocols.selection import ALL_CANDIDATES

    full = [ns.candidate_label(c) for c in ALL_CANDIDATES]
    reduced = [c for c in full if c != "sbcfm"]
    text = ns.markdown([rec("emt", full), rec("bargaje", reduced)])
    assert "(emt)" in text and "(bargaje)" in text and "`sbcfm` left out" in text
    same = ns.markdown([rec("emt", full), rec("bargaje", full)])
    assert "left out" not in same and "(emt)" not in same
    assert "| emt | 0.500 | 0.600 | 0.700 | 1/1 | 1/1 | 3000 | 10 | 1 |" in same


def test_nested_verdict_without_intervals_says_so():
    import nested_selection as ns

    def row(w1, lo=float("nan"), hi=float("nan")):
        return pd.Series({"w1": w1, "w1_lo": lo, "w1_hi": hi})

    assert ns._verdict(row(0.5), row(0.6)) == "below, no interval"
    assert ns._verdict(row(0.7), row(0.6)) == "not below, no interval"
    assert ns._verdict(row(0.5, 0.45, 0.55), row(0.7, 0.6, 0.8)) == "below, intervals apart"
    assert ns._verdict(row(0.5, 0.4, 0.65), row(0.7, 0.6, 0.8)) == "intervals overlap"


def test_nested_parts_of_one_set_merge_and_others_replace():
    import nested_selection as ns

    def rec(holdouts, n_steps=3000, w1=0.5):
        rows = [{"method": "auto", "holdout_index": k, "w1": w1} for k in holdouts]
        inner = [{"outer_holdout_index": k, "w1": w1} for k in holdouts]
        return {"dataset": "bargaje", "candidates": ["otcfm"], "seeds": [0],
                "n_steps": n_steps, "n_boot": 100, "n_cells": [5, 5, 5], "seconds": 10.0,
                "seconds_fit_auto": 1.0, "holdouts": holdouts, "rows": rows, "inner": inner}

    other = {"dataset": "emt", "rows": []}
    merged = ns.merge_record([other, rec([1, 2])], rec([3]))
    assert [r["dataset"] for r in merged] == ["emt", "bargaje"]
    part = merged[1]
    assert part["holdouts"] == [1, 2, 3]
    assert [r["holdout_index"] for r in part["rows"]] == [1, 2, 3]
    assert len(part["inner"]) == 3 and part["seconds"] == 20.0
    assert part["seconds_fit_auto"] == 2.0
    # the same held-out timepoint again, other settings, or an old record: replaced
    for new in (rec([2], w1=0.9), rec([3], n_steps=1000)):
        again = ns.merge_record([rec([1, 2])], new)
        assert again == [new]
    old = rec([1, 2])
    del old["holdouts"]
    assert ns.merge_record([old], rec([3])) == [rec([3])]
