"""Bad input to the AnnData tools: a clear exception naming the argument, and nothing written."""

from __future__ import annotations

import copy

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import scflow

FAST = dict(use_rep="X_pca", n_dims=3, n_steps=5, batch_size=8, hidden=(8,))


def _equal(a, b) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b) and list(a.columns) == list(
            b.columns)
    if isinstance(a, (np.ndarray, list, tuple)) or hasattr(a, "toarray"):
        a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
        b = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            np.all((a == b) | (pd.isna(a) & pd.isna(b)) if a.dtype.kind in "fc" else a == b))
    return type(a) is type(b) and a == b


def state(adata: ad.AnnData) -> dict:
    """A deep copy of every slot a tool could write to."""
    return copy.deepcopy({
        "obs": adata.obs.copy(), "var": adata.var.copy(),
        "obsm": {k: np.asarray(v).copy() for k, v in adata.obsm.items()},
        "varm": {k: np.asarray(v).copy() for k, v in adata.varm.items()},
        "layers": {k: np.asarray(v).copy() for k, v in adata.layers.items()},
        "uns": dict(adata.uns), "X": adata.X.copy(), "shape": adata.shape})


def assert_unchanged(adata: ad.AnnData, before: dict) -> None:
    after = state(adata)
    assert before.keys() == after.keys()
    for k in before:
        assert _equal(before[k], after[k]), f"adata.{k} changed"


def _fails(adata, exc, match, fn, *args, **kw):
    before = state(adata)
    with pytest.raises(exc, match=match):
        fn(adata, *args, **kw)
    assert_unchanged(adata, before)


# ----- tl.fit -----
def test_missing_time_key_and_use_rep(blobs):
    _fails(blobs, KeyError, r"time_key='nope' is not a column of adata\.obs",
           scflow.tl.fit, "nope", **FAST)
    _fails(blobs, KeyError, r"use_rep='X_umap' is not in adata\.obsm",
           scflow.tl.fit, "day", **{**FAST, "use_rep": "X_umap"})


def test_fewer_than_two_timepoints(blobs):
    blobs.obs["one"] = 1.0
    _fails(blobs, ValueError, r"time_key='one'.*at least two timepoints, got 1",
           scflow.tl.fit, "one", **FAST)


def test_timepoint_with_too_few_cells(blobs):
    blobs.obs["t"] = blobs.obs["day"].to_numpy().copy()
    blobs.obs.iloc[0, blobs.obs.columns.get_loc("t")] = 9.0
    _fails(blobs, ValueError, r"time_key='t'.*timepoint 9\.0 has 1 cells; at least 2",
           scflow.tl.fit, "t", **FAST)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_representation(blobs, bad):
    x = blobs.obsm["X_pca"].copy()
    x[3, 1] = bad
    blobs.obsm["X_pca"] = x
    _fails(blobs, ValueError, r"use_rep='X_pca'.*NaN or infinite", scflow.tl.fit, "day", **FAST)


def test_unorderable_and_mixed_time_labels(blobs):
    blobs.obs["word"] = np.where(blobs.obs["day"] < 2, "early", "late")
    _fails(blobs, ValueError, r"time_key='word'.*'early' cannot be ordered",
           scflow.tl.fit, "word", **FAST)
    blobs.obs["two"] = np.where(blobs.obs["day"] < 2, "day 1", "d1")
    _fails(blobs, ValueError, r"time_key='two'.*cannot be ordered: two labels hold the same",
           scflow.tl.fit, "two", **FAST)
    blobs.obs["mixed"] = pd.Series([0.0 if d < 2 else "day 3" for d in blobs.obs["day"]],
                                   index=blobs.obs_names, dtype=object)
    _fails(blobs, ValueError, r"time_key='mixed'.*mix numbers and strings",
           scflow.tl.fit, "mixed", **FAST)
    blobs.obs["gap"] = blobs.obs["day"].where(blobs.obs["day"] != 1)
    _fails(blobs, ValueError, r"time_key='gap'.*missing values", scflow.tl.fit, "gap", **FAST)


def test_real_time_of_ordered_categories_without_increasing_numbers(blobs):
    day = blobs.obs["day"].to_numpy()
    for cats in (["d0", "d1", "d2", "late"], ["d0", "d5", "d2", "d9"]):
        labels = np.asarray(cats)[np.searchsorted([0.0, 1.0, 2.0, 4.0], day)]
        blobs.obs["stage"] = pd.Categorical(labels, categories=cats, ordered=True)
        match = (r"time_key='stage'.*time_scale='real' needs a number in every time label, "
                 r"but 'late'" if "late" in cats else
                 r"time_key='stage'.*time_scale='real': the order of the time label categories "
                 r"\['d0', 'd5', 'd2', 'd9'\] and the numbers they hold .* disagree")
        _fails(blobs, ValueError, match, scflow.tl.fit, "stage", time_scale="real", **FAST)
    # index time needs no numbers, only the order of the categories
    scflow.tl.fit(blobs, "stage", time_scale="index", **FAST)
    np.testing.assert_array_equal(blobs.uns["scflow"]["timepoints"]["times"], [0, 1, 2, 3])


def test_n_dims_larger_than_the_representation(blobs):
    _fails(blobs, ValueError, r"n_dims must be between 1 and 5.*got 6",
           scflow.tl.fit, "day", **{**FAST, "n_dims": 6})


def test_view_and_backed(blobs, tmp_path):
    view = blobs[:100]
    with pytest.raises(ValueError, match=r"adata is a view; pass adata\.copy\(\)"):
        scflow.tl.fit(view, "day", **FAST)
    assert view.is_view and "scflow" not in view.uns
    path = tmp_path / "b.h5ad"
    blobs.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    try:
        with pytest.raises(ValueError, match=r"copy=True needs an in-memory.*to_memory\(\)"):
            scflow.tl.fit(backed, "day", copy=True, **FAST)
        assert "scflow" not in backed.uns
        scflow.tl.fit(backed, "day", **FAST)  # fit reads a backed file; writes uns only
        with pytest.raises(ValueError, match=r"adata is backed.*to_memory\(\)"):
            scflow.tl.velocity(backed)  # tools that write per-cell results need memory
        assert "velocity_scflow" not in backed.obsm
    finally:
        backed.file.close()
    assert "scflow" not in ad.read_h5ad(path).uns


@pytest.mark.parametrize(("holdout", "match"), [
    (0.0, r"holdout=0\.0 must be an interior timepoint"),
    (4.0, r"holdout=4\.0 must be an interior timepoint"),
    (3.0, r"holdout=3\.0 is not an observed timepoint; expected one of \[0\.0, 1\.0"),
    ("x", r"holdout='x' is not an observed timepoint"),
])
def test_holdout_first_last_or_absent(blobs, holdout, match):
    _fails(blobs, ValueError, match, scflow.tl.fit, "day", holdout=holdout, **FAST)


@pytest.mark.parametrize(("kw", "match"), [
    ({"method": "sbcfm", "sigma": 0.0}, r"sigma must be a finite number > 0, got 0\.0"),
    ({"method": "sbcfm", "sigma": -1.0}, r"sigma must be a finite number > 0, got -1\.0"),
    ({"method": "otcfm", "sigma": -0.1}, r"sigma must be a finite number >= 0, got -0\.1"),
    ({"n_steps": 0}, r"n_steps must be a positive integer, got 0"),
    ({"n_steps": -5}, r"n_steps must be a positive integer, got -5"),
    ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
    ({"batch_size": 2.5}, r"batch_size must be a positive integer, got 2\.5"),
    ({"lr": -1e-3}, r"lr must be a finite number > 0"),
    ({"method": "magic"}, r"method must be one of"),
    ({"hidden": ()}, r"hidden must be a non-empty sequence"),
    ({"hidden": "128"}, r"hidden must be a sequence of positive layer widths, e\.g\. "
                        r"\(64, 64, 64\) or \[128, 128\], got '128'"),
    ({"hidden": 128}, r"hidden must be a sequence of positive layer widths"),
    ({"hidden": (64.5, 64)}, r"hidden must be a non-empty sequence of positive integer"),
    ({"device": "nonsense"}, r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or another "
                             r"torch device, got 'nonsense'"),
    ({"checkpoint_every": 0, "checkpoint": "ck.pt"}, r"checkpoint_every must be a positive"),
])
def test_bad_training_options(blobs, kw, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fails(blobs, ValueError, match, scflow.tl.fit, "day", **{**FAST, **kw})
    assert not (tmp_path / "ck.pt").exists()


# ----- tools on a fitted model -----
def test_key_that_holds_no_model(fitted):
    for fn in (scflow.tl.velocity, scflow.tl.trajectories):
        _fails(fitted, KeyError, r"adata\.uns\['nope'\] holds no scflow model", fn, key="nope")
    fitted.uns["junk"] = {"a": 1}
    _fails(fitted, KeyError, r"adata\.uns\['junk'\] holds no scflow model",
           scflow.tl.velocity, key="junk")
    with pytest.raises(KeyError, match="holds no scflow model"):
        scflow.load_model(fitted, key="nope")


def test_model_applied_to_data_of_another_dimension(fitted):
    fitted.obsm["X_pca"] = fitted.obsm["X_pca"][:, :2].copy()
    _fails(fitted, ValueError, r"use_rep 'X_pca' has 2 dims but the model was fitted on 3",
           scflow.tl.velocity)
    _fails(fitted, ValueError, r"use_rep 'X_pca' has 2 dims", scflow.tl.trajectories)
    model = scflow.load_model(fitted)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        model.velocity(0.5, torch.zeros(4, 2))


def test_bad_integration_steps(fitted):
    for n in (0, -3, 1.5):
        _fails(fitted, ValueError, r"n_steps must be a positive integer",
               scflow.tl.trajectories, n_steps=n)


def test_tools_refuse_views(fitted):
    view = fitted[:50]
    with pytest.raises(ValueError, match="adata is a view"):
        scflow.tl.velocity(view)
    assert "velocity_scflow" not in view.obsm


# ----- obscure errors made clear -----
def test_obsm_dataframe_is_read_as_its_values(blobs):
    blobs.obsm["X_df"] = pd.DataFrame(blobs.obsm["X_pca"], index=blobs.obs_names,
                                      columns=[f"PC{j + 1}" for j in range(5)])
    scflow.tl.fit(blobs, "day", **{**FAST, "use_rep": "X_df"})
    np.testing.assert_allclose(blobs.uns["scflow"]["scaler"]["mean"],
                               blobs.obsm["X_pca"][:, :3].mean(0), atol=1e-5)
    scflow.tl.velocity(blobs)
    assert np.isfinite(blobs.obsm["velocity_scflow"]).all()
    blobs.obsm["X_words"] = pd.DataFrame({"a": ["x"] * blobs.n_obs}, index=blobs.obs_names)
    _fails(blobs, ValueError, r"use_rep='X_words' is a DataFrame with non-numeric columns",
           scflow.tl.fit, "day", **{**FAST, "use_rep": "X_words", "n_dims": None})


@pytest.mark.parametrize(("factor", "whiten", "hint"), [
    (1e40, False, "pass whiten=True"), (1e200, True, "rescale the representation")])
def test_values_overflowing_float32_are_named(blobs, factor, whiten, hint):
    blobs.obsm["X_big"] = blobs.obsm["X_pca"].astype(np.float64) * factor
    _fails(blobs, ValueError, rf"use_rep='X_big': its values overflow float32.*{hint}",
           scflow.tl.fit, "day", **{**FAST, "use_rep": "X_big", "whiten": whiten})
    with pytest.raises(ValueError, match="overflow float32"):
        scflow.tl.leave_one_out(blobs, use_rep="X_big", whiten=whiten, methods=["static_ot"],
                                seeds=[0])


@pytest.mark.parametrize(("where", "value", "match"), [
    (("scaler", "mean"), np.zeros(2), r"\['scaler'\]\['mean'\] has shape \(2,\); expected "
                                      r"\(3,\)"),
    (("scaler", "scale"), np.array([1.0, -1.0, 1.0]), r"\['scaler'\]\['scale'\] must be "
                                                       "positive"),
    (("scaler", "scale"), np.array([1.0, np.nan, 1.0]), r"\['scaler'\]\['scale'\] holds NaN"),
    (("timepoints", "times"), np.arange(3.0), r"\['timepoints'\]\['times'\] has shape \(3,\); "
                                              r"expected \(4,\)"),
    (("timepoints", "times"), np.array([0.0, 2.0, 1.0, 3.0]),
     r"\['timepoints'\]\['times'\] must be finite and increasing"),
    (("params", "n_dims"), 0, r"\['params'\]\['n_dims'\] must be a positive integer"),
])
def test_inconsistent_fit_record_is_named(fitted, where, value, match):
    fitted.uns["scflow"][where[0]][where[1]] = value
    for fn in (scflow.tl.velocity, scflow.tl.trajectories):
        _fails(fitted, ValueError, r"adata\.uns\['scflow'\]" + match, fn)
    with pytest.raises(ValueError, match="inconsistent"):
        scflow.tl.predict(fitted, 2.0)


def test_cells_by_name_refuses_duplicated_obs_names(fitted):
    names = fitted.obs_names.to_numpy().copy()
    names[1] = names[0]
    fitted.obs_names = names
    _fails(fitted, ValueError, r"cells: adata\.obs_names are not unique.*'cell0'.*"
                               r"obs_names_make_unique\(\)",
           scflow.tl.trajectories, cells=["cell0"], n_steps=5)
    scflow.tl.trajectories(fitted, cells=[0, 2], n_steps=5)  # positions stay unambiguous
    assert fitted.uns["scflow"]["trajectories"]["paths"].shape[1] == 2


@pytest.mark.parametrize(("kw", "match"), [
    ({"seeds": ()}, r"seeds must list at least one seed, got an empty list"),
    ({"methods": []}, r"methods must list at least one method"),
    ({"holdouts": []}, r"holdouts must list at least one time label"),
])
def test_leave_one_out_refuses_empty_lists(blobs, kw, match):
    args = {"methods": ["static_ot"], "seeds": [0], **kw}
    with pytest.raises(ValueError, match=match):
        scflow.tl.leave_one_out(blobs, use_rep="X_pca", n_dims=3, **args)


def test_float_days_survive_as_strings_after_the_fit(blobs):
    """Days 0, 1/3, 2/3, 1: the fit stores its labels with ``%.12g`` ('0.333333333333'); a
    time column later held as strings (``astype(str).astype("category")``, as scanpy's
    plotting wants) reads '0.3333333333333333' and no longer matches its own timepoint."""
    days = {0.0: 0.0, 1.0: 1 / 3, 2.0: 2 / 3, 4.0: 1.0}
    blobs.obs["day"] = blobs.obs["day"].map(days).astype(float)
    scflow.tl.fit(blobs, "day", **FAST)
    blobs.obs["day"] = blobs.obs["day"].astype(str).astype("category")
    scflow.tl.velocity(blobs)
    scflow.tl.trajectories(blobs, start_time=1 / 3, n_steps=5)
    scflow.tl.fate(blobs, "branch", from_time=1 / 3, n_steps=5)
    with pytest.warns(UserWarning, match="not a prediction"):  # a trained timepoint
        pred = scflow.tl.predict(blobs, 2 / 3, n_steps=5)
        assert pred.n_obs == 60
        assert scflow.tl.predict(blobs, "0.6666666666666666", n_steps=5).n_obs == 60
