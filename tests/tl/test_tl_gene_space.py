"""Gene space and guard rails: velocity width and units, genes the PCA leaves out, clipped
expression, predictions in genes, results side by side, warnings that say what is wrong."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from _blobs import N_PER, snapshot

import scflow


def _hvg_only(fitted: ad.AnnData, n_out: int = 10) -> ad.AnnData:
    """``fitted`` as after ``sc.pp.pca`` on highly variable genes: the last ``n_out`` genes
    have zero loadings."""
    pcs = np.array(fitted.varm["PCs"])
    pcs[-n_out:] = 0.0
    fitted.varm["PCs"] = pcs
    return fitted


# ------------------------------------------------------------------------------ velocity

def test_velocity_is_as_wide_as_the_representation_for_cellrank(fitted):
    # CellRank's VelocityKernel(adata, attr="obsm", xkey="X_pca", vkey="velocity_scflow")
    # needs obsm[vkey] and obsm[xkey] of the same shape; the fit uses 3 of 5 PCs
    scflow.tl.velocity(fitted)
    v, x = fitted.obsm["velocity_scflow"], fitted.obsm["X_pca"]
    assert v.shape == x.shape == (fitted.n_obs, 5)
    assert (v[:, 3:] == 0).all() and (np.abs(v[:, :3]).sum(1) > 0).all()
    info = fitted.uns["velocity_scflow"]
    assert info["n_dims"] == 3 and info["use_rep"] == "X_pca" and info["units"] == "model"


def test_velocity_per_day_and_key_added_side_by_side(fitted):
    scflow.tl.velocity(fitted)
    scflow.tl.velocity(fitted, units="time", key_added="velocity_per_day")
    per_model = fitted.obsm["velocity_scflow"][:, :3].astype(np.float64)
    per_day = fitted.obsm["velocity_per_day"][:, :3].astype(np.float64)
    # days 0, 1, 2, 4 at model times 0, 1, 2, 3: d(model)/d(day) is 1 at days 0 and 1,
    # (3 - 1) / (4 - 1) = 2/3 at day 2 (central), (3 - 2) / (4 - 2) = 1/2 at day 4
    rate = fitted.obs["day"].map({0.0: 1.0, 1.0: 1.0, 2.0: 2 / 3, 4.0: 0.5}).to_numpy()
    np.testing.assert_allclose(per_day, per_model * rate[:, None], rtol=1e-5, atol=1e-6)
    assert fitted.uns["velocity_per_day"]["units"] == "time"
    # at a time between timepoints 2 and 4 (day 3): the segment's slope, 1/2
    scflow.tl.velocity(fitted, time=3.0, key_added="m")
    scflow.tl.velocity(fitted, time=3.0, units="time", key_added="d")
    np.testing.assert_allclose(fitted.obsm["d"], 0.5 * fitted.obsm["m"], rtol=1e-5, atol=1e-6)


def test_velocity_per_day_needs_numeric_time_and_writes_nothing(blobs):
    blobs.obs["stage"] = blobs.obs["label"].astype("category")
    scflow.tl.fit(blobs, "stage", use_rep="X_pca", n_dims=2, n_steps=10)
    before = snapshot(blobs)
    with pytest.raises(ValueError, match="units='time'"):
        scflow.tl.velocity(blobs, units="time")
    with pytest.raises(ValueError, match="units"):
        scflow.tl.velocity(blobs, units="days")
    with pytest.raises(ValueError, match="overwrite the fit"):
        scflow.tl.velocity(blobs, key_added="scflow")
    assert snapshot(blobs) == before


def test_velocity_genes_warns_and_flags_genes_left_out_of_the_pca(fitted):
    _hvg_only(fitted)
    with pytest.warns(UserWarning, match="10 of 40 genes have zero loadings"):
        scflow.tl.velocity(fitted, genes=True)
    flag = fitted.var["velocity_scflow_genes"].to_numpy()
    assert flag.dtype == bool and flag[:30].all() and not flag[30:].any()
    vg = fitted.layers["velocity_scflow"]
    assert (vg[:, 30:] == 0).all() and (np.abs(vg[:, :30]).sum(0) > 0).all()


# ------------------------------------------------------------------------- gene trends

def test_gene_trends_warns_on_genes_the_pca_does_not_carry(fitted):
    _hvg_only(fitted)
    with pytest.warns(UserWarning, match="zero loadings.*'g39'"):
        df = scflow.tl.gene_trends(fitted, ["g0", "g39"], n_steps=10, n_save=2)
    flat = df[df["gene"] == "g39"]["mean"].to_numpy()
    assert np.ptp(flat) == 0  # what the warning is about: a flat line
    assert np.ptp(df[df["gene"] == "g0"]["mean"].to_numpy()) > 0


def test_gene_trends_clip_and_flag_negative_expression(fitted):
    # make X non-negative expression whose low gene's PCA reconstruction dips below 0
    fitted.X = np.maximum(fitted.X, 0.0)
    fitted.uns["pca"]["mean"] = np.asarray(fitted.X.mean(0))
    gene = "g" + str(int(np.argmin(fitted.X.mean(0))))
    raw = scflow.tl.gene_trends(fitted, gene, n_steps=10, n_save=2, clip=False)
    assert (raw["frac_negative"] > 0).any() and (raw["mean"] - raw["std"] < 0).any()
    auto = scflow.tl.gene_trends(fitted, gene, n_steps=10, n_save=2, key_added="clipped")
    # X >= 0, so clip=None clips: each cell's value >= 0, the mean rises where cells dipped
    np.testing.assert_array_equal(auto["frac_negative"], raw["frac_negative"])
    assert (auto["mean"] >= raw["mean"] - 1e-9).all() and (auto["mean"] >= 0).all()
    dipped = raw["frac_negative"].to_numpy() > 0
    assert (auto["mean"].to_numpy()[dipped] > raw["mean"].to_numpy()[dipped]).all()
    # both results kept side by side under uns["scflow"]
    assert {"gene_trends", "clipped"} <= set(fitted.uns["scflow"])
    with pytest.raises(ValueError, match="clip"):
        scflow.tl.gene_trends(fitted, gene, clip="yes")
    with pytest.raises(ValueError, match="overwrite"):
        scflow.tl.gene_trends(fitted, gene, key_added="model")


# ---------------------------------------------------------------- trajectories, predict

def test_trajectories_key_added_keeps_two_results(fitted_sb):
    scflow.tl.trajectories(fitted_sb, key="sb", n_steps=10)
    scflow.tl.trajectories(fitted_sb, key="sb", n_steps=10, stochastic=True,
                           key_added="trajectories_sde")
    ode = fitted_sb.uns["sb"]["trajectories"]
    sde = fitted_sb.uns["sb"]["trajectories_sde"]
    assert ode["stochastic"] is False and sde["stochastic"] is True
    assert not np.allclose(ode["paths"][-1], sde["paths"][-1])
    with pytest.raises(ValueError, match="overwrite"):
        scflow.tl.trajectories(fitted_sb, key="sb", key_added="params")


def test_predict_in_gene_space(fitted):
    pred = scflow.tl.predict(fitted, 3.0, genes=True)
    assert list(pred.var_names) == list(fitted.var_names)
    pcs = fitted.varm["PCs"][:, :3]
    x = pred.obsm["X_pca"].astype(np.float64)
    recon = fitted.X.mean(0) + x @ pcs.T  # the mean PCA removed; X < 0 somewhere: no clip
    np.testing.assert_allclose(pred.X, recon, rtol=1e-4, atol=1e-4)
    assert pred.uns["scflow_predict"]["genes"] is True
    # close to the real expression between days 2 and 4, per gene
    real = fitted.X[fitted.obs["day"].isin([2.0, 4.0]).to_numpy()].mean(0)
    assert np.corrcoef(pred.X.mean(0), real)[0, 1] > 0.9
    # genes the PCA leaves out are not modelled: left out of the prediction
    _hvg_only(fitted)
    pred = scflow.tl.predict(fitted, 3.0, genes=True)
    assert list(pred.var_names) == list(fitted.var_names[:30])


def test_predict_genes_needs_pcs(fitted):
    del fitted.varm["PCs"]
    with pytest.raises(KeyError, match="PCs"):
        scflow.tl.predict(fitted, 3.0, genes=True)
    with pytest.raises(ValueError, match="genes"):
        scflow.tl.predict(fitted, 3.0, genes="all")


# ------------------------------------------------------------------------- guard rails

def test_missing_pca_says_run_sc_pp_pca(blobs):
    del blobs.obsm["X_pca"]
    with pytest.raises(KeyError, match=r"sc\.pp\.pca"):
        scflow.tl.fit(blobs, n_steps=5)


def test_fit_on_many_raw_genes_warns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * N_PER, 120)).astype(np.float32)
    adata = ad.AnnData(x, obs=pd.DataFrame({"day": np.repeat([0.0, 1.0], N_PER)},
                                           index=[f"c{i}" for i in range(2 * N_PER)]))
    with pytest.warns(UserWarning, match="120 genes.*sc.pp.pca"):
        scflow.tl.fit(adata, use_rep="X", n_steps=2, hidden=(8,))
