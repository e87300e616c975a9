"""tl.leave_one_out on AnnData: held-out times given in obs units, the table it returns."""

from __future__ import annotations

import numpy as np
import pytest
from _blobs import snapshot

import scflow


def test_leave_one_out_table(blobs):
    before = snapshot(blobs)
    df = scflow.tl.leave_one_out(blobs, use_rep="X_pca", n_dims=3,
                                 methods=("otcfm", "static_ot"), seeds=(0, 1), n_steps=30,
                                 holdouts=[2.0])
    assert snapshot(blobs) == before  # adata is not modified
    assert sorted(df["method"]) == ["otcfm", "otcfm", "static_ot", "static_ot"]
    assert len(df) == 4 and set(df["holdout_index"]) == {2} and set(df["seed"]) == {0, 1}
    assert (df["w1"] > 0).all() and (df["floor"] > 0).all() and np.isfinite(df["mmd"]).all()
    static = df[df["method"] == "static_ot"]
    assert static["w1"].nunique() == 1  # deterministic: one plan, one row per seed


def test_leave_one_out_holdouts_by_label(blobs):
    df = scflow.tl.leave_one_out(blobs, "label", use_rep="X_pca", n_dims=3,
                                 methods=("static_ot",), seeds=(0,), holdouts=["D1", "D2"])
    assert list(df["holdout"]) == ["D1", "D2"] and list(df["holdout_index"]) == [1, 2]
    with pytest.raises(ValueError, match="holdouts"):
        scflow.tl.leave_one_out(blobs, "label", use_rep="X_pca", methods=("static_ot",),
                                holdouts=["D3"])


def test_error_budget_on_anndata(blobs):
    before = snapshot(blobs)
    df = scflow.tl.error_budget(blobs, "label", use_rep="X_pca", n_dims=3, n_fractions=5)
    assert snapshot(blobs) == before  # adata is not modified
    assert list(df["holdout"]) == ["D1", "D2"] and list(df["holdout_index"]) == [1, 2]
    assert (df["timing_oracle"] <= df["static_ot"] + 1e-12).all()
    assert (df["floor"] > 0).all() and (df["w1_prev"] > 0).all()
    loo = scflow.tl.leave_one_out(blobs, "label", use_rep="X_pca", n_dims=3,
                                  methods=("static_ot",), seeds=(0,))
    np.testing.assert_allclose(df["static_ot"], loo["w1"], rtol=1e-9)
    one = scflow.tl.error_budget(blobs, "label", use_rep="X_pca", n_dims=3, holdouts=["D2"])
    assert list(one["holdout_index"]) == [2]
    with pytest.raises(ValueError, match="holdouts"):
        scflow.tl.error_budget(blobs, "label", use_rep="X_pca", holdouts=["D3"])
    with pytest.raises(ValueError, match="n_fractions"):
        scflow.tl.error_budget(blobs, "label", use_rep="X_pca", n_fractions=1)
    with pytest.raises(TypeError, match="adata"):
        scflow.tl.error_budget(blobs.X, "label")


def test_leave_one_out_select_runs_the_nested_protocol(blobs):
    df = scflow.tl.leave_one_out(blobs, use_rep="X_pca", n_dims=3, methods=["static_ot"],
                                 seeds=[0], select=["static_ot", "static_mean_spline"])
    auto = df[df["method"] == "auto"]
    assert list(auto["holdout_index"]) == [1, 2] and not auto["fallback"].any()
    inner = df.attrs["selection"]
    for k in (1, 2):
        used = set(inner.loc[inner["outer_holdout_index"] == k, "holdout_index"])
        assert used and k not in used  # chosen on the other kept timepoints only
        chosen = auto.loc[auto["holdout_index"] == k, "chosen"].item()
        means = inner[inner["outer_holdout_index"] == k].groupby("candidate")["w1"].mean()
        # the lowest inner mean; equal means (two knots left: the spline through the means
        # is the chord) go to the first candidate
        best = means[means == means.min()].index
        assert chosen == ("static_ot" if "static_ot" in best else best[0])
        if chosen == "static_ot":  # the same prediction as the static_ot row
            assert auto.loc[auto["holdout_index"] == k, "w1"].item() == df.loc[
                (df["method"] == "static_ot") & (df["holdout_index"] == k), "w1"].item()
    with pytest.raises(ValueError, match="method must be among"):
        scflow.tl.leave_one_out(blobs, use_rep="X_pca", select=["nope"])
