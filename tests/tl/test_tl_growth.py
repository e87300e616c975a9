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


def test_growth_rates_per_day_beside_the_prior(grown):
    """The fit learns d log m per model time (per timepoint); tl.growth writes it per unit of
    obs[time_key] by default. Spread the same three timepoints over days 0, 2, 4: the mass
    still doubles per timepoint, so per day it grows ln 2 / 2."""
    scflow.tl.growth(grown, units="model", key_added="m")
    per_step = grown.obs["m_rate"].to_numpy()
    assert per_step.mean() == pytest.approx(math.log(2), abs=0.1)
    assert grown.uns["m_params"]["units"] == "model"
    wide = grown.copy()
    wide.obs["day"] = wide.obs["day"] * 2.0
    wide.uns["scflow"]["timepoints"]["values"] = np.asarray([0.0, 2.0, 4.0])
    wide.uns["scflow"]["timepoints"]["labels"] = np.asarray(["0", "2", "4"], dtype=object)
    scflow.tl.growth(wide)
    np.testing.assert_allclose(wide.obs["scflow_growth_rate"], per_step / 2.0, rtol=1e-6)
    p = wide.uns["scflow_growth_params"]
    assert (p["units"], p["per"], p["key"]) == ("time", "day", "scflow")
    ax = scflow.pl.growth(wide, show=False)
    assert ax.figure.axes[-1].get_ylabel() == "growth rate (per day)"
    # categorical times have no day: "auto" is per model time, "time" is refused
    cat = grown.copy()
    cat.uns["scflow"]["timepoints"]["numeric"] = False
    scflow.tl.growth(cat)
    assert cat.uns["scflow_growth_params"]["units"] == "model"
    with pytest.raises(ValueError, match="units='time' needs numeric"):
        scflow.tl.growth(cat, units="time", key_added="t")
    with pytest.raises(ValueError, match="units must be one of"):
        scflow.tl.growth(grown, units="days")
    assert "t_rate" not in cat.obs


@pytest.mark.parametrize(("counts", "designed"), [
    ([577, 885, 788, 883], "rise and fall"),   # EMT's samples
    ([400, 400, 400, 400, 400], "same number"),
    ([85, 81, 84], "same number"),
    ([1429, 3781, 5788], None),                # mouse haematopoiesis: grows
    ([80, 160, 320], None),
    ([300, 200, 120], None),                   # dies back, monotone
])
def test_counts_that_look_like_a_sampling_design(counts, designed):
    from scflow.tl._guards import counts_look_designed

    why = counts_look_designed(counts)
    assert (why is None) if designed is None else (designed in why)


def test_fit_warns_when_counts_read_as_sizes_look_designed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    adata = ad.AnnData(np.zeros((150, 1), dtype=np.float32),
                       obs=pd.DataFrame({"day": np.repeat([0.0, 1.0, 2.0], 50)},
                                        index=[f"c{i}" for i in range(150)]))
    adata.obsm["X_emb"] = x
    kw = dict(use_rep="X_emb", method="uotcfm", n_steps=5, device="cpu")
    with pytest.warns(UserWarning, match="look like a sampling design"):
        scflow.tl.fit(adata, **kw)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        scflow.tl.fit(adata, mass=None, **kw)          # sizes not read: no warning
        scflow.tl.fit(_growing(), **kw)                # 80 / 160 / 320: growth


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


@pytest.mark.parametrize(("to_time", "kwargs", "match"), [
    (1e6, {}, r"to_time=1000000\.0 is too far outside the observed timepoints \(0 to 2\).* "
              r"between -2 and 4"),
    (1e3, {}, r"to_time=1000\.0 is too far outside"),
    (4.0, {"n_steps": 400_000}, r"n_steps=400000 per unit of model time over 4 units is "
                                r"1,600,000 steps for one push, more than 1,000,000"),
])
def test_growth_refuses_unbounded_pushes_before_any(grown, monkeypatch, to_time, kwargs, match):
    """``to_time`` far past the data (1e6 days: a bad_alloc before) or a step count that would
    run for hours: refused before a single cell is pushed."""
    from scflow.tl import _growth

    def never(*args, **kw):
        raise AssertionError("should fail before any push")

    monkeypatch.setattr(_growth, "push_weighted", never)
    with pytest.raises(ValueError, match=match):
        scflow.tl.growth(grown, to_time=to_time, **kwargs)
    assert "scflow_growth_rate" not in grown.obs


def test_growth_within_one_span_past_the_data_is_extrapolated(grown):
    scflow.tl.growth(grown, to_time=4.0, n_steps=20)
    desc = grown.obs["scflow_growth_descendants"].to_numpy()
    day = grown.obs["day"].to_numpy()
    assert np.isfinite(desc[day < 2]).all()
    assert np.median(desc[day == 0.0]) > np.median(desc[day == 1.0]) > 1.0


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
