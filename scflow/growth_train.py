"""``uotcfm``: a velocity field and a growth field, trained together without simulation.

In the spirit of unbalanced flow matching (UOT-FM, Eyring et al. 2024: pairs from an
unbalanced plan) and velocity-growth flow matching (VGFM, 2025); DeepRUOT and Var-RUOT learn
a velocity and a growth by simulating the dynamics instead. For each kept interval ``a -> b`` the
:class:`~scflow.growth.GrowthOT` plan between the two populations, weighted by their masses
(:func:`~scflow.growth.population_masses`), gives every pair ``(i, j)`` a mass and every
early cell ``i`` its number of descendants ``r_i``. Each step draws ``batch_size`` pairs per
interval from the plan (one global plan per interval, or, with ``coupling="minibatch"`` or
``"auto"`` on large data, the plan of the step's minibatch: :mod:`scflow.growth_data`), a
time ``s`` on the straight path between them (with ``sigma`` noise, as OT-CFM), and
regresses

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

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from ._checks import integer, number
from ._errors import TrainingDivergedError
from ._settings import logger, settings
from .config import COUPLING_MODES, TrainConfig
from .growth import GrowthOT, population_masses
from .growth_data import (
    GlobalGrowthInterval,
    MinibatchGrowthInterval,
    growth_batch,
    growth_intervals,
    interval_priors,
    minibatch_growth_intervals,
    warn_unconverged,
)
from .model import FlowModel
from .paths import LinearPath
from .timecourse import TimeCourse
from .train import (
    DIVERGENCE_CHECK_EVERY,
    _check_data,
    _check_losses,
    _resolve_coupling,
    resolve_device,
)
from .training_data import PlanCache

__all__ = ["fit_growth_flow", "fit_uotcfm", "growth_intervals", "growth_roll_out",
           "GROWTH_METHOD",
           "DEFAULT_REG", "DEFAULT_REG_M", "DEFAULT_GROWTH_WEIGHT"]

GROWTH_METHOD = "uotcfm"
#: the entropic blur of the plan, in units of the squared distance of whitened data (set
#: before any measurement, not tuned)
DEFAULT_REG = 0.1
#: how strongly each early cell is held to the mean growth of its population (see
#: :class:`~scflow.growth.GrowthOT`), in units of each interval's mean squared distance
#: (:func:`~scflow.growth.mean_cost`): chosen on a simulation with a known growth, never on a
#: reported timepoint (``benchmarks/growth.py sim``: leave-one-out W1 over its interior
#: timepoints and the error of the learned rate, both best at 1 of 0.1 / 0.3 / 1 / 3 / 10 in
#: 2-D; in 10-D, where the absolute penalty's best moved from 3 to 10, 1 is within 0.003 of
#: the best rate error)
DEFAULT_REG_M = 1.0
#: weight of the growth loss beside the velocity loss
DEFAULT_GROWTH_WEIGHT = 1.0


def fit_growth_flow(tc: TimeCourse, *, holdout: int | None = None,
                    mass: Sequence[float] | str | None = "counts",
                    reg: float = DEFAULT_REG, reg_m: float = DEFAULT_REG_M,
                    growth_weight: float = DEFAULT_GROWTH_WEIGHT, n_steps: int = 3000,
                    batch_size: int = 256, lr: float = 1e-3, sigma: float | None = None,
                    hidden: Sequence[int] = (64, 64, 64), activation: str = "selu",
                    device: str | torch.device = "auto", random_state: int = 0,
                    ema: float | None = 0.999, progress: bool | None = None,
                    coupling: str = "auto", plan_cache: PlanCache | None = None,
                    growth_prior: Sequence | None = None,
                    prior_times: Sequence[float] | None = None) -> FlowModel:
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
        > 0 per timepoint (measured sizes). They set each interval's mean growth,
        ``log(m1 / m0)``: the semi-relaxed plan only scales with them, so they change no
        pair and no cell's growth relative to the others.
    reg, reg_m
        The :class:`~scflow.growth.GrowthOT` plan's entropic blur (in units of the squared
        distance) and marginal penalty, the latter in units of each interval's mean squared
        distance between its early and late cells (:func:`~scflow.growth.mean_cost`, as
        moscot scales its costs), so that it means the same in any dimension.
    growth_weight
        Weight of the growth loss.
    n_steps, batch_size, lr, sigma, hidden, activation, device, random_state, ema, progress
        As :func:`scflow.fit_flow` (``sigma`` default 0.1; no checkpoints or distributed
        training here).
    coupling
        ``"global"`` (one :class:`~scflow.growth.GrowthOT` plan per interval, solved once),
        ``"minibatch"`` (a plan on each step's minibatch of ``batch_size`` early and late
        cells, :mod:`scflow.growth_data`: memory O(batch_size^2), flat in the number of
        cells) or ``"auto"`` (default: the rule of :func:`scflow.fit_flow`, global up to
        :data:`scflow.train.AUTO_GLOBAL_MAX_ENTRIES` cell pairs in the largest interval,
        minibatch above; and, a global growth plan being slow to solve, global only while it
        costs less than the run's minibatch plans, ``GROWTH_GLOBAL_COST * n * m <= n_steps *
        batch_size**2``: :data:`scflow.methods.GROWTH_GLOBAL_COST`). Minibatch plans that
        did not converge are counted and reported by one
        :class:`~scflow.couplings.ConvergenceWarning` at the end.
    plan_cache
        Global plans are taken from it (solved there once), so seeds, held-out timepoints
        and protocol calls share them; unused by minibatch plans and with ``growth_prior``.
    growth_prior
        A prior growth rate for every cell: one array per timepoint (its cells in the order
        of ``tc.xs``), per unit of ``prior_times`` (e.g.
        :func:`scflow.growth_prior.prior_growth_rate`, per day). Each interval's plan pulls
        its early cells' masses towards ``exp(rate * length)`` instead of equal shares (the
        prior of Waddington-OT and moscot); ``reg_m`` sets how strongly. ``None``: no prior.
    prior_times
        The time of every timepoint in the units of the prior's rates (default ``tc.times``,
        model time).

    Returns
    -------
    The model, with a growth network, ``meta["method"] = "uotcfm"``, ``meta["masses"]``,
    ``meta["growth_from"]`` (``"counts"``, ``"mass"`` or ``"shape"``),
    ``meta["growth_prior"]`` (whether a prior was given), the coupling used
    (``meta["coupling"]``: ``"global"`` or ``"minibatch"``) and the loss of every step
    (``meta["loss"]``, ``meta["growth_loss"]``).
    """
    n_steps = integer(n_steps, "n_steps", lower=1)
    batch_size = integer(batch_size, "batch_size", lower=1)
    lr = number(lr, "lr", lower=0, strict=True)
    sigma = number(0.1 if sigma is None else sigma, "sigma", lower=0)
    growth_weight = number(growth_weight, "growth_weight", lower=0)
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must be a decay in (0, 1) or None, got {ema!r}")
    if coupling not in COUPLING_MODES:
        raise ValueError(f"coupling must be one of {COUPLING_MODES}, got {coupling!r}")
    solver = GrowthOT(reg=reg, reg_m=reg_m)
    masses = population_masses([len(x) for x in tc.xs], mass)
    growth_from = ("counts" if isinstance(mass, str) and mass == "counts" else
                   "shape" if mass is None or isinstance(mass, str) else "mass")
    if growth_from == "shape":
        logger.info("uotcfm: no population sizes (mass=None): growth is learned from the "
                    "shapes of the populations alone")
    if holdout is not None:
        holdout = tc.interior_index(holdout, "holdout")
    _check_data(tc, sigma, holdout)
    priors = None if growth_prior is None else interval_priors(
        _check_prior(tc, growth_prior), _check_prior_times(tc, prior_times), holdout)
    dev = resolve_device(device)
    coupling = _resolve_coupling(coupling, GROWTH_METHOD, tc, holdout, dev, n_steps=n_steps,
                                 batch_size=batch_size)
    tc = tc.to(dev)
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        model = FlowModel(tc.dim, hidden, activation, growth=True)
    model.to(dev).train()
    intervals: list[GlobalGrowthInterval] | list[MinibatchGrowthInterval] = (
        growth_intervals(tc, masses, solver, holdout, plan_cache, priors)
        if coupling == "global" else minibatch_growth_intervals(tc, masses, solver, holdout,
                                                                priors))
    path = LinearPath(sigma)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params] if ema else None
    losses = torch.zeros(n_steps, device=dev)
    growth_losses = torch.zeros(n_steps, device=dev)
    disable = (None if settings.verbosity >= 1 else True) if progress is None else not progress
    checked = 0
    for step in tqdm(range(n_steps), desc="scflow uotcfm", disable=disable, leave=False):
        t, xt, ut, gt = growth_batch(intervals, path, batch_size, g)
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
    warn_unconverged(intervals)  # minibatch plans: once, with the count
    if averaged is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, averaged)
    if not all(bool(torch.isfinite(p).all()) for p in params):
        raise TrainingDivergedError(f"training diverged: the weights are not finite after "
                                    f"{n_steps} steps; try a smaller lr than {lr:g}")
    model.eval()
    model.meta.update(
        method=GROWTH_METHOD, sigma=sigma, coupling=coupling,
        holdout=-1 if holdout is None else int(holdout),
        times=np.asarray(tc.times, dtype=np.float64), scaler_mean=np.asarray(tc.mean),
        scaler_scale=np.asarray(tc.scale), n_steps=n_steps, batch_size=batch_size, lr=lr,
        lr_schedule="constant", ema=0.0 if ema is None else float(ema),
        random_state=int(random_state), masses=np.asarray(masses, dtype=np.float64),
        growth_from=growth_from, growth_prior=growth_prior is not None, reg=float(reg),
        reg_m=float(reg_m),
        growth_weight=float(growth_weight),
        loss=losses.cpu().numpy().astype(np.float64),
        growth_loss=growth_losses.cpu().numpy().astype(np.float64), **tc.time_meta())
    return model


def _check_prior(tc: TimeCourse, growth_prior: Sequence) -> list[Tensor]:
    """``growth_prior`` as one float64 tensor per timepoint, of its number of cells."""
    if isinstance(growth_prior, (str, bytes)) or len(growth_prior) != tc.n_timepoints:
        raise ValueError(f"growth_prior must hold one array of rates per timepoint "
                         f"({tc.n_timepoints}), got {type(growth_prior).__name__}")
    out = []
    for k, (rates, x) in enumerate(zip(growth_prior, tc.xs, strict=True)):
        r = torch.as_tensor(np.asarray(rates, dtype=np.float64))
        if r.shape != (len(x),) or not bool(torch.isfinite(r).all()):
            raise ValueError(f"growth_prior[{k}] must hold one finite rate per cell of "
                             f"timepoint {k} ({len(x)}), got shape {tuple(r.shape)}")
        out.append(r)
    return out


def _check_prior_times(tc: TimeCourse, prior_times: Sequence[float] | None) -> list[float]:
    if prior_times is None:
        return [float(t) for t in tc.times]
    times = [float(t) for t in prior_times]
    if len(times) != tc.n_timepoints or not all(np.isfinite(times)) or any(
            b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"prior_times must hold one finite, increasing time per timepoint "
                         f"({tc.n_timepoints}), got {prior_times!r}")
    return times


def fit_uotcfm(tc: TimeCourse, method: str = GROWTH_METHOD, *, holdout: int | None = None,
               device: str | torch.device = "auto", random_state: int = 0,
               progress: bool | None = None, config: TrainConfig | None = None,
               plan_cache: PlanCache | None = None,
               mass: Sequence[float] | str | None = None, checkpoint: str | None = None,
               checkpoint_every: int = 500, distributed: bool | None = None,
               growth_prior: tuple[Sequence, Sequence[float] | None] | None = None
               ) -> FlowModel:
    """The registry's trainer of ``uotcfm`` (:mod:`scflow.methods`): :func:`fit_growth_flow`
    from a :class:`~scflow.config.TrainConfig`, called as :func:`scflow.fit_flow` is.

    ``mass``: ``None`` (default) or ``"counts"``: the numbers of cells; ``"none"``: equal
    masses; or one number > 0 per timepoint. ``config``'s ``reg``, ``reg_m`` and
    ``growth_weight`` (``None``: :data:`DEFAULT_REG`, :data:`DEFAULT_REG_M`,
    :data:`DEFAULT_GROWTH_WEIGHT`) set the plan and the loss; its ``coupling``
    (``"auto"``, ``"global"`` or ``"minibatch"``) is :func:`fit_growth_flow`'s, resolved by
    the same rule as the balanced methods'; its ``lr_schedule`` must be ``"constant"``; no
    checkpoints or distributed training (``ValueError`` otherwise). ``plan_cache``: global
    plans are taken from it (solved there once), so seeds, held-out timepoints and protocol
    calls share them. ``growth_prior``: ``(rates, prior_times)``, :func:`fit_growth_flow`'s
    ``growth_prior`` and ``prior_times``, or ``None``.
    """
    if method != GROWTH_METHOD:
        raise ValueError(f"method must be {GROWTH_METHOD!r}, got {method!r}")
    cfg = (config or TrainConfig()).resolved(GROWTH_METHOD)
    if cfg.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'constant' for method 'uotcfm', got "
                         f"{cfg.lr_schedule!r}")
    if checkpoint is not None or distributed:
        raise ValueError("method 'uotcfm' keeps no checkpoints and trains on one process: "
                         "pass checkpoint=None and distributed=None")
    return fit_growth_flow(
        tc, holdout=holdout, mass="counts" if mass is None else mass,
        reg=DEFAULT_REG if cfg.reg is None else cfg.reg,
        reg_m=DEFAULT_REG_M if cfg.reg_m is None else cfg.reg_m,
        growth_weight=(DEFAULT_GROWTH_WEIGHT if cfg.growth_weight is None
                       else cfg.growth_weight),
        n_steps=cfg.n_steps, batch_size=cfg.batch_size, lr=cfg.lr, sigma=cfg.sigma,
        hidden=cfg.hidden, activation=cfg.activation, device=device,
        random_state=random_state, ema=cfg.ema, progress=progress, coupling=cfg.coupling,
        plan_cache=plan_cache, growth_prior=None if growth_prior is None else growth_prior[0],
        prior_times=None if growth_prior is None else growth_prior[1])


def growth_roll_out(model: FlowModel, x0: Tensor, times: Sequence[float], *,
                    n_euler: int = 100, mass0: float = 1.0) -> list[tuple[Tensor, Tensor]]:
    """:func:`scflow.protocols.rollout.roll_out` with weights: push ``x0`` from
    ``times[0]`` through every later time, never restarting, carrying each cell's
    log-weight along.

    Returns ``(cells, weights)`` at ``times[1:]``, the weights ``mass0 / n * exp(log w)``.
    """
    from .protocols.rollout import roll_out

    return [(x, w if mass0 == 1.0 else mass0 * w)
            for x, w in roll_out(model, x0, times, n_euler=n_euler, weighted=True)]
