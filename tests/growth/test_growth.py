"""Growth: masses, the growth-aware coupling, uotcfm against closed forms, the count-mix null."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scflow import fit_flow, metrics
from scflow.couplings import GrowthOT, population_masses
from scflow.flow.integrate import integrate
from scflow.flow.model import FlowModel
from scflow.flow.timecourse import TimeCourse
from scflow.protocols import leave_one_out_tc
from scflow.references import static_mix_interpolant


def _cloud(n: int = 150, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


def test_weighted_metrics_reduce_to_unweighted_at_equal_weights():
    x, y = _cloud(40, 1), _cloud(30, 2) + 0.5
    ones_x, ones_y = torch.full((40,), 3.0), torch.full((30,), 0.2)
    assert metrics.wasserstein(x, y, a=ones_x, b=ones_y) == pytest.approx(
        metrics.wasserstein(x, y), rel=1e-9)
    assert metrics.mmd(x, y, a=ones_x, b=ones_y) == pytest.approx(metrics.mmd(x, y), rel=1e-9)
    assert metrics.mmd(x, y, a=ones_x) == pytest.approx(metrics.mmd(x, y), rel=1e-9)


def test_weighted_mmd_equals_duplicated_points():
    x, y = _cloud(20, 3), _cloud(25, 4)
    w = torch.ones(20)
    w[:5] = 2.0  # the first five points twice
    dup = torch.cat([x, x[:5]])
    assert metrics.mmd(x, y, a=w) == pytest.approx(metrics.mmd(dup, y), rel=1e-9)
    assert metrics.mmd(x, y, a=w) != pytest.approx(metrics.mmd(x, y), rel=1e-3)
    with pytest.raises(ValueError, match="a must be 20 finite non-negative"):
        metrics.mmd(x, y, a=torch.full((20,), float("nan")))


def test_population_masses():
    assert population_masses([10, 20, 40]) == [0.25, 0.5, 1.0]
    assert population_masses([10, 20], None) == [1.0, 1.0]
    assert population_masses([10, 20], "none") == [1.0, 1.0]
    assert population_masses([10, 20], [3.0, 1.5]) == [1.0, 0.5]
    with pytest.raises(ValueError, match="mass must hold one finite number"):
        population_masses([10, 20], [1.0, -1.0])
    with pytest.raises(ValueError, match="mass must be one of"):
        population_masses([10, 20], "cells")


def test_growth_plan_closed_forms():
    x = _cloud(120)
    plan, log_r = GrowthOT(reg=0.05, reg_m=1.0).plan(x, x.clone(), (1.0, 2.0))
    # only grows: every cell leaves two descendants, the late marginal is exact
    assert torch.allclose(log_r, torch.full_like(log_r, math.log(2)), atol=0.05)
    assert torch.allclose(plan.sum(0), torch.full((120,), 2.0 / 120, dtype=torch.float64),
                          rtol=1e-4)
    # only moves (equal masses): no growth where the marginal penalty outweighs the shift
    plan, log_r = GrowthOT(reg=0.05, reg_m=20.0).plan(x, x + torch.tensor([0.5, 0.0]))
    assert float(log_r.abs().mean()) < 0.05
    assert float(plan.sum()) == pytest.approx(1.0, rel=1e-6)
    # a weaker penalty lets the cells near the later population grow
    _, loose = GrowthOT(reg=0.05, reg_m=0.2).plan(x, x + torch.tensor([0.5, 0.0]))
    assert float(loose.std()) > 5 * float(log_r.std())
    with pytest.raises(ValueError, match="reg_m"):
        GrowthOT(reg_m=0.0)


def test_static_mix_weights_by_mass():
    x0, x1 = _cloud(10), _cloud(30, 5) + 2.0
    pts, w = static_mix_interpolant(x0, x1, 0.5)
    assert pts.shape == (40, 2)
    # (1 - s) * 10 cells against s * 30 cells: a quarter of the mass early
    assert float(w[:10].sum()) == pytest.approx(0.25)
    assert float(w.sum()) == pytest.approx(1.0)
    _, w = static_mix_interpolant(x0, x1, 0.25, mass=(1.0, 1.0))
    assert float(w[:10].sum()) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="s must be in"):
        static_mix_interpolant(x0, x1, 1.5)


def _two_timepoints(x0: torch.Tensor, x1: torch.Tensor) -> TimeCourse:
    days = [0] * len(x0) + [1] * len(x1)
    return TimeCourse.from_arrays(torch.cat([x0, x1]).numpy(), days, whiten=False)


def test_uotcfm_only_grows_gives_ln2_and_no_velocity():
    x = _cloud(200)
    tc = _two_timepoints(x, x.clone())
    model = fit_flow(tc, "uotcfm", mass=[1.0, 2.0], n_steps=400, device="cpu").requires_grad_(False)
    g = model.growth(0.5, x)
    assert float(g.mean()) == pytest.approx(math.log(2), abs=0.03)
    assert float(model.velocity(0.5, x).norm(dim=1).mean()) < 0.05
    end, log_w = integrate(model, x, 0.0, 1.0, log_weights=True)
    assert float(log_w.mean()) == pytest.approx(math.log(2), abs=0.03)
    assert float((end - x).norm(dim=1).mean()) < 0.05
    assert model.meta["growth_from"] == "mass"


@pytest.mark.slow
def test_uotcfm_only_moves_gives_no_growth():
    x = _cloud(200)
    shift = torch.tensor([0.5, 0.0])
    tc = _two_timepoints(x, x + shift)
    model = fit_flow(tc, "uotcfm", mass="counts", reg_m=20.0, n_steps=400,
                            device="cpu").requires_grad_(False)
    mid = x + 0.5 * shift
    assert abs(float(model.growth(0.5, mid).mean())) < 0.05
    v = model.velocity(0.5, mid).mean(0)
    assert float(v[0]) == pytest.approx(0.5, abs=0.1)
    assert abs(float(v[1])) < 0.1


def test_integrate_log_weights_api():
    x = _cloud(50)
    plain = FlowModel(2)
    assert isinstance(integrate(plain, x, 0.0, 1.0, n_steps=4), torch.Tensor)
    with pytest.raises(ValueError, match="log_weights=True needs a growth-aware model"):
        integrate(plain, x, 0.0, 1.0, log_weights=True)
    model = FlowModel(2, growth=True).requires_grad_(False)
    path, log_w = integrate(model, x, 0.0, 1.0, n_steps=4, return_path=True, log_weights=True)
    assert path.shape == (5, 50, 2) and log_w.shape == (5, 50)
    assert torch.equal(log_w[0], torch.zeros(50))
    # log w is the integral of g along the path (Euler, the same steps)
    expected = sum(0.25 * model.growth(torch.tensor(k * 0.25), path[k]) for k in range(4))
    assert torch.allclose(log_w[-1], expected, atol=1e-5)
    same, lw0 = integrate(model, x, 0.3, 0.3, log_weights=True)
    assert torch.equal(same, x) and torch.equal(lw0, torch.zeros(50))


def test_growth_model_round_trip(tmp_path):
    model = FlowModel(3, (8, 8), growth=True)
    model.save(tmp_path / "m.npz")
    back = FlowModel.load(tmp_path / "m.npz").requires_grad_(False)
    model.requires_grad_(False)
    x = torch.randn(5, 3)
    assert back.has_growth
    assert torch.allclose(back.growth(0.2, x), model.growth(0.2, x))
    assert not FlowModel.from_dict(FlowModel(3, (8, 8)).to_dict()).has_growth


def _growing_course(sizes: tuple[int, ...], seed: int) -> tuple[list[torch.Tensor],
                                                                   TimeCourse]:
    """Unit Gaussian clouds moving by 1 along x per timepoint, ``sizes`` cells each."""
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(n, 2, generator=g) + torch.tensor([float(k), 0.0])
          for k, n in enumerate(sizes)]
    days = np.repeat(np.arange(len(sizes)), sizes)
    return xs, TimeCourse.from_arrays(torch.cat(xs).numpy(), days, whiten=False)


def test_leave_one_out_scores_weighted_growth_predictions():
    xs, tc = _growing_course((60, 90, 140), seed=1)
    # reg_m goes to uotcfm only; the balanced field in the same call leaves it
    df = leave_one_out_tc(tc, ("uotcfm", "static_mix", "static_partial", "icfm"),
                          seeds=(0, 1), n_steps=200, device="cpu", reg_m=3.0)
    assert list(df["method"]) == ["uotcfm", "uotcfm", "static_mix", "static_mix",
                                  "static_partial", "static_partial", "icfm", "icfm"]
    assert np.isfinite(df["w1"]).all() and np.isfinite(df["mmd"]).all()
    mix = df[df.method == "static_mix"].iloc[0]
    pts, w = static_mix_interpolant(xs[0], xs[2], 0.5)
    assert mix.w1 == pytest.approx(metrics.wasserstein(pts, xs[1], a=w))
    uot = df[df.method == "uotcfm"]
    assert uot.w1.iloc[0] != uot.w1.iloc[1]  # two seeds, two fits
    mb = leave_one_out_tc(tc, ("uotcfm",), seeds=(0,), n_steps=2, batch_size=32,
                          device="cpu", coupling="minibatch")
    assert np.isfinite(mb["w1"]).all() and mb.w1.iloc[0] != uot.w1.iloc[0]


def test_rollout_protocol_scores_weighted_growth_predictions():
    from scflow.protocols.rollout import rollout_tc

    _, tc = _growing_course((50, 80, 120), seed=2)
    df = rollout_tc(tc, ("uotcfm",), seeds=(0,), holdouts=(1, 2), n_steps=100, device="cpu")
    assert list(df["time_index"]) == [1, 2]
    assert np.isfinite(df["w1"]).all()
    all_df = rollout_tc(tc, ("uotcfm",), seeds=(0,), n_steps=100, device="cpu")
    assert list(all_df["protocol"]) == ["all", "all"]


def test_mean_cost_is_the_mean_over_all_pairs_and_scales_reg_m():
    from scflow.couplings.growth import mean_cost
    from scflow.growth.data import scaled

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(40, 3, generator=g)
    x1 = torch.randn(50, 3, generator=g) * 2 + 1
    brute = float(((x0.double()[:, None] - x1.double()[None]) ** 2).sum(-1).mean())
    np.testing.assert_allclose(mean_cost(x0, x1), brute, rtol=1e-12)
    # uotcfm's reg_m is relative: doubling the data's scale quadruples the absolute penalty
    ot = GrowthOT(reg=0.1, reg_m=2.0)
    np.testing.assert_allclose(scaled(ot, x0, x1).reg_m, 2.0 * brute, rtol=1e-12)
    np.testing.assert_allclose(scaled(ot, 2 * x0, 2 * x1).reg_m, 8.0 * brute, rtol=1e-12)
    assert scaled(ot, x0, x1).reg == 0.1
    with pytest.raises(ValueError, match="one point, at the same place"):
        mean_cost(torch.ones(3, 2), torch.ones(4, 2))


def test_population_masses_only_scale_the_plan_and_shift_the_growth():
    """Semi-relaxed plan with masses (m0, m1): P(m0, m1) = m1 P(1, 1) and log r shifts by
    log(m1 / m0) for every cell alike, so the masses set the mean growth, never which cells
    pair or which grow more than others."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(30, 2, generator=g, dtype=torch.float64)
    x1 = torch.randn(40, 2, generator=g, dtype=torch.float64) + 1.0
    ot = GrowthOT(reg=0.1, reg_m=1.0, tol=1e-10)
    p11, r11 = ot.plan(x0, x1, (1.0, 1.0))
    for m0, m1 in ((1.0, 3.0), (0.5, 3.0), (2.0, 0.5)):
        p, r = ot.plan(x0, x1, (m0, m1))
        np.testing.assert_allclose((p / m1).numpy(), p11.numpy(), atol=1e-12)
        np.testing.assert_allclose((r - r11).numpy(), np.full(30, math.log(m1 / m0)),
                                   atol=1e-10)
