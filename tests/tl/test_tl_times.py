"""Timeline: user times and cells matched to timepoints, exactly enough for close timepoints."""

from __future__ import annotations

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
