"""FlowMatcher: composition of path and coupling, and the named presets."""

from __future__ import annotations

import pytest
import torch

import scflow
from scflow import couplings as C
from scflow import paths as P


def test_sample_returns_the_pairs_drawn_and_consistent_targets():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(40, 3, generator=g)
    perm = torch.randperm(40, generator=g)
    x1 = x0[perm] + 5.0
    fm = scflow.otcfm(sigma=0.0)
    s = fm.sample(x0, x1, generator=torch.Generator().manual_seed(1))
    assert s.x0.shape == s.x1.shape == s.xt.shape == s.ut.shape == (40, 3)
    torch.testing.assert_close(s.x0, x0[s.i])
    torch.testing.assert_close(s.x1, x1[s.j])
    # exact OT of a translated permuted copy pairs every point with its own copy
    torch.testing.assert_close(s.x1 - s.x0, torch.full_like(s.x0, 5.0))
    torch.testing.assert_close(s.ut, s.x1 - s.x0)
    torch.testing.assert_close(s.xt, (1 - s.t[:, None]) * s.x0 + s.t[:, None] * s.x1)
    assert s.score is None  # sigma = 0: no score


def test_presets_are_compositions():
    fm = scflow.sbcfm(sigma=0.3)
    assert isinstance(fm.path, P.BrownianBridgePath) and fm.path.sigma == 0.3
    assert isinstance(fm.coupling, C.EntropicOT)
    assert fm.coupling.reg == pytest.approx(2 * 0.3**2)
    assert isinstance(scflow.icfm().coupling, C.Independent)
    assert isinstance(scflow.otcfm().coupling, C.ExactOT)
    assert isinstance(scflow.otcfm().path, P.LinearPath)


def test_repeatable_with_generator_and_given_times():
    x0, x1 = torch.randn(20, 2), torch.randn(25, 2)
    fm = scflow.sbcfm(0.5)
    a = fm.sample(x0, x1, generator=torch.Generator().manual_seed(3), n=30)
    b = fm.sample(x0, x1, generator=torch.Generator().manual_seed(3), n=30)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)
    t = torch.linspace(0.1, 0.9, 30)
    c = fm.sample(x0, x1, t=t, generator=torch.Generator().manual_seed(3), n=30)
    torch.testing.assert_close(c.t, t)
    torch.testing.assert_close(c.score, -c.eps / (0.5 * torch.sqrt(t * (1 - t)))[:, None])


def test_gaussian_prior_path_without_coupling():
    fm = scflow.FlowMatcher(P.GaussianOTPath(1e-4))
    x1 = torch.randn(16, 2) + 3
    x0 = torch.randn(16, 2)
    s = fm.sample(x0, x1)
    torch.testing.assert_close(s.eps, x0)
    with pytest.raises(ValueError, match="same shape"):
        fm.sample(x0[:3], x1)
    with pytest.raises(ValueError, match="t must have shape"):
        fm.sample(x0, x1, t=torch.rand(3))


def test_sample_pairs_without_score_draws_the_same_points():
    from scflow import sbcfm

    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(32, 3, generator=g), torch.randn(32, 3, generator=g)
    m = sbcfm(0.5)
    a = m.sample_pairs(x0, x1, generator=torch.Generator().manual_seed(1))
    b = m.sample_pairs(x0, x1, generator=torch.Generator().manual_seed(1), with_score=False)
    assert a.score is not None and b.score is None
    torch.testing.assert_close(a.xt, b.xt)
    torch.testing.assert_close(a.ut, b.ut)
