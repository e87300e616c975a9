"""The error budget of the leave-one-out protocol: closed forms, the protocol's own rows,
bad input, and the timing finding on real Bargaje."""

from __future__ import annotations

import numpy as np
import pytest
from factories import translated

import scflow
from scflow.flow.timecourse import TimeCourse
from scflow.protocols import leave_one_out_tc
from scflow.protocols.error_budget import error_budget_tc


@pytest.fixture(scope="module")
def uneven_translates() -> TimeCourse:
    """One cloud translated along v: a third of the way at index 1, all of it at index 2."""
    base = np.random.default_rng(3).normal(size=(60, 3))
    return translated(base, [f * np.array([3.0, -1.5, 0.5]) for f in (0.0, 0.3, 1.0)])


def test_translates_closed_form(uneven_translates):
    """Translating a cloud by a moves it W1 = |a| exactly: every column has a closed form."""
    speed = float(np.linalg.norm([3.0, -1.5, 0.5]))
    row = error_budget_tc(uneven_translates, n_fractions=11).iloc[0]
    assert row["holdout_index"] == 1 and row["fraction"] == 0.5
    assert row["w1_prev"] == pytest.approx(0.3 * speed, rel=1e-5)
    assert row["w1_next"] == pytest.approx(0.7 * speed, rel=1e-5)
    assert row["static_ot"] == pytest.approx(0.2 * speed, rel=1e-5)  # midpoint: 0.5 - 0.3
    assert row["best_fraction"] == pytest.approx(0.3)
    assert row["timing_oracle"] == pytest.approx(0.0, abs=1e-5)
    assert row["centre_oracle"] == pytest.approx(0.0, abs=1e-5)
    assert row["floor"] > 0


def test_static_ot_and_floor_are_the_protocol_s(line_course_uneven):
    """The budget's static OT and floor are the rows leave_one_out_tc writes; the timing
    oracle never exceeds static OT (the protocol's fraction is searched)."""
    budget = error_budget_tc(line_course_uneven, n_fractions=4).set_index("holdout_index")
    df = leave_one_out_tc(line_course_uneven, ["static_ot"], seeds=[0]).set_index(
        "holdout_index")
    assert list(budget.index) == [1, 2, 3]
    np.testing.assert_allclose(budget["static_ot"], df["w1"], rtol=1e-9)
    np.testing.assert_allclose(budget["floor"], df["floor"], rtol=1e-9)
    assert (budget["timing_oracle"] <= budget["static_ot"] + 1e-12).all()
    # with 4 fractions (0, 1/3, 2/3, 1) the midpoint is searched too: it is in the grid
    assert set(budget["best_fraction"]) <= {0.0, 1 / 3, 0.5, 2 / 3, 1.0}
    one = error_budget_tc(line_course_uneven, [2])
    assert list(one["holdout_index"]) == [2]
    assert one["static_ot"].iloc[0] == pytest.approx(budget.loc[2, "static_ot"])


@pytest.fixture(scope="module")
def line_course_uneven() -> TimeCourse:
    """Blobs along a line whose steps grow, so index time misplaces every interior blob."""
    g = np.random.default_rng(5)
    centres = [0.0, 0.5, 2.0, 4.5, 8.0]
    x = np.concatenate([g.normal([c, 0.0], 0.3, size=(70, 2)) for c in centres])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(5), 70), whiten=False)


def test_uneven_steps_show_in_the_budget(line_course_uneven):
    """Each blob sits before the midpoint of its neighbours: the best fraction is below
    one half, and knowing it removes most of static OT's error."""
    budget = error_budget_tc(line_course_uneven)
    assert (budget["best_fraction"] < 0.5).all()
    assert (budget["w1_prev"] < budget["w1_next"]).all()
    assert (budget["timing_oracle"] < 0.5 * budget["static_ot"]).all()


@pytest.mark.parametrize("bad", [1, 0, True, 2.5, "21"])
def test_bad_n_fractions(uneven_translates, bad):
    with pytest.raises(ValueError, match="n_fractions"):
        error_budget_tc(uneven_translates, n_fractions=bad)


def test_bad_holdouts(uneven_translates):
    with pytest.raises(ValueError, match="holdouts must be interior"):
        error_budget_tc(uneven_translates, [0])
    two = TimeCourse.from_arrays(np.zeros((8, 2)) + np.arange(8)[:, None],
                                 np.repeat([0, 1], 4), whiten=False)
    with pytest.raises(ValueError, match="three timepoints"):
        error_budget_tc(two)


def test_bargaje_timing_oracle(data_dir):
    """Real Bargaje 4-D, whitened, index time. The protocol puts each held-out day halfway
    between its neighbours, but the populations do not move evenly: held-out day 3 is
    nearly day 4's population (W1 0.81, against 2.14 to day 2). Taking static OT at the
    fraction that fits each day (an oracle) lowers its mean W1 by more than 10%, more than
    any method chosen without the held-out cells gains over static OT."""
    adata = scflow.datasets.bargaje()
    tc = TimeCourse.from_arrays(adata.obsm["X_emb"], adata.obs["day"], whiten=True)
    budget = error_budget_tc(tc).set_index("holdout_index")
    print(budget.round(3).to_string())
    assert budget.loc[3, "w1_next"] < 0.5 * budget.loc[3, "w1_prev"]
    assert budget.loc[3, "best_fraction"] >= 0.8
    assert budget["timing_oracle"].mean() < 0.9 * budget["static_ot"].mean()
    assert (budget["centre_oracle"] < budget["static_ot"]).all()
