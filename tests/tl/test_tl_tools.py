"""tl.velocity, tl.trajectories, tl.predict: written fields, values, copy, bad input."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pytest
import torch
from _blobs import N_PER, snapshot

import scflow


def _manual_velocity(adata, t_model, x):
    rec = adata.uns["scflow"]
    mean, scale = rec["scaler"]["mean"], rec["scaler"]["scale"]
    model = scflow.load_model(adata)
    xm = torch.as_tensor((x - mean) / scale, dtype=torch.float32)
    with torch.no_grad():
        v = model.velocity(torch.as_tensor(t_model, dtype=torch.float32), xm).numpy()
    return v * scale


def test_velocity_values_in_representation_units(fitted):
    assert scflow.tl.velocity(fitted) is None
    full = fitted.obsm["velocity_scflow"]
    # as wide as X_pca (5 PCs), so CellRank's VelocityKernel(xkey="X_pca") works as written;
    # the 2 PCs past the fitted n_dims=3 are not modelled: 0
    assert full.shape == fitted.obsm["X_pca"].shape and full.dtype == np.float32
    assert (full[:, 3:] == 0).all() and (full[:, :3] != 0).any()
    v = full[:, :3]
    x = fitted.obsm["X_pca"][:, :3].astype(np.float64)
    t_model = fitted.obs["day"].map({0.0: 0.0, 1.0: 1.0, 2.0: 2.0, 4.0: 3.0}).to_numpy()
    np.testing.assert_allclose(v, _manual_velocity(fitted, t_model, x), rtol=1e-4, atol=1e-5)
    # the field points from each timepoint's cloud towards the next one's
    day = fitted.obs["day"].to_numpy()
    drift = x[day == 1.0].mean(0) - x[day == 0.0].mean(0)
    v0 = v[day == 0.0].mean(0)
    assert v0 @ drift / np.linalg.norm(v0) / np.linalg.norm(drift) > 0.8
    assert "velocity_scflow" not in fitted.layers


def test_velocity_at_one_time_and_in_genes(fitted):
    out = scflow.tl.velocity(fitted, time=1.5, genes=True, copy=True)
    assert "velocity_scflow" not in fitted.obsm  # original untouched
    x = fitted.obsm["X_pca"][:, :3].astype(np.float64)
    v = out.obsm["velocity_scflow"][:, :3]
    # day 1.5 is halfway between timepoints 1 and 2: model time 1.5
    np.testing.assert_allclose(v, _manual_velocity(fitted, np.full(len(x), 1.5), x),
                               rtol=1e-4, atol=1e-5)
    vg = out.layers["velocity_scflow"]
    assert vg.shape == (fitted.n_obs, fitted.n_vars)
    np.testing.assert_allclose(vg, v @ fitted.varm["PCs"][:, :3].T, rtol=1e-4, atol=1e-5)


def test_velocity_genes_needs_pcs_and_writes_nothing(fitted, blobs_sparse):
    del fitted.varm["PCs"]
    before = snapshot(fitted)
    with pytest.raises(KeyError, match="PCs"):
        scflow.tl.velocity(fitted, genes=True)
    assert snapshot(fitted) == before
    scflow.tl.fit(blobs_sparse, use_rep="X", n_dims=4, n_steps=10)
    with pytest.raises(KeyError, match="X_pca"):
        scflow.tl.velocity(blobs_sparse, genes=True)
    assert "velocity_scflow" not in blobs_sparse.obsm


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"key": "missing"}, KeyError, "tl.fit"),
    ({"time": "D9"}, ValueError, "time"),
    ({"time": float("nan")}, ValueError, "time"),
])
def test_velocity_rejects_bad_input(fitted, kwargs, exc, match):
    before = snapshot(fitted)
    with pytest.raises(exc, match=match):
        scflow.tl.velocity(fitted, **kwargs)
    assert snapshot(fitted) == before


def test_trajectories_fields_and_values(fitted):
    assert scflow.tl.trajectories(fitted, n_steps=40, n_save=8) is None
    tr = fitted.uns["scflow"]["trajectories"]
    day0 = (fitted.obs["day"] == 0.0).to_numpy()
    assert tr["paths"].shape == (9, N_PER, 3) and tr["paths"].dtype == np.float32
    np.testing.assert_allclose(tr["paths"][0], fitted.obsm["X_pca"][day0, :3], atol=1e-5)
    assert list(tr["cells"]) == list(fitted.obs_names[day0])
    np.testing.assert_allclose(tr["model_times"], np.linspace(0, 3, 9))
    np.testing.assert_allclose(tr["times"][[0, 4, 6, 8]], [0.0, 1.5, 2.5, 4.0])
    assert (tr["solver"], tr["stochastic"], tr["n_steps"]) == ("euler", False, 40)
    # the paths end near the last timepoint's cells, far from where they started
    last = fitted.obsm["X_pca"][(fitted.obs["day"] == 4.0).to_numpy(), :3]
    end_gap = np.linalg.norm(tr["paths"][-1].mean(0) - last.mean(0))
    start_gap = np.linalg.norm(tr["paths"][0].mean(0) - last.mean(0))
    assert end_gap < 0.2 * start_gap


def test_trajectories_chosen_cells_backwards_and_copy(fitted):
    cells = list(fitted.obs_names[[130, 131, 135]])  # day-2 cells
    out = scflow.tl.trajectories(fitted, cells=cells, start_time=2.0, end_time=0.0,
                                 solver="rk4", n_steps=20, copy=True)
    assert "trajectories" not in fitted.uns["scflow"]
    tr = out.uns["scflow"]["trajectories"]
    assert list(tr["cells"]) == cells and tr["paths"].shape == (21, 3, 3)
    assert tr["times"][0] == 2.0 and tr["times"][-1] == 0.0 and tr["solver"] == "rk4"
    mask = np.zeros(fitted.n_obs, bool)
    mask[[130, 131, 135]] = True
    scflow.tl.trajectories(fitted, cells=mask, start_time=2.0, end_time=0.0, solver="rk4",
                           n_steps=20)
    np.testing.assert_allclose(fitted.uns["scflow"]["trajectories"]["paths"], tr["paths"])


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"stochastic": True}, ValueError, "sbcfm"),
    ({"solver": "heun"}, ValueError, "solver"),
    ({"n_steps": 10, "n_save": 3}, ValueError, "n_save"),
    ({"start_time": 1.5}, ValueError, "start_time"),
    ({"start_time": 2.0, "end_time": 2.0}, ValueError, "end_time"),
    ({"cells": ["cell0", "nope"]}, KeyError, "cells"),
    ({"cells": np.ones(5, bool)}, ValueError, "cells"),
    ({"key": "nope"}, KeyError, "tl.fit"),
])
def test_trajectories_rejects_bad_input(fitted, kwargs, exc, match):
    before = snapshot(fitted)
    with pytest.raises(exc, match=match):
        scflow.tl.trajectories(fitted, **kwargs)
    assert snapshot(fitted) == before


def test_stochastic_trajectories_of_an_sbcfm_fit(fitted_sb):
    paths = []
    for seed in (0, 0, 1):
        scflow.tl.trajectories(fitted_sb, key="sb", stochastic=True, n_steps=20,
                               random_state=seed)
        paths.append(fitted_sb.uns["sb"]["trajectories"]["paths"])
    np.testing.assert_array_equal(paths[0], paths[1])
    assert np.abs(paths[0][-1] - paths[2][-1]).mean() > 1e-3
    assert fitted_sb.uns["sb"]["trajectories"]["stochastic"] is True
    with pytest.raises(ValueError, match="forward"):
        scflow.tl.trajectories(fitted_sb, key="sb", stochastic=True, start_time=2.0,
                               end_time=0.0)


def test_predict_observed_and_unobserved_times(fitted):
    pred = scflow.tl.predict(fitted, 2.0, from_time=1.0)
    day1 = (fitted.obs["day"] == 1.0).to_numpy()
    assert isinstance(pred, ad.AnnData) and pred.n_obs == day1.sum() and pred.n_vars == 3
    assert list(pred.obs["source_cell"]) == list(fitted.obs_names[day1])
    assert (pred.obs["day"] == 2.0).all()
    np.testing.assert_array_equal(pred.X, pred.obsm["X_pca"])
    info = pred.uns["scflow_predict"]
    assert (info["from_time"], info["model_time"], info["from_model_time"]) == (1.0, 2.0, 1.0)
    assert info["extrapolated"] is False and info["use_rep"] == "X_pca"
    real2 = fitted.obsm["X_pca"][(fitted.obs["day"] == 2.0).to_numpy(), :3]
    src = fitted.obsm["X_pca"][day1, :3]
    w_pred = scflow.metrics.wasserstein(pred.X, real2)
    assert w_pred < 0.6 * scflow.metrics.wasserstein(src, real2)
    # day 3 lies between timepoints 2 and 4: halfway in model time, pushed from day 2
    mid = scflow.tl.predict(fitted, 3.0)
    assert mid.uns["scflow_predict"]["model_time"] == 2.5
    assert mid.uns["scflow_predict"]["from_time"] == 2.0
    # an observed time defaults to its own cells, unchanged, and says they are not predicted
    with pytest.warns(UserWarning, match="real cells, not a prediction"):
        same = scflow.tl.predict(fitted, 1.0)
    assert same.uns["scflow_predict"]["observed"] is True
    assert mid.uns["scflow_predict"]["observed"] is False
    assert same.uns["scflow_predict"]["from_time"] == 1.0
    np.testing.assert_allclose(same.X, src, atol=1e-6)
    assert "scflow_predict" not in fitted.uns  # predict never writes to adata


def test_predict_extrapolates_with_a_warning(fitted, caplog):
    with caplog.at_level(logging.WARNING, logger="scflow"):
        pred = scflow.tl.predict(fitted, 6.0)
    assert pred.uns["scflow_predict"]["extrapolated"] is True
    assert pred.uns["scflow_predict"]["model_time"] == 4.0  # slope of the last interval
    assert "extrapolating" in caplog.text


@pytest.mark.parametrize(("time", "kwargs", "match"), [
    (-1.0, {}, "before the first"),
    ("D3", {}, r"time='D3' is neither a timepoint"),  # labels no cell ("D1" does: obs["label"])
    (2.0, {"from_time": 1.5}, "from_time"),
    (2.0, {"n_steps": 0}, "n_steps"),
    (2.0, {"n_steps": 10**9}, r"n_steps must be a positive integer of at most 1,000,000"),
    (1e3, {}, r"time=1000\.0 is too far outside the observed timepoints \(0 to 4\)"),
    (2.0, {"stochastic": True}, "sbcfm"),
])
def test_predict_rejects_bad_input(fitted, time, kwargs, match):
    with pytest.raises(ValueError, match=match):
        scflow.tl.predict(fitted, time, **kwargs)
