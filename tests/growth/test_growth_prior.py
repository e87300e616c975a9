"""The gene-score growth prior: marker lists, the birth / death logistic, the prior in the plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import blobs

import scflow
from scflow import fit_flow
from scflow.couplings.growth import GrowthOT
from scflow.flow.timecourse import TimeCourse
from scflow.growth.prior import (
    BIRTH,
    DEATH,
    logistic_rate,
    marker_genes,
    prior_growth_rate,
)


def test_marker_lists_are_shipped_sorted_and_checked():
    sizes = {(o, k): len(marker_genes(o, k)) for o in ("mouse", "human")
             for k in ("proliferation", "apoptosis")}
    assert sizes == {("mouse", "proliferation"): 97, ("mouse", "apoptosis"): 193,
                     ("human", "proliferation"): 97, ("human", "apoptosis"): 161}
    mouse = marker_genes("mouse", "proliferation")
    assert mouse == sorted(mouse) and "Mki67" in mouse and "Top2a" in mouse
    assert "MKI67" in marker_genes("human", "proliferation")
    with pytest.raises(ValueError, match="organism must be one of"):
        marker_genes("zebrafish", "apoptosis")
    with pytest.raises(ValueError, match="kind must be one of"):
        marker_genes("mouse", "cycling")


def test_logistic_rate_closed_form():
    p = dict(high=1.7, low=0.3, center=0.25, width=0.5)
    r = logistic_rate(np.array([0.25, -50.0, 50.0, 0.25 + 0.5 / 4]), **p)
    np.testing.assert_allclose(r[:3], [1.0, 0.3, 1.7], atol=1e-12)
    np.testing.assert_allclose(r[3], 0.3 + 1.4 / (1 + np.exp(-1.0)))  # one unit of 4 / width
    # birth minus death at given scores, both sides of the logistic
    s_p, s_a = np.array([0.25, 2.0]), np.array([0.1, -2.0])
    expect = logistic_rate(s_p, **BIRTH) - logistic_rate(s_a, **DEATH)
    np.testing.assert_allclose(prior_growth_rate(s_p, s_a), expect)
    np.testing.assert_allclose(prior_growth_rate(s_p, s_a)[0], 1.0 - 1.0)
    assert prior_growth_rate(s_p, s_a)[1] > 1.3  # proliferating, not dying
    # a missing score contributes the rate at zero, the same for every cell
    np.testing.assert_allclose(prior_growth_rate(s_p, None),
                               logistic_rate(s_p, **BIRTH) - logistic_rate(0.0, **DEATH))
    with pytest.raises(ValueError, match="proliferation or an apoptosis"):
        prior_growth_rate(None, None)
    with pytest.raises(ValueError, match="width must be > 0"):
        logistic_rate(s_p, high=1, low=0, center=0, width=0)


def test_prior_splits_the_mass_of_identical_early_cells():
    """Two early cells at the same state see the same costs: only the prior tells them
    apart, so their rows carry mass in the ratio exp(prior_0 - prior_1), whatever reg_m."""
    x0 = torch.zeros(2, 2, dtype=torch.float64)
    x1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.5, -1.0]], dtype=torch.float64)
    for reg_m in (0.3, 3.0):
        ot = GrowthOT(reg=0.1, reg_m=reg_m)
        plan, log_r = ot.plan(x0, x1, (1.0, 2.0), prior=torch.tensor([np.log(3.0), 0.0]))
        rows = plan.sum(1)
        np.testing.assert_allclose(float(rows[0] / rows[1]), 3.0, rtol=1e-8)
        np.testing.assert_allclose(float(log_r[0] - log_r[1]), np.log(3.0), atol=1e-8)
        np.testing.assert_allclose(plan.sum(0).numpy(), np.full(3, 2.0 / 3), rtol=1e-6)
        none, _ = ot.plan(x0, x1, (1.0, 2.0))
        np.testing.assert_allclose(none.sum(1).numpy(), [1.0, 1.0], rtol=1e-8)


def test_prior_moves_rows_towards_it_only_through_differences():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(30, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(40, 2, generator=g, dtype=torch.float64) + 1.0
    prior = torch.linspace(-1, 1, 30, dtype=torch.float64)
    ot = GrowthOT(reg=0.1, reg_m=1.0)
    _, log_r0 = ot.plan(x0, x1, (1.0, 1.5))
    _, log_r = ot.plan(x0, x1, (1.0, 1.5), prior=prior)
    _, shifted = ot.plan(x0, x1, (1.0, 1.5), prior=prior + 5.0)
    np.testing.assert_allclose(shifted.numpy(), log_r.numpy(), atol=1e-8)
    _, zero = ot.plan(x0, x1, (1.0, 1.5), prior=torch.zeros(30, dtype=torch.float64))
    np.testing.assert_allclose(zero.numpy(), log_r0.numpy(), atol=1e-8)
    # the prior's trend shows in the growth: more for the cells the prior favours
    gain = (log_r - log_r0).numpy()
    assert np.corrcoef(gain, prior.numpy())[0, 1] > 0.9
    with pytest.raises(ValueError, match="prior must hold one finite log-growth per early"):
        ot.plan(x0, x1, (1.0, 1.5), prior=prior[:5])


def _course() -> TimeCourse:
    return blobs([(0, 0), (2, 0), (4, 1)], [60, 90, 120], scale=0.4, whiten=True)


@pytest.mark.parametrize("coupling", ["global", pytest.param("minibatch",
                                                          marks=pytest.mark.slow)])
def test_fit_growth_flow_takes_the_prior(coupling):
    tc = _course()
    kw = dict(n_steps=40, batch_size=32, hidden=(16, 16), progress=False, coupling=coupling,
              random_state=1)
    zeros = [np.zeros(len(x)) for x in tc.xs]
    plain = fit_flow(tc, "uotcfm", **kw)
    flat = fit_flow(tc, "uotcfm", growth_prior=zeros, **kw)
    # a flat prior is no prior: the same draws, plans and losses
    np.testing.assert_allclose(flat.meta["loss"], plain.meta["loss"], rtol=1e-6)
    assert flat.meta["growth_prior"] and not plain.meta["growth_prior"]
    # a prior that favours the cells on one side changes the growth targets
    tilted = [np.asarray(x[:, 1].numpy(), dtype=np.float64) * 2 for x in tc.xs]
    other = fit_flow(tc, "uotcfm", growth_prior=tilted,
                                                prior_times=[0.0, 2.0, 4.0], **kw)
    assert np.abs(other.meta["growth_loss"] - plain.meta["growth_loss"]).max() > 1e-4
    with pytest.raises(ValueError, match=r"growth_prior\[1\] must hold one finite rate"):
        fit_flow(tc, "uotcfm", growth_prior=[zeros[0], zeros[0], zeros[2]],
                                            **kw)
    with pytest.raises(ValueError, match="one array of rates per timepoint"):
        fit_flow(tc, "uotcfm", growth_prior=zeros[:2], **kw)
    with pytest.raises(ValueError, match="prior_times must hold one finite, increasing"):
        fit_flow(tc, "uotcfm", growth_prior=zeros, prior_times=[0, 2, 1],
                                            **kw)


def test_balanced_methods_refuse_a_prior():
    with pytest.raises(ValueError, match="growth_prior is read by growth-aware methods only"):
        scflow.fit_flow(_course(), "otcfm", n_steps=1, growth_prior=[])
