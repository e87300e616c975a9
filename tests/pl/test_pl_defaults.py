"""Issue 32's plots, as a scanpy user meets them: the default basis, the colours scanpy keeps
for a label, point sizes that scale with the number of cells, time labels on colour bars,
and a probability map whose midpoint is not the background's grey."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from matplotlib import colormaps
from matplotlib.colors import to_rgb

import scflow
from scflow._adata.palette import palette
from scflow.pl._colors import BACKGROUND, PROBABILITY_CMAP


def _rgb(collection) -> tuple:
    return tuple(np.round(collection.get_facecolor()[0][:3], 4))


@pytest.fixture
def with_fate(plotted):
    plotted.obs["branch"] = plotted.obs["branch"].astype("category")
    scflow.tl.fate(plotted, "branch", n_steps=20)
    return plotted


# ---------------------------------------------------------------------------- basis

def test_fate_and_growth_default_to_the_fits_representation_then_umap(with_fate):
    # no basis given, no X_umap: the fit's use_rep (X_pca), where LARRY's X_emb is absent
    assert "X_emb" not in with_fate.obsm
    ax = scflow.pl.fate(with_fate, "up", show=False)
    assert ax.get_xlabel() == "PC1"
    with_fate.obsm["X_umap"] = with_fate.obsm["X_pca"][:, [1, 0]] * 2.0
    ax = scflow.pl.fate(with_fate, show=False)
    assert ax.get_xlabel() == "UMAP1"
    pushed = ax.collections[1].get_offsets()
    up = (with_fate.obs["fate"] == ax.collections[1].get_label()).to_numpy()
    np.testing.assert_allclose(pushed, with_fate.obsm["X_umap"][up][:, :2])
    # without a fit record either: a KeyError naming basis=
    del with_fate.obsm["X_umap"]
    with_fate.uns["fate"]["params"]["key"] = "gone"
    with pytest.raises(KeyError, match="basis="):
        scflow.pl.fate(with_fate, show=False)


# --------------------------------------------------------------------------- colours

def test_fate_colours_are_scanpys_colours_of_the_label(with_fate):
    # scanpy has not drawn 'branch' yet: scflow gives each label scanpy's default colour
    expect = dict(zip(["down", "up"], palette(2), strict=True))
    ax = scflow.pl.fate(with_fate, show=False)
    got = {c.get_label(): _rgb(c) for c in ax.collections[1:]}
    assert got == {k: tuple(np.round(to_rgb(v), 4)) for k, v in expect.items()}
    # scanpy draws it (and stores uns['branch_colors']): scflow follows, also after the fate
    with_fate.uns["branch_colors"] = np.asarray(["#2ca02c", "#9467bd"], dtype=object)
    ax = scflow.pl.fate(with_fate, show=False)
    got = {c.get_label(): _rgb(c) for c in ax.collections[1:]}
    assert got == {"down": tuple(np.round(to_rgb("#2ca02c"), 4)),
                   "up": tuple(np.round(to_rgb("#9467bd"), 4))}


def test_fate_colours_match_sc_pl_embedding_and_gene_trends(with_fate):
    sc.pl.embedding(with_fate, basis="pca", color="branch", show=False)
    stored = dict(zip(with_fate.obs["branch"].cat.categories, with_fate.uns["branch_colors"],
                      strict=True))
    # tl.fate wrote the fates' colours for obs['fate']; re-run so it reads scanpy's
    scflow.tl.fate(with_fate, "branch", n_steps=20)
    assert list(with_fate.uns["fate_colors"]) == [stored[f] for f in
                                                  with_fate.obs["fate"].cat.categories]
    df = scflow.tl.gene_trends(with_fate, ["g0"], groupby="fate", n_steps=8, n_save=4)
    for data in (df, with_fate):
        ax = scflow.pl.gene_trends(data, show=False)[0]
        lines = {ln.get_label().split(" (")[0]: ln.get_color() for ln in ax.get_lines()}
        assert {g: to_rgb(c) for g, c in lines.items()} == {
            g: to_rgb(stored[g]) for g in lines}


# ------------------------------------------------------------------------------ size

def test_point_size_scales_with_the_number_of_cells(with_fate, plotted):
    n = with_fate.n_obs
    ax = scflow.pl.fate(with_fate, "up", show=False)
    assert ax.collections[1].get_sizes()[0] == pytest.approx(120000 / n)
    small = with_fate[::2].copy()
    ax = scflow.pl.fate(small, "up", show=False)
    assert ax.collections[1].get_sizes()[0] == pytest.approx(2 * 120000 / n)
    ax = scflow.pl.fate(with_fate, "up", size=7.0, show=False)
    assert ax.collections[1].get_sizes()[0] == 7.0
    ax = scflow.pl.trajectories(plotted, show=False)
    assert ax.collections[0].get_sizes()[0] == pytest.approx(120000 / plotted.n_obs)


# -------------------------------------------------------------------------- colormap

def test_probability_midpoint_stands_apart_from_the_background():
    grey = np.asarray(to_rgb(BACKGROUND))

    def distance(cmap: str) -> float:
        return float(np.abs(np.asarray(colormaps[cmap](0.5)[:3]) - grey).max())

    # coolwarm's midpoint (#dddddd-ish) is within a few percent of lightgrey in every channel
    assert distance("coolwarm") < 0.06
    assert distance(PROBABILITY_CMAP) > 0.15


def test_fate_uses_the_diverging_map_by_default(with_fate):
    ax = scflow.pl.fate(with_fate, "up", show=False)
    assert ax.collections[1].get_cmap().name == PROBABILITY_CMAP


# ------------------------------------------------------------------------ time labels

def test_trajectories_colour_bar_reads_the_data_sets_time_labels(plotted):
    plotted.uns["scflow_dataset"] = {"time_values": np.asarray([0.0, 1.0, 2.0, 4.0]),
                                     "time_labels": np.asarray(["0h", "1d", "2d", "4d"])}
    fig = scflow.pl.trajectories(plotted, return_fig=True)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["0h", "1d", "2d", "4d"]
    # and in the timepoint legend of the stream plot
    ax = scflow.pl.velocity_stream(plotted, grid_size=10, show=False)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0h", "1d", "2d", "4d"]
    # labels that do not cover every timepoint are not used
    plotted.uns["scflow_dataset"]["time_values"] = np.asarray([0.0, 1.0, 2.0, 5.0])
    fig = scflow.pl.trajectories(plotted, return_fig=True)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["0", "1", "2", "4"]
