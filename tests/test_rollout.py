"""The roll-out protocol (Var-RUOT / CytoBridge): train on all, push t0 through every later
timepoint; and its hold-one-out variant, on synthetic data and on the real mouse 2-D file."""

from __future__ import annotations

import numpy as np
import pytest

import scflow
from scflow.metrics import wasserstein
from scflow.rollout import ROLLOUT_COLUMNS, roll_out, rollout_tc
from scflow.timecourse import TimeCourse


@pytest.fixture(scope="module")
def line_course() -> TimeCourse:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal([1.5 * k, 0.5 * k], 0.25, size=(90, 2)) for k in range(4)])
    return TimeCourse.from_arrays(x, np.repeat([0, 1, 2, 3], 90), whiten=False)


def test_roll_out_is_one_integration_never_restarted(line_course):
    model = scflow.fit_flow(line_course, "otcfm", n_steps=30, progress=False)
    steps = roll_out(model, line_course.xs[0], line_course.times, n_euler=20)
    assert len(steps) == 3
    direct = scflow.integrate(model, line_course.xs[0], 0.0, 3.0, n_steps=60)
    np.testing.assert_allclose(steps[-1].numpy(), direct.numpy(), atol=1e-5)


def test_train_on_all_scores_every_later_timepoint(line_course):
    df = rollout_tc(line_course, ["otcfm", "mmfm"], seeds=[0], n_steps=300, progress=False)
    assert list(df.columns) == ROLLOUT_COLUMNS
    assert len(df) == 2 * 3 and set(df["protocol"]) == {"all"}
    assert set(df["time_index"]) == {1, 2, 3} and (df["holdout_index"] == -1).all()
    for r in df.itertuples():  # far closer than the unmoved first timepoint
        stay = wasserstein(line_course.xs[0], line_course.xs[r.time_index])
        assert r.w1 < 0.25 * stay, r
        assert r.w2 >= r.w1 - 1e-6 and r.floor > 0


def test_hold_one_out_variant_includes_the_extrapolated_last_timepoint(line_course):
    df = rollout_tc(line_course, ["otcfm", "static_spline", "static_ot", "static_partial",
                                  "static_mean_spline"],
                    seeds=[0], holdouts=[2, 3], n_steps=300, progress=False)
    assert set(df["protocol"]) == {"holdout"}
    assert (df["holdout_index"] == df["time_index"]).all()
    # static OT has no right neighbour at the last timepoint: no row there
    assert set(df.loc[df.method == "static_ot", "time_index"]) == {2}
    assert set(df.loc[df.method == "static_partial", "time_index"]) == {2}
    assert set(df.loc[df.method == "static_mean_spline", "time_index"]) == {2}
    assert set(df.loc[df.method == "otcfm", "time_index"]) == {2, 3}
    for r in df.itertuples():
        stay = wasserstein(line_course.xs[0], line_course.xs[r.time_index])
        assert r.w1 < 0.3 * stay, r


def test_rollout_bad_arguments(line_course):
    with pytest.raises(ValueError, match="need holdouts"):
        rollout_tc(line_course, ["static_spline"], seeds=[0])
    with pytest.raises(ValueError, match="holdouts must be timepoint indices"):
        rollout_tc(line_course, ["otcfm"], seeds=[0], holdouts=[0])
    with pytest.raises(ValueError, match="methods must be among"):
        rollout_tc(line_course, ["magic"], seeds=[0])
    with pytest.raises(ValueError, match="mass must hold one finite number"):
        rollout_tc(line_course, ["static_partial"], seeds=[0], holdouts=[2], mass=[1, 2])


@pytest.mark.data
def test_rollout_on_mouse_2d_moves_day2_onto_days_4_and_6(mouse_quarter):
    """Raw units, index time; trained briefly, on a quarter of each day's cells. The
    baseline, measured here on the same cells: day-2 cells left where they are, and the
    sampling floor."""
    adata = mouse_quarter
    assert adata.obs["day"].value_counts().sort_index().tolist() == [358, 946, 1447]
    tc = TimeCourse.from_arrays(adata.obsm["X_emb"], adata.obs["day"], whiten=False)
    df = rollout_tc(tc, ["otcfm"], seeds=[0], n_steps=1000, progress=False)
    for r in df.itertuples():
        stay = wasserstein(tc.xs[0], tc.xs[r.time_index])
        print(f"mouse 2-D roll-out t{r.time_index}: otcfm {r.w1:.4f}, unmoved {stay:.4f}, "
              f"floor {r.floor:.4f}")
        assert r.w1 < 0.5 * stay
