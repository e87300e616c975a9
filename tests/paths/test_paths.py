"""Closed-form checks of every path: mean, sigma, target velocity, score."""

from __future__ import annotations

import math

import pytest
import torch

from scflow import paths as P

ALL = [P.LinearPath(0.0), P.LinearPath(0.3), P.BrownianBridgePath(0.7), P.GaussianOTPath(1e-3),
       P.VPDiffusionPath(0.1, 20.0), P.VEDiffusionPath(0.01, 10.0)]


def _draw(path, n=64, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    x1 = 3 + torch.randn(n, d, generator=g, dtype=torch.float64)
    t = 0.02 + 0.96 * torch.rand(n, generator=g, dtype=torch.float64)
    eps = path.noise(x0, x1, g)
    return t, x0, x1, eps


@pytest.mark.parametrize("path", ALL, ids=repr)
def test_target_velocity_is_time_derivative_of_conditional_flow(path):
    t, x0, x1, eps = _draw(path)
    h = 1e-6
    fd = (path.sample_xt(t + h, x0, x1, eps) - path.sample_xt(t - h, x0, x1, eps)) / (2 * h)
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path", [p for p in ALL if not (isinstance(p, P.LinearPath)
                                                          and p.sigma == 0)], ids=repr)
def test_score_is_gradient_of_log_gaussian(path):
    t, x0, x1, eps = _draw(path)
    xt = path.sample_xt(t, x0, x1, eps).requires_grad_(True)
    mu, sig = path.mu_t(t, x0, x1), path.sigma_t(t)[:, None]
    logp = (-0.5 * ((xt - mu) / sig) ** 2 - torch.log(sig)).sum()
    (grad,) = torch.autograd.grad(logp, xt)
    torch.testing.assert_close(path.score(t, eps), grad)


@pytest.mark.parametrize("path", ALL, ids=repr)
def test_marginal_moments_match_mean_and_sigma(path):
    g = torch.Generator().manual_seed(1)
    n, d = 20000, 2
    x1 = torch.tensor([[1.0, -2.0]], dtype=torch.float64).expand(n, d)
    x0 = (torch.randn(n, d, generator=g, dtype=torch.float64) if path.noise_is_source
          else torch.tensor([[0.5, 0.5]], dtype=torch.float64).expand(n, d))
    t = torch.full((n,), 0.3, dtype=torch.float64)
    xt = path.sample_xt(t, x0, x1, path.noise(x0, x1, g))
    mu = path.mu_t(t, x0, x1).mean(0)
    sig = float(path.sigma_t(t)[0])
    torch.testing.assert_close(xt.mean(0), mu, atol=5 * sig / math.sqrt(n) + 1e-9, rtol=0)
    assert xt.std(0).sub(sig).abs().max() < 0.03 * sig + 1e-9


def test_linear_path_closed_form():
    path = P.LinearPath(0.2)
    t, x0, x1, eps = _draw(path)
    tc = t[:, None]
    torch.testing.assert_close(path.mu_t(t, x0, x1), (1 - tc) * x0 + tc * x1)
    torch.testing.assert_close(path.sigma_t(t), torch.full_like(t, 0.2))
    xt = path.sample_xt(t, x0, x1, eps)
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), x1 - x0)
    torch.testing.assert_close(path.score(t, eps), -(xt - path.mu_t(t, x0, x1)) / 0.04)
    # sigma = 0: the path hits its end points
    p0 = P.LinearPath(0.0)
    one, zero = torch.ones_like(t), torch.zeros_like(t)
    torch.testing.assert_close(p0.sample_xt(zero, x0, x1, eps), x0)
    torch.testing.assert_close(p0.sample_xt(one, x0, x1, eps), x1)


def test_brownian_bridge_closed_form():
    s = 0.7
    path = P.BrownianBridgePath(s)
    t, x0, x1, eps = _draw(path)
    tc = t[:, None]
    torch.testing.assert_close(path.sigma_t(t), s * torch.sqrt(t * (1 - t)))
    xt = path.sample_xt(t, x0, x1, eps)
    mu = (1 - tc) * x0 + tc * x1
    expected = (1 - 2 * tc) / (2 * tc * (1 - tc)) * (xt - mu) + (x1 - x0)
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), expected)
    # pinned at both ends
    torch.testing.assert_close(path.sigma_t(torch.tensor([0.0, 1.0])), torch.zeros(2))


def test_gaussian_ot_path_closed_form():
    smin = 1e-3
    path = P.GaussianOTPath(smin)
    t, x0, x1, eps = _draw(path)
    tc = t[:, None]
    torch.testing.assert_close(eps, x0)  # the source is the noise
    xt = path.sample_xt(t, x0, x1, eps)
    torch.testing.assert_close(xt, tc * x1 + (1 - (1 - smin) * tc) * x0)
    expected = (x1 - (1 - smin) * xt) / (1 - (1 - smin) * tc)
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), expected)


def test_vp_path_closed_form():
    bmin, bmax = 0.1, 20.0
    path = P.VPDiffusionPath(bmin, bmax)
    t, x0, x1, eps = _draw(path)
    s = (1 - t)[:, None]
    big_t = bmin * s + 0.5 * (bmax - bmin) * s**2
    alpha = torch.exp(-0.5 * big_t)
    xt = path.sample_xt(t, x0, x1, eps)
    torch.testing.assert_close(path.mu_t(t, x0, x1), alpha * x1)
    torch.testing.assert_close(path.sigma_t(t)[:, None], torch.sqrt(1 - alpha**2))
    # Lipman et al. (2023) eq. 19
    dT = bmin + (bmax - bmin) * s
    expected = -0.5 * dT * (torch.exp(-big_t) * xt - alpha * x1) / (1 - torch.exp(-big_t))
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), expected)


def test_ve_path_closed_form():
    smin, smax = 0.01, 10.0
    path = P.VEDiffusionPath(smin, smax)
    t, x0, x1, eps = _draw(path)
    xt = path.sample_xt(t, x0, x1, eps)
    torch.testing.assert_close(path.sigma_t(t), smin * (smax / smin) ** (1 - t))
    expected = -math.log(smax / smin) * (xt - x1)  # Lipman et al. (2023) eq. 17
    torch.testing.assert_close(path.target_velocity(t, x0, x1, eps), expected)


@pytest.mark.parametrize("make", [lambda: P.LinearPath(-0.1), lambda: P.BrownianBridgePath(0.0),
                                  lambda: P.GaussianOTPath(1.5),
                                  lambda: P.VPDiffusionPath(5.0, 1.0),
                                  lambda: P.VEDiffusionPath(2.0, 1.0),
                                  lambda: P.LinearPath(float("nan"))])
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError, match="sigma|beta"):
        make()


# ----- SplinePath: paths through K knots -----
SPLINES = [P.SplinePath(0.0), P.SplinePath(0.2, kind="pchip"), P.SplinePath(0.3, window=2),
           P.SplinePath(0.5, brownian=True), P.SplinePath(0.4, kind="pchip", brownian=True)]
KNOT_TIMES = torch.tensor([0.0, 0.5, 1.7, 2.0, 3.0, 4.5], dtype=torch.float64)


def _knots(n=40, d=3, seed=0, times=KNOT_TIMES):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, len(times), d, generator=g, dtype=torch.float64).cumsum(1)
    t = times[0] + (times[-1] - times[0]) * torch.rand(n, generator=g, dtype=torch.float64)
    return t, xs, torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("path", SPLINES, ids=repr)
def test_spline_passes_through_every_knot(path):
    _, xs, _ = _knots()
    for k, tk in enumerate(KNOT_TIMES):
        t = torch.full((len(xs),), float(tk), dtype=torch.float64)
        torch.testing.assert_close(path.mu_t(t, xs, KNOT_TIMES), xs[:, k])
        if path.brownian:  # pinned at the knots
            assert float(path.sigma_t(t, KNOT_TIMES).abs().max()) < 1e-6


@pytest.mark.parametrize("path", SPLINES, ids=repr)
def test_spline_velocity_is_time_derivative(path):
    t, xs, eps = _knots()
    # keep away from knots, where a windowed or Brownian path is only piecewise smooth
    gap = (t[:, None] - KNOT_TIMES[None]).abs().min(1).values
    t, xs, eps = t[gap > 1e-3], xs[gap > 1e-3], eps[gap > 1e-3]
    h = 1e-6
    fd = (path.sample_xt(t + h, xs, KNOT_TIMES, eps)
          - path.sample_xt(t - h, xs, KNOT_TIMES, eps)) / (2 * h)
    torch.testing.assert_close(path.target_velocity(t, xs, KNOT_TIMES, eps), fd, rtol=1e-5,
                               atol=1e-5)
    torch.testing.assert_close(path.dmu_t(t, xs, KNOT_TIMES),
                               (path.mu_t(t + h, xs, KNOT_TIMES)
                                - path.mu_t(t - h, xs, KNOT_TIMES)) / (2 * h),
                               rtol=1e-5, atol=1e-5)


def test_natural_spline_matches_scipy_and_is_smooth_at_knots():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    t, xs, _ = _knots(n=10)
    for kind, ref in (("natural", lambda y: scipy_interp.CubicSpline(KNOT_TIMES.numpy(), y,
                                                                     bc_type="natural")),
                      ("pchip", lambda y: scipy_interp.PchipInterpolator(KNOT_TIMES.numpy(),
                                                                         y))):
        mu, dmu = P.SplinePath(kind=kind).mean_and_velocity(t, xs, KNOT_TIMES)
        for r in range(len(t)):
            f = ref(xs[r].numpy())
            torch.testing.assert_close(mu[r], torch.from_numpy(f(t[r].item())))
            torch.testing.assert_close(dmu[r], torch.from_numpy(f(t[r].item(), 1)))
    # natural: first derivative continuous across an interior knot, second zero at the ends
    path = P.SplinePath()
    tk = float(KNOT_TIMES[2])
    left = path.dmu_t(torch.full((10,), tk - 1e-9, dtype=torch.float64), xs, KNOT_TIMES)
    right = path.dmu_t(torch.full((10,), tk + 1e-9, dtype=torch.float64), xs, KNOT_TIMES)
    torch.testing.assert_close(left, right, rtol=1e-6, atol=1e-6)
    h = 1e-4
    ends = torch.full((10,), float(KNOT_TIMES[0]) + h, dtype=torch.float64)
    curv = (path.dmu_t(ends + h, xs, KNOT_TIMES) - path.dmu_t(ends, xs, KNOT_TIMES)) / h
    assert float(curv.abs().max()) < 1e-2


def test_spline_with_two_knots_is_the_linear_path_and_window_one_is_piecewise_linear():
    g = torch.Generator().manual_seed(7)
    x0, x1 = torch.randn(50, 4, generator=g, dtype=torch.float64), torch.randn(50, 4,
                                                                               generator=g,
                                                                               dtype=torch.float64)
    t = torch.rand(50, generator=g, dtype=torch.float64)
    eps = torch.randn(50, 4, generator=g, dtype=torch.float64)
    two = torch.tensor([0.0, 1.0], dtype=torch.float64)
    xs = torch.stack([x0, x1], 1)
    for spline, pair in ((P.SplinePath(0.3), P.LinearPath(0.3)),
                         (P.SplinePath(0.3, kind="pchip"), P.LinearPath(0.3)),
                         (P.SplinePath(0.7, brownian=True), P.BrownianBridgePath(0.7))):
        torch.testing.assert_close(spline.sample_xt(t, xs, two, eps),
                                   pair.sample_xt(t, x0, x1, eps), rtol=0, atol=1e-12)
        torch.testing.assert_close(spline.target_velocity(t, xs, two, eps),
                                   pair.target_velocity(t, x0, x1, eps), rtol=0, atol=1e-9)
        torch.testing.assert_close(spline.score(t, eps, two), pair.score(t, eps))
    # window=1: straight lines between consecutive knots
    t, xs, _ = _knots()
    i = torch.searchsorted(KNOT_TIMES, t, right=True) - 1
    s = ((t - KNOT_TIMES[i]) / (KNOT_TIMES[i + 1] - KNOT_TIMES[i]))[:, None]
    rows = torch.arange(len(t))
    torch.testing.assert_close(P.SplinePath(window=1).mu_t(t, xs, KNOT_TIMES),
                               (1 - s) * xs[rows, i] + s * xs[rows, i + 1])


def test_spline_pchip_does_not_overshoot_monotone_knots():
    t, xs, _ = _knots(n=200, d=2)
    xs = xs.abs().cumsum(1)  # increasing in time in every coordinate
    mu = P.SplinePath(kind="pchip").mu_t(t, xs, KNOT_TIMES)
    i = torch.searchsorted(KNOT_TIMES, t, right=True).clamp(max=len(KNOT_TIMES) - 1) - 1
    rows = torch.arange(len(t))
    assert bool((mu >= xs[rows, i] - 1e-12).all() and (mu <= xs[rows, i + 1] + 1e-12).all())
    # the natural spline through the same knots does overshoot somewhere
    nat = P.SplinePath().mu_t(t, xs, KNOT_TIMES)
    assert bool(((nat < xs[rows, i] - 1e-9) | (nat > xs[rows, i + 1] + 1e-9)).any())


@pytest.mark.parametrize("make, match", [
    (lambda: P.SplinePath(-1.0), "sigma"), (lambda: P.SplinePath(kind="linear"), "kind"),
    (lambda: P.SplinePath(window=0), "window"), (lambda: P.SplinePath(window=2.5), "window"),
    (lambda: P.SplinePath(kind="pchip", window=2), "window"),
    (lambda: P.SplinePath(0.0, brownian=True), "brownian")])
def test_spline_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_spline_bad_knots_raise():
    t, xs, _ = _knots()
    with pytest.raises(ValueError, match="increasing"):
        P.SplinePath().mu_t(t, xs, KNOT_TIMES.flip(0))
    with pytest.raises(ValueError, match="xs must have shape"):
        P.SplinePath().mu_t(t, xs[:, :3], KNOT_TIMES)
