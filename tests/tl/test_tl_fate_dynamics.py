"""tl.fate must use the dynamics: a fate that never moves a cell fails here.

A stem where the cells of one fate stay near the start while the others leave: before the
two groups separate (day 0) every cell is nearest the labelled cells that stayed, so a read
that does not move cells (the no-motion null, or a ``tl.fate`` whose integration returns
its start points) calls every cell ``stay``. The truth is known: a cell's fate is the side
of the stem it starts on.
"""

from __future__ import annotations

from unittest import mock

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import rankdata

import scflow
from scflow.fate.core import soft_labels


def _auroc(score: np.ndarray, positive: np.ndarray) -> float:
    r = rankdata(score)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def _stem() -> ad.AnnData:
    """Days 0, 1, 2 x 300 cells in 2-D: cells starting above the stem's axis stay (drift
    up by 0.5 a day), the others leave (4 right, 1.5 down a day); 20% of day 2 labelled
    with the fate, ``obs["stay"]`` the truth of every cell; an OT-CFM fit."""
    from _blobs import one_thread

    rng = np.random.default_rng(0)
    xs, days, fate = [], [], []
    for d in (0, 1, 2):
        x0 = rng.normal(0, 0.3, (300, 2))
        stay = x0[:, 1] > 0
        move = np.where(stay[:, None], [0.0, 0.5], [4.0, -1.5]) * d
        xs.append(x0 + move + rng.normal(0, 0.1 * d, (300, 2)))
        days.append(np.full(300, float(d)))
        fate.append(stay)
    x, day, stay = np.concatenate(xs), np.concatenate(days), np.concatenate(fate)
    label = np.where(stay, "stay", "go").astype(object)
    label[~((day == 2) & (rng.random(len(x)) < 0.2))] = None
    adata = ad.AnnData(np.zeros((len(x), 1), np.float32), obs=pd.DataFrame(
        {"day": day, "label": pd.Categorical(label), "stay": stay},
        index=[f"c{i}" for i in range(len(x))]))
    adata.obsm["X_emb"] = x.astype(np.float32)
    with one_thread():
        scflow.tl.fit(adata, use_rep="X_emb", n_steps=500, random_state=0)
    return adata


@pytest.fixture
def stem(_stem) -> ad.AnnData:
    return _stem.copy()


def _no_motion(model, x0, t0, t1, **kw):
    """The mutation: an integration that ends where it starts."""
    return x0.to(torch.float32)


def _day0_auroc(adata, **kwargs) -> float:
    scflow.tl.fate(adata, "label", key_added="f", **kwargs)
    day0 = (adata.obs["day"] == 0).to_numpy()
    p = adata.obsm["f_probabilities"]["stay"].to_numpy()[day0]
    assert np.isfinite(p).all()
    return _auroc(p, adata.obs["stay"].to_numpy()[day0])


def test_default_fate_moves_cells_before_they_separate(stem):
    """The default call (chained transport) ranks the day-0 cells by their fate; the
    no-motion read, with the same labelled cells and k, cannot (it calls them all
    ``stay``)."""
    auc = _day0_auroc(stem)
    assert stem.uns["f"]["params"]["mode"] == "transport"
    k = stem.uns["f"]["params"]["n_neighbors"]
    x = torch.as_tensor(stem.obsm["X_emb"], dtype=torch.float64)
    lab = stem.obs["label"]
    ref = lab.notna().to_numpy()
    codes = torch.as_tensor((lab[ref] == "stay").to_numpy().astype(np.int64))
    day0 = (stem.obs["day"] == 0).to_numpy()
    null = soft_labels(x[day0], x[ref], codes, 2, k)[:, 1].numpy()
    null_auc = _auroc(null, stem.obs["stay"].to_numpy()[day0])
    assert null.mean() > 0.9  # nearest the cells that stayed: "stay" for all
    assert auc > 0.9 and null_auc < 0.65


@pytest.mark.parametrize("mode", ["pull", "ode"])
def test_a_fate_that_never_moves_cells_fails(stem, mode):
    """The same check with the integration replaced by one that returns its start points
    (pull: late cells pulled back nowhere; ode: end point = start point) fails, and passes
    without it: the check above can tell a fate that moves cells from one that does not."""
    assert _day0_auroc(stem, mode=mode) > 0.85
    with mock.patch("scflow.fate.pull.integrate", _no_motion), \
            mock.patch("scflow.fate.core.integrate", _no_motion):
        assert _day0_auroc(stem, mode=mode) < 0.65


def test_a_default_that_never_moves_cells_fails(stem):
    """The default (transport) with its plans replaced by no motion (each cell read where
    it is, among the labelled cells: the no-motion null) fails the same check."""

    def read_in_place(xs, ref, codes, n_fates, *, n_neighbors, **kw):
        return soft_labels_many(xs[0], ref, codes, n_fates, n_neighbors)

    from scflow.fate.core import soft_labels_many

    assert _day0_auroc(stem) > 0.9
    with mock.patch("scflow.tl._fate_compute.transport_fate", read_in_place):
        assert _day0_auroc(stem) < 0.65


@pytest.mark.parametrize("mode", ["pull", "ode", "transport"])
def test_readouts_are_tl_fate_at_each_k(stem, mode):
    """``fate_readouts`` (one integration read at several k, for benchmark tables) gives
    exactly what ``tl.fate`` gives at each of them, "auto" included."""
    from scflow.tl._fate_compute import fate_readouts

    before = stem.copy()
    out = fate_readouts(stem, "label", (3, 10, "auto"), mode=mode, n_steps=30)
    assert set(stem.obs) == set(before.obs) and set(stem.obsm) == set(before.obsm)
    for k, (prob, used) in out.items():
        scflow.tl.fate(stem, "label", mode=mode, n_neighbors=k, n_steps=30, key_added="f")
        assert stem.uns["f"]["params"]["n_neighbors"] == used
        np.testing.assert_allclose(prob.to_numpy(), stem.obsm["f_probabilities"].to_numpy(),
                                   rtol=1e-6, atol=1e-9)


def test_soft_labels_many_is_soft_labels_at_each_k():
    from scflow.fate.core import soft_labels_many

    g = torch.Generator().manual_seed(0)
    pts, ref = torch.randn(50, 2, generator=g), torch.randn(40, 2, generator=g)
    codes = torch.randint(0, 3, (40,), generator=g)
    many = soft_labels_many(pts, ref, codes, 3, [1, 7, 40, 99])
    for i, k in enumerate((1, 7, 40, 40)):
        torch.testing.assert_close(many[i], soft_labels(pts, ref, codes, 3, k))
