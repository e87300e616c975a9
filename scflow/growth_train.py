"""``uotcfm``: a velocity field and a growth field, trained together without simulation.

In the spirit of unbalanced flow matching (UOT-FM, Eyring et al. 2024: pairs from an
unbalanced plan) and velocity-growth flow matching (VGFM, 2025); DeepRUOT and Var-RUOT learn
a velocity and a growth by simulating the dynamics instead. For each kept interval ``a -> b`` the
:class:`~scflow.growth.GrowthOT` plan between the two populations, weighted by their masses
(:func:`~scflow.growth.population_masses`), gives every pair ``(i, j)`` a mass and every
early cell ``i`` its number of descendants ``r_i``. Each step draws ``batch_size`` pairs per
interval from the plan, a time ``s`` on the straight path between them (with ``sigma``
noise, as OT-CFM), and regresses

* the velocity ``v(t, x_t)`` on ``(x1 - x0) / span`` (OT-CFM's target), and
* the growth ``g(t, x_t)`` on ``log r_i / span``, the log-mass change along the pair per
  unit of model time,

with loss ``|v - u|^2 + growth_weight (g - log r / span)^2``. Integrating ``d log w / dt =
g(t, x)`` beside ``dx / dt = v`` (:func:`scflow.integrate` with ``log_weights=True``)
carries each cell's weight. Pairs are drawn in proportion to the plan, the mass they carry
at the later time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._checks import integer, number
from ._errors import TrainingDivergedError
from ._settings import logger, settings
from .couplings import DiscretePlan
from .growth import GrowthOT, population_masses
from .model import FlowModel
from .paths import LinearPath
from .timecourse import TimeCourse
from .train import DIVERGENCE_CHECK_EVERY, _check_data, _check_losses, resolve_device

__all__ = ["fit_growth_flow", "growth_push", "growth_intervals", "growth_options",
           "growth_roll_out", "without_growth", "GROWTH_METHOD",
           "DEFAULT_REG", "DEFAULT_REG_M", "DEFAULT_GROWTH_WEIGHT"]

GROWTH_METHOD = "uotcfm"
#: the entropic blur of the plan, in units of the squared distance of whitened data (set
#: before any measurement, not tuned)
DEFAULT_REG = 0.1
#: how strongly each early cell is held to the mean growth of its population (see
#: :class:`~scflow.growth.GrowthOT`): chosen on a simulation with a known growth
#: (``benchmarks/growth.py sim``: leave-one-out W1 over its interior timepoints, and the error
#: of the learned rate, both best at 3 of 0.3 / 1 / 3), never on a reported timepoint
DEFAULT_REG_M = 3.0
#: weight of the growth loss beside the velocity loss
DEFAULT_GROWTH_WEIGHT = 1.0
#: entries of an interval's plan below this fraction of its largest are dropped
_PLAN_CUTOFF = 1e-9


@dataclass
class _GrowthInterval:
    x0: Tensor
    x1: Tensor
    t0: float
    span: float
    plan: DiscretePlan
    log_growth: Tensor  #: ``log r_i`` of every early cell


def growth_intervals(tc: TimeCourse, masses: Sequence[float], coupling: GrowthOT,
                     holdout: int | None) -> list[_GrowthInterval]:
    """The kept intervals, each with its :class:`GrowthOT` plan and per-cell log-growth."""
    keep = [k for k in range(tc.n_timepoints) if k != holdout]
    out = []
    for a, b in zip(keep[:-1], keep[1:], strict=True):
        x0, x1 = tc.xs[a], tc.xs[b]
        plan, log_r = coupling.plan(x0, x1, (masses[a], masses[b]))
        plan = torch.where(plan >= _PLAN_CUTOFF * plan.max(), plan, 0.0)
        out.append(_GrowthInterval(x0, x1, float(tc.times[a]),
                                   float(tc.times[b] - tc.times[a]),
                                   DiscretePlan(plan), log_r.to(x0.dtype)))
    return out


def fit_growth_flow(tc: TimeCourse, *, holdout: int | None = None,
                    mass: Sequence[float] | str | None = "counts",
                    reg: float = DEFAULT_REG, reg_m: float = DEFAULT_REG_M,
                    growth_weight: float = DEFAULT_GROWTH_WEIGHT, n_steps: int = 3000,
                    batch_size: int = 256, lr: float = 1e-3, sigma: float | None = None,
                    hidden: Sequence[int] = (64, 64, 64), activation: str = "selu",
                    device: str | torch.device = "auto", random_state: int = 0,
                    ema: float | None = 0.999, progress: bool | None = None,
                    _intervals: list[_GrowthInterval] | None = None) -> FlowModel:
    """Fit a growth-aware :class:`FlowModel` (``uotcfm``) on a time course.

    Parameters
    ----------
    tc
        The time course.
    holdout
        Index of an interior timepoint to leave out; its neighbours are bridged.
    mass
        Population sizes: ``"counts"`` (default, the numbers of cells), ``"none"`` / ``None``
        (equal masses: growth learned from the shapes alone, which is logged), or one number
        > 0 per timepoint (measured sizes).
    reg, reg_m
        The :class:`~scflow.growth.GrowthOT` plan's entropic blur and marginal penalty.
    growth_weight
        Weight of the growth loss.
    n_steps, batch_size, lr, sigma, hidden, activation, device, random_state, ema, progress
        As :func:`scflow.fit_flow` (``sigma`` default 0.1; no checkpoints or distributed
        training here).

    Returns
    -------
    The model, with a growth network, ``meta["method"] = "uotcfm"``, ``meta["masses"]``,
    ``meta["growth_from"]`` (``"counts"``, ``"mass"`` or ``"shape"``) and the loss of every
    step (``meta["loss"]``, ``meta["growth_loss"]``).
    """
    n_steps = integer(n_steps, "n_steps", lower=1)
    batch_size = integer(batch_size, "batch_size", lower=1)
    lr = number(lr, "lr", lower=0, strict=True)
    sigma = number(0.1 if sigma is None else sigma, "sigma", lower=0)
    growth_weight = number(growth_weight, "growth_weight", lower=0)
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1) or None, got {ema!r}")
    coupling = GrowthOT(reg=reg, reg_m=reg_m)
    masses = population_masses([len(x) for x in tc.xs], mass)
    growth_from = ("counts" if isinstance(mass, str) and mass == "counts" else
                   "shape" if mass is None or isinstance(mass, str) else "mass")
    if growth_from == "shape":
        logger.info("uotcfm: no population sizes (mass=None): growth is learned from the "
                    "shapes of the populations alone")
    if holdout is not None:
        holdout = tc.interior_index(holdout, "holdout")
    _check_data(tc)
    dev = resolve_device(device)
    tc = tc.to(dev)
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        model = FlowModel(tc.dim, hidden, activation, growth=True)
    model.to(dev).train()
    # the plans depend on the data, masses, reg, reg_m and holdout only: growth_push solves
    # them once for every seed
    intervals = (growth_intervals(tc, masses, coupling, holdout) if _intervals is None
                 else _intervals)
    path = LinearPath(sigma)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params] if ema else None
    losses = torch.zeros(n_steps, device=dev)
    growth_losses = torch.zeros(n_steps, device=dev)
    disable = (None if settings.verbosity >= 1 else True) if progress is None else not progress
    checked = 0
    for step in tqdm(range(n_steps), desc="scflow uotcfm", disable=disable, leave=False):
        t, xt, ut, gt = _batch(intervals, path, batch_size, g)
        v_loss = (model.velocity(t, xt) - ut).pow(2).sum(1).mean()
        g_loss = (model.growth(t, xt) - gt).pow(2).mean()
        loss = v_loss + growth_weight * g_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if averaged is not None:
            with torch.no_grad():
                torch._foreach_lerp_(averaged, params, 1 - min(ema, (1 + step) / (10 + step)))
        losses[step] = loss.detach()
        growth_losses[step] = g_loss.detach()
        if (step + 1) % DIVERGENCE_CHECK_EVERY == 0 or step + 1 == n_steps:
            _check_losses(losses, checked, step + 1, n_steps, lr)
            checked = step + 1
    if averaged is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, averaged)
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise TrainingDivergedError(f"training diverged: the weights are not finite after "
                                    f"{n_steps} steps; try a smaller lr than {lr:g}")
    model.eval()
    model.meta.update(
        method=GROWTH_METHOD, sigma=sigma, coupling="global",
        holdout=-1 if holdout is None else int(holdout),
        times=np.asarray(tc.times, dtype=np.float64), scaler_mean=np.asarray(tc.mean),
        scaler_scale=np.asarray(tc.scale), n_steps=n_steps, batch_size=batch_size, lr=lr,
        lr_schedule="constant", ema=0.0 if ema is None else float(ema),
        random_state=int(random_state), masses=np.asarray(masses, dtype=np.float64),
        growth_from=growth_from, reg=float(reg), reg_m=float(reg_m),
        growth_weight=float(growth_weight),
        loss=losses.cpu().numpy().astype(np.float64),
        growth_loss=growth_losses.cpu().numpy().astype(np.float64))
    return model


def _batch(intervals: list[_GrowthInterval], path: LinearPath, batch_size: int,
           g: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step's ``t, x_t, u_t`` and growth targets, in model time, over every interval."""
    ts, xts, uts, gts = [], [], [], []
    for iv in intervals:
        i, j = iv.plan.sample_pairs(batch_size, g)
        x0, x1 = iv.x0[i], iv.x1[j]
        s = torch.rand(batch_size, generator=g, device=x0.device, dtype=x0.dtype)
        eps = path.noise(x0, x1, g)
        ts.append(iv.t0 + s * iv.span)
        xts.append(path.sample_xt(s, x0, x1, eps))
        uts.append(path.target_velocity(s, x0, x1, eps) / iv.span)
        gts.append(iv.log_growth[i] / iv.span)
    return torch.cat(ts), torch.cat(xts), torch.cat(uts), torch.cat(gts)


#: options of :func:`fit_growth_flow` that the leave-one-out protocol passes on
_FIT_OPTIONS = ("n_steps", "batch_size", "lr", "sigma", "hidden", "activation", "ema", "reg",
                "reg_m", "growth_weight")
#: options of other methods in the same call that ``uotcfm`` has no use for
_OTHER_OPTIONS = ("spline", "window", "lr_schedule", "checkpoint", "checkpoint_every")


#: options only ``uotcfm`` takes (the other methods of a protocol run leave them)
GROWTH_ONLY_OPTIONS = ("reg", "reg_m", "growth_weight")


def without_growth(options: dict) -> dict:
    """A protocol's training options without those only ``uotcfm`` takes."""
    return {k: v for k, v in options.items() if k not in GROWTH_ONLY_OPTIONS}


def growth_options(options: dict) -> dict:
    """The options among a protocol's training options that :func:`fit_growth_flow` takes.

    Options of other methods (``spline``, ``window``...) are left to them; ``coupling`` may
    only be ``"auto"`` or ``"global"`` (``uotcfm``'s plans are global); any other option is
    refused with a ``ValueError``.
    """
    coupling = options.get("coupling", "auto")
    if coupling not in ("auto", "global"):
        raise ValueError(f"coupling must be 'auto' or 'global' for method 'uotcfm' (its plans "
                         f"are global), got {coupling!r}")
    unknown = sorted(set(options) - set(_FIT_OPTIONS) - set(_OTHER_OPTIONS) - {"coupling"})
    if unknown:
        raise ValueError(f"uotcfm takes the options {_FIT_OPTIONS}, got {unknown}")
    return {key: options[key] for key in _FIT_OPTIONS if key in options}


def growth_push(tc: TimeCourse, k: int, seeds: Sequence[int], *,
                mass: Sequence[float] | str | None = None, device: str | torch.device = "auto",
                n_euler: int = 100, progress: bool | None = None, **options):
    """The leave-one-out step of ``uotcfm``: fit without timepoint ``k`` and push ``k - 1``.

    The plans of the kept intervals are solved once and shared by every seed. Yields
    ``(seed, seconds, (cells, weights))`` per seed: the cells of ``k - 1`` carried to the
    time of ``k`` with ``n_euler`` Euler steps and their weights ``exp(log w)``, each
    scaled by the mass of ``k - 1`` (so weights compare across timepoints). ``mass``:
    ``None`` means the numbers of cells. ``options``: those of :func:`fit_growth_flow`;
    ``coupling`` may only be ``"auto"`` or ``"global"`` (the plans are global).
    """
    import time

    from .integrate import integrate

    fit_options = growth_options(options)
    mass = "counts" if mass is None else mass
    start = time.perf_counter()
    dev = resolve_device(device)
    masses = population_masses([len(x) for x in tc.xs], mass)
    coupling_ = GrowthOT(reg=fit_options.get("reg", DEFAULT_REG),
                         reg_m=fit_options.get("reg_m", DEFAULT_REG_M))
    intervals = growth_intervals(tc.to(dev), masses, coupling_, k)
    plan_seconds = time.perf_counter() - start
    t_prev, t_k = float(tc.times[k - 1]), float(tc.times[k])
    for seed in seeds:
        start = time.perf_counter()
        model = fit_growth_flow(tc, holdout=k, mass=mass, device=dev, random_state=int(seed),
                                progress=progress, _intervals=intervals, **fit_options)
        x, log_w = integrate(model, tc.xs[k - 1].to(model.device), t_prev, t_k,
                             n_steps=n_euler, log_weights=True)
        w = masses[k - 1] / len(x) * torch.exp(log_w.double())
        yield int(seed), plan_seconds + time.perf_counter() - start, (x, w)


def growth_roll_out(model: FlowModel, x0: Tensor, times: Sequence[float], *,
                    n_euler: int = 100, mass0: float = 1.0) -> list[tuple[Tensor, Tensor]]:
    """:func:`scflow.rollout.roll_out` with weights: push ``x0`` from ``times[0]`` through
    every later time, never restarting, carrying each cell's log-weight along.

    Returns ``(cells, weights)`` at ``times[1:]``, the weights ``mass0 / n * exp(log w)``.
    """
    from .integrate import integrate

    out, x = [], x0.to(model.device)
    log_w = torch.zeros(len(x), device=x.device)
    for a, b in zip(times[:-1], times[1:], strict=True):
        x, step = integrate(model, x, float(a), float(b), log_weights=True,
                            n_steps=max(1, round(n_euler * (float(b) - float(a)))))
        log_w = log_w + step
        out.append((x, mass0 / len(x) * torch.exp(log_w.double())))
    return out
