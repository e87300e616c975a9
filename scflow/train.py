"""Train one velocity field across every consecutive interval of a time course.

Each step draws ``batch_size`` pairs from each interval's coupling, maps each interval's
local path time ``s in [0, 1]`` to model time ``t = t_a + s (t_b - t_a)`` (the target
velocity is divided by the span), and takes one Adam step on the mean loss over all pairs.
A held-out timepoint ``k`` is skipped: ``k - 1 -> k + 1`` becomes one interval.

With ``coupling="global"`` (the default) each interval's plan is solved once between the
whole populations and pairs are drawn from it on the device at every step, so OT-CFM costs
what I-CFM costs per step; ``"minibatch"`` solves a plan on each step's batch (TorchCFM).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._settings import settings
from .checkpoint import Checkpointer, fit_config
from .couplings import DiscretePlan, EntropicOT, ExactOT, Independent
from .matching import FlowMatcher
from .model import FlowModel
from .paths import BrownianBridgePath, LinearPath
from .timecourse import TimeCourse

__all__ = ["fit_flow", "resolve_device", "DEFAULT_SIGMA", "NEURAL_METHODS", "COUPLING_MODES"]

NEURAL_METHODS = ("icfm", "otcfm", "sbcfm")
COUPLING_MODES = ("global", "minibatch")
LR_SCHEDULES = ("constant", "cosine")
#: default sigma per method (SB-CFM's is the Brownian diffusion per unit of model time)
DEFAULT_SIGMA = {"icfm": 0.1, "otcfm": 0.1, "sbcfm": 0.5}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    return device


def _positive(name: str, value, kind=int):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive, got {value!r}")
    if kind is int and int(value) != value:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return kind(value)


@dataclass
class _Interval:
    x0: Tensor
    x1: Tensor
    t0: float
    span: float
    matcher: FlowMatcher
    plan: DiscretePlan | None


def _intervals(tc: TimeCourse, method: str, sigma: float, coupling: str,
               holdout: int | None) -> list[_Interval]:
    keep = [k for k in range(tc.n_timepoints) if k != holdout]
    out = []
    for a, b in zip(keep[:-1], keep[1:], strict=True):
        span = float(tc.times[b] - tc.times[a])
        if method == "sbcfm":  # Brownian bridge of diffusion sigma over the span
            local = sigma * math.sqrt(span)
            matcher = FlowMatcher(BrownianBridgePath(local), EntropicOT(reg=2 * local**2))
        elif method == "otcfm":
            matcher = FlowMatcher(LinearPath(sigma), ExactOT())
        else:
            matcher = FlowMatcher(LinearPath(sigma), Independent())
        x0, x1 = tc.xs[a], tc.xs[b]
        plan = None
        if coupling == "global" and not isinstance(matcher.coupling, Independent):
            plan = matcher.coupling.discrete_plan(x0, x1)
        out.append(_Interval(x0, x1, float(tc.times[a]), span, matcher, plan))
    return out


def _draw(iv: _Interval, batch_size: int, g: torch.Generator):
    """Pairs ``(x0, x1)`` of one interval for one step."""
    if iv.plan is not None:
        i, j = iv.plan.sample_pairs(batch_size, g)
        return iv.x0[i], iv.x1[j]
    dev = iv.x0.device
    b0 = iv.x0[torch.randint(len(iv.x0), (batch_size,), generator=g, device=dev)]
    b1 = iv.x1[torch.randint(len(iv.x1), (batch_size,), generator=g, device=dev)]
    if isinstance(iv.matcher.coupling, Independent):
        return b0, b1
    i, j = iv.matcher.coupling.sample(b0, b1, batch_size, g)
    return b0[i], b1[j]


def fit_flow(tc: TimeCourse, method: str = "otcfm", *, holdout: int | None = None,
             n_steps: int = 3000, batch_size: int = 256, lr: float = 1e-3,
             sigma: float | None = None, hidden: Sequence[int] = (64, 64, 64),
             activation: str = "selu", coupling: str = "global",
             device: str | torch.device = "auto", random_state: int = 0,
             lr_schedule: str = "constant", ema: float | None = 0.999,
             progress: bool | None = None, checkpoint: str | None = None,
             checkpoint_every: int = 500) -> FlowModel:
    """Fit a :class:`FlowModel` on a time course.

    Parameters
    ----------
    tc
        The time course (cells per timepoint, model times).
    method
        ``"icfm"``, ``"otcfm"`` or ``"sbcfm"``.
    holdout
        Index of a timepoint to leave out (interior only); its neighbours are bridged.
    n_steps, batch_size, lr
        Adam steps, pairs drawn per interval per step, learning rate.
    sigma
        Path noise (OT-/I-CFM) or Brownian diffusion (SB-CFM); default per method.
    hidden, activation
        MLP widths and activation.
    coupling
        ``"global"`` (one plan per interval, solved once) or ``"minibatch"``.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    random_state
        Seed of the weights and of every draw.
    lr_schedule
        ``"constant"`` or ``"cosine"`` (annealed to 1% of ``lr`` over ``n_steps``).
    ema
        Keep an exponential moving average of the weights with this decay (e.g. 0.999)
        and return it (default; it lowered held-out W1 on EMT 10-D); ``None`` returns the
        last weights.
    progress
        Show a progress bar (default: at ``scflow.settings.verbosity >= 1`` on a terminal or
        in Jupyter, not when output goes to a file).
    checkpoint, checkpoint_every
        A file to save the training state to every ``checkpoint_every`` steps (and at the
        end), atomically; if it exists, training resumes from it, and gives the same weights
        as an uninterrupted run. A checkpoint of another configuration (data, method,
        seed, ``n_steps``, ``batch_size``, ``lr``...) is refused with a ``ValueError``.

    Returns
    -------
    The model, with ``meta["loss"]`` the loss of every step.
    """
    if method not in NEURAL_METHODS:
        raise ValueError(f"method must be one of {NEURAL_METHODS}, got {method!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1) or None, got {ema!r}")
    if coupling not in COUPLING_MODES:
        raise ValueError(f"coupling must be one of {COUPLING_MODES}, got {coupling!r}")
    n_steps = _positive("n_steps", n_steps)
    batch_size = _positive("batch_size", batch_size)
    lr = _positive("lr", lr, float)
    sigma = DEFAULT_SIGMA[method] if sigma is None else float(sigma)
    if method == "sbcfm":
        sigma = _positive("sigma", sigma, float)
    elif not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if holdout is not None and not 0 < int(holdout) < tc.n_timepoints - 1:
        raise ValueError(f"holdout must be an interior timepoint index (1..{tc.n_timepoints - 2})"
                         f", got {holdout!r}")
    dev = resolve_device(device)
    tc = tc.to(dev)
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        model = FlowModel(tc.dim, hidden, activation, score=method == "sbcfm",
                          sigma=sigma if method == "sbcfm" else 0.0)
    model.to(dev).train()
    intervals = _intervals(tc, method, sigma, coupling, holdout)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps, eta_min=0.01 * lr)
             if lr_schedule == "cosine" else None)
    params = [p for p in model.parameters()]
    averaged = [p.detach().clone() for p in params] if ema else None
    losses = torch.zeros(n_steps, device=dev)
    start, ck = 0, None
    if checkpoint is not None:
        config = fit_config(tc.xs, tc.times, method=method, holdout=holdout, n_steps=n_steps,
                            batch_size=batch_size, lr=lr, sigma=sigma, hidden=hidden,
                            activation=activation, coupling=coupling, device=dev.type,
                            random_state=int(random_state), lr_schedule=lr_schedule, ema=ema)
        ck = Checkpointer(checkpoint, checkpoint_every, config, model=model, optimizer=opt,
                          scheduler=sched, ema=averaged, generator=g, losses=losses)
        start = ck.resume()
    # default: a bar at verbosity >= 1 on a terminal or in Jupyter, none in logs (tqdm's None)
    disable = (None if settings.verbosity >= 1 else True) if progress is None else not progress
    bar = tqdm(range(start, n_steps), desc=f"scflow {method}", disable=disable, leave=False)
    show = not bar.disable
    for step in bar:
        loss = _step_loss(model, intervals, batch_size, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if averaged is not None:  # EMA, its decay ramped up so short runs are not stale
            with torch.no_grad():
                torch._foreach_lerp_(averaged, params, 1 - min(ema, (1 + step) / (10 + step)))
        losses[step] = loss.detach()
        if ck is not None:
            ck.after_step(step + 1)
        if show and (step + 1) % 100 == 0:
            bar.set_postfix(loss=f"{losses[step - 99: step + 1].mean().item():.4f}")
    if averaged is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, averaged)
    model.eval()
    model.meta.update(
        method=method, sigma=sigma, coupling=coupling, holdout=-1 if holdout is None
        else int(holdout), times=np.asarray(tc.times, dtype=np.float64),
        scaler_mean=np.asarray(tc.mean), scaler_scale=np.asarray(tc.scale),
        n_steps=n_steps, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
        ema=0.0 if ema is None else float(ema), random_state=int(random_state),
        loss=losses.cpu().numpy().astype(np.float64))
    return model


def _step_loss(model: FlowModel, intervals: list[_Interval], batch_size: int,
               g: torch.Generator) -> Tensor:
    ts, xts, uts, eps, sig = [], [], [], [], []
    for iv in intervals:
        x0, x1 = _draw(iv, batch_size, g)
        fs = iv.matcher.sample_pairs(x0, x1, generator=g)
        ts.append(iv.t0 + fs.t * iv.span)
        xts.append(fs.xt)
        uts.append(fs.ut / iv.span)
        if model.has_score:
            eps.append(fs.eps)
            sig.append(iv.matcher.path.sigma_t(fs.t))
    t, xt, ut = torch.cat(ts), torch.cat(xts), torch.cat(uts)
    loss = (model.velocity(t, xt) - ut).pow(2).sum(1).mean()
    if model.has_score:
        # denoising score matching, weighted by sigma_t^2: |sigma_t s + eps|^2
        st = model.score(t, xt)
        loss = loss + (torch.cat(sig)[:, None] * st + torch.cat(eps)).pow(2).sum(1).mean()
    return loss
