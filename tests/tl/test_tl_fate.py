"""tl.fate and tl.gene_trends: fates by nearest real cells, gene expression along paths."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from _blobs import N_PER, snapshot

import scflow


def test_fate_fields_and_values(fitted):
    assert scflow.tl.fate(fitted, "branch") is None
    fate, prob = fitted.obs["fate"], fitted.obs["fate_prob"]
    last = (fitted.obs["day"] == 4.0).to_numpy()
    assert isinstance(fate.dtype, pd.CategoricalDtype)
    assert set(fate.cat.categories) == {"down", "up"}
    assert fate[last].isna().all() and fate[~last].notna().all()
    assert prob[last].isna().all() and ((prob[~last] > 0) & (prob[~last] <= 1)).all()
    # once the branches have split (days 1, 2), cells go where their branch goes
    split = fitted.obs["day"].isin([1.0, 2.0]).to_numpy()
    agree = (fate[split].astype(str) == fitted.obs["branch"][split].astype(str)).mean()
    assert agree > 0.85
    table = fitted.uns["fate"]["transitions"]
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["down", "up"] and list(table.columns) == ["down", "up"]
    np.testing.assert_allclose(table.sum(1), 1.0)
    counts = fitted.uns["fate"]["source_counts"]
    assert list(counts.index) == ["down", "up"] and counts["n_cells"].sum() == 3 * N_PER
    # the table is the mean probability of each source group's pushed cells
    probs = fitted.obsm["fate_probabilities"][~last]
    np.testing.assert_allclose(table.loc["up"],
                               probs[(fitted.obs["branch"] == "up")[~last]].mean())
    assert table.loc["up", "up"] > 0.7 and table.loc["down", "down"] > 0.7
    p = fitted.uns["fate"]["params"]
    assert (p["groupby"], p["from_time"], p["to_time"], p["n_neighbors"]) == (
        "branch", "", "4", 15)


def test_fate_from_one_time_copy_and_h5ad(fitted, tmp_path):
    out = scflow.tl.fate(fitted, "branch", from_time=1.0, to_time=2.0, n_neighbors=5,
                         mode="ode", key_added="f12", copy=True)
    assert "f12" not in fitted.obs and "f12" not in fitted.uns
    pushed = out.obs["f12"].notna().to_numpy()
    np.testing.assert_array_equal(pushed, (out.obs["day"] == 1.0).to_numpy())
    assert set(np.round(out.obs["f12_prob"][pushed] * 5, 6)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    out.write_h5ad(tmp_path / "f.h5ad")
    back = ad.read_h5ad(tmp_path / "f.h5ad")
    pd.testing.assert_frame_equal(back.uns["f12"]["transitions"],
                                  out.uns["f12"]["transitions"])
    pd.testing.assert_frame_equal(back.uns["f12"]["source_counts"],
                                  out.uns["f12"]["source_counts"])
    assert back.obs["f12"].isna().sum() == out.obs["f12"].isna().sum()


@pytest.mark.parametrize(("args", "kwargs", "exc", "match"), [
    (("nope",), {}, KeyError, "groupby"),
    (("branch",), {"from_time": 4.0}, ValueError, "from_time"),
    (("branch",), {"to_time": 3.0}, ValueError, "to_time"),
    (("branch",), {"n_neighbors": 0}, ValueError, "n_neighbors"),
    (("branch",), {"n_neighbors": "best"}, ValueError, "n_neighbors must be a positive integer "
                                                       "or 'auto'"),
    (("branch",), {"fates": ["up", "sideways"]}, ValueError, r"\['sideways'\] label no cell"),
    (("branch",), {"fates": "up"}, ValueError, "fates must be a non-empty list"),
    (("branch",), {"fates": ["up", "up"]}, ValueError, "must not repeat"),
    (("branch",), {"key_added": "a/b"}, ValueError, "key_added"),
    (("branch",), {"key_added": "scflow"}, ValueError, "overwrite"),
    (("branch",), {"key": "nope"}, KeyError, "tl.fit"),
])
def test_fate_rejects_bad_input(fitted, args, kwargs, exc, match):
    before = snapshot(fitted)
    with pytest.raises(exc, match=match):
        scflow.tl.fate(fitted, *args, **kwargs)
    assert snapshot(fitted) == before


def test_gene_trends_values(fitted):
    df = scflow.tl.gene_trends(fitted, ["g0", "g5"], n_steps=20, n_save=4)
    assert list(df.columns) == ["gene", "time", "model_time", "group", "mean", "std",
                                "n_cells", "frac_negative", "clipped"]
    assert not df["clipped"].any()  # blobs' X has negative values: nothing clipped
    assert df.attrs["time_key"] == "day" and df.attrs["timepoints"] == [0.0, 1.0, 2.0, 4.0]
    assert len(df) == 2 * 5 and set(df["group"]) == {"all"} and (df["n_cells"] == N_PER).all()
    # at the start, the expression is the PCA reconstruction of the day-0 cells
    day0 = (fitted.obs["day"] == 0.0).to_numpy()
    pcs = fitted.varm["PCs"][:, :3]
    recon = fitted.X.mean(0) + fitted.obsm["X_pca"][day0, :3] @ pcs.T
    start = df[df["time"] == 0.0].set_index("gene")
    np.testing.assert_allclose(start.loc[["g0", "g5"], "mean"], recon[:, [0, 5]].mean(0),
                               rtol=1e-4)
    # at the end, close to the mean expression of the last timepoint
    last = fitted.X[(fitted.obs["day"] == 4.0).to_numpy()].mean(0)
    end = df[df["time"] == 4.0].set_index("gene")["mean"]
    spread = np.abs(fitted.X[:, [0, 5]].mean(0) - fitted.X[day0][:, [0, 5]].mean(0))
    assert (np.abs(end.loc[["g0", "g5"]].to_numpy() - last[[0, 5]]) < 0.5 * spread).all()
    stored = fitted.uns["scflow"]["gene_trends"]
    assert sorted(stored) == sorted([*df.columns, "groupby"]) and stored["groupby"] == ""
    np.testing.assert_array_equal(stored["mean"], df["mean"].to_numpy())


def test_gene_trends_per_fate(fitted):
    scflow.tl.fate(fitted, "branch")
    df = scflow.tl.gene_trends(fitted, "g1", groupby="fate", n_steps=10, n_save=2)
    assert set(df["group"]) <= {"up", "down"} and df["n_cells"].groupby(df["group"]).first(
        ).sum() == N_PER
    assert len(df) == 3 * df["group"].nunique()


@pytest.mark.parametrize(("genes", "kwargs", "exc", "match"), [
    (["g0", "nope"], {}, KeyError, "nope"),
    ([], {}, ValueError, "genes"),
    ("g0", {"groupby": "fate"}, KeyError, "tl.fate"),
    ("g0", {"n_steps": 10, "n_save": 3}, ValueError, "n_save"),
    ("g0", {"start_time": 1.5}, ValueError, "start_time"),
])
def test_gene_trends_rejects_bad_input(fitted, genes, kwargs, exc, match):
    before = snapshot(fitted)
    with pytest.raises(exc, match=match):
        scflow.tl.gene_trends(fitted, genes, **kwargs)
    assert snapshot(fitted) == before


def test_gene_trends_needs_pcs(fitted):
    del fitted.varm["PCs"]
    with pytest.raises(KeyError, match="PCs"):
        scflow.tl.gene_trends(fitted, "g0")
    assert "gene_trends" not in fitted.uns["scflow"]


# ------------------------------------------- a simulated bifurcation, labels on a few cells

SIM_T = 5


def _auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count one half)."""
    from scipy.stats import rankdata

    n1, n0 = int(positive.sum()), int((~positive).sum())
    return float((rankdata(score)[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def _sim_fitted() -> ad.AnnData:
    """simulate(600, 5, random_state=1) with OT-CFM ("scflow") and SB-CFM ("sb") fits on 2 PCs, and
    ``obs["label"]``: the branch of a random 20% of the last timepoint's cells, NaN
    elsewhere."""
    from _blobs import one_thread

    adata = scflow.datasets.simulate(600, SIM_T, random_state=1)
    last = (adata.obs["t_idx"] == SIM_T - 1).to_numpy()
    keep = last & (np.random.default_rng(0).random(adata.n_obs) < 0.2)
    adata.obs["label"] = pd.Categorical(adata.obs["branch"].astype(str).where(keep),
                                        categories=["lower", "upper"])
    with one_thread():
        scflow.tl.fit(adata, use_rep="X_pca", n_dims=2, n_steps=400)
        scflow.tl.fit(adata, use_rep="X_pca", n_dims=2, method="sbcfm", n_steps=400,
                      key_added="sb")
    return adata


@pytest.fixture
def sim_fitted(_sim_fitted) -> ad.AnnData:
    return _sim_fitted.copy()


@pytest.mark.parametrize(("mode", "key", "kwargs"), [
    ("ode", "scflow", {}),
    ("sde", "sb", {"n_draws": 10}),
    ("transport", "scflow", {}),
])
def test_fate_simulated_sparse_labels(sim_fitted, mode, key, kwargs):
    adata = sim_fitted
    n_labelled = int(adata.obs["label"].notna().sum())
    assert 10 <= n_labelled <= 40  # a sparse subset of the 120 last-timepoint cells
    scflow.tl.fate(adata, "label", key=key, mode=mode, n_neighbors=5, n_steps=50, **kwargs)
    prob = adata.obsm["fate_probabilities"]
    assert list(prob.columns) == ["lower", "upper"]
    assert (prob.index == adata.obs_names).all()
    t_idx = adata.obs["t_idx"].to_numpy()
    pushed = t_idx < SIM_T - 1
    p = prob.to_numpy()
    assert np.isnan(p[~pushed]).all()
    assert np.isfinite(p[pushed]).all() and (p[pushed] >= 0).all() and (p[pushed] <= 1).all()
    np.testing.assert_allclose(p[pushed].sum(1), 1.0, atol=1e-6)
    # the second-to-last timepoint: the branch is (almost) decided, P(upper) must rank it
    late = t_idx == SIM_T - 2
    upper = (adata.obs["branch"] == "upper").to_numpy()
    assert _auroc(prob["upper"].to_numpy()[late], upper[late]) > 0.95
    assert adata.uns["fate"]["params"]["mode"] == mode


def test_fate_all_nan_labels_at_to_time(sim_fitted):
    adata = sim_fitted
    last = (adata.obs["t_idx"] == SIM_T - 1).to_numpy()
    # labels on earlier cells only: none where the fates are read
    adata.obs["early"] = adata.obs["branch"].astype(str).where(~last)
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"groupby='early'.*all NaN"):
        scflow.tl.fate(adata, "early", mode="ode")
    assert snapshot(adata) == before
    assert "fate_probabilities" not in adata.obsm and "fate" not in adata.obs


def test_fate_default_key_added_refuses_groupby_fate(sim_fitted):
    adata = sim_fitted
    adata.obs["fate"] = adata.obs["label"]
    labels = adata.obs["fate"].copy()
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"key_added='fate' would overwrite adata.obs\['fate'\]"):
        scflow.tl.fate(adata, "fate", mode="ode")
    assert snapshot(adata) == before
    pd.testing.assert_series_equal(adata.obs["fate"], labels)
    # another name works
    scflow.tl.fate(adata, "fate", mode="ode", n_neighbors=5, key_added="fate_pred")
    assert "fate_pred_probabilities" in adata.obsm
    pd.testing.assert_series_equal(adata.obs["fate"], labels)


def test_fate_auto_neighbors_reads_the_labels_only(fitted, tmp_path):
    scflow.tl.fate(fitted, "branch", n_neighbors="auto", fates=["down", "up"],
                   key_added="auto")
    entry = fitted.uns["auto"]
    sel, params = entry["n_neighbors_selection"], entry["params"]
    assert params["n_neighbors_rule"] == "auto" and params["n_labelled"] == N_PER
    cand, brier = list(sel["candidates"]), np.asarray(sel["brier"])
    assert max(cand) <= N_PER // 4 and len(cand) == len(brier) >= 3
    assert np.isfinite(brier).all() and (brier >= 0).all()
    k = int(sel["chosen"])
    assert k == params["n_neighbors"] == cand[int(np.argmin(brier))]
    # the same fates as asking for that k
    scflow.tl.fate(fitted, "branch", n_neighbors=k, key_added="fixed")
    np.testing.assert_array_equal(fitted.obsm["auto_probabilities"].to_numpy(),
                                  fitted.obsm["fixed_probabilities"].to_numpy())
    assert fitted.uns["fixed"]["params"]["n_neighbors_rule"] == "fixed"
    assert "n_neighbors_selection" not in fitted.uns["fixed"]
    fitted.write_h5ad(tmp_path / "auto.h5ad")  # the selection and the fates survive h5ad
    back = ad.read_h5ad(tmp_path / "auto.h5ad").uns["auto"]
    np.testing.assert_allclose(back["n_neighbors_selection"]["brier"], brier)
    assert list(back["params"]["fates"]) == ["down", "up"]


def test_fate_terminal_fates_and_auto_on_noisy_labels(sim_fitted):
    """A third of the labelled cells "undiff", as in LARRY's annotation: ``fates`` reads
    only the terminal labels; ``"auto"`` refuses too few labelled cells."""
    adata = sim_fitted
    lab = adata.obs["label"].astype(object).to_numpy()
    labelled = np.flatnonzero(pd.notna(lab))
    lab[labelled[: len(labelled) // 3]] = "undiff"
    adata.obs["noisy"] = pd.Categorical(lab)
    before = snapshot(adata)
    with pytest.raises(ValueError, match=r"fates=\['upper'\] names one fate: every cell would "
                                         "get probability 1"):
        scflow.tl.fate(adata, "noisy", mode="ode", fates=["upper"], n_neighbors="auto")
    few = pd.Series(lab).where(pd.Series(lab).isin(["lower", "upper"]))
    few[few.notna().to_numpy().cumsum() > 8] = np.nan  # 8 labelled cells
    adata.obs["few"] = pd.Categorical(few.to_numpy())
    with pytest.raises(ValueError, match="n_neighbors='auto' needs at least 12 labelled"):
        scflow.tl.fate(adata, "few", mode="ode", n_neighbors="auto")
    del adata.obs["few"]
    assert snapshot(adata) == before
    scflow.tl.fate(adata, "noisy", mode="ode", fates=["lower", "upper"], n_neighbors="auto")
    prob = adata.obsm["fate_probabilities"]
    assert list(prob.columns) == ["lower", "upper"]
    pushed = (adata.obs["t_idx"] < SIM_T - 1).to_numpy()
    np.testing.assert_allclose(prob.to_numpy()[pushed].sum(1), 1.0, atol=1e-6)
    params = adata.uns["fate"]["params"]
    assert params["n_labelled"] == len(labelled) - len(labelled) // 3
    assert list(params["fates"]) == ["lower", "upper"]
    late = (adata.obs["t_idx"] == SIM_T - 2).to_numpy()
    upper = (adata.obs["branch"] == "upper").to_numpy()
    assert _auroc(prob["upper"].to_numpy()[late], upper[late]) > 0.95


def test_few_cells_per_timepoint_warn_with_the_minimum(blobs):
    rows = np.concatenate([np.flatnonzero(blobs.obs["day"].to_numpy() == d)[:3]
                           for d in (0.0, 1.0, 2.0, 4.0)])
    tiny = blobs[rows].copy()
    with pytest.warns(UserWarning, match=r"fewer than 30 cells"):
        scflow.tl.fit(tiny, use_rep="X_pca", n_dims=3, n_steps=20)
    with pytest.warns(UserWarning, match=r"tl.fate: timepoint\(s\) .*'0': 3.* fewer than 30"):
        scflow.tl.fate(tiny, "branch", n_neighbors=1, n_steps=5)
    # enough cells: no such warning
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, n_steps=20)
    with pytest.raises(ValueError, match="at least 2 are needed"):
        scflow.tl.fit(blobs[rows[[0, 3, 4, 6, 7, 9, 10]]].copy(), use_rep="X_pca", n_dims=3,
                      n_steps=20)
