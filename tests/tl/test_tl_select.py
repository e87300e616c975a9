"""tl.fit(method="auto"): chooses by leave-one-out on the kept timepoints, stores the inner
scores it chose by, never reads the held-out timepoint, refuses bad candidates up front."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
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
    summary, scores = sel["summary"], sel["scores"]
    assert isinstance(summary, pd.DataFrame) and isinstance(scores, pd.DataFrame)
    w = summary.set_index("candidate")["w1_mean"]
    assert w[sel["chosen"]] < 0.7 * w["icfm(hidden=(32, 32), lr=1e-06, n_steps=1)"]
    assert summary.loc[summary["chosen"], "candidate"].tolist() == [sel["chosen"]]
    assert len(scores) == 2 * 2  # two candidates x two inner hold-outs
    np.testing.assert_allclose(scores.groupby("candidate")["w1"].mean()[w.index], w)
    # the fit is the chosen candidate, with its own settings
    p = rec["params"]
    assert (p["method"], p["n_steps"]) == ("otcfm", 150)
    np.testing.assert_array_equal(p["hidden"], [32, 32])
    path = tmp_path / "auto.h5ad"
    out.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns["scflow"]["selection"]["chosen"] == sel["chosen"]
    pd.testing.assert_frame_equal(back.uns["scflow"]["selection"]["summary"], summary,
                                  check_index_type=False)
    pd.testing.assert_frame_equal(back.uns["scflow"]["selection"]["scores"], scores,
                                  check_index_type=False)


def test_auto_shows_progress_and_announces_its_choice_by_default(blobs, capsys):
    """At the default verbosity (1): a line per tenth of the inner fits, then the choice and
    each candidate's inner W1 with the timepoints as the data's own labels; silent with
    progress=False."""
    assert scflow.settings.verbosity == 1
    blobs.uns["scflow_dataset"] = {"time_values": np.asarray([0.0, 1.0, 2.0, 4.0]),
                                   "time_labels": np.asarray(["0h", "1d", "2d", "4d"])}
    cands = [{"method": "otcfm", "n_steps": 20, "hidden": (16,)},
             {"method": "icfm", "n_steps": 20, "hidden": (16,)}]
    out = scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, method="auto", candidates=cands,
                        copy=True)
    err = capsys.readouterr().err
    assert "scflow auto: 100% (4/4)" in err  # 2 candidates x 2 inner hold-outs
    sel = out.uns["scflow"]["selection"]
    assert f"method='auto' chose {sel['chosen']}" in err and "(1d, 2d)" in err
    rows = [ln for ln in err.splitlines() if ln.startswith("  ")]
    for r in sel["summary"].itertuples():
        line = [ln for ln in rows if ln.strip().startswith(r.candidate + "  ")]
        assert len(line) == 1 and f"{r.w1_mean:.3f}" in line[0]
    assert err.count("<- chosen") == 1
    scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, method="auto", candidates=cands,
                  progress=False)
    assert capsys.readouterr().err == ""


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


def test_auto_skips_a_candidate_that_diverges_and_records_it(blobs, tmp_path):
    wild = {"method": "otcfm", "n_steps": 20, "lr": 1e9, "hidden": (32, 32)}
    with pytest.warns(UserWarning, match="skipped, its inner fit diverged"):
        scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, method="auto",
                      candidates=[wild, GOOD])
    sel = blobs.uns["scflow"]["selection"]
    assert sel["method"] == "otcfm" and sel["chosen"] == "otcfm(hidden=(32, 32), n_steps=150)"
    assert list(sel["skipped"]["candidate"]) == [
        "otcfm(hidden=(32, 32), lr=1000000000.0, n_steps=20)"]
    assert "training diverged" in sel["skipped"]["reason"][0]
    blobs.write_h5ad(tmp_path / "auto.h5ad")
    back = ad.read_h5ad(tmp_path / "auto.h5ad").uns["scflow"]["selection"]
    assert list(back["skipped"]["candidate"]) == list(sel["skipped"]["candidate"])
