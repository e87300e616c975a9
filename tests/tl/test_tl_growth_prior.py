"""``tl.growth_prior`` on real expression (LARRY's CoSpar subset) and ``tl.fit(growth_prior=)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scanpy as sc

import scflow
import scflow.datasets as D
from scflow.growth.prior import marker_genes


@pytest.fixture(scope="module")
def cospar(data_dir: Path):
    a = D.larry_cospar()
    sc.pp.log1p(a)  # normalised to 10,000 counts per cell in the file; the rates want logs
    return a


@pytest.mark.data
def test_progenitors_score_as_dividing_and_mature_cells_not(cospar):
    """A check against biology the code never saw: undifferentiated progenitors proliferate,
    mature monocytes and dendritic cells far less; the prior rate follows."""
    a = cospar.copy()
    before = set(a.obs.columns)
    scflow.tl.growth_prior(a, "mouse")
    assert set(a.obs.columns) - before == {"growth_prior", "growth_prior_proliferation",
                                           "growth_prior_apoptosis"}
    by = a.obs.groupby("state_info", observed=True)[
        ["growth_prior", "growth_prior_proliferation"]].mean()
    for mature in ("Monocyte", "Ccr7_DC"):
        assert by.loc["undiff", "growth_prior_proliferation"] > by.loc[
            mature, "growth_prior_proliferation"] + 0.2
        assert by.loc["undiff", "growth_prior"] > by.loc[mature, "growth_prior"] + 0.2
    assert np.isfinite(a.obs["growth_prior"]).all()
    rate = a.obs["growth_prior"].to_numpy()
    assert rate.min() >= 0.3 - 1.7 - 1e-9 and rate.max() <= 1.7 - 0.3 + 1e-9
    # the same scores from the lists passed by hand; copy=True leaves the input alone
    out = scflow.tl.growth_prior(cospar, None, copy=True,
                                 proliferation_genes=marker_genes("mouse", "proliferation"),
                                 apoptosis_genes=marker_genes("mouse", "apoptosis"))
    np.testing.assert_allclose(out.obs["growth_prior"], a.obs["growth_prior"])
    assert "growth_prior" not in cospar.obs


@pytest.mark.data
def test_bad_gene_lists_raise_before_anything_is_written(cospar):
    a = cospar.copy()
    cols = list(a.obs.columns)
    with pytest.raises(ValueError, match="proliferation_genes: 0 of its 3 genes are in "
                                         "adata.var_names"):
        scflow.tl.growth_prior(a, "mouse", proliferation_genes=["A", "B", "C"])
    with pytest.raises(ValueError, match="proliferation_genes: 0 of its 97 genes are in"):
        scflow.tl.growth_prior(a, "human")  # human symbols on mouse genes
    with pytest.raises(ValueError, match="organism=None needs proliferation_genes"):
        scflow.tl.growth_prior(a, None)
    with pytest.raises(ValueError, match="proliferation_genes must be a list"):
        scflow.tl.growth_prior(a, proliferation_genes="Mki67")
    with pytest.raises(ValueError, match="use_raw=True but adata.raw is None"):
        scflow.tl.growth_prior(a, use_raw=True)
    with pytest.raises(ValueError, match="layer='counts' is not in adata.layers"):
        scflow.tl.growth_prior(a, layer="counts")
    assert list(a.obs.columns) == cols


@pytest.mark.data
def test_fit_reads_the_prior_into_the_growth_aware_plan(cospar):
    a = cospar.copy()
    scflow.tl.growth_prior(a, "mouse")
    kw = dict(use_rep="X_pca", n_dims=10, n_steps=300, batch_size=64, hidden=(16, 16),
              progress=False, device="cpu")
    scflow.tl.fit(a, "day", method="uotcfm", growth_prior="growth_prior", key_added="prior",
                  **kw)
    scflow.tl.fit(a, "day", method="uotcfm", key_added="plain", **kw)
    assert a.uns["prior"]["params"]["growth_prior"] and not a.uns["plain"]["params"][
        "growth_prior"]
    assert np.abs(a.uns["prior"]["loss"] - a.uns["plain"]["loss"]).max() > 1e-4
    # the learned growth of the early cells (days 2 and 4) leans towards the prior
    for key in ("prior", "plain"):
        scflow.tl.growth(a, key=key)
    early = (a.obs["day"] < 6.0).to_numpy()
    prior = a.obs["growth_prior"].to_numpy()[early]
    r_with = np.corrcoef(a.obs["prior_growth_rate"].to_numpy()[early], prior)[0, 1]
    r_without = np.corrcoef(a.obs["plain_growth_rate"].to_numpy()[early], prior)[0, 1]
    assert r_with > r_without + 0.2, (r_with, r_without)
    with pytest.raises(ValueError, match="growth_prior is read by growth-aware methods"):
        scflow.tl.fit(a, "day", method="otcfm", growth_prior="growth_prior", **kw)
    with pytest.raises(ValueError, match="growth_prior must name a column of adata.obs"):
        scflow.tl.fit(a, "day", method="uotcfm", growth_prior="nope", **kw)
    with pytest.raises(ValueError, match="must hold numbers"):
        scflow.tl.fit(a, "day", method="uotcfm", growth_prior="state_info", **kw)


def test_few_marker_genes_warn_and_score_none_refuse(blobs):
    """As moscot: a list with a few measured genes is scored with a warning; a list with
    none measured is refused, before anything is written."""
    prolif = marker_genes("mouse", "proliferation")[:4]
    apopt = marker_genes("mouse", "apoptosis")[:12]
    names = list(blobs.var_names)
    names[:4], names[4:16] = prolif, apopt
    blobs.var_names = names
    with pytest.warns(UserWarning, match=r"proliferation_genes: only 4 of its 97 genes"):
        scflow.tl.growth_prior(blobs, "mouse")
    assert np.isfinite(blobs.obs["growth_prior"]).all()
    assert blobs.obs["growth_prior_proliferation"].std() > 0
    blobs.var_names = [f"x{i}" for i in range(blobs.n_vars)]
    cols = list(blobs.obs.columns)
    with pytest.raises(ValueError, match="proliferation_genes: 0 of its 97 genes"):
        scflow.tl.growth_prior(blobs, "mouse", key_added="again")
    assert list(blobs.obs.columns) == cols
