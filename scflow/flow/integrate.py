"""Integrate cells along a learned field: ODE (torchdiffeq) or Euler–Maruyama SDE."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import integer, number
from .._lazy import torchdiffeq
from .model import FlowModel

__all__ = ["integrate", "SOLVERS"]

#: ODE solvers: fixed-step ones integrate on the grid, dopri5 is adaptive
SOLVERS = ("euler", "midpoint", "rk4", "dopri5")


class _Field(torch.nn.Module):
    def __init__(self, model: FlowModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.model.velocity(t, x)


class _WeightedField(torch.nn.Module):
    """The state ``[x, log w]``: ``dx/dt = v(t, x)``, ``d log w / dt = g(t, x)``."""

    def __init__(self, model: FlowModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        x = y[:, :-1]
        return torch.cat([self.model.velocity(t, x), self.model.growth(t, x)[:, None]], dim=1)


@torch.no_grad()
def integrate(model: FlowModel, x0: Tensor, t0: float, t1: float, *, n_steps: int = 100,
              solver: str = "euler", stochastic: bool = False, return_path: bool = False,
              n_save: int | None = None, batch_size: int | None = None,
              rtol: float = 1e-5, atol: float = 1e-5,
              generator: torch.Generator | None = None,
              log_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Carry cells from model time ``t0`` to ``t1`` along the field.

    Parameters
    ----------
    model
        The trained field.
    x0
        ``(n, dim)`` starting states, in the model's (scaled) coordinates.
    t0, t1
        Start and end model times, finite numbers (``t1 < t0`` integrates backwards; ODE
        only). ``t0 == t1`` is a zero-length integration: the states stay ``x0``.
    n_steps
        Number of fixed steps over ``[t0, t1]`` (also the grid of saved states).
    solver
        ``"euler"``, ``"midpoint"``, ``"rk4"`` or ``"dopri5"`` (adaptive, ``rtol``/``atol``).
    stochastic
        Euler–Maruyama on ``dx = (v + sigma^2/2 s) dt + sigma dW`` (SB-CFM models).
    return_path
        Return states at ``n_save + 1`` evenly spaced times (default every step),
        shape ``(n_save + 1, n, dim)``; otherwise the end states ``(n, dim)``.
    batch_size
        Integrate this many cells at a time (default: all at once).
    generator
        Random generator on the model's device for the SDE noise.
    log_weights
        Growth-aware models (``model.has_growth``): also carry a log-weight per cell,
        ``d log w / dt = g(t, x)`` from ``log w = 0`` at ``t0``, with the same solver and
        steps, and return ``(states, log_weights)``; the log-weights have the states' shape
        without the last axis (``(n,)``, or ``(n_save + 1, n)`` with ``return_path``).
        ``exp(log_weights)`` is each cell's expected number of descendants.
    """
    t0, t1 = _time(t0, "t0"), _time(t1, "t1")
    integer(n_steps, "n_steps", lower=1)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if stochastic and not model.has_score:
        raise ValueError("stochastic=True needs a model with a score network (a method "
                         "in scflow.methods.names(has_score=True))")
    if log_weights and not model.has_growth:
        raise ValueError("log_weights=True needs a growth-aware model (a method in "
                         "scflow.methods.names(learns_growth=True))")
    if stochastic and t1 < t0:
        raise ValueError("the SDE is integrated forward in time only (t1 >= t0)")
    n_save = n_steps if n_save is None else int(n_save)
    if n_save < 1 or n_steps % n_save:
        raise ValueError(f"n_save must divide n_steps ({n_steps}), got {n_save!r}")
    if not return_path:  # keep the end states only: memory O(cells), not O(cells x steps)
        n_save = 1
    x0 = x0.to(model.device, torch.float32)
    model._check_x(x0)
    y0 = torch.cat([x0, x0.new_zeros(len(x0), 1)], dim=1) if log_weights else x0
    if t0 == t1:  # zero-length integration: nothing moves (torchdiffeq would assert)
        path = y0.expand(n_save + 1, *y0.shape).clone()
    else:
        was_training = model.training
        model.eval()
        try:
            chunks = [y0] if not batch_size else torch.split(y0, int(batch_size))
            run = _sde if stochastic else _ode
            out = [run(model, c, t0, t1, n_steps, n_save, solver, rtol, atol, generator,
                       log_weights) for c in chunks]
        finally:
            model.train(was_training)
        path = torch.cat(out, dim=1)
    if not return_path:
        path = path[-1]
    if log_weights:
        return path[..., :-1].contiguous(), path[..., -1].contiguous()
    return path


def _time(t, name: str) -> float:
    """A model time: a finite number (a one-element tensor is accepted too)."""
    if isinstance(t, Tensor) and t.numel() == 1:
        t = t.item()
    return number(t, name)


def _ode(model, x0, t0, t1, n_steps, n_save, solver, rtol, atol, generator,
         log_weights=False) -> Tensor:
    grid = torch.linspace(t0, t1, n_steps + 1, device=x0.device)
    field = _WeightedField(model) if log_weights else _Field(model)
    if solver == "dopri5":
        return torchdiffeq.odeint(field, x0, grid[:: n_steps // n_save], method="dopri5",
                                  rtol=rtol, atol=atol)
    # step on the full grid, but store only the saved states (the same steps and values)
    return torchdiffeq.odeint(field, x0, grid[:: n_steps // n_save], method=solver,
                              options={"grid_constructor": lambda func, y0, t: grid})


def _sde(model, x0, t0, t1, n_steps, n_save, solver, rtol, atol, generator,
         log_weights=False) -> Tensor:
    dt = (t1 - t0) / n_steps
    g = model.sigma * math.sqrt(abs(dt))
    x, out = x0, [x0]
    every = n_steps // n_save
    for k in range(n_steps):
        t = torch.tensor(t0 + k * dt, device=x.device)
        if log_weights:  # Euler on the log-weight beside Euler-Maruyama on the state
            xs, lw = x[:, :-1], x[:, -1:]
            noise = torch.randn(xs.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = torch.cat([xs + model.sde_drift(t, xs) * dt + g * noise,
                           lw + model.growth(t, xs)[:, None] * dt], dim=1)
        else:
            noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + model.sde_drift(t, x) * dt + g * noise
        if (k + 1) % every == 0:
            out.append(x)
    return torch.stack(out)
