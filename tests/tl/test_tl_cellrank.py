"""The README's CellRank call on a fit below the PCA width (runs where CellRank is installed:
``make cellrank`` builds that venv, with the versions in benchmarks/cellrank-requirements.txt)."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

import scflow

cr = pytest.importorskip("cellrank")


def test_velocity_kernel_reads_the_velocity(fitted):
    assert fitted.uns["scflow"]["params"]["n_dims"] < fitted.obsm["X_pca"].shape[1]
    sc.pp.neighbors(fitted, use_rep="X_pca", n_neighbors=10, random_state=0)
    scflow.tl.velocity(fitted)
    vk = cr.kernels.VelocityKernel(fitted, attr="obsm", xkey="X_pca", vkey="velocity_scflow")
    vk.compute_transition_matrix()
    t = vk.transition_matrix
    assert t.shape == (fitted.n_obs, fitted.n_obs)
    np.testing.assert_allclose(np.asarray(t.sum(1)).ravel(), 1.0, atol=1e-6)

    # downstream: the day-4 cells of each branch absorbing; day-2 cells should reach their own
    last = fitted.obs["day"] == 4.0
    g = cr.estimators.GPCCA(vk)
    g.set_terminal_states({b: list(fitted.obs_names[last & (fitted.obs["branch"] == b)])
                           for b in ("up", "down")})
    g.compute_fate_probabilities(solver="direct")  # 240 transient cells: exact solve
    fp = np.asarray(g.fate_probabilities)
    names = list(g.fate_probabilities.names)
    np.testing.assert_allclose(fp.sum(1), 1.0, atol=1e-4)
    day2 = (fitted.obs["day"] == 2.0).to_numpy()
    up = (fitted.obs["branch"] == "up").to_numpy()
    p_up = fp[:, names.index("up")]
    assert p_up[day2 & up].mean() > 0.7 > 0.3 > p_up[day2 & ~up].mean()
