"""tl.fit(method="uotcfm"), tl.growth, weighted predictions and paths, pl.growth."""

from __future__ import annotations

import math

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest

import scflow

matplotlib.use("Agg")


def _growing(seed: int = 0) -> ad.AnnData:
    """The same 2-D Gaussian at days 0, 1, 2 with 80, 160, 320 cells: it only doubles."""
    rng = np.random.default_rng(seed)
    sizes = (80, 160, 320)
    x = np.concatenate([rng.normal(size=(n, 2)) for n in sizes])
    obs = pd.DataFrame({"day": np.repeat([0.0, 1.0, 2.0], sizes)},
                       index=[f"c{i}" for i in range(len(x))])
    adata = ad.AnnData(np.zeros((len(x), 1), dtype=np.float32), obs=obs)
    adata.obsm["X_emb"] = x
    return adata


@pytest.fixture(scope="module")
def _grown() -> ad.AnnData:
    adata = _growing()
    scflow.tl.fit(adata, use_rep="X_emb", method="uotcfm", n_steps=600, device="cpu",
                  whiten=False)
    return adata


@pytest.fixture
def grown(_grown) -> ad.AnnData:
    return _grown.copy()


def test_fit_records_growth(grown):
    params = grown.uns["scflow"]["params"]
    assert params["method"] == "uotcfm"
    assert params["growth_from"] == "counts"
    np.testing.assert_allclose(params["masses"], [0.25, 0.5, 1.0])
    assert scflow.load_model(grown).has_growth


def test_growth_rates_and_descendants(grown):
    scflow.tl.growth(grown, to_time=2.0)
    rate = grown.obs["scflow_growth_rate"].to_numpy()
    assert rate.mean() == pytest.approx(math.log(2), abs=0.1)
    desc = grown.obs["scflow_growth_descendants"].to_numpy()
    day = grown.obs["day"].to_numpy()
    assert np.isnan(desc[day == 2.0]).all()
    assert np.median(desc[day == 0.0]) == pytest.approx(4.0, rel=0.25)
    assert np.median(desc[day == 1.0]) == pytest.approx(2.0, rel=0.25)


def test_predict_carries_weights_and_trajectories_mass(grown):
    pred = scflow.tl.predict(grown, 1.0, from_time=0.0)
    assert pred.n_obs == 80
    assert pred.obs["weight"].median() == pytest.approx(2.0, rel=0.2)
    same = scflow.tl.predict(grown, 0.0)
    assert (same.obs["weight"] == 1.0).all()
    scflow.tl.trajectories(grown, start_time=0.0, end_time=2.0, n_steps=20, n_save=4)
    traj = grown.uns["scflow"]["trajectories"]
    assert traj["log_weights"].shape == (5, 80)
    assert np.all(traj["log_weights"][0] == 0)
    assert np.median(np.exp(traj["log_weights"][-1])) == pytest.approx(4.0, rel=0.25)


def test_growth_without_masses_is_learned_from_shape():
    adata = _growing()
    scflow.tl.fit(adata, use_rep="X_emb", method="uotcfm", n_steps=300, device="cpu",
                  whiten=False, mass=None)
    assert adata.uns["scflow"]["params"]["growth_from"] == "shape"
    scflow.tl.growth(adata)
    # equal masses: no net growth of the same shape
    assert abs(adata.obs["scflow_growth_rate"].mean()) < 0.1


def test_growth_bad_input(grown):
    adata = _growing()
    with pytest.raises(ValueError, match="mass must hold one finite number"):
        scflow.tl.fit(adata, use_rep="X_emb", method="uotcfm", mass=[1.0, 2.0], n_steps=5)
    with pytest.raises(ValueError, match=r"mass is read by methods .*\['uotcfm'\].*'otcfm'"):
        scflow.tl.fit(adata, use_rep="X_emb", mass=None, n_steps=5)
    assert "scflow" not in adata.uns
    scflow.tl.fit(adata, use_rep="X_emb", n_steps=5, device="cpu")
    with pytest.raises(ValueError, match="tl.growth needs a growth-aware fit"):
        scflow.tl.growth(adata)
    with pytest.raises(KeyError):
        scflow.tl.growth(adata, key="nothing")
    before = set(grown.obs.columns)
    with pytest.raises(ValueError, match="to_time"):
        scflow.tl.growth(grown, to_time="soon")
    assert set(grown.obs.columns) == before


def test_growth_copy(grown):
    out = scflow.tl.growth(grown, copy=True, key_added="g")
    assert "g_rate" in out.obs and "g_rate" not in grown.obs


def test_pl_growth(grown):
    with pytest.raises(KeyError, match="run scflow.tl.growth"):
        scflow.pl.growth(grown, show=False)
    scflow.tl.growth(grown, to_time=2.0)
    fig = scflow.pl.growth(grown, basis="emb", return_fig=True, show=False)
    assert fig.axes[0].collections[1].get_array().shape == (grown.n_obs,)
    ax = scflow.pl.growth(grown, what="descendants", show=False)
    assert ax.collections[1].get_array().shape == (240,)
    with pytest.raises(ValueError, match="what must be"):
        scflow.pl.growth(grown, what="mass")


def test_tl_leave_one_out_scores_what_tl_predict_weighs():
    """tl.leave_one_out reaches uotcfm through the registry: its row is the W1 of the cells
    that tl.fit + tl.predict push to the held-out day, weighted by obs['weight']."""
    from scflow.metrics import wasserstein

    adata = _growing(1)
    opts = dict(use_rep="X_emb", whiten=False, n_steps=150, batch_size=64, reg_m=2.0,
                device="cpu")
    df = scflow.tl.leave_one_out(adata, methods=("uotcfm", "static_mix"), seeds=(0,),
                                 **opts)
    assert list(df["method"]) == ["uotcfm", "static_mix"]
    scflow.tl.fit(adata, method="uotcfm", holdout=1.0, random_state=0, **opts)
    assert adata.uns["scflow"]["params"]["reg_m"] == 2.0
    pred = scflow.tl.predict(adata, 1.0, from_time=0.0)
    real = adata.obsm["X_emb"][adata.obs["day"].to_numpy() == 1.0]
    weights = pred.obs["weight"].to_numpy()
    assert weights.std() > 0
    w1 = wasserstein(pred.obsm["X_emb"], real, a=weights)
    assert df.set_index("method").loc["uotcfm", "w1"] == pytest.approx(w1, rel=1e-4)
    assert w1 != pytest.approx(wasserstein(pred.obsm["X_emb"], real), rel=1e-4)


def test_learned_growth_is_higher_on_the_branch_that_grows():
    """Two branches from one start: the upper one doubles every day, the lower one keeps
    its size (cells per day in proportion). The learned rate, read at every cell's own time,
    is higher on the upper branch at day 1 (by 0.25 of the true ln 2 here: ``reg_m`` holds
    every cell towards the population's mean growth); a field that learned no growth
    differences (every rate equal) fails this."""
    rng = np.random.default_rng(0)
    xs, days, upper = [], [], []
    for d in (0, 1, 2):
        n_up, n_low = 40 * 2 ** d, 40
        up = np.concatenate([np.ones(n_up, bool), np.zeros(n_low, bool)])
        centre = np.stack([np.full(len(up), d), np.where(up, d, -d)], 1).astype(float)
        xs.append(centre + rng.normal(0, 0.3, (len(up), 2)))
        days.append(np.full(len(up), float(d)))
        upper.append(up)
    adata = ad.AnnData(np.zeros((sum(map(len, xs)), 1), dtype=np.float32),
                       obs=pd.DataFrame({"day": np.concatenate(days)}))
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.obsm["X_emb"] = np.concatenate(xs)
    upper = np.concatenate(upper)
    scflow.tl.fit(adata, use_rep="X_emb", method="uotcfm", n_steps=600, device="cpu",
                  random_state=0)
    scflow.tl.growth(adata)
    rate = adata.obs["scflow_growth_rate"].to_numpy()
    day1 = (adata.obs["day"] == 1.0).to_numpy()
    gap = rate[day1 & upper].mean() - rate[day1 & ~upper].mean()
    assert 0.1 < gap < math.log(2) + 0.2
    # most growing cells above most others (AUROC; 0.80 here)
    hi, lo = rate[day1 & upper], rate[day1 & ~upper]
    assert (hi[:, None] > lo[None, :]).mean() > 0.7


def test_rate_per_time_is_the_rate_in_the_units_of_the_days():
    """Days 0, 2, 5 in index time: a unit of model time is 2 days, then 3 (the last
    timepoint reads the interval before it); the rate per day is the model rate over that."""
    adata = _growing()
    adata.obs["day"] = adata.obs["day"].map({0.0: 0.0, 1.0: 2.0, 2.0: 5.0})
    scflow.tl.fit(adata, use_rep="X_emb", method="uotcfm", n_steps=50, device="cpu")
    scflow.tl.growth(adata)
    rate = adata.obs["scflow_growth_rate"].to_numpy()
    per_day = adata.obs["scflow_growth_rate_per_time"].to_numpy()
    day = adata.obs["day"].to_numpy()
    np.testing.assert_allclose(per_day[day == 0.0], rate[day == 0.0] / 2)
    np.testing.assert_allclose(per_day[day == 2.0], rate[day == 2.0] / 3)
    np.testing.assert_allclose(per_day[day == 5.0], rate[day == 5.0] / 3)
    labelled = _growing()
    labelled.obs["day"] = labelled.obs["day"].map({0.0: "a", 1.0: "b", 2.0: "c"})
    labelled.obs["day"] = pd.Categorical(labelled.obs["day"], ordered=True)
    scflow.tl.fit(labelled, use_rep="X_emb", method="uotcfm", n_steps=5, device="cpu")
    scflow.tl.growth(labelled)
    assert "scflow_growth_rate_per_time" not in labelled.obs  # no units to convert to
