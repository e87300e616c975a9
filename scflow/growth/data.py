"""Where ``uotcfm``'s pairs and growth targets come from: global or minibatch plans.

The growth-aware counterpart of :mod:`scflow.training.data`. Each kept interval ``a -> b``
draws, at every step, ``batch_size`` pairs ``(i, j)`` and the log-growth ``log r_i`` of
each pair's early cell from a :class:`~scflow.growth.GrowthOT` plan between the two
populations, weighted by their masses, its ``reg_m`` taken in units of the interval's mean
squared distance (:func:`scaled`, once per interval from the whole populations):

- :class:`GlobalGrowthInterval` (``coupling="global"``): one plan between the whole
  populations, solved once (through a :class:`~scflow.couplings.PlanCache` when given);
- :class:`MinibatchGrowthInterval` (``coupling="minibatch"``, or ``"auto"`` above
  :data:`scflow.training.loop.AUTO_GLOBAL_MAX_ENTRIES` cell pairs, the rule of the balanced
  methods): every step draws ``batch_size`` early and ``batch_size`` late cells (uniformly,
  with replacement, from the step's generator, on the populations' device), solves the plan
  between them with the two *populations'* masses (each minibatch cell carries its
  population's mass over the minibatch size, so the plan's columns carry the late
  population's mass and ``log r_i = log(row sum / a_i)`` estimates the growth of early cell
  ``i`` over the interval) and draws the step's pairs from it, as minibatch OT-CFM does
  (TorchCFM). A solve that does not reach its tolerance is counted, not warned about at
  each step: :func:`warn_unconverged` reports the count once, at the end of training.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..couplings import ConvergenceWarning, DiscretePlan, GrowthOT, PlanCache, mean_cost
from ..flow.timecourse import TimeCourse
from ..paths import LinearPath
from ..training.data import Batch, kept_intervals, minibatch_indices

__all__ = ["GrowthData", "GlobalGrowthInterval", "MinibatchGrowthInterval",
           "growth_intervals", "minibatch_growth_intervals", "interval_priors", "scaled",
           "growth_batch", "warn_unconverged", "blend_prior", "PRIOR_WEIGHT"]

#: entries of a plan below this fraction of its largest are dropped
PLAN_CUTOFF = 1e-9
#: with a growth prior, the weight of the prior's between-cell differences added to each
#: early cell's growth target (:func:`blend_prior`; the interval's mean growth stays the
#: plan's). 0 is the former rule: the prior only pulls the plan's row masses, and the plan's
#: geometry then overrides it. Read when the intervals are built, so a benchmark may set it
#: (``benchmarks/growth.py prior`` chose it on the growth simulation with a prior that
#: knows the true rate up to noise: mean Spearman r of the learned rate 0.593 at 0.25, 0.593
#: at 0, 0.590 at 0.5, 0.577 at 1, 0.551 at 2; without any prior 0.633:
#: ``benchmarks/results/growth_prior.md``)
PRIOR_WEIGHT = 0.25


def blend_prior(log_r: Tensor, prior: Tensor, weight: float) -> Tensor:
    """Each early cell's growth target with the prior added.

    ``log r_i + w (prior_i - mean prior)``: the plan's log-growth (its mean is the
    population's mass change, which the prior does not know) plus the prior's between-cell
    differences, weighted (in log-growth, adding is multiplying the two estimates of the
    number of descendants). ``w = 0`` leaves ``log_r``; a flat prior adds nothing.

    Parameters
    ----------
    log_r
        ``(n,)`` the plan's log-growth of ``n`` early cells over the interval.
    prior
        ``(n,)`` their prior log-growth over the interval.
    weight
        ``w >= 0``.
    """
    if not float(weight) >= 0.0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    if prior.shape != log_r.shape:
        raise ValueError(f"prior must have the shape of log_r {tuple(log_r.shape)}, got "
                         f"{tuple(prior.shape)}")
    prior = prior.to(log_r.device, log_r.dtype)
    return log_r + weight * (prior - prior.mean())


def _sparsified(plan: Tensor) -> Tensor:
    return torch.where(plan >= PLAN_CUTOFF * plan.max(), plan, 0.0)


@dataclass
class GlobalGrowthInterval:
    """One interval's populations, start and span in model time, its global plan and the
    log-growth ``log r_i`` of every early cell."""

    x0: Tensor
    x1: Tensor
    t0: float
    span: float
    plan: DiscretePlan
    log_growth: Tensor

    def draw(self, batch_size: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``batch_size`` pairs ``(x0, x1)`` from the plan and their ``log r``."""
        i, j = self.plan.sample_pairs(batch_size, g)
        return self.x0[i], self.x1[j], self.log_growth[i]


@dataclass
class MinibatchGrowthInterval:
    """One interval whose :class:`GrowthOT` plan is solved on each step's minibatch.

    ``mass``: the total masses of the two populations; ``prior``: each early cell's prior
    log-growth over the interval, or ``None``; ``prior_weight``: its weight in the growth
    targets (:func:`blend_prior`, over the minibatch's early cells). ``n_solves`` and
    ``n_unconverged`` count the minibatch solves and those that stopped above the
    coupling's ``tol``.
    """

    x0: Tensor
    x1: Tensor
    t0: float
    span: float
    coupling: GrowthOT
    mass: tuple[float, float]
    prior: Tensor | None = None
    n_solves: int = 0
    n_unconverged: int = 0
    prior_weight: float = 0.0

    def draw(self, batch_size: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """A minibatch of ``batch_size`` early and late cells, its plan, and ``batch_size``
        pairs drawn from that plan with their ``log r``."""
        i0, i1 = minibatch_indices(len(self.x0), len(self.x1), batch_size, g, self.x0.device)
        b0, b1 = self.x0[i0], self.x1[i1]
        plan, log_r, err = self.coupling.solve(
            b0, b1, self.mass, None if self.prior is None else self.prior[i0])
        self.n_solves += 1
        if err > self.coupling.tol:
            self.n_unconverged += 1
        if self.prior is not None and self.prior_weight > 0:
            log_r = blend_prior(log_r, self.prior[i0], self.prior_weight)
        i, j = DiscretePlan(_sparsified(plan)).sample_pairs(batch_size, g)
        return b0[i], b1[j], log_r[i].to(b0.dtype)


@dataclass(frozen=True)
class _MassedGrowthOT:
    """:class:`GrowthOT` between two populations of given masses, as a coupling whose
    ``plan(x0, x1)`` a :class:`~scflow.couplings.PlanCache` keeps (its ``repr`` holds
    the masses)."""

    coupling: GrowthOT
    mass: tuple[float, float]

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        return self.coupling.plan(x0, x1, self.mass)[0]


def scaled(coupling: GrowthOT, x0: Tensor, x1: Tensor) -> GrowthOT:
    """``coupling`` with its ``reg_m`` read in units of the :func:`mean_cost` of ``x0`` and
    ``x1`` (``uotcfm``'s convention): the absolute penalty of every plan of the interval
    between these populations, its global plan or its minibatches'."""
    return replace(coupling, reg_m=coupling.reg_m * mean_cost(x0, x1))


def interval_priors(rates: Sequence[Tensor], times: Sequence[float], holdout: int | None
                    ) -> list[Tensor]:
    """Each kept interval's prior log-growth of its early cells: their growth ``rates``
    (one tensor per timepoint, per unit of ``times``) times the interval's length in
    ``times``."""
    return [torch.as_tensor(rates[a]) * float(times[b] - times[a])
            for a, b in kept_intervals(len(rates), holdout)]


def growth_intervals(tc: TimeCourse, masses: Sequence[float], coupling: GrowthOT,
                     holdout: int | None, plan_cache: PlanCache | None = None,
                     priors: Sequence[Tensor] | None = None,
                     prior_weight: float | None = None) -> list[GlobalGrowthInterval]:
    """The kept intervals, each with its global :class:`GrowthOT` plan and per-cell
    log-growth (the plans taken from ``plan_cache`` when given, solved there once; with
    ``priors``, one per kept interval (:func:`interval_priors`), solved here, and the
    log-growth blended with the prior by ``prior_weight``, :func:`blend_prior`; ``None``:
    :data:`PRIOR_WEIGHT`)."""
    weight = PRIOR_WEIGHT if prior_weight is None else float(prior_weight)
    out = []
    for n, (a, b) in enumerate(kept_intervals(tc.n_timepoints, holdout)):
        x0, x1 = tc.xs[a], tc.xs[b]
        solver = scaled(coupling, x0, x1)
        if priors is not None:
            plan, log_r = solver.plan(x0, x1, (masses[a], masses[b]), priors[n].to(x0.device))
            log_r = blend_prior(log_r, priors[n], weight)
        elif plan_cache is None:
            plan, log_r = solver.plan(x0, x1, (masses[a], masses[b]))
        else:
            plan = plan_cache.plan(_MassedGrowthOT(solver, (masses[a], masses[b])), x0, x1)
            log_r = torch.log(plan.sum(1) / (masses[a] / len(x0)))
        out.append(GlobalGrowthInterval(x0, x1, float(tc.times[a]),
                                        float(tc.times[b] - tc.times[a]),
                                        DiscretePlan(_sparsified(plan)), log_r.to(x0.dtype)))
    return out


def minibatch_growth_intervals(tc: TimeCourse, masses: Sequence[float], coupling: GrowthOT,
                               holdout: int | None, priors: Sequence[Tensor] | None = None,
                               prior_weight: float | None = None
                               ) -> list[MinibatchGrowthInterval]:
    """The kept intervals, each solving its :class:`GrowthOT` plan per step's minibatch
    (``priors``: one per kept interval, :func:`interval_priors`, blended into the targets
    by ``prior_weight``; ``None``: :data:`PRIOR_WEIGHT`)."""
    weight = PRIOR_WEIGHT if prior_weight is None else float(prior_weight)
    return [MinibatchGrowthInterval(tc.xs[a], tc.xs[b], float(tc.times[a]),
                                    float(tc.times[b] - tc.times[a]),
                                    scaled(coupling, tc.xs[a], tc.xs[b]),
                                    (float(masses[a]), float(masses[b])),
                                    None if priors is None else priors[n].to(tc.xs[a].device),
                                    prior_weight=weight)
            for n, (a, b) in enumerate(kept_intervals(tc.n_timepoints, holdout))]


def growth_batch(intervals: Sequence[GlobalGrowthInterval | MinibatchGrowthInterval],
                 path: LinearPath, batch_size: int, g: torch.Generator
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One step's ``t, x_t, u_t`` and growth targets ``log r_i / span``, in model time,
    over every interval."""
    ts, xts, uts, gts = [], [], [], []
    for iv in intervals:
        x0, x1, log_r = iv.draw(batch_size, g)
        s = torch.rand(batch_size, generator=g, device=x0.device, dtype=x0.dtype)
        eps = path.noise(x0, x1, g)
        ts.append(iv.t0 + s * iv.span)
        xts.append(path.sample_xt(s, x0, x1, eps))
        uts.append(path.target_velocity(s, x0, x1, eps) / iv.span)
        gts.append(log_r / iv.span)
    return torch.cat(ts), torch.cat(xts), torch.cat(uts), torch.cat(gts)


def warn_unconverged(intervals: Sequence[GlobalGrowthInterval | MinibatchGrowthInterval]
                     ) -> int:
    """Warn once (:class:`~scflow.couplings.ConvergenceWarning`) when minibatch solves
    stopped above their tolerance; returns how many did."""
    mini = [iv for iv in intervals if isinstance(iv, MinibatchGrowthInterval)]
    bad = sum(iv.n_unconverged for iv in mini)
    if bad:
        total = sum(iv.n_solves for iv in mini)
        c = mini[0].coupling
        warnings.warn(f"uotcfm: {bad} of {total} minibatch GrowthOT plans did not converge "
                      f"(potentials still moving by more than tol={c.tol:g} after "
                      f"{c.num_iter_max} iterations per stage); their pairs and growth "
                      "targets are approximate: raise reg",
                      ConvergenceWarning, stacklevel=3)
    return bad


class GrowthData:
    """``uotcfm``'s training data (:class:`~scflow.training.data.TrainingData`): pairs, their
    points on the straight paths and every pair's growth target, per kept interval.

    Parameters
    ----------
    intervals
        :func:`growth_intervals` (global plans) or :func:`minibatch_growth_intervals`.
    path
        The path the pairs are put on (``LinearPath(sigma)``).
    """

    def __init__(self, intervals: Sequence[GlobalGrowthInterval | MinibatchGrowthInterval],
                 path: LinearPath) -> None:
        self.intervals, self.path = list(intervals), path

    def plans(self) -> list[DiscretePlan | None]:
        return [iv.plan if isinstance(iv, GlobalGrowthInterval) else None
                for iv in self.intervals]

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        t, xt, ut, gt = growth_batch(self.intervals, self.path, batch_size, generator)
        return Batch(t, xt, ut, growth=gt)

    def finish(self) -> None:
        """Report minibatch solves that did not converge, once (:func:`warn_unconverged`)."""
        warn_unconverged(self.intervals)
