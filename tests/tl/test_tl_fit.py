"""tl.fit: what it writes, copy semantics, the h5ad round trip, time kinds, bad input."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import torch
from _blobs import DAYS, N_PER, snapshot

import scflow
from scflow._adata.access import time_course
from scflow.flow.model import FORMAT_VERSION


def assert_same(a, b, path="uns"):
    """Same structure, types, dtypes and values."""
    if isinstance(a, dict):
        assert isinstance(b, dict), path
        assert sorted(a) == sorted(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert np.array_equal(a, b), path
    else:
        assert type(a) is type(b), (path, type(a), type(b))
        assert a == b, path


def test_fit_writes_params_timepoints_scaler_loss_model(fitted):
    rec = fitted.uns["scflow"]
    assert sorted(rec) == ["loss", "model", "params", "scaler", "timepoints"]
    p = rec["params"]
    assert (p["time_key"], p["use_rep"], p["n_dims"], p["method"]) == ("day", "X_pca", 3, "otcfm")
    assert (p["holdout"], p["holdout_index"], p["sigma"], p["n_steps"]) == ("", -1, 0.1, 300)
    assert p["whiten"] is True and p["coupling"] == "global" and p["time_scale"] == "index"
    assert p["coupling_requested"] == "auto"  # the default; auto used global plans here
    np.testing.assert_array_equal(p["hidden"], [64, 64, 64])
    tp = rec["timepoints"]
    np.testing.assert_array_equal(tp["values"], DAYS)
    np.testing.assert_array_equal(tp["times"], [0, 1, 2, 3])
    assert list(tp["labels"]) == ["0", "1", "2", "4"] and tp["numeric"] is True
    np.testing.assert_array_equal(tp["n_cells"], [N_PER] * 4)
    x = fitted.obsm["X_pca"][:, :3].astype(np.float64)
    np.testing.assert_allclose(rec["scaler"]["mean"], x.mean(0), atol=1e-6)
    np.testing.assert_allclose(rec["scaler"]["scale"], x.std(0), rtol=1e-6)
    loss = rec["loss"]
    assert loss.shape == (300,) and np.isfinite(loss).all()
    assert loss[-50:].mean() < 0.7 * loss[:20].mean()  # it learned
    assert rec["model"]["format"] == "scflow.FlowModel"
    assert rec["model"]["version"] == FORMAT_VERSION
    assert "loss" not in rec["model"]["meta"]  # stored once, under uns[key]["loss"]


def test_fit_copy_semantics(blobs):
    before = snapshot(blobs)
    out = scflow.tl.fit(blobs, use_rep="X_pca", n_dims=2, n_steps=20, copy=True)
    assert isinstance(out, ad.AnnData) and out is not blobs
    assert "scflow" in out.uns and snapshot(blobs) == before
    assert scflow.tl.fit(blobs, use_rep="X_pca", n_dims=2, n_steps=20, key_added="f2") is None
    assert blobs.uns["f2"]["params"]["n_dims"] == 2


def test_fit_round_trips_through_h5ad(fitted, tmp_path):
    fitted = scflow.tl.fit(fitted, use_rep="X_pca", n_dims=3, n_steps=30, holdout=1.0,
                           copy=True)
    scflow.tl.velocity(fitted)
    path = tmp_path / "fit.h5ad"
    fitted.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert_same(fitted.uns["scflow"], back.uns["scflow"])
    m0, m1 = scflow.load_model(fitted), scflow.load_model(back)
    x = torch.randn(50, 3)
    for t in (0.0, 1.3, 3.0):
        torch.testing.assert_close(m0.velocity(t, x), m1.velocity(t, x), rtol=0, atol=0)
    np.testing.assert_array_equal(m1.meta["loss"], fitted.uns["scflow"]["loss"])
    scflow.tl.velocity(back)
    np.testing.assert_allclose(back.obsm["velocity_scflow"], fitted.obsm["velocity_scflow"],
                               rtol=1e-6, atol=1e-7)
    # the holdout is restored, and drives predict after the reload too
    pred = scflow.tl.predict(back, 1.0)
    assert back.uns["scflow"]["params"]["holdout"] == "1"
    assert pred.uns["scflow_predict"]["from_time"] == 0.0


def test_fit_on_string_labels_and_real_time(blobs):
    scflow.tl.fit(blobs, "label", use_rep="X_pca", n_dims=3, time_scale="real", holdout="D1",
                  n_steps=30)
    rec = blobs.uns["scflow"]
    assert list(rec["timepoints"]["labels"]) == ["D0", "D1", "D2", "D4"]
    np.testing.assert_array_equal(rec["timepoints"]["values"], DAYS)
    # real time in units of the mean gap (4 days / 3 intervals)
    np.testing.assert_allclose(rec["timepoints"]["times"], np.asarray(DAYS) * 0.75,
                               rtol=1e-15)
    assert (rec["params"]["time_origin"], rec["params"]["time_unit"]) == (0.0, 4 / 3)
    assert rec["timepoints"]["numeric"] is False
    assert (rec["params"]["holdout"], rec["params"]["holdout_index"]) == ("D1", 1)
    assert rec["model"]["meta"]["holdout"] == 1
    # a time between labels is a number on the labels' axis: day 3 -> model time 2.25
    pred = scflow.tl.predict(blobs, 3.0)
    assert pred.uns["scflow_predict"]["model_time"] == pytest.approx(2.25, rel=1e-15)
    assert pred.uns["scflow_predict"]["from_time"] == "D2"
    assert list(pred.obs["label"].unique()) == ["3"]


def test_fit_on_categorical_time(blobs):
    blobs.obs["stage"] = blobs.obs["label"].astype("category")
    scflow.tl.fit(blobs, "stage", use_rep="X_pca", n_dims=2, n_steps=20, holdout="D2")
    assert blobs.uns["scflow"]["params"]["holdout_index"] == 2
    scflow.tl.velocity(blobs)
    assert blobs.obsm["velocity_scflow"].shape == (blobs.n_obs, 5)  # X_pca's width


def test_fit_on_sparse_x(blobs_sparse):
    scflow.tl.fit(blobs_sparse, use_rep="X", n_steps=30, hidden=(16, 16))
    rec = blobs_sparse.uns["scflow"]
    assert rec["params"]["n_dims"] == blobs_sparse.n_vars
    dense = blobs_sparse.X.toarray().astype(np.float64)
    np.testing.assert_allclose(rec["scaler"]["mean"], dense.mean(0), rtol=1e-6, atol=1e-7)
    scflow.tl.velocity(blobs_sparse)
    assert blobs_sparse.obsm["velocity_scflow"].shape == (blobs_sparse.n_obs,
                                                           blobs_sparse.n_vars)
    with pytest.warns(UserWarning, match="not a prediction"):
        pred = scflow.tl.predict(blobs_sparse, 2.0)
    assert list(pred.var_names) == list(blobs_sparse.var_names)
    np.testing.assert_array_equal(pred.X, pred.obsm["X"])


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"time_key": "nope"}, KeyError, "time_key"),
    ({"use_rep": "X_nope"}, KeyError, "use_rep"),
    ({"method": "cfm"}, ValueError, "method"),
    ({"n_dims": 9}, ValueError, "n_dims"),
    ({"time_scale": "log"}, ValueError, "time_scale"),
    ({"holdout": 0.0}, ValueError, "holdout"),
    ({"holdout": 3.0}, ValueError, "holdout"),
    ({"n_steps": 0}, ValueError, "n_steps"),
    ({"batch_size": 1.5}, ValueError, "batch_size"),
    ({"hidden": ()}, ValueError, "hidden"),
    ({"coupling": "local"}, ValueError, "coupling"),
    ({"key_added": ""}, ValueError, "key_added"),
    ({"random_state": "0"}, ValueError, "random_state"),
    ({"device": "cuda:7"} if not torch.cuda.is_available() else {"n_steps": -1},
     ValueError, "device|n_steps"),
])
def test_fit_rejects_bad_input_before_writing(blobs, kwargs, exc, match):
    before = snapshot(blobs)
    kwargs = {"use_rep": "X_pca", "n_steps": 10, **kwargs}
    with pytest.raises(exc, match=match):
        scflow.tl.fit(blobs, **kwargs)
    assert snapshot(blobs) == before


def test_fit_rejects_views_and_backed(blobs, tmp_path):
    with pytest.raises(ValueError, match="view"):
        scflow.tl.fit(blobs[:100], use_rep="X_pca", n_steps=5)
    out = scflow.tl.fit(blobs[:200], use_rep="X_pca", n_steps=5, copy=True)  # copy is fine
    assert out.n_obs == 200 and not out.is_view
    blobs.write_h5ad(tmp_path / "b.h5ad")
    backed = ad.read_h5ad(tmp_path / "b.h5ad", backed="r")
    with pytest.raises(ValueError, match="copy=True needs an in-memory AnnData"):
        scflow.tl.fit(backed, use_rep="X_pca", n_steps=5, copy=True)
    assert "scflow" not in backed.uns
    backed.file.close()


@pytest.mark.parametrize("sparse", [False, True])
def test_fit_on_backed_x_reads_only_the_columns_it_uses(blobs, tmp_path, monkeypatch, sparse):
    """A backed (on-disk) X, dense or sparse, read in row chunks: the same fit as in memory."""
    import scipy.sparse as sps

    from scflow._adata import access as _anndata

    monkeypatch.setattr(_anndata, "CHUNK_ROWS", 37)  # several chunks, the last one short
    if sparse:
        blobs.X = sps.csr_matrix(blobs.X)
    blobs.write_h5ad(tmp_path / "b.h5ad")
    backed = ad.read_h5ad(tmp_path / "b.h5ad", backed="r")
    scflow.tl.fit(backed, use_rep="X", n_dims=4, n_steps=20)
    mem = scflow.tl.fit(blobs, use_rep="X", n_dims=4, n_steps=20, copy=True)
    assert backed.isbacked
    for a, b in ((backed.uns["scflow"]["scaler"], mem.uns["scflow"]["scaler"]),):
        np.testing.assert_allclose(a["mean"], b["mean"])
        np.testing.assert_allclose(a["scale"], b["scale"])
    np.testing.assert_array_equal(backed.uns["scflow"]["loss"], mem.uns["scflow"]["loss"])
    df = scflow.tl.leave_one_out(backed, use_rep="X", n_dims=4, methods=["static_ot"],
                                 seeds=[0])
    assert len(df) == 2 and (df["w1"] > 0).all()
    backed.file.close()


def test_load_model_errors(fitted):
    with pytest.raises(KeyError, match="'other'"):
        scflow.load_model(fitted, key="other")
    fitted.uns["scflow"]["model"]["version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="version"):
        scflow.load_model(fitted)
    fitted.uns["scflow"]["model"]["format"] = "something.else"
    with pytest.raises(ValueError, match="format"):
        scflow.load_model(fitted)


def test_load_model_gives_the_fitted_field(fitted):
    model = scflow.load_model(fitted)
    assert model.dim == 3 and not model.has_score and not model.training
    assert model.meta["method"] == "otcfm"
    # the same field as the fit (same data, seed and settings, trained again on tensors),
    # through both entry points
    tc = time_course(fitted, "day", "X_pca", n_dims=3, whiten=True, time_scale="index")
    again = scflow.fit_flow(tc, "otcfm", n_steps=300, random_state=0, progress=False)
    t = torch.linspace(0, 3, len(tc.xs[0]))
    with torch.no_grad():
        expected = again.velocity(t, tc.xs[0])
        for loaded in (model, scflow.tl.load_model(fitted)):
            torch.testing.assert_close(loaded.velocity(t, tc.xs[0]), expected)
    untrained = scflow.FlowModel(3)
    assert not torch.allclose(untrained.velocity(t, tc.xs[0]), expected, atol=1e-2)


@pytest.mark.subprocess
def test_import_scflow_does_not_import_anndata():
    import subprocess
    import sys

    code = ("import sys, scflow; assert callable(scflow.load_model); "
            "assert 'anndata' not in sys.modules, 'anndata imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fit_mmfm_records_its_spline_and_round_trips(blobs, tmp_path):
    out = scflow.tl.fit(blobs, use_rep="X_pca", n_dims=3, method="mmfm", spline="pchip",
                        window=None, n_steps=40, holdout=2.0, copy=True)
    p = out.uns["scflow"]["params"]
    assert (p["method"], p["spline"], p["window"], p["holdout_index"]) == ("mmfm", "pchip",
                                                                           -1, 2)
    path = tmp_path / "mmfm.h5ad"
    out.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert_same(out.uns["scflow"], back.uns["scflow"])
    pred = scflow.tl.predict(back, 2.0)  # from the timepoint before the held-out one
    assert pred.n_obs == N_PER and np.isfinite(pred.obsm["X_pca"]).all()
    with pytest.raises(ValueError, match="spline must be one of"):
        scflow.tl.fit(blobs, use_rep="X_pca", method="mmfm", spline="akima", n_steps=5)
    assert "scflow" not in blobs.uns


def test_fit_records_the_coupling_asked_for_and_the_one_used(blobs):
    scflow.tl.fit(blobs, n_dims=3, n_steps=2, coupling="minibatch")
    p = blobs.uns["scflow"]["params"]
    assert (p["coupling_requested"], p["coupling"]) == ("minibatch", "minibatch")


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"lr": 1e6}, scflow.TrainingDivergedError, r"loss was (inf|nan) \(not finite\) at step 2"),
    ({"lr": 1e6, "method": "sbcfm"}, scflow.TrainingDivergedError, "at step 2 of 30"),
])
def test_fit_that_diverges_raises_and_writes_nothing(blobs, kwargs, exc, match):
    before = sorted(blobs.uns)
    with pytest.raises(exc, match=match):
        scflow.tl.fit(blobs, n_dims=3, n_steps=30, **kwargs)
    assert "scflow" not in blobs.uns and sorted(blobs.uns) == before


def test_fit_on_values_that_overflow_float32_unwhitened_writes_nothing(blobs):
    blobs.obsm["X_pca"] = blobs.obsm["X_pca"] * 1e30
    with pytest.raises(ValueError, match="overflow float32.*use whiten=True"):
        scflow.tl.fit(blobs, n_dims=3, n_steps=5, whiten=False)
    assert "scflow" not in blobs.uns
    scflow.tl.fit(blobs, n_dims=3, n_steps=5)  # whitened, the same cells train
    assert np.isfinite(blobs.uns["scflow"]["loss"]).all()


def test_record_stores_times_and_scaler_once_and_the_model_gets_them_back(blobs):
    scflow.tl.fit(blobs, "day", use_rep="X_pca", n_steps=5, random_state=0)
    rec = blobs.uns["scflow"]
    assert not {"times", "scaler_mean", "scaler_scale", "loss"} & set(rec["model"]["meta"])
    model = scflow.load_model(blobs)
    np.testing.assert_array_equal(model.meta["times"], rec["timepoints"]["times"])
    np.testing.assert_array_equal(model.meta["scaler_mean"], rec["scaler"]["mean"])
    np.testing.assert_array_equal(model.meta["scaler_scale"], rec["scaler"]["scale"])
