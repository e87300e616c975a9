"""Fixtures of the plot tests: a small fitted time course with its results (headless)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import anndata as ad
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import scflow  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "_scflow_test_blobs", Path(__file__).resolve().parents[1] / "tl" / "_blobs.py")
_blobs_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_blobs_mod)
make_blobs, one_thread = _blobs_mod.make_blobs, _blobs_mod.one_thread


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def _plotted() -> ad.AnnData:
    adata = make_blobs()
    with one_thread():
        scflow.tl.fit(adata, use_rep="X_pca", n_dims=3, n_steps=200)
        scflow.tl.trajectories(adata, n_steps=20, n_save=10)
    return adata


@pytest.fixture
def plotted(_plotted) -> ad.AnnData:
    """Blobs with a fit (3 PCs) and trajectories of the 60 day-0 cells (11 states)."""
    return _plotted.copy()


@pytest.fixture
def blobs() -> ad.AnnData:
    return make_blobs()
