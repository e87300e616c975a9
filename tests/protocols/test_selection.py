"""Selection by leave-one-out on the kept timepoints: picks the right candidate, never reads
the held-out timepoint, falls back (and says so) when too few timepoints are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from factories import blobs

from scflow.flow.timecourse import TimeCourse
from scflow.protocols import leave_one_out_tc
from scflow.protocols.selection import candidate_label, nested_leave_one_out, select_method

FAST = {"n_steps": 15, "batch_size": 16, "hidden": (16, 16)}  # settings of a candidate
RUN = {"progress": False, "device": "cpu"}


def _parabola(n_timepoints: int = 6, n: int = 40, seed: int = 0) -> TimeCourse:
    """Blobs whose centres run along ``(t, t^2 / 2)``: the straight midpoint of the
    neighbours misses each interior blob by 1/2 in y, a spline through the means does not."""
    return blobs([[t, t * t / 2] for t in range(n_timepoints)], n, scale=0.15, seed=seed)


def _noised(tc: TimeCourse, k: int) -> TimeCourse:
    g = torch.Generator().manual_seed(9)
    xs = [30 + 5 * torch.randn(x.shape, generator=g, dtype=x.dtype) if r == k else x
          for r, x in enumerate(tc.xs)]
    return TimeCourse(xs, tc.times, tc.labels, tc.values, tc.mean, tc.scale)


def test_picks_the_candidate_that_is_right_and_reports_its_scores():
    tc = _parabola()
    cands = ["static_ot", "static_mean_spline", {"method": "otcfm", **FAST}]
    sel = select_method(tc, cands, **RUN)
    assert sel.method == "static_mean_spline" and sel.candidate == "static_mean_spline"
    assert not sel.fallback and sel.holdout is None
    s = sel.summary.set_index("candidate")
    assert s.loc["static_mean_spline", "chosen"] and s["chosen"].sum() == 1
    assert s.loc["static_mean_spline", "w1_mean"] < 0.5 * s.loc["static_ot", "w1_mean"]
    assert (s["n"] == 4).all()  # inner hold-outs 1..4, one seed
    assert set(sel.scores["holdout_index"]) == {1, 2, 3, 4}
    # the summary is the mean of the inner rows it lists
    means = sel.scores.groupby("candidate")["w1"].mean()
    np.testing.assert_allclose(s.loc[means.index, "w1_mean"], means)


def test_choice_follows_the_scores_when_the_straight_line_is_right():
    """On a straight course at constant speed the straight midpoint is at least as good,
    and a barely trained network is far worse: the first of the best is taken."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal([2.0 * t, 0.0], 0.15, size=(40, 2)) for t in range(5)])
    tc = TimeCourse.from_arrays(x, np.repeat(np.arange(5), 40), whiten=False)
    sel = select_method(tc, [{"method": "otcfm", **FAST}, "static_ot"], **RUN)
    assert sel.method == "static_ot"
    w = sel.summary.set_index("candidate")["w1_mean"]
    assert w["static_ot"] < w[candidate_label({"method": "otcfm", **FAST})]


@pytest.mark.parametrize("k", [2, 5])  # interior, and the last timepoint
def test_the_held_out_timepoint_never_enters_the_selection(k):
    tc = _parabola()
    cands = ["static_ot", "static_spline", "static_mean_spline", {"method": "otcfm", **FAST},
             {"method": "mmfm", **FAST}]
    a = select_method(tc, cands, holdout=k, **RUN)
    b = select_method(_noised(tc, k), cands, holdout=k, **RUN)
    assert a.candidate == b.candidate and a.holdout == k
    assert k not in set(a.scores["holdout_index"])
    cols = ["candidate", "holdout_index", "seed", "w1", "w2", "mmd", "floor"]
    pd.testing.assert_frame_equal(a.scores[cols], b.scores[cols], check_exact=True)
    # the same comparison sees the noise when the timepoint is not held out
    c = select_method(tc, cands[:3])
    d = select_method(_noised(tc, k), cands[:3])
    assert not np.array_equal(c.scores["w1"].to_numpy(), d.scores["w1"].to_numpy())


def test_too_few_kept_timepoints_fall_back_and_say_so():
    tc = _parabola(3)
    with pytest.warns(UserWarning, match="2 kept timepoints.*fell back to static_ot"):
        sel = select_method(tc, ["static_ot", "static_spline"], holdout=1)
    assert sel.fallback and sel.method == "static_ot" and "needs 3" in sel.reason
    assert sel.scores.empty and not sel.summary["chosen"].any()
    assert "w1" in sel.scores.columns  # empty, with its columns
    with pytest.warns(UserWarning, match="fell back"):
        rows, inner = nested_leave_one_out(tc, ["static_ot", "static_spline"], seeds=[0])
    assert rows["fallback"].all() and inner.empty and "outer_holdout_index" in inner.columns
    with pytest.warns(UserWarning, match="fell back to static_spline"):
        sel = select_method(tc, ["static_ot", "static_spline"], holdout=1,
                            fallback="static_spline")
    assert sel.method == "static_spline"
    sel = select_method(tc, ["static_ot", "static_spline"])  # all three kept: one inner
    assert not sel.fallback and set(sel.scores["holdout_index"]) == {1}


def test_nested_leave_one_out_chooses_without_the_outer_timepoint():
    tc = _parabola(5)
    cands = ["static_ot", "static_mean_spline"]
    rows, inner = nested_leave_one_out(tc, cands, seeds=[0, 1])
    assert set(rows["method"]) == {"auto"} and len(rows) == 3 * 2
    for k in (1, 2, 3):
        used = set(inner.loc[inner["outer_holdout_index"] == k, "holdout_index"])
        assert k not in used and used  # chosen on other timepoints only
        chosen = rows.loc[rows["holdout_index"] == k, "chosen"].unique()
        assert len(chosen) == 1
        direct = leave_one_out_tc(tc, [chosen[0]], seeds=[0], holdouts=[k])
        assert rows.loc[rows["holdout_index"] == k, "w1"].iloc[0] == direct["w1"].iloc[0]
    assert (rows["chosen"] == "static_mean_spline").sum() >= 4
    assert not rows["fallback"].any()


def test_bad_input_names_the_argument():
    tc = _parabola(4)
    with pytest.raises(ValueError, match="candidates must list at least one"):
        select_method(tc, [])
    with pytest.raises(ValueError, match="method must be among"):
        select_method(tc, ["static_ot", "nope"])
    with pytest.raises(ValueError, match=r"settings must be among .*\['width'\]"):
        select_method(tc, [{"method": "otcfm", "width": 3}])
    with pytest.raises(ValueError, match="candidates must differ"):
        select_method(tc, ["static_ot", {"method": "static_ot"}])
    with pytest.raises(ValueError, match="holdout must be a timepoint index"):
        select_method(tc, ["static_ot"], holdout=4)
    with pytest.raises(ValueError, match="seeds must list at least one"):
        select_method(tc, ["static_ot"], seeds=[])
    with pytest.raises(ValueError, match="holdouts must be interior"):
        nested_leave_one_out(tc, ["static_ot"], holdouts=[0])


def test_equal_inner_scores_up_to_rounding_go_to_the_earlier_candidate():
    """Three kept timepoints: the inner fit sees two, where the spline through the means is
    the chord: static_mean_spline scores as static_ot (to the last bits) and the earlier
    candidate is taken, in either order."""
    tc = _parabola(4)
    a = select_method(tc, ["static_ot", "static_mean_spline"], holdout=1)
    b = select_method(tc, ["static_mean_spline", "static_ot"], holdout=1)
    w = a.summary["w1_mean"].to_numpy()
    assert w[0] == pytest.approx(w[1], rel=1e-12)
    assert a.candidate == "static_ot" and b.candidate == "static_mean_spline"


def test_first_best_ignores_rounding():
    from scflow.protocols.selection import first_best

    assert first_best([2.440, 2.440 - 4e-16, 3.0]) == 0  # argmin would take the second
    assert first_best([2.25098122438, 2.25098118363]) == 0  # float32 rounding (EMT 10-D)
    assert first_best([2.5, 2.44, 2.44 + 1e-15]) == 1
    assert first_best([1.0, 0.9]) == 1


def test_candidates_share_their_plans():
    """otcfm and static_ot need the same exact plans: with one cache the second solves none,
    and the scores are those of separate runs."""
    from scflow.couplings import PlanCache

    tc = _parabola(5)
    one = PlanCache()
    select_method(tc, [{"method": "otcfm", **FAST}], plan_cache=one, **RUN)
    both = PlanCache()
    sel = select_method(tc, [{"method": "otcfm", **FAST}, "static_ot"], plan_cache=both, **RUN)
    assert one.solved > 0 and both.solved == one.solved and both.reused > one.reused
    alone = select_method(tc, ["static_ot"], **RUN).summary.set_index("candidate")
    shared = sel.summary.set_index("candidate")
    assert shared.loc["static_ot", "w1_mean"] == alone.loc["static_ot", "w1_mean"]


def test_a_candidate_that_diverges_is_skipped_and_reported():
    """A candidate whose inner fits diverge (lr 1e9) is left out of the choice and named; the
    others are chosen among as before. If every candidate diverges, the error says so."""
    import warnings

    from scflow import TrainingDivergedError

    tc = _parabola()
    wild = {"method": "otcfm", **FAST, "lr": 1e9}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sel = select_method(tc, [wild, "static_ot"], **RUN)
    label = candidate_label(wild)
    assert sel.method == "static_ot" and list(sel.skipped) == [label]
    assert "training diverged" in sel.skipped[label]
    assert any(f"candidate {label} skipped" in str(w.message) for w in caught)
    s = sel.summary.set_index("candidate")
    assert np.isnan(s.loc[label, "w1_mean"]) and s.loc[label, "n"] == 0
    assert set(sel.scores["candidate"]) == {"static_ot"}
    with pytest.raises(TrainingDivergedError, match="every candidate's inner fit diverged"):
        select_method(tc, [wild], **RUN)
