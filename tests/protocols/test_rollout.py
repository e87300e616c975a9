"""The roll-out protocol (Var-RUOT / CytoBridge): train on all, push t0 through every later
timepoint; and its hold-one-out variant, on synthetic data and on the real mouse 2-D file."""

from __future__ import annotations

import numpy as np
import pytest
from factories import blobs

import scflow
from scflow.flow.timecourse import TimeCourse
from scflow.metrics import wasserstein
from scflow.protocols.rollout import ROLLOUT_COLUMNS, roll_out, rollout_tc


@pytest.fixture(scope="module")
def line_course() -> TimeCourse:
    return blobs([[1.5 * k, 0.5 * k] for k in range(4)], 90, scale=0.25, seed=2)


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


def test_chain_reference_row_and_intervals(line_course):
    from scflow.references.chain import static_chain_predict

    df = rollout_tc(line_course, ["static_chain"], seeds=[0, 1], n_boot=20)
    assert len(df) == 2 * 3 and set(df["protocol"]) == {"all"}
    for k in (1, 2, 3):
        rows = df[df["time_index"] == k]
        assert rows["w1"].nunique() == 1  # no network, no draws: the same for every seed
        expected = wasserstein(static_chain_predict(line_course, k), line_course.xs[k])
        assert rows["w1"].iloc[0] == pytest.approx(expected, rel=1e-9)
        assert (rows["w1_lo"] < rows["w1_hi"]).all() and rows["w1_lo"].ge(0).all()
    held = rollout_tc(line_course, ["static_chain"], seeds=[0], holdouts=[1, 2, 3])
    assert set(held["time_index"]) == {1, 2}  # no right neighbour at the last one
    assert held["w1_lo"].isna().all()  # no bootstrap asked
    # the table shows the interval and says what it is; without one, neither
    from scflow.benchmark.report import ROLLOUT_INTERVALS, rollout_markdown

    table = rollout_markdown(df, "line")
    row = [ln for ln in table.splitlines() if ln.startswith("| no network")][0]
    lo, hi = df.loc[df["time_index"] == 1, ["w1_lo", "w1_hi"]].mean()
    assert f"[{lo:.4f}, {hi:.4f}]" in row and ROLLOUT_INTERVALS in table
    plain = rollout_markdown(held, "line")
    assert "[" not in plain and ROLLOUT_INTERVALS not in plain


def test_hold_one_out_static_rows_restart_from_t0():
    """Unequal sizes: the cells carried from t0 to k - 1 are a draw of k - 1's cells, so
    static OT from them differs from static OT from the observed k - 1 cells, and by seed."""
    from scflow.protocols import leave_one_out_tc, static_pair_predict
    from scflow.references.chain import carry_first_cells

    rng = np.random.default_rng(5)
    sizes = (40, 70, 55, 60)
    x = np.concatenate([rng.normal([1.5 * k, 0.5 * k], 0.25, size=(n, 2))
                        for k, n in enumerate(sizes)])
    tc = TimeCourse.from_arrays(x, np.repeat([0, 1, 2, 3], sizes), whiten=False)
    df = rollout_tc(tc, ["static_ot", "static_partial"], seeds=[0, 1], holdouts=[2])
    ot_rows = df[df.method == "static_ot"].set_index("seed")["w1"]
    carried = carry_first_cells(tc, 1, holdout=2, random_state=1)
    assert len(carried) == 40
    xs = [carried if r == 1 else xk for r, xk in enumerate(tc.xs)]
    from_t0 = TimeCourse(xs, tc.times, tc.labels, tc.values, tc.mean, tc.scale)
    pts, w = static_pair_predict("static_ot", from_t0, 2)
    assert ot_rows[1] == pytest.approx(wasserstein(pts, tc.xs[2], a=w), rel=1e-9)
    assert ot_rows[0] != ot_rows[1]  # one draw per seed
    observed = leave_one_out_tc(tc, ["static_ot"], seeds=[0], holdouts=[2])["w1"].item()
    assert observed not in set(ot_rows)  # not restarted from the observed k - 1 cells
    # the partial plan keeps the populations' sizes (cell counts), not the carried count
    part = df[df.method == "static_partial"].set_index("seed")["w1"]
    pts, w = static_pair_predict("static_partial", from_t0, 2, [float(n) for n in sizes])
    assert part[1] == pytest.approx(wasserstein(pts, tc.xs[2], a=w), rel=1e-9)
