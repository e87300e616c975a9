"""uotcfm's pairs and growth targets: minibatch plans against closed forms, the coupling
rule shared with the balanced methods, and a short minibatch training."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import scflow
import scflow.training.loop
from scflow import fit_flow, metrics
from scflow.couplings import ConvergenceWarning
from scflow.couplings.growth import GrowthOT
from scflow.flow.integrate import integrate
from scflow.flow.model import FlowModel
from scflow.flow.timecourse import TimeCourse
from scflow.growth.data import MinibatchGrowthInterval, growth_batch, warn_unconverged
from scflow.paths import LinearPath

SPAN = 2.0


def _targets(x0, x1, mass, n_draws=50, batch_size=128, seed=0):
    """Growth targets ``log r / span`` of ``n_draws`` minibatch steps, times the span."""
    iv = MinibatchGrowthInterval(x0, x1, 0.0, SPAN, GrowthOT(reg=0.1, reg_m=3.0), mass)
    g = torch.Generator().manual_seed(seed)
    path = LinearPath(0.0)
    gts = [growth_batch([iv], path, batch_size, g)[3] for _ in range(n_draws)]
    assert iv.n_solves == n_draws and iv.n_unconverged == 0
    return torch.cat(gts).double() * SPAN


def _check_closed_form(log_r: torch.Tensor, expected: float) -> None:
    """The drawn targets average ``expected = log(m1 / m0)`` up to the size bias of drawing
    pairs by plan mass.

    In every minibatch the plan's columns carry the late mass exactly, so the early cells'
    ``r_i`` average ``m1 / m0`` exactly; pairs are drawn in proportion to ``r_i``, so the
    mean of ``log r`` over drawn pairs is ``E[r log r] / E[r] >= log E[r]`` (Jensen), above
    the closed form by ``Var(log r) / 2`` to second order (exactly so for log-normal ``r``).
    The test allows ``[-4 SE, Var(log r) + 4 SE]`` (twice the second-order gap, plus four
    Monte-Carlo standard errors) and, in absolute terms, 0.05 (7% of ln 2).
    """
    gap = float(log_r.mean()) - expected
    var = float(log_r.var())
    se = math.sqrt(var / len(log_r))
    assert -4 * se <= gap <= var + 4 * se, (gap, var, se)
    assert abs(gap) < 0.05


@pytest.mark.slow
def test_minibatch_targets_only_grows_average_ln2_per_span():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, generator=g)
    log_r = _targets(x, x.clone(), (1.0, 2.0))
    _check_closed_form(log_r, math.log(2))
    # the targets are per unit of model time: ln 2 / span
    assert float(log_r.mean()) / SPAN == pytest.approx(math.log(2) / SPAN, abs=0.025)
    # masses are the populations': equal ones give no growth from the same shapes
    _check_closed_form(_targets(x, x.clone(), (1.0, 1.0)), 0.0)


def test_minibatch_targets_only_moves_are_zero():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 2, generator=g)
    log_r = _targets(x, x + torch.tensor([0.5, 0.0]), (1.0, 1.0))
    _check_closed_form(log_r, 0.0)


def test_minibatch_solves_that_stop_early_are_counted_and_warned_once():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 2, generator=g)
    strict = GrowthOT(reg=0.1, reg_m=3.0, num_iter_max=1, tol=1e-12)
    iv = MinibatchGrowthInterval(x, x + 1.0, 0.0, 1.0, strict, (1.0, 1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is warned step by step
        for _ in range(5):
            iv.draw(32, g)
    assert (iv.n_solves, iv.n_unconverged) == (5, 5)
    with pytest.warns(ConvergenceWarning, match="5 of 5 minibatch GrowthOT plans") as rec:
        assert warn_unconverged([iv]) == 5
    assert len(rec) == 1
    fine = MinibatchGrowthInterval(x, x + 1.0, 0.0, 1.0, GrowthOT(), (1.0, 1.5))
    fine.draw(32, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_unconverged([fine]) == 0


def _course(n0: int = 300, n1: int = 600, seed: int = 3) -> tuple[TimeCourse, torch.Tensor,
                                                                   torch.Tensor]:
    """Two timepoints: a Gaussian cloud that moves by 3 along x and doubles in number."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n0, 2, generator=g)
    x1 = torch.randn(n1, 2, generator=g) + torch.tensor([3.0, 0.0])
    days = [0] * n0 + [1] * n1
    return TimeCourse.from_arrays(torch.cat([x0, x1]).numpy(), days, whiten=False), x0, x1


def test_auto_coupling_follows_the_balanced_rule(monkeypatch):
    tc, _, _ = _course(40, 60)
    small = fit_flow(tc, "uotcfm", n_steps=2, batch_size=16, device="cpu", progress=False)
    assert small.meta["coupling"] == "global"  # 40 x 60 pairs, under the threshold
    # (and under the size where the growth cost rule starts: 2 steps keep the global plan)
    # one memory rule, one threshold: lowering it moves uotcfm and otcfm to minibatch alike
    monkeypatch.setattr(scflow.training.loop, "AUTO_GLOBAL_MAX_ENTRIES", 40 * 60 - 1)
    big = fit_flow(tc, "uotcfm", n_steps=2, batch_size=16, device="cpu", progress=False)
    assert big.meta["coupling"] == "minibatch"
    assert scflow.fit_flow(tc, "otcfm", n_steps=2, batch_size=16, device="cpu",
                           progress=False).meta["coupling"] == "minibatch"
    assert not torch.equal(torch.as_tensor(small.meta["loss"]),
                           torch.as_tensor(big.meta["loss"]))
    with pytest.raises(ValueError, match="coupling must be one of"):
        fit_flow(tc, "uotcfm", n_steps=2, coupling="plans")


# minibatch uotcfm solves an unbalanced Sinkhorn plan at every step: minutes of CPU
@pytest.mark.slow
def test_minibatch_training_moves_and_grows_the_population():
    tc, x0, x1 = _course()
    kw = dict(n_steps=600, batch_size=64, device="cpu", random_state=0, progress=False)
    scores = {}
    for coupling in ("minibatch", "global"):
        model = fit_flow(tc, "uotcfm", coupling=coupling, **kw).requires_grad_(False)
        assert model.meta["coupling"] == coupling
        end, log_w = integrate(model, x0, 0.0, 1.0, log_weights=True)
        # the weighted cloud is the prediction: cells far from the later population die
        scores[coupling] = metrics.wasserstein(end, x1, a=log_w.exp())
        # the population doubles: the total weight of the pushed cells is about 2
        assert float(log_w.exp().mean()) == pytest.approx(2.0, rel=0.2), coupling
    static = metrics.wasserstein(x0, x1)  # no motion at all: about 3
    untrained = metrics.wasserstein(
        integrate(FlowModel(2, growth=True).requires_grad_(False), x0, 0.0, 1.0), x1)
    assert scores["minibatch"] < 0.2 * min(static, untrained), (scores, static, untrained)
    # minibatch plans approximate the global plan's training
    assert scores["minibatch"] == pytest.approx(scores["global"], abs=0.1)
    # seeded by the step generator: the same seed trains the same model
    again = fit_flow(tc, "uotcfm", coupling="minibatch", **{**kw, "n_steps": 50})
    once_more = fit_flow(tc, "uotcfm", coupling="minibatch", **{**kw, "n_steps": 50})
    assert torch.equal(torch.as_tensor(again.meta["loss"]),
                       torch.as_tensor(once_more.meta["loss"]))
    other = fit_flow(tc, "uotcfm", coupling="minibatch", **{**kw, "n_steps": 50,
                                                          "random_state": 1})
    assert not torch.equal(torch.as_tensor(again.meta["loss"]),
                           torch.as_tensor(other.meta["loss"]))


def test_blend_prior_adds_the_prior_differences_and_keeps_the_mean():
    from scflow.growth.data import blend_prior

    log_r = torch.tensor([0.1, 0.5, -0.3, 0.9], dtype=torch.float64)
    prior = torch.tensor([2.0, 1.0, 3.0, 2.0], dtype=torch.float64)
    out = blend_prior(log_r, prior, 0.5)
    torch.testing.assert_close(out, log_r + 0.5 * (prior - 2.0))
    assert float(out.mean()) == pytest.approx(float(log_r.mean()))  # the plan's mass change
    torch.testing.assert_close(blend_prior(log_r, prior, 0.0), log_r)
    torch.testing.assert_close(blend_prior(log_r, torch.full_like(prior, 7.0), 2.0), log_r)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        blend_prior(log_r, prior, -1.0)
    with pytest.raises(ValueError, match="shape of log_r"):
        blend_prior(log_r, prior[:3], 1.0)


@pytest.mark.parametrize("coupling", ["global", "minibatch"])
def test_prior_weight_reaches_the_growth_targets(coupling):
    """The intervals add the prior's differences to the plan's targets by the weight given
    (default PRIOR_WEIGHT); weight 0 is the plan alone (the prior only in its row masses)."""
    from scflow.growth import data as gd

    rng = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(60, 2, generator=rng), torch.randn(90, 2, generator=rng) + 1
    tc = TimeCourse.from_arrays(torch.cat([x0, x1]).numpy(), [0] * 60 + [1] * 90,
                                whiten=False)
    prior = [tc.xs[0][:, 0].double()]  # each early cell's prior: its first coordinate
    build = gd.growth_intervals if coupling == "global" else gd.minibatch_growth_intervals
    solver = GrowthOT(reg=0.1, reg_m=1.0)
    drawn = {}
    for w in (0.0, 2.0):
        (iv,) = build(tc, [2 / 3, 1.0], solver, None, priors=prior, prior_weight=w)
        drawn[w] = iv.draw(200, torch.Generator().manual_seed(1))  # the same pairs
    a0, _, r0 = drawn[0.0]
    a2, _, r2 = drawn[2.0]
    torch.testing.assert_close(a0, a2)
    # the targets differ by twice the prior of each pair's early cell, minus a constant
    # (the prior's mean over the population, or over the step's minibatch)
    shift = (r2 - r0).double() - 2.0 * a0[:, 0].double()
    assert float(shift.std()) < 1e-4 and float((r2 - r0).std()) > 0.1
    (iv,) = build(tc, [2 / 3, 1.0], solver, None, priors=prior)
    assert getattr(iv, "prior_weight", gd.PRIOR_WEIGHT) == gd.PRIOR_WEIGHT
