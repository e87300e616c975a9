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
