"""The README's CellRank call on a fit below the PCA width (runs where CellRank is installed:
``make cellrank`` builds that venv, with the versions in benchmarks/cellrank-requirements.txt)."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

import scflow

cr = pytest.importorskip("cellrank")


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_velocity_kernel_reads_the_velocity(fitted):
    assert fitted.uns["scflow"]["params"]["n_dims"] < fitted.obsm["X_pca"].shape[1]
    sc.pp.neighbors(fitted, use_rep="X_pca", n_neighbors=10, random_state=0)
    scflow.tl.velocity(fitted)
    vk = cr.kernels.VelocityKernel(fitted, attr="obsm", xkey="X_pca", vkey="velocity_scflow")
    vk.compute_transition_matrix()
    t = vk.transition_matrix
    assert t.shape == (fitted.n_obs, fitted.n_obs)
    np.testing.assert_allclose(np.asarray(t.sum(1)).ravel(), 1.0, atol=1e-6)

    # the chain steps along the flow: a cell's expected move under it points where its
    # velocity does (and against it for the backward kernel); measured 0.62 and -0.65
    x, v = fitted.obsm["X_pca"], fitted.obsm["velocity_scflow"]
    forward = _cosine(t @ x - x, v)
    assert forward.mean() > 0.3 and (forward > 0).mean() > 0.75
    back = cr.kernels.VelocityKernel(fitted, attr="obsm", xkey="X_pca", vkey="velocity_scflow",
                                     backward=True).compute_transition_matrix()
    assert _cosine(back.transition_matrix @ x - x, v).mean() < -0.3
