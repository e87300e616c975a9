"""Metric flow matching: closed-form checks of the metric, the interpolant and its samples."""

from __future__ import annotations

import math

import pytest
import torch

from scflow.couplings import ExactOT
from scflow.methods.otcfm import otcfm
from scflow.paths.metric import (
    FlatMetric,
    GeodesicInterpolant,
    IntervalPairs,
    build_metric,
    interpolate,
    knn_distance,
    sample,
    train_interpolant,
)

SMALL = (32, 32)


def _arch(n: int, lo: float, hi: float, g: torch.Generator, noise: float = 0.05):
    """Cells on the unit half circle between angles ``lo`` and ``hi``."""
    th = lo + (hi - lo) * torch.rand(n, generator=g)
    r = 1 + noise * torch.randn(n, generator=g)
    return torch.stack([r * torch.cos(th), r * torch.sin(th)], 1)


def _half_circle(seed: int = 0):
    """Cells along the half circle, and OT pairs from its left end to its right end: their
    straight lines cross the empty inside of the circle."""
    g = torch.Generator().manual_seed(seed)
    cells = _arch(300, 0.0, math.pi, g)
    x0, x1 = _arch(120, 0.85 * math.pi, math.pi, g), _arch(120, 0.0, 0.15 * math.pi, g)
    j = ExactOT().plan(x0, x1).argmax(1)  # equal sizes: the plan is a permutation
    return cells, IntervalPairs(x0, x1[j], 0.0, 1.0)


def test_straight_or_untrained_interpolant_gives_otcfm_samples_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 3, generator=g), torch.randn(64, 3, generator=g) + 2.0
    t0, t1 = 1.0, 3.0  # a bridged interval of span 2
    fs = otcfm(0.1).sample_pairs(x0, x1, generator=torch.Generator().manual_seed(5),
                                  with_score=False)
    want = (t0 + fs.t * (t1 - t0), fs.xt, fs.ut / (t1 - t0))  # as the training loop maps it
    untrained = GeodesicInterpolant(3, SMALL, t_range=(0.0, 4.0))  # zero last layer
    for phi in (None, untrained):
        got = sample(phi, x0, x1, t0, t1, sigma=0.1, generator=torch.Generator().manual_seed(5))
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a, b)


def test_time_derivative_is_the_forward_mode_one():
    phi = GeodesicInterpolant(4, SMALL, t_range=(0.0, 3.0), zero_init=False).double()
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(20, 4, generator=g).double(), torch.randn(20, 4, generator=g).double()
    t = 3.0 * torch.rand(20, generator=g).double()
    out, dout = phi.with_time_derivative(x0, x1, t)
    ref, dref = torch.func.jvp(lambda tt: phi(x0, x1, tt), (t,), (torch.ones_like(t),))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-14)
    torch.testing.assert_close(dout, dref, rtol=1e-10, atol=1e-14)
    # and d mu / dt is the derivative of mu along the path (central differences)
    s, h = torch.rand(20, generator=g).double() * 0.8 + 0.1, 1e-6
    mu_p = interpolate(phi, x0, x1, s + h / 2.0, 0.0, 2.0)[0]
    mu_m = interpolate(phi, x0, x1, s - h / 2.0, 0.0, 2.0)[0]
    torch.testing.assert_close(interpolate(phi, x0, x1, s, 0.0, 2.0)[1],
                               (mu_p - mu_m) / (2.0 * h), rtol=1e-6, atol=1e-6)


def _bend(phi, pairs: IntervalPairs) -> float:
    """Mean distance of the interpolants from their chords, over a grid of times."""
    out = []
    for s in torch.linspace(0.1, 0.9, 9):
        ss = torch.full((len(pairs.x0),), float(s))
        with torch.no_grad():
            mu = interpolate(phi, pairs.x0, pairs.x1, ss, pairs.t0, pairs.t1)[0]
        chord = interpolate(None, pairs.x0, pairs.x1, ss, pairs.t0, pairs.t1)[0]
        out.append((mu - chord).norm(dim=1).mean())
    return float(torch.stack(out).mean())


def test_flat_metric_straightens_a_bent_interpolant():
    """Straight lines are the flat metric's geodesics: training removes a random bend, and
    the targets come back to OT-CFM's."""
    g = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(100, 2, generator=g), torch.randn(100, 2, generator=g) + 3.0
    pairs = IntervalPairs(x0, x1, 0.0, 1.0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        phi = GeodesicInterpolant(2, SMALL, zero_init=False)  # starts bent
    before = _bend(phi, pairs)
    ratios = train_interpolant(phi, FlatMetric(), [pairs], n_steps=300, batch_size=64,
                               lr=3e-3, generator=torch.Generator().manual_seed(0))
    after = _bend(phi, pairs)
    assert before > 0.1 and after < 0.3 * before
    # the energy relative to the straight lines' falls to 1, the flat metric's minimum
    assert ratios[:10].mean() > 1.005 and abs(float(ratios[-50:].mean()) - 1.0) < 0.005
    got = sample(phi, x0, x1, 0.0, 1.0, generator=torch.Generator().manual_seed(3))
    straight = sample(None, x0, x1, 0.0, 1.0, generator=torch.Generator().manual_seed(3))
    err = (got.ut - straight.ut).norm(dim=1).mean() / straight.ut.norm(dim=1).mean()
    assert err < 0.05


def test_half_circle_interpolants_bend_towards_the_data():
    """Where the straight line leaves the data, the LAND metric's interpolants stay on them:
    the mean distance to the nearest cell along the path and the metric cost drop."""
    cells, pairs = _half_circle()
    metric = build_metric("land", cells)
    phi = GeodesicInterpolant(2, SMALL)
    ratios = train_interpolant(phi, metric, [pairs], n_steps=150, batch_size=64, lr=3e-3,
                               sigma=0.0, generator=torch.Generator().manual_seed(0))
    dist, dist0, cost, cost0 = [], [], [], []
    for s in torch.linspace(0.1, 0.9, 9):
        ss = torch.full((len(pairs.x0),), float(s))
        with torch.no_grad():
            mu, u = interpolate(phi, pairs.x0, pairs.x1, ss, 0.0, 1.0)
            mu0, u0 = interpolate(None, pairs.x0, pairs.x1, ss, 0.0, 1.0)
            cost += [metric.cost(mu, u).mean()]
            cost0 += [metric.cost(mu0, u0).mean()]
        dist.append(torch.cdist(mu, cells).min(1).values.mean())
        dist0.append(torch.cdist(mu0, cells).min(1).values.mean())
    dist, dist0 = torch.stack(dist).mean(), torch.stack(dist0).mean()
    assert dist0 > 0.3 and dist < 0.3 * dist0  # the chords cut the circle, the paths do not
    assert torch.stack(cost).mean() < 0.1 * torch.stack(cost0).mean()
    assert ratios[-20:].mean() < 0.1
    # the midpoints moved outwards, onto the circle (radius about 1)
    mid = interpolate(phi, pairs.x0, pairs.x1, torch.full((len(pairs.x0),), 0.5), 0.0,
                      1.0)[0].detach()
    assert abs(float(mid.norm(dim=1).mean()) - 1.0) < 0.15


def test_seeds_reproduce():
    cells, pairs = _half_circle(1)
    metric = build_metric("land", cells)

    def run(seed):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            phi = GeodesicInterpolant(2, SMALL, zero_init=False)
        r = train_interpolant(phi, metric, [pairs], n_steps=20, batch_size=32, lr=3e-3,
                              generator=torch.Generator().manual_seed(seed))
        return r, [p.detach().clone() for p in phi.parameters()]

    (ra, wa), (rb, wb), (rc, _) = run(0), run(0), run(1)
    assert torch.equal(ra, rb) and all(torch.equal(a, b) for a, b in zip(wa, wb, strict=True))
    assert not torch.equal(ra, rc)


def test_land_metric_closed_form_and_rbf_fits_the_cells():
    cell = torch.tensor([[1.0, 2.0]])
    land = build_metric("land", torch.cat([cell, cell]), gamma=0.5, rho=0.1, alpha=2.0)
    x = torch.tensor([[1.5, 2.0], [1.0, 1.0]])
    d2 = ((cell - x) ** 2)  # per dimension
    w = torch.exp(-d2.sum(1, keepdim=True) / (2 * 0.25))
    torch.testing.assert_close(land(x), (2 * w * d2 + 0.1) ** -2.0)
    cells, _ = _half_circle()
    rbf = build_metric("rbf", cells, n_centers=30)
    h = rbf.h(cells)
    assert (h - 1).abs().mean() < 0.3  # about 1 on the cells
    assert float(rbf.h(torch.zeros(1, 2))) < 0.05  # about 0 at the empty centre
    assert float(rbf(torch.zeros(1, 2))) > 10 * float(rbf(cells).mean())


def test_knn_bandwidth_is_in_units_of_the_cells_spacing():
    """On a line of cells 0.5 apart, the 1st and 2nd neighbours sit at 0.5 and the 3rd at 1;
    ``gamma_unit="knn"`` is the same metric as the absolute bandwidth of that many units, and
    it scales with the data (the same metric of cells scaled by 10, in their units)."""
    line = torch.stack([0.5 * torch.arange(40.0), torch.zeros(40)], 1)
    assert knn_distance(line, 1) == pytest.approx(0.5)
    assert knn_distance(line, 3) == pytest.approx(1.0)
    unit = knn_distance(line)  # the 10th neighbour: 5 * 0.5 away
    assert unit == pytest.approx(2.5)
    x = torch.tensor([[1.2, 0.3], [7.0, -0.4]])
    rel = build_metric("land", line, gamma=0.4, gamma_unit="knn")
    torch.testing.assert_close(rel(x), build_metric("land", line, gamma=0.4 * unit)(x))
    big = build_metric("land", 10 * line, gamma=0.4, gamma_unit="knn")
    assert big.gamma == pytest.approx(10 * rel.gamma)


def test_bad_input():
    cells = torch.randn(10, 2)
    with pytest.raises(ValueError, match="kind must be one of"):
        build_metric("riemann", cells)
    with pytest.raises(ValueError, match="params of the 'land' metric"):
        build_metric("land", cells, kappa=1.0)
    with pytest.raises(ValueError, match="gamma"):
        build_metric("land", cells, gamma=0.0)
    with pytest.raises(ValueError, match="gamma_unit"):
        build_metric("land", cells, gamma_unit="relative")
    with pytest.raises(ValueError, match="t_range"):
        GeodesicInterpolant(2, t_range=(1.0, 1.0))
    pairs = IntervalPairs(cells, cells, 0.0, 1.0)
    with pytest.raises(ValueError, match="one per interval"):
        train_interpolant(GeodesicInterpolant(2), [FlatMetric()] * 2, [pairs],
                          generator=torch.Generator())
