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
    # day 4's two branches lie apart: no neighbour joins them, and it says so
    with pytest.warns(UserWarning, match="fall into 2 groups"):
        assert scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=20) is None
    mat = fitted.obsp["scflow_transitions"]
    assert sp.issparse(mat) and mat.format == "csr" and mat.shape == (fitted.n_obs,) * 2
    np.testing.assert_allclose(np.asarray(mat.sum(1)).ravel(), 1.0)
    assert (mat.data >= 0).all()
    day = fitted.obs["day"].to_numpy()
    days = np.unique(day)
    for i in range(fitted.n_obs):
        cols = mat.indices[mat.indptr[i]:mat.indptr[i + 1]]
        if day[i] == days[-1]:  # among the last timepoint's cells, itself included
            assert 10 <= len(cols) <= 20 and i in cols and (day[cols] == days[-1]).all()
        else:
            assert len(cols) == 10
            nxt = days[np.searchsorted(days, day[i]) + 1]
            assert (day[cols] == nxt).all()
    last = day == days[-1]
    block = mat[last][:, last].toarray()
    np.testing.assert_array_equal(block > 0, (block > 0).T)  # symmetric neighbourhoods
    p = fitted.uns["scflow_transitions_params"]
    assert (p["key"], p["n_neighbors"], p["n_steps"], p["terminal"], p["last"]) == (
        "scflow", 10, 20, "4", "neighbors")
    assert p["bandwidth"] > 0 and p["last_bandwidth"] > 0 and p["components"] == 2
    up = (fitted.obs["branch"] == "up").to_numpy()
    assert block[np.ix_(up[last], ~up[last])].sum() == 0  # the components are the branches
    scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=20, last="absorbing")
    mat = fitted.obsp["scflow_transitions"]
    for i in np.flatnonzero(last):
        assert list(mat.indices[mat.indptr[i]:mat.indptr[i + 1]]) == [i] and mat[i, i] == 1.0
    assert fitted.uns["scflow_transitions_params"]["components"] == int(last.sum())


def _absorption(mat: sp.csr_matrix, terminal: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """What CellRank's fate probabilities solve: (I - Q) X = R over the transient cells."""
    t = ~terminal
    q = mat[t][:, t].toarray()
    r = np.stack([np.asarray(mat[t][:, terminal & (groups == g)].sum(1)).ravel()
                  for g in np.unique(groups[terminal])], 1)
    return np.linalg.solve(np.eye(int(t.sum())) - q, r)


def test_only_some_last_cells_terminal_as_cellrank_needs(fitted):
    """Terminal states on a subset of the last timepoint (two thirds of each branch's day-4
    cells, the rest 'unknown'): the fate probabilities exist, sum to 1, and follow the
    branches; with absorbing last cells the same system is singular (CellRank's
    LinAlgError)."""
    day = fitted.obs["day"].to_numpy()
    branch = fitted.obs["branch"].astype(str).to_numpy()
    terminal = (day == 4.0) & (np.arange(fitted.n_obs) % 3 != 0)
    scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=20)
    fp = _absorption(fitted.obsp["scflow_transitions"], terminal, branch)
    assert np.isfinite(fp).all()
    np.testing.assert_allclose(fp.sum(1), 1.0, atol=1e-9)
    transient_branch = branch[~terminal]
    transient_day = day[~terminal]
    up = fp[:, list(np.unique(branch[terminal])).index("up")]
    split = np.isin(transient_day, [1.0, 2.0])
    assert up[split & (transient_branch == "up")].mean() > 0.8
    assert up[split & (transient_branch == "down")].mean() < 0.2
    scflow.tl.transition_matrix(fitted, n_neighbors=10, n_steps=20, last="absorbing")
    with pytest.raises(np.linalg.LinAlgError):
        _absorption(fitted.obsp["scflow_transitions"], terminal, branch)


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
    ({"last": "stay"}, ValueError, "last must be one of"),
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
    # terminal states on a subset of the last timepoint: CellRank's own solve
    day = fitted.obs["day"].to_numpy()
    branch = fitted.obs["branch"].astype(str).to_numpy()
    names = fitted.obs_names.to_numpy()
    g = cr.estimators.GPCCA(kernel)
    g.set_terminal_states({b: list(names[(day == 4.0) & (branch == b)
                                         & (np.arange(len(day)) % 3 != 0)])
                           for b in ("down", "up")})
    g.compute_fate_probabilities(solver="direct", use_petsc=False)
    fp = np.asarray(g.fate_probabilities)
    assert np.isfinite(fp).all()
    np.testing.assert_allclose(fp.sum(1), 1.0, atol=1e-6)
    split = np.isin(day, [1.0, 2.0])
    up = fp[:, list(g.fate_probabilities.names).index("up")]
    assert up[split & (branch == "up")].mean() > 0.8
