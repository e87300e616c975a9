"""Integration against closed-form solutions."""

from __future__ import annotations

import math

import pytest
import torch

from scflow.flow.integrate import integrate
from scflow.flow.model import FlowModel


class Decay(FlowModel):
    """v(t, x) = -x (solution x0 exp(-(t - t0))); score 0 so the SDE is Brownian."""

    def __init__(self, dim=2, sigma=0.0, score=False):
        super().__init__(dim, (4,), score=score, sigma=sigma)

    def velocity(self, t, x):
        self._check_x(x)
        return -x

    def score(self, t, x):
        return torch.zeros_like(x)


class Zero(Decay):
    def velocity(self, t, x):
        return torch.zeros_like(x)


@pytest.mark.parametrize("solver,tol", [("euler", 2e-2), ("midpoint", 1e-4), ("rk4", 1e-6),
                                        ("dopri5", 1e-4)])
def test_ode_matches_exponential_decay(solver, tol):
    x0 = torch.randn(50, 2)
    out = integrate(Decay(), x0, 0.0, 2.0, n_steps=100, solver=solver)
    exact = x0 * math.exp(-2.0)
    assert (out - exact).abs().max() < tol * x0.abs().max()


def test_euler_is_first_order():
    x0 = torch.ones(1, 2)
    errs = [float((integrate(Decay(), x0, 0.0, 1.0, n_steps=n) - math.exp(-1)).abs().max())
            for n in (50, 100)]
    assert errs[0] / errs[1] == pytest.approx(2.0, rel=0.05)


def test_path_shape_saving_and_batching():
    x0 = torch.randn(30, 2)
    path = integrate(Decay(), x0, 1.0, 3.0, n_steps=100, return_path=True, n_save=10)
    assert path.shape == (11, 30, 2)
    torch.testing.assert_close(path[0], x0)
    torch.testing.assert_close(path[-1], integrate(Decay(), x0, 1.0, 3.0, n_steps=100))
    batched = integrate(Decay(), x0, 1.0, 3.0, n_steps=100, batch_size=7)
    torch.testing.assert_close(batched, path[-1])
    back = integrate(Decay(), path[-1], 3.0, 1.0, n_steps=400, solver="rk4")
    torch.testing.assert_close(back, path[-1] * math.exp(2.0), atol=1e-4, rtol=1e-4)


def test_sde_has_brownian_variance_and_is_seeded():
    x0 = torch.zeros(20000, 2)
    g = torch.Generator().manual_seed(0)
    out = integrate(Zero(sigma=0.5, score=True), x0, 0.0, 2.0, n_steps=50, stochastic=True,
                    generator=g)
    # Var = sigma^2 (t1 - t0) = 0.5
    assert out.var(0).sub(0.5).abs().max() < 0.03
    again = integrate(Zero(sigma=0.5, score=True), x0, 0.0, 2.0, n_steps=50, stochastic=True,
                      generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)


def test_bad_arguments():
    x0 = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="n_steps"):
        integrate(Decay(), x0, 0, 1, n_steps=0)
    with pytest.raises(ValueError, match="solver"):
        integrate(Decay(), x0, 0, 1, solver="magic")
    with pytest.raises(ValueError, match="score network"):
        integrate(Decay(), x0, 0, 1, stochastic=True)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        integrate(Decay(), torch.zeros(3, 5), 0, 1)
    with pytest.raises(ValueError, match="n_save"):
        integrate(Decay(), x0, 0, 1, n_steps=10, n_save=3)


@pytest.mark.parametrize(("t0", "t1", "name"), [
    (float("nan"), 1.0, "t0"), (0.0, float("inf"), "t1"), (0.0, None, "t1"),
    ("0", 1.0, "t0"), (True, 1.0, "t0")])
def test_times_must_be_finite_numbers(t0, t1, name):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number, got"):
        integrate(Decay(), torch.ones(3, 2), t0, t1, n_steps=4)


@pytest.mark.parametrize("solver", ["euler", "dopri5"])
def test_zero_length_integration_returns_the_start(solver):
    x0 = torch.randn(5, 2)
    out = integrate(Decay(), x0, 0.5, 0.5, n_steps=4, solver=solver)
    torch.testing.assert_close(out, x0)
    path = integrate(Decay(), x0, 0.5, 0.5, n_steps=4, n_save=2, return_path=True)
    assert path.shape == (3, 5, 2)
    torch.testing.assert_close(path, x0.expand(3, 5, 2))
    sde = integrate(Decay(sigma=1.0, score=True), x0, torch.tensor(1.0), 1.0, n_steps=4,
                    stochastic=True)
    torch.testing.assert_close(sde, x0)
