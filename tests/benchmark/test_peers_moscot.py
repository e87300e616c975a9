"""moscot and CellRank as ``benchmarks/peers.py`` calls them (runs where they are installed:
``make peers`` builds that venv, with the versions in benchmarks/peers-requirements.txt)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moscot")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import peers_moscot  # noqa: E402

from scflow.metrics import wasserstein  # noqa: E402


def test_moscot_interpolation_lands_between_the_neighbours():
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(120, 2))
    shift = np.array([4.0, -2.0])
    x1 = rng.normal(size=(150, 2)) + shift
    truth = rng.normal(size=(150, 2)) + shift / 4  # a quarter of the way
    clouds, facts = peers_moscot.interpolate(x0, x1, 0.0, 2.0, 0.25, epsilon=0.05,
                                             seeds=(0, 1))
    assert facts["converged"] and facts["epsilon"] == 0.05
    assert [c.shape for c in clouds] == [(120, 2), (120, 2)]
    assert not np.array_equal(clouds[0], clouds[1])  # the sampling seed matters
    # near the truth, far from either neighbour (a random pairing would move the mean
    # just as well, so compare against the neighbours, not the mean alone)
    assert wasserstein(clouds[0], truth) < 0.5 * wasserstein(x0, truth)
    np.testing.assert_allclose(clouds[0].mean(0), shift / 4, atol=0.35)


def test_moscot_pull_gives_fate_probabilities():
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(1)
    early = rng.normal(size=(60, 2)) * [0.2, 1.0]
    up = early[:, 1] > 0
    late = early + np.where(up[:, None], [2.0, 3.0], [2.0, -3.0]) + rng.normal(size=(60, 2)) * .1
    obs = pd.DataFrame({"day": np.r_[np.zeros(60), np.ones(60)],
                        "label": pd.Categorical([None] * 60 + list(np.where(up, "A", "B")))},
                       index=[f"c{i}" for i in range(120)])
    adata = ad.AnnData(np.zeros((120, 1), dtype=np.float32), obs=obs)
    adata.obsm["X_emb"] = np.concatenate([early, late])
    tp, facts = peers_moscot.temporal_problem(adata, "day", "X_emb", epsilon=0.05)
    assert facts["all_converged"]
    probs = peers_moscot.pull_fates(tp, "label", ["A", "B"], 0.0, 1.0)
    assert probs.shape == (60, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert (probs["A"].to_numpy()[up] > 0.5).mean() > 0.9
    assert (probs["A"].to_numpy()[~up] < 0.5).mean() > 0.9


def test_moscot_interpolation_batch_changes_memory_not_the_cells():
    rng = np.random.default_rng(2)
    x0, x1 = rng.normal(size=(90, 2)), rng.normal(size=(110, 2)) + 3.0
    (big,), f_big = peers_moscot.interpolate(x0, x1, 0.0, 1.0, 0.5, epsilon=0.05, seeds=(4,))
    (small,), f_small = peers_moscot.interpolate(x0, x1, 0.0, 1.0, 0.5, epsilon=0.05,
                                                 seeds=(4,), batch_size=3)
    assert f_big["interpolation_batch_size"] == [256]
    assert f_small["interpolation_batch_size"][0] in (2, 3)  # 2 where 3 leaves one row last
    np.testing.assert_allclose(small, big, rtol=1e-6, atol=1e-6)
    (other,), _ = peers_moscot.interpolate(x0, x1, 0.0, 1.0, 0.5, epsilon=0.05, seeds=(5,),
                                           batch_size=3)
    assert not np.allclose(other, big)  # the seed, not the batch, picks the cells
