"""tl.fate_drivers: genes correlated with the fate probabilities."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _blobs import snapshot
from scipy import stats

import scflow


def make_fates(n: int = 80, seed: int = 0) -> ad.AnnData:
    """Fate probabilities (``a``/``b``, NaN for the last 20 cells) and 6 genes: ``A`` follows
    ``a``, ``B`` is its opposite, ``C`` is sparse noise, ``Z`` is constant, ``N1``/``N2`` are
    noise."""
    rng = np.random.default_rng(seed)
    pa = rng.uniform(0, 1, n)
    pushed = np.arange(n) < n - 20
    prob = np.stack([pa, 1 - pa], 1)
    prob[~pushed] = np.nan
    noise = rng.normal(0, 0.02, (n, 2))
    sparse_noise = np.where(rng.uniform(size=n) < 0.7, 0.0, rng.exponential(1.0, n))
    x = np.stack([2 + pa + noise[:, 0], 2 - pa + noise[:, 1], sparse_noise, np.full(n, 3.0),
                  rng.normal(0, 1, n), rng.poisson(1.0, n).astype(float)], 1)
    names = [f"c{i}" for i in range(n)]
    adata = ad.AnnData(x, obs=pd.DataFrame(index=names),
                       var=pd.DataFrame(index=["A", "B", "C", "Z", "N1", "N2"]))
    adata.obsm["fate_probabilities"] = pd.DataFrame(prob, index=names, columns=["a", "b"])
    return adata


def full_snapshot(adata: ad.AnnData) -> dict:
    snap = snapshot(adata)
    snap["varm"] = sorted(adata.varm.keys())
    snap["raw_varm"] = None if adata.raw is None else sorted(adata.raw.varm.keys())
    return snap


def test_drivers_rank_and_values():
    adata = make_fates()
    df = scflow.tl.fate_drivers(adata)
    assert list(df.columns) == ["a_corr", "a_pval", "a_qval", "b_corr", "b_pval", "b_qval"]
    assert df.index[0] == "A" and df.index[-1] == "Z"  # NaN (constant gene) sorts last
    assert df.dropna().index[-1] == "B"
    assert df.loc["A", "a_corr"] > 0.99 and df.loc["B", "a_corr"] < -0.99
    assert df.loc["A", "b_corr"] < -0.99 and df.loc["B", "b_corr"] > 0.99
    assert (df.loc[["A", "B"], ["a_qval", "b_qval"]] < 1e-30).all().all()
    assert df.loc["Z"].isna().all()
    pushed = np.arange(adata.n_obs) < adata.n_obs - 20
    p = adata.obsm["fate_probabilities"]["a"].to_numpy()[pushed]
    for gene in ("A", "C", "N1", "N2"):
        res = stats.pearsonr(adata[:, gene].X.ravel()[pushed], p)
        np.testing.assert_allclose(df.loc[gene, "a_corr"], res.statistic, rtol=1e-10)
        np.testing.assert_allclose(df.loc[gene, "a_pval"], res.pvalue, rtol=1e-6, atol=1e-300)
    ok = df["a_pval"].notna()
    np.testing.assert_allclose(df.loc[ok, "a_qval"],
                               stats.false_discovery_control(df.loc[ok, "a_pval"]))
    stored = adata.varm["fate_drivers"]
    assert isinstance(stored, pd.DataFrame) and list(stored.index) == list(adata.var_names)
    pd.testing.assert_frame_equal(stored.loc[df.index], df)


def test_drivers_sparse_layer_cells_and_fates():
    adata = make_fates()
    dense = scflow.tl.fate_drivers(adata)
    adata.layers["counts"] = sp.csr_matrix(adata.X)
    adata.X = sp.csc_matrix(adata.X)
    pd.testing.assert_frame_equal(scflow.tl.fate_drivers(adata), dense, rtol=1e-10)
    pd.testing.assert_frame_equal(scflow.tl.fate_drivers(adata, layer="counts"), dense,
                                  rtol=1e-10)
    # restricted to some cells: names or a mask, the same numbers as a subset
    names = list(adata.obs_names[:30]) + ["c70"]  # c70 is not pushed: ignored
    one = scflow.tl.fate_drivers(adata, fates="b", cells=names)
    assert list(one.columns) == ["b_corr", "b_pval", "b_qval"] and one.index[0] == "B"
    mask = np.isin(adata.obs_names, names)
    pd.testing.assert_frame_equal(scflow.tl.fate_drivers(adata, fates=["b"], cells=mask), one)
    sub = adata[:30].copy()
    pd.testing.assert_frame_equal(scflow.tl.fate_drivers(sub, fates=["b"]), one, rtol=1e-10)
    res = stats.pearsonr(adata.X[:30, 2].toarray().ravel(),
                         adata.obsm["fate_probabilities"]["b"].to_numpy()[:30])
    np.testing.assert_allclose(one.loc["C", "b_corr"], res.statistic, rtol=1e-10)


def test_drivers_raw_copy_and_h5ad(tmp_path):
    adata = make_fates()
    adata.raw = adata.copy()
    adata = adata[:, ["A", "N1"]].copy()
    out = scflow.tl.fate_drivers(adata, use_raw=True, copy=True)
    assert "fate_drivers" not in adata.raw.varm and "fate_drivers" not in adata.varm
    assert "fate_drivers" not in out.varm
    raw = out.raw.varm["fate_drivers"]
    assert list(raw.index) == ["A", "B", "C", "Z", "N1", "N2"]
    scflow.tl.fate_drivers(adata)
    assert list(adata.varm["fate_drivers"].index) == ["A", "N1"]
    same = ["a_corr", "a_pval", "b_corr", "b_pval"]  # q-values depend on the genes tested
    np.testing.assert_allclose(adata.varm["fate_drivers"].loc["A", same], raw.loc["A", same])
    out.write_h5ad(tmp_path / "raw.h5ad")
    adata.write_h5ad(tmp_path / "x.h5ad")
    back_raw = ad.read_h5ad(tmp_path / "raw.h5ad").raw.varm["fate_drivers"]
    back = ad.read_h5ad(tmp_path / "x.h5ad").varm["fate_drivers"]
    pd.testing.assert_frame_equal(back_raw, raw, check_index_type=False)
    pd.testing.assert_frame_equal(back, adata.varm["fate_drivers"], check_index_type=False)


def test_drivers_on_fitted_fates(fitted):
    scflow.tl.fate(fitted, "branch", mode="ode", n_neighbors=10)
    df = scflow.tl.fate_drivers(fitted, fates=["up"])
    assert df.shape == (fitted.n_vars, 3) and df["up_corr"].notna().all()
    assert df["up_corr"].is_monotonic_decreasing
    assert (df["up_qval"] >= df["up_pval"]).all()


def _constant(adata):
    adata.obsm["fate_probabilities"]["a"] = 0.5
    return {}


def _few(adata):
    return {"cells": ["c0", "c1"]}


@pytest.mark.parametrize(("setup", "kwargs", "exc", "match"), [
    (None, {"key": "nope"}, KeyError, "scflow.tl.fate"),
    (None, {"fates": ["a", "zz"]}, KeyError, "zz"),
    (None, {"fates": []}, ValueError, "fates"),
    (None, {"layer": "nope"}, KeyError, "layer"),
    (None, {"use_raw": True}, KeyError, "raw"),
    (None, {"cells": ["c0", "nope"]}, KeyError, "nope"),
    (None, {"cells": np.ones(3, dtype=bool)}, ValueError, "mask"),
    (_few, {}, ValueError, "at least 3"),
    (_constant, {}, ValueError, "constant"),
    (None, {"key": "a/b"}, ValueError, "key"),
])
def test_drivers_rejects_bad_input(setup, kwargs, exc, match):
    adata = make_fates()
    if setup is not None:
        kwargs = {**setup(adata), **kwargs}
    before = full_snapshot(adata)
    x = adata.X.copy()
    with pytest.raises(exc, match=match):
        scflow.tl.fate_drivers(adata, **kwargs)
    assert full_snapshot(adata) == before
    np.testing.assert_array_equal(adata.X, x)
