"""pl.fate draws what tl.fate wrote, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

import scflow


@pytest.fixture
def with_fate(plotted):
    plotted.obs["branch"] = plotted.obs["branch"].astype("category")
    plotted.uns["branch_colors"] = np.asarray(["#0000ff", "#ff0000"], dtype=object)
    scflow.tl.fate(plotted, "branch", n_steps=20)
    return plotted


def test_probability_of_one_fate(with_fate):
    fig = scflow.pl.fate(with_fate, "up", basis="pca", return_fig=True)
    ax = fig.axes[0]
    grey, pushed = ax.collections
    p = with_fate.obsm["fate_probabilities"]["up"].dropna().to_numpy()
    np.testing.assert_allclose(pushed.get_array(), p)
    assert len(grey.get_offsets()) == with_fate.n_obs - len(p)
    assert fig.axes[1].get_ylabel() == "P(up)" and ax.get_xlabel() == "PC1"


def test_most_probable_fate_in_the_labels_colours(with_fate):
    ax = scflow.pl.fate(with_fate, basis="X_pca", show=False)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["down", "up"]
    colours = {c.get_label(): tuple(c.get_facecolor()[0][:3]) for c in ax.collections[1:]}
    assert colours == {"down": (0.0, 0.0, 1.0), "up": (1.0, 0.0, 0.0)}


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((), {"key": "nope"}, "tl.fate"),
    (("sideways",), {}, "sideways"),
    ((), {"basis": "tsne"}, "tsne"),
])
def test_bad_input(with_fate, args, kwargs, match):
    with pytest.raises(KeyError, match=match):
        scflow.pl.fate(with_fate, *args, **kwargs)
