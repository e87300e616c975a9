"""Timeline: user times and cells matched to timepoints, exactly enough for close timepoints."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scflow
from scflow._adata.times import Timeline

FAST = dict(use_rep="X_pca", n_steps=5, batch_size=8, hidden=(8,))
HOUR = 3600.0
T0 = 1.7e9  # a Unix timestamp: hourly samples differ by ~2e-6 of their value


def _timeline(values) -> Timeline:
    values = np.asarray(values, dtype=np.float64)
    return Timeline(np.asarray([f"{v:.12g}" for v in values], dtype=object), values,
                    np.arange(len(values), dtype=np.float64), numeric=True)


def _course(times, n_per: int = 12) -> ad.AnnData:
    rng = np.random.default_rng(0)
    t = np.repeat(np.asarray(times, dtype=np.float64), n_per)
    k = np.repeat(np.arange(len(times)), n_per)
    adata = ad.AnnData(np.zeros((len(t), 2), dtype=np.float32),
                       obs=pd.DataFrame({"t": t}, index=[f"c{i}" for i in range(len(t))]))
    adata.obsm["X_pca"] = rng.normal(size=(len(t), 3)) + k[:, None]
    return adata


@pytest.mark.parametrize("values", [
    [T0, T0 + HOUR, T0 + 2 * HOUR],
    [100000.0, 100001.0, 100002.0, 100003.0],
])
def test_close_timepoints_are_told_apart(values):
    tl = _timeline(values)
    for k, v in enumerate(values):
        assert tl.index_of(v) == k
    col = pd.Series(np.repeat(values, [5, 6, 7, 8][: len(values)]))
    np.testing.assert_array_equal(np.bincount(tl.cell_index(col)), [5, 6, 7, 8][: len(values)])
    # halfway between two timepoints is no timepoint
    assert tl.index_of((values[0] + values[1]) / 2) is None


def test_a_float32_round_trip_still_matches():
    values = np.array([0.0, 1 / 3, 2 / 3, 10.1])
    tl = _timeline(values)
    stored = values.astype(np.float32).astype(np.float64)
    assert not np.array_equal(stored, values)
    np.testing.assert_array_equal(tl.cell_index(pd.Series(stored)), [0, 1, 2, 3])
    assert [tl.index_of(float(v)) for v in stored] == [0, 1, 2, 3]
    assert [tl.index_of(v) for v in (np.nan, np.inf, 0.5, 1e-6)] == [None] * 4


def test_predict_from_an_hourly_timestamp_pushes_its_cells():
    times = [T0, T0 + HOUR, T0 + 2 * HOUR]
    adata = _course(times)
    scflow.tl.fit(adata, "t", **FAST)
    np.testing.assert_array_equal(adata.uns["scflow"]["timepoints"]["values"], times)
    pred = scflow.tl.predict(adata, times[2], from_time=times[1], n_steps=2)
    at1 = (adata.obs["t"] == times[1]).to_numpy()
    assert list(pred.obs["source_cell"]) == list(adata.obs_names[at1])
    assert pred.uns["scflow_predict"]["from_time"] == times[1]


def test_holdout_of_close_timepoints_is_the_one_named():
    adata = _course([100000.0, 100001.0, 100002.0, 100003.0])
    for holdout, k in ((100001, 1), (100002, 2)):
        scflow.tl.fit(adata, "t", holdout=holdout, **FAST)
        params = adata.uns["scflow"]["params"]
        assert params["holdout_index"] == k
        assert params["holdout"] == str(holdout)


# ----- real time in any unit, and fits stored before it was rescaled -----
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("gap", [1e-9, 1.0, 1000.0, 86400.0, 1e9])
def test_real_time_trains_the_same_in_any_unit(gap):
    """Timepoints 1e-9 to 1e9 apart (and seconds, 86400 apart), offset by 5 gaps: model time
    is (value - origin) / mean gap, so the fit and its predictions are those of index time
    (to float rounding, the gaps being even), and steps stay bounded."""
    base = _course([0.0, 1.0, 2.0, 3.0])
    scflow.tl.fit(base, "t", key_added="index", **FAST)
    adata = _course(5 * gap + gap * np.arange(4.0))
    scflow.tl.fit(adata, "t", time_scale="real", key_added="real", **FAST)
    rec = adata.uns["real"]
    np.testing.assert_allclose(rec["timepoints"]["times"], [0, 1, 2, 3], rtol=1e-12,
                               atol=1e-12)
    assert rec["params"]["time_unit"] == pytest.approx(gap, rel=1e-12)
    assert rec["params"]["time_origin"] == pytest.approx(5 * gap, rel=1e-12)
    assert rec["model"]["meta"]["time_unit"] == rec["params"]["time_unit"]
    np.testing.assert_allclose(rec["loss"], base.uns["index"]["loss"], rtol=1e-5)
    times = adata.uns["real"]["timepoints"]["values"]
    pred = scflow.tl.predict(adata, times[2], key="real", from_time=times[1], n_steps=10)
    same = scflow.tl.predict(base, 2.0, key="index", from_time=1.0, n_steps=10)
    np.testing.assert_allclose(pred.obsm["X_pca"], same.obsm["X_pca"], rtol=1e-5, atol=1e-5)
    # halfway: the same model time, and the velocity per unit of obs time scaled back
    mid = scflow.tl.predict(adata, times[1] + gap / 2, key="real", from_time=times[1],
                            n_steps=10)
    assert mid.uns["scflow_predict"]["model_time"] == pytest.approx(1.5, rel=1e-9)
    scflow.tl.velocity(adata, key="real", units="time")
    scflow.tl.velocity(base, key="index", units="time")
    np.testing.assert_allclose(adata.obsm["velocity_real"] * gap,
                               base.obsm["velocity_index"], rtol=1e-4, atol=1e-5)


def test_real_time_of_uneven_gaps_keeps_their_ratios():
    adata = _course([10.0, 11.0, 13.0, 19.0])
    scflow.tl.fit(adata, "t", time_scale="real", **FAST)
    np.testing.assert_allclose(adata.uns["scflow"]["timepoints"]["times"], [0, 1 / 3, 1, 3])
    assert adata.uns["scflow"]["params"]["time_unit"] == 3.0


@pytest.mark.parametrize("key", ["real", "sb", "index"])
def test_fits_stored_before_the_rescaling_give_the_same_results(key):
    """Fits written by scflow before real time was rescaled (commit 4729227, model time
    value - first value; ``tests/data/make_fits_before_time_rescaling.py``) load from h5ad
    and predict what they predicted then."""
    adata = ad.read_h5ad(DATA / "fits_before_time_rescaling.h5ad")
    expected = adata.uns["expected"]
    assert "time_unit" not in adata.uns[key]["params"]
    pred = scflow.tl.predict(adata, 2.0, key=key, from_time=1.0, n_steps=20)
    np.testing.assert_allclose(pred.obsm["X_pca"], expected[f"{key}_predict"], rtol=1e-5,
                               atol=1e-6)
    scflow.tl.velocity(adata, key=key, units="time")
    np.testing.assert_allclose(adata.obsm[f"velocity_{key}"], expected[f"{key}_velocity"],
                               rtol=1e-5, atol=1e-6)
    if key == "sb":
        sde = scflow.tl.predict(adata, 2.0, key=key, from_time=1.0, n_steps=20,
                                stochastic=True, random_state=3)
        np.testing.assert_allclose(sde.obsm["X_pca"], expected["sb_sde"], rtol=1e-5,
                                   atol=1e-6)


# ----- times that share a label, near-equal values, the user's own labels -----
def test_times_equal_up_to_rounding_are_refused_by_name():
    """1 and 1 + 1e-13 would share the label "1": refused, naming time_key, before anything
    is written; 1 and 1 + 5e-12 are told apart (labels with the digits they need)."""
    adata = _course([0.0, 1.0, 1.0 + 1e-13])
    with pytest.raises(ValueError, match=r"time_key='t': time labels 1\.0 and 1\.0000000000001 "
                                         r"differ by 9\.99e-14.*too close to be told from "
                                         r"rounding, so they would share a label"):
        scflow.tl.fit(adata, "t", **FAST)
    assert "scflow" not in adata.uns
    adata = _course([0.0, 1.0, 1.0 + 4e-12])  # "%.12g" would write "1" twice
    scflow.tl.fit(adata, "t", **FAST)
    labels = list(adata.uns["scflow"]["timepoints"]["labels"])
    assert labels == ["0.0", "1.0", "1.000000000004"]
    assert scflow.tl.predict(adata, 1.0 + 4e-12, from_time=1.0, n_steps=2).n_obs == 12


def test_near_values_name_a_timepoint_where_one_must_be_named():
    """EMT-like days 0, 1/3, 1, 3: from_time=0.333 and "0.333" are day 1/3 (the one value
    that rounds to them), 0.3333333 too; an unobserved time stays a time (time=0.333 is
    interpolated, not moved to 1/3), and 0.33 among 0.331 / 0.333 is ambiguous."""
    adata = _course([0.0, 1 / 3, 1.0, 3.0])
    scflow.tl.fit(adata, "t", **FAST)
    at = (adata.obs["t"] == 1 / 3).to_numpy()
    for given in (0.333, "0.333", 0.33, 0.3333333):
        pred = scflow.tl.predict(adata, 1.0, from_time=given, n_steps=2)
        assert list(pred.obs["source_cell"]) == list(adata.obs_names[at])
        assert pred.uns["scflow_predict"]["from_time"] == 1 / 3
    assert scflow.tl.predict(adata, 1.0, from_time=0.3, n_steps=2).uns["scflow_predict"][
        "from_time"] == 1 / 3  # 1/3 is the one timepoint that rounds to 0.3
    with pytest.raises(ValueError, match=r"from_time=0\.35 is not an observed timepoint"):
        scflow.tl.predict(adata, 1.0, from_time=0.35)  # 1/3 rounds to 0.33, not 0.35
    mid = scflow.tl.predict(adata, 0.333, n_steps=2)  # a time, taken as given
    assert mid.uns["scflow_predict"]["observed"] is False
    assert mid.uns["scflow_predict"]["from_time"] == 0.0
    with pytest.raises(ValueError, match=r"from_time=8 is not an observed timepoint"):
        scflow.tl.predict(adata, 1.0, from_time=8)  # integers name themselves only
    close = _course([0.0, 0.331, 0.333, 1.0])
    scflow.tl.fit(close, "t", **FAST)
    with pytest.raises(ValueError, match=r"from_time=0\.33: 0\.33 is ambiguous: the "
                                         r"timepoints \[0\.331, 0\.333\] all round to it at 2 "
                                         r"decimals; give more digits"):
        scflow.tl.predict(close, 1.0, from_time=0.33)
    assert scflow.tl.predict(close, 1.0, from_time=0.3330, n_steps=2).uns[
        "scflow_predict"]["from_time"] == 0.333


def test_a_label_of_another_column_names_its_timepoint():
    """``obs["day"]`` in days (0, 1/3, 1) beside ``obs["label"]`` ("0h", "8h", "24h"), as
    EMT has: from_time="8h" is day 1/3; a column whose labels span timepoints (a cell type)
    names none, and two time columns that disagree are an error."""
    adata = _course([0.0, 1 / 3, 1.0])
    adata.obs["label"] = pd.Categorical(np.repeat(["0h", "8h", "24h"], 12))
    adata.obs["type"] = np.tile(["A", "B", "C"], 12)
    scflow.tl.fit(adata, "t", holdout="8h", **FAST)
    assert adata.uns["scflow"]["params"]["holdout_index"] == 1
    at = (adata.obs["t"] == 1 / 3).to_numpy()
    pred = scflow.tl.predict(adata, "24h", from_time="8h", n_steps=2)
    assert list(pred.obs["source_cell"]) == list(adata.obs_names[at])
    assert pred.uns["scflow_predict"]["model_time"] == 2.0
    with pytest.raises(ValueError, match=r"from_time='A' is not an observed timepoint"):
        scflow.tl.predict(adata, 1.0, from_time="A")
    adata.obs["shifted"] = np.repeat(["8h", "x", "y"], 12)  # "8h" at day 0 here
    with pytest.raises(ValueError, match=r"from_time='8h': the label '8h' names different "
                                         r"timepoints in adata.obs columns"):
        scflow.tl.predict(adata, 1.0, from_time="8h")


def test_fate_in_seconds_takes_the_steps_of_index_time(monkeypatch):
    """Days in seconds (86400 apart): the pushes of tl.fate take n_steps per unit of model time
    (the mean gap), 3 x 10 here, not 10 per second (8.64 M steps and a bad_alloc before)."""
    from scflow.tl import _fate_compute as _fate

    adata = _course(86400.0 * np.arange(4.0))
    adata.obs["lab"] = pd.Categorical(np.where(np.arange(adata.n_obs) % 2, "A", "B"))
    scflow.tl.fit(adata, "t", time_scale="real", **FAST)
    steps = []
    real_flow_fate = _fate.flow_fate

    def spy(*args, **kwargs):
        steps.append(kwargs["n_steps"])
        return real_flow_fate(*args, **kwargs)

    monkeypatch.setattr(_fate, "flow_fate", spy)
    scflow.tl.fate(adata, "lab", mode="ode", n_steps=10, n_neighbors=3)
    assert steps == [30, 20, 10]  # from days 0, 1, 2 to day 3


def test_predictions_far_from_zero_keep_their_precision():
    """Cells around 1e9 with a spread of 1 (float32 steps of 64 there): predictions and paths
    are stored in float64, so an observed timepoint comes back exactly."""
    adata = _course([0.0, 1.0, 2.0])
    adata.obsm["X_pca"] = adata.obsm["X_pca"] + 1e9
    scflow.tl.fit(adata, "t", **FAST)
    same = scflow.tl.predict(adata, 1.0)
    at = (adata.obs["t"] == 1.0).to_numpy()
    assert same.obsm["X_pca"].dtype == np.float64
    np.testing.assert_array_equal(same.obsm["X_pca"], adata.obsm["X_pca"][at])
    scflow.tl.trajectories(adata, n_steps=4)
    paths = adata.uns["scflow"]["trajectories"]["paths"]
    assert paths.dtype == np.float64
    np.testing.assert_allclose(paths[0], adata.obsm["X_pca"][(adata.obs["t"] == 0).to_numpy()],
                               rtol=0, atol=1e-5)
    pred = scflow.tl.predict(adata, 2.0, from_time=1.0, n_steps=4)
    # each cell its own value, not float32's grid of 64 (a few values for the 12 cells)
    assert len(np.unique(pred.obsm["X_pca"][:, 0])) == pred.n_obs
