"""tl.transition_matrix: a row-stochastic cell-to-cell chain from the flow, for CellRank."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from _blobs import N_PER, snapshot

import scflow


def full_snapshot(adata: ad.AnnData) -> dict:
    return {**snapshot(adata), "obsp": sorted(adata.obsp.keys())}


def test_transition_matrix_structure(fitted):
    assert scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=20) is None
    mat = fitted.obsp["scflow_transitions"]
    assert sp.issparse(mat) and mat.format == "csr" and mat.shape == (fitted.n_obs,) * 2
    np.testing.assert_allclose(np.asarray(mat.sum(1)).ravel(), 1.0)
    assert (mat.data >= 0).all()
    day = fitted.obs["day"].to_numpy()
    days = np.unique(day)
    for i in range(fitted.n_obs):
        cols = mat.indices[mat.indptr[i]:mat.indptr[i + 1]]
        if day[i] == days[-1]:
            assert list(cols) == [i] and mat[i, i] == 1.0
        else:
            assert len(cols) == 10
            nxt = days[np.searchsorted(days, day[i]) + 1]
            assert (day[cols] == nxt).all()
    p = fitted.uns["scflow_transitions_params"]
    assert (p["key"], p["n_neighbors"], p["n_steps"], p["terminal"]) == ("scflow", 10, 20, "4")
    assert p["bandwidth"] > 0


def test_transition_matrix_follows_branches(fitted):
    scflow.tl.transition_matrix(fitted, n_steps=20)
    mat = fitted.obsp["scflow_transitions"]
    day = fitted.obs["day"].to_numpy()
    up = (fitted.obs["branch"] == "up").to_numpy()
    assert mat.getnnz(1)[day < 4].tolist() == [30] * (3 * N_PER)
    to_up = np.asarray(mat[(day == 1) & up][:, (day == 2) & up].sum(1)).ravel()
    assert to_up.mean() > 0.8
    to_down = np.asarray(mat[(day == 1) & ~up][:, (day == 2) & ~up].sum(1)).ravel()
    assert to_down.mean() > 0.8


def test_transition_matrix_copy_key_added_and_h5ad(fitted, tmp_path):
    before = full_snapshot(fitted)
    out = scflow.tl.transition_matrix(fitted, n_neighbors=5, n_steps=10, key_added="T",
                                      copy=True)
    assert full_snapshot(fitted) == before
    assert "T" in out.obsp and "T_params" in out.uns
    out.write_h5ad(tmp_path / "t.h5ad")
    back = ad.read_h5ad(tmp_path / "t.h5ad")
    assert (back.obsp["T"] != out.obsp["T"]).nnz == 0
    assert back.uns["T_params"] == out.uns["T_params"]


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"n_neighbors": 0}, ValueError, "n_neighbors"),
    ({"n_neighbors": 2.5}, ValueError, "n_neighbors"),
    ({"n_neighbors": N_PER + 1}, ValueError, "n_neighbors"),
    ({"n_steps": 0}, ValueError, "n_steps"),
    ({"key": "nope"}, KeyError, "tl.fit"),
    ({"key_added": "a/b"}, ValueError, "key_added"),
])
def test_transition_matrix_rejects_bad_input(fitted, kwargs, exc, match):
    before = full_snapshot(fitted)
    with pytest.raises(exc, match=match):
        scflow.tl.transition_matrix(fitted, **kwargs)
    assert full_snapshot(fitted) == before


def test_transition_matrix_one_timepoint(fitted):
    one = fitted[fitted.obs["day"] == 0.0].copy()
    before = full_snapshot(one)
    with pytest.raises(ValueError, match="two"):
        scflow.tl.transition_matrix(one)
    assert full_snapshot(one) == before


def test_precomputed_kernel_reads_it(fitted):
    cr = pytest.importorskip("cellrank")
    scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=10)
    kernel = cr.kernels.PrecomputedKernel(fitted, obsp_key="scflow_transitions")
    np.testing.assert_allclose(np.asarray(kernel.transition_matrix.sum(1)).ravel(), 1.0)
