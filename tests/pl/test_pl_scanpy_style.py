"""Plots as a scanpy user expects them: color=, save= under figdir, PC1 axes, categorical
days, legends off the data, honest leave-one-out points, gene trends."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

import scflow
from scflow.pl._flow import project_velocity


def _legend_outside(ax) -> bool:
    """The legend's box lies right of the axes (off the data)."""
    fig = ax.figure
    fig.canvas.draw()
    box = ax.get_legend().get_window_extent()
    return box.x0 >= ax.get_window_extent().x1 - 1


# ----------------------------------------------------------------------------------- save

def test_save_true_and_suffix_go_to_scanpys_figdir(plotted, tmp_path):
    sc = pytest.importorskip("scanpy")
    old = sc.settings.figdir, sc.settings.file_format_figs
    sc.settings.figdir, sc.settings.file_format_figs = tmp_path / "figs", "png"
    try:
        scflow.pl.trajectories(plotted, save=True)
        scflow.pl.velocity_stream(plotted, save="_emt.pdf", grid_size=10)
        scflow.pl.loss(plotted, save="_x.png")
    finally:
        sc.settings.figdir, sc.settings.file_format_figs = old
    made = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert made == ["loss_x.png", "trajectories.png", "velocity_stream_emt.pdf"]
    assert (tmp_path / "figs" / "trajectories.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="save"):
        scflow.pl.loss(plotted, save=3)


def test_save_without_scanpy_uses_scflow_figdir(plotted, tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "scanpy")
    monkeypatch.setattr(scflow.settings, "figdir", tmp_path / "out")
    scflow.pl.trajectories(plotted, save="_a.png")
    assert (tmp_path / "out" / "trajectories_a.png").is_file()


# ------------------------------------------------------------------------- trajectories

def test_trajectories_color_by_obs_key_with_its_colours(plotted):
    plotted.uns["branch_colors"] = np.asarray(["#0000ff", "#ff0000"], dtype=object)
    fig = scflow.pl.trajectories(plotted, color="branch", return_fig=True)
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["down", "up"]
    assert legend.get_title().get_text() == "branch" and _legend_outside(ax)
    cells = {c.get_label(): c for c in ax.collections if c.get_label() in ("down", "up")}
    assert tuple(cells["up"].get_facecolor()[0][:3]) == (1.0, 0.0, 0.0)
    assert len(cells["up"].get_offsets()) == (plotted.obs["branch"] == "up").sum()
    assert ax.get_xlabel() == "PC1" and ax.get_ylabel() == "PC2"


def test_trajectories_days_are_categories_and_time_ticks_are_timepoints(plotted):
    fig = scflow.pl.trajectories(plotted, color="day", return_fig=True)
    ax, cbar_ax = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "4"]
    assert [t.get_text() for t in cbar_ax.get_xticklabels()] == ["0", "1", "2", "4"]
    # a gene: continuous, on a colour bar
    fig = scflow.pl.trajectories(plotted, color="g0", return_fig=True)
    assert len(fig.axes) == 3 and fig.axes[0].get_legend() is None


def test_trajectories_title_counts_computed_paths_and_reads_result(plotted):
    ax = scflow.pl.trajectories(plotted, max_paths=7, show=False)
    assert "7 of 60 cells drawn" in ax.get_title()
    scflow.tl.trajectories(plotted, n_steps=10, n_save=5, start_time=1.0,
                           key_added="from_day1")
    fig = scflow.pl.trajectories(plotted, result="from_day1", return_fig=True)
    segs = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)][0]
    assert len(segs.get_segments()) == 60 * 5
    with pytest.raises(KeyError, match="tl.trajectories"):
        scflow.pl.trajectories(plotted, result="nope")


# ---------------------------------------------------------------------- velocity stream

def test_velocity_stream_days_in_a_legend_not_a_colour_bar(plotted):
    fig = scflow.pl.velocity_stream(plotted, grid_size=15, return_fig=True)
    assert len(fig.axes) == 1  # no colour bar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "4"]
    assert _legend_outside(ax) and ax.get_xlabel() == "PC1"


def test_velocity_stream_on_umap(plotted):
    plotted.obsm["X_umap"] = plotted.obsm["X_pca"][:, [1, 0]] * 3.0
    fig = scflow.pl.velocity_stream(plotted, basis="umap", grid_size=15, return_fig=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "UMAP1"
    streams = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert streams and sum(len(s) for s in streams[0].get_segments()) > 50


def test_projected_velocity_points_where_the_field_does():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    v = np.tile([1.0, 0.5, 0.0], (400, 1)) + 0.1 * rng.normal(size=(400, 3))
    emb = x[:, [1, 0]] * 2.0  # a linear embedding: PC2, PC1
    p = project_velocity(x, v, emb, 30)
    truth = v[:, [1, 0]]
    cos = (p * truth).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(truth, axis=1)
    assert np.median(cos) > 0.9
    assert np.median(project_velocity(x, -v, emb, 30)[:, 1]) < 0  # reversed field, reversed


# ---------------------------------------------------------------------- leave one out

def test_leave_one_out_points_legend_labels_one_seed():
    df = pd.DataFrame({"method": ["otcfm", "static_ot"] * 2, "holdout": [1 / 3] * 2 + [1.0] * 2,
                       "seed": [0] * 4, "w1": [0.30, 0.41, 0.52, 0.55], "floor": [0.25] * 4})
    fig = scflow.pl.leave_one_out(df, labels={1 / 3: "8h", 1.0: "1d"}, return_fig=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8h", "1d"]
    assert _legend_outside(ax) and "one seed" in ax.get_legend().get_title().get_text()
    # one seed: no error bars (no vertical segments), and the axis fits the values
    vertical = [s for c in ax.collections if isinstance(c, LineCollection)
                for s in c.get_segments() if np.isclose(s[0][0], s[1][0])]
    assert not vertical
    assert ax.get_ylim()[0] > 0.15
    # several seeds: error bars
    two = pd.concat([df, df.assign(seed=1, w1=df["w1"] + 0.02)])
    ax = scflow.pl.leave_one_out(two, show=False)
    vertical = [s for c in ax.collections if isinstance(c, LineCollection)
                for s in c.get_segments() if np.isclose(s[0][0], s[1][0])]
    assert len(vertical) == 4 and [t.get_text() for t in ax.get_xticklabels()] == ["0.333",
                                                                                  "1"]


# ------------------------------------------------------------------------ gene trends

def test_gene_trends_plot_from_the_table_and_from_adata(plotted):
    scflow.tl.fate(plotted, "branch", n_steps=20)
    df = scflow.tl.gene_trends(plotted, ["g0", "g3", "g7"], groupby="fate", n_steps=20,
                               n_save=4)
    fig = scflow.pl.gene_trends(df, return_fig=True)
    axes = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in axes] == ["g0", "g3", "g7"]
    lines = {ln.get_label().split(" ")[0]: ln for ln in axes[1].get_lines()}
    assert set(lines) == set(df["group"])
    grp = sorted(lines)[0]
    want = df[(df["gene"] == "g3") & (df["group"] == grp)].sort_values("time")
    np.testing.assert_allclose(lines[grp].get_ydata(), want["mean"])
    np.testing.assert_allclose(lines[grp].get_xdata(), want["time"])
    assert _legend_outside(axes[2])
    assert axes[0].get_xlabel() == "day"  # from the table's attrs
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0", "1", "2", "4"]
    axes = scflow.pl.gene_trends(plotted, "g3", groups=[grp], show=False)
    assert len(axes) == 1 and len(axes[0].get_lines()) == 1
    assert axes[0].get_xlabel() == "day"
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["0", "1", "2", "4"]
    with pytest.raises(KeyError, match="g9"):
        scflow.pl.gene_trends(df, ["g9"])
    with pytest.raises(KeyError, match="tl.gene_trends"):
        scflow.pl.gene_trends(plotted, result="other")
    assert isinstance(scflow.pl.gene_trends(df, "g0", return_fig=True), Figure)


def test_gene_trends_band_stays_above_zero_when_clipped():
    df = pd.DataFrame({"gene": "g", "time": [0.0, 1.0, 2.0], "group": "all",
                       "mean": [0.1, 0.5, 1.0], "std": [0.4, 0.4, 0.4], "n_cells": 10,
                       "clipped": True})
    ax = scflow.pl.gene_trends(df, show=False)[0]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.0 and band[:, 1].max() == pytest.approx(1.4)
    ax = scflow.pl.gene_trends(df.assign(clipped=False), show=False)[0]
    assert ax.collections[0].get_paths()[0].vertices[:, 1].min() == pytest.approx(-0.3)


def test_holdout_legend_off_the_data(plotted):
    pred = scflow.tl.predict(plotted, 2.0, from_time=1.0)
    ax = scflow.pl.holdout(pred, plotted, time=2.0, show=False)
    assert _legend_outside(ax) and ax.get_xlabel() == "PC1"
