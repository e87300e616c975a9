"""tl.fit(method="auto"): chooses by leave-one-out on the kept timepoints, stores the inner
scores it chose by, never reads the held-out timepoint, refuses bad candidates up front."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from _blobs import snapshot

import scflow

GOOD = {"method": "otcfm", "n_steps": 150, "hidden": (32, 32)}
BAD = {"method": "icfm", "n_steps": 1, "lr": 1e-6, "hidden": (32, 32)}  # untrained


def test_auto_picks_the_trained_candidate_and_stores_why(blobs, tmp_path):
    out = scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, method="auto",
                        candidates=[BAD, GOOD], copy=True)
    rec = out.uns["scflow"]
    sel = rec["selection"]
    assert sel["chosen"] == "otcfm(hidden=(32, 32), n_steps=150)" and sel["method"] == "otcfm"
    assert sel["fallback"] is False and sel["reason"] == ""
    assert list(sel["inner_holdouts"]) == ["1", "2"]  # the interior timepoints, in turn
    w = dict(zip(sel["summary"]["candidate"], sel["summary"]["w1_mean"], strict=True))
    assert w[sel["chosen"]] < 0.7 * w["icfm(hidden=(32, 32), lr=1e-06, n_steps=1)"]
    assert len(sel["scores"]["w1"]) == 2 * 2  # two candidates x two inner hold-outs
    # the fit is the chosen candidate, with its own settings
    p = rec["params"]
    assert (p["method"], p["n_steps"]) == ("otcfm", 150)
    np.testing.assert_array_equal(p["hidden"], [32, 32])
    path = tmp_path / "auto.h5ad"
    out.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns["scflow"]["selection"]["chosen"] == sel["chosen"]


@pytest.mark.parametrize("whiten", [False, True])
def test_auto_never_reads_the_held_out_timepoint(blobs, whiten):
    """The day-2 cells replaced by far-away noise change neither the choice, nor a single
    inner score, nor the scaler, nor the model fitted (whitened: the scaler is fitted on
    the kept cells only)."""
    kw = dict(use_rep="X_pca", n_dims=3, method="auto", whiten=whiten, holdout=2.0,
              candidates=[{"method": "otcfm", "n_steps": 20, "hidden": (16,)},
                          {"method": "mmfm", "n_steps": 20, "hidden": (16,)}], copy=True)
    a = scflow.tl.fit(blobs, **kw).uns["scflow"]
    noised = blobs.copy()
    day2 = (noised.obs["day"] == 2.0).to_numpy()
    rng = np.random.default_rng(0)
    noised.obsm["X_pca"][day2] = rng.normal(50, 10, size=(day2.sum(), 5)).astype(np.float32)
    b = scflow.tl.fit(noised, **kw).uns["scflow"]
    assert list(a["selection"]["inner_holdouts"]) == ["1"]  # day 2 out: day 1 is inner
    assert a["selection"]["chosen"] == b["selection"]["chosen"]
    for key in ("w1", "w2", "floor"):
        np.testing.assert_array_equal(a["selection"]["scores"][key],
                                      b["selection"]["scores"][key])
    for key in ("mean", "scale"):
        np.testing.assert_array_equal(a["scaler"][key], b["scaler"][key])
    if whiten:  # fitted on the kept cells: not the statistics of all cells
        kept = blobs.obsm["X_pca"][~day2, :3].astype(np.float64)
        np.testing.assert_allclose(a["scaler"]["mean"], kept.mean(0), rtol=1e-12)
        np.testing.assert_allclose(a["scaler"]["scale"], kept.std(0), rtol=1e-12)
    wa, wb = a["model"]["weights"], b["model"]["weights"]
    assert set(wa) == set(wb)
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name])


def test_auto_with_too_few_kept_timepoints_falls_back_and_records_it(blobs):
    three = blobs[blobs.obs["day"] < 4].copy()
    with pytest.warns(UserWarning, match="fell back to otcfm"):
        out = scflow.tl.fit(three, use_rep="X_pca", n_dims=3, method="auto", holdout=1.0,
                            candidates=[{"method": "otcfm", "n_steps": 5},
                                        {"method": "mmfm", "n_steps": 5}], copy=True)
    sel = out.uns["scflow"]["selection"]
    assert sel["fallback"] is True and "needs 3" in sel["reason"]
    assert "scores" not in sel and out.uns["scflow"]["params"]["method"] == "otcfm"


def test_auto_bad_candidates_refused_before_writing(blobs):
    before = snapshot(blobs)
    with pytest.raises(ValueError, match="must be methods that train a field"):
        scflow.tl.fit(blobs, use_rep="X_pca", method="auto", candidates=["static_ot"])
    with pytest.raises(ValueError, match="method='auto' only"):
        scflow.tl.fit(blobs, use_rep="X_pca", method="otcfm", candidates=["mmfm"])
    with pytest.raises(ValueError, match="settings must be among"):
        scflow.tl.fit(blobs, use_rep="X_pca", method="auto",
                      candidates=[{"method": "otcfm", "steps": 3}])
    assert snapshot(blobs) == before
