"""scflow.pl: figures from AnnData only; ax=, show=, return_fig=, save=; clear errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure

import scflow
from scflow.pl._fit import _cells_at

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 2000 and path.read_bytes()[:8] == PNG


def test_trajectories_figure_and_png(plotted, tmp_path):
    fig = scflow.pl.trajectories(plotted, return_fig=True, save=tmp_path / "t.png")
    assert isinstance(fig, Figure) and _is_png(tmp_path / "t.png")
    ax = fig.axes[0]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 60 * 10
    paths = plotted.uns["scflow"]["trajectories"]["paths"]
    np.testing.assert_allclose(lines[0].get_segments()[0][0], paths[0, 0, :2], rtol=1e-6)
    colours = lines[0].get_array()
    assert colours.min() > 0 and colours.max() < 4  # mid-interval times, in days
    grey = ax.collections[0]
    assert isinstance(grey, PathCollection) and len(grey.get_offsets()) == plotted.n_obs
    assert len(fig.axes) == 2  # with the colour bar


def test_trajectories_on_other_dims_basis_and_ax(plotted):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    out = scflow.pl.trajectories(plotted, dims=(1, 2), color_by_time=False, max_paths=7,
                                 ax=ax, show=False)
    assert out is ax
    segs = [c for c in ax.collections if isinstance(c, LineCollection)][0].get_segments()
    assert len(segs) == 7 * 10
    plotted.obsm["X_umap"] = plotted.obsm["X_pca"][:, [2, 0]] * 10.0
    fig = scflow.pl.trajectories(plotted, basis="umap", return_fig=True)
    lc = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)][0]
    pts = np.concatenate(lc.get_segments())
    lo, hi = plotted.obsm["X_umap"].min(0), plotted.obsm["X_umap"].max(0)
    assert (pts >= lo - 1e-6).all() and (pts <= hi + 1e-6).all()  # kNN means stay inside


def test_velocity_stream(plotted, tmp_path):
    fig = scflow.pl.velocity_stream(plotted, return_fig=True, save=tmp_path / "v.png",
                                    grid_size=20)
    assert isinstance(fig, Figure) and _is_png(tmp_path / "v.png")
    streams = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert streams and sum(len(s) for s in streams[0].get_segments()) > 50
    # at one time, on other dims
    fig = scflow.pl.velocity_stream(plotted, time=1.5, dims=(0, 2), return_fig=True)
    assert "day = 1.5" in fig.axes[0].get_title()


def test_loss(plotted, tmp_path):
    fig = scflow.pl.loss(plotted, smooth=10, return_fig=True, save=tmp_path / "l.png")
    assert _is_png(tmp_path / "l.png")
    raw, run = fig.axes[0].get_lines()
    np.testing.assert_array_equal(raw.get_ydata(), plotted.uns["scflow"]["loss"])
    assert len(run.get_ydata()) == 200 - 9
    assert fig.axes[0].get_yscale() == "log"


def test_holdout(plotted, tmp_path):
    pred = scflow.tl.predict(plotted, 2.0, from_time=1.0)
    fig = scflow.pl.holdout(pred, plotted, time=2.0, return_fig=True, save=tmp_path / "h.png")
    assert _is_png(tmp_path / "h.png")
    bg, real, predicted = fig.axes[0].collections
    assert len(bg.get_offsets()) == 180 and len(real.get_offsets()) == 60
    np.testing.assert_allclose(predicted.get_offsets(), pred.X[:, :2], rtol=1e-6)
    with pytest.raises(ValueError, match="timepoint"):
        scflow.pl.holdout(pred, plotted, time=3.0)


def test_leave_one_out_plot(tmp_path):
    df = pd.DataFrame({"method": ["otcfm", "otcfm", "static_ot", "static_ot"],
                       "holdout": [1, 1, 1, 1], "seed": [0, 1, 0, 1],
                       "w1": [0.3, 0.32, 0.4, 0.4], "floor": [0.25] * 4})
    fig = scflow.pl.leave_one_out(df, return_fig=True, save=tmp_path / "b.png")
    assert _is_png(tmp_path / "b.png")
    means = sorted(float(line.get_ydata()[0]) for line in fig.axes[0].get_lines()
                   if line.get_marker() == "o")
    np.testing.assert_allclose(means, [0.31, 0.4])
    fig = scflow.pl.leave_one_out(df, kind="bar", return_fig=True)
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    np.testing.assert_allclose(heights, [0.31, 0.4])


def test_error_budget_plot(tmp_path):
    df = pd.DataFrame({"holdout": [1.0, 2.0], "floor": [0.25, 0.3],
                       "static_ot": [0.5, 0.6], "timing_oracle": [0.45, 0.4],
                       "centre_oracle": [0.3, 0.35], "best_fraction": [0.5, 0.7]})
    fig = scflow.pl.error_budget(df, return_fig=True, save=tmp_path / "e.png")
    assert _is_png(tmp_path / "e.png")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]  # bars drawn series by series
    np.testing.assert_allclose(heights, [0.5, 0.6, 0.45, 0.4, 0.3, 0.35])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["centre oracle", "split-half W1", "static OT", "timing oracle"]
    floors = sorted(seg[0][1] for c in ax.collections for seg in c.get_segments()
                    if seg[0][0] != seg[1][0])  # horizontal: the floor, not an error bar
    np.testing.assert_allclose(floors, [0.25, 0.3])
    with pytest.raises(KeyError, match="tl.error_budget"):
        scflow.pl.error_budget(df.drop(columns="timing_oracle"))


def test_plots_say_which_tool_to_run_first(blobs):
    with pytest.raises(KeyError, match=r"tl\.fit"):
        scflow.pl.loss(blobs)
    with pytest.raises(KeyError, match=r"tl\.fit"):
        scflow.pl.velocity_stream(blobs)
    scflow.tl.fit(blobs, use_rep="X_pca", n_dims=2, n_steps=5)
    with pytest.raises(KeyError, match=r"tl\.trajectories"):
        scflow.pl.trajectories(blobs)
    with pytest.raises(KeyError, match=r"tl\.predict"):
        scflow.pl.holdout(blobs, blobs, time=1.0)


def test_plots_reject_bad_options(plotted):
    with pytest.raises(ValueError, match="dims"):
        scflow.pl.trajectories(plotted, dims=(0, 0))
    with pytest.raises(ValueError, match="dims"):
        scflow.pl.velocity_stream(plotted, dims=(0, 3))
    with pytest.raises(KeyError, match="basis"):
        scflow.pl.trajectories(plotted, basis="tsne")
    with pytest.raises(KeyError, match="basis"):
        scflow.pl.velocity_stream(plotted, basis="umap")
    with pytest.raises(KeyError, match="color"):
        scflow.pl.trajectories(plotted, color="nope")
    with pytest.raises(ValueError, match="kind"):
        scflow.pl.leave_one_out(pd.DataFrame({"method": ["a"], "holdout": [1], "w1": [1.0]}),
                                kind="pie")


def test_holdout_cells_of_close_times_without_a_fit():
    t = np.repeat([100000.0, 100001.0, 100002.0], [3, 4, 5])
    adata = ad.AnnData(np.zeros((len(t), 2), dtype=np.float32),
                       obs=pd.DataFrame({"t": t}, index=[f"c{i}" for i in range(len(t))]))
    np.testing.assert_array_equal(_cells_at(adata, "scflow", "t", 100001), t == 100001.0)
    with pytest.raises(ValueError, match="no cells at that time"):
        _cells_at(adata, "scflow", "t", 100000.5)
