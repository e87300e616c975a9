"""Fixtures of the AnnData tools: small synthetic time courses and fits on them."""

from __future__ import annotations

import anndata as ad
import pytest
import scipy.sparse as sp
from _blobs import make_blobs, one_thread

import scflow


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def _blobs() -> ad.AnnData:
    return make_blobs()


@pytest.fixture
def blobs(_blobs) -> ad.AnnData:
    """Four timepoints (days 0, 1, 2, 4) x 60 cells, 40 genes, X_pca (5) and PCs."""
    return _blobs.copy()


@pytest.fixture
def blobs_sparse(_blobs) -> ad.AnnData:
    adata = _blobs.copy()
    x = adata.X.copy()
    x[x < 2.0] = 0.0
    adata.X = sp.csr_matrix(x)
    return adata


@pytest.fixture(scope="session")
def _fitted(_blobs) -> ad.AnnData:
    with one_thread():
        return scflow.tl.fit(_blobs, use_rep="X_pca", n_dims=3, n_steps=300, copy=True)


@pytest.fixture
def fitted(_fitted) -> ad.AnnData:
    """``blobs`` with an OT-CFM fit on the first 3 PCs under ``uns["scflow"]``."""
    return _fitted.copy()


@pytest.fixture(scope="session")
def _fitted_sb(_blobs) -> ad.AnnData:
    with one_thread():
        return scflow.tl.fit(_blobs, use_rep="X_pca", n_dims=3, method="sbcfm", n_steps=100,
                             sigma=1.0, key_added="sb", copy=True)


@pytest.fixture
def fitted_sb(_fitted_sb) -> ad.AnnData:
    """``blobs`` with an SB-CFM fit under ``uns["sb"]``."""
    return _fitted_sb.copy()

