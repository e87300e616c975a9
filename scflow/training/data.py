"""Where the training loop's data come from: pairs per interval, or chains through all.

One interface, :class:`TrainingData`: ``plans()`` (the global plans held, for the
distributed broadcast) and ``batch(batch_size, generator)`` (one step's ``t, x_t, u_t`` and,
for a score network, the noise and ``sigma_t``, all in model time). Pairs are the two-knot
case (DESIGN.md): :class:`PairData` draws ``(x0, x1)`` per consecutive interval from its
coupling and puts them on the method's path; :class:`ChainData` draws whole trajectories,
one cell per kept timepoint, through the chained plans and puts them on a
:class:`~scflow.paths.SplinePath`. A method (:mod:`scflow.methods`) builds the one it
needs (``NeuralMethod.training_data``); growth-aware methods draw growth targets too
(:mod:`scflow.growth.data`). A step's data is a :class:`Batch`; the model's outputs on
it, which the method's loss reads, an :class:`Outputs`.

Global plans are solved through a :class:`PlanCache` when one is given: the protocols keep
one per time course, so a plan is solved once across seeds, methods and held-out times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from ..couplings import (
    Coupling,
    DiscretePlan,
    EntropicOT,
    Independent,
    PlanCache,
    sample_trajectories,
)
from ..flow.matching import FlowMatcher
from ..flow.timecourse import TimeCourse
from ..paths import SplinePath

__all__ = ["TrainingData", "Batch", "Outputs", "PairData", "ChainData", "PlanCache",
           "pair_data", "chain_data", "kept_intervals", "minibatch", "minibatch_indices",
           "minibatch_matcher", "MINIBATCH_SINKHORN_TOL"]


class Batch(NamedTuple):
    """One step's training data, in model time (tensors on the training device).

    ``t`` ``(n,)``, ``xt`` ``(n, d)`` points on the conditional paths, ``ut`` ``(n, d)``
    their target velocities; ``eps`` and ``sigma_t`` (score networks: the noise of each draw
    and the path's ``sigma_t``) and ``growth`` (growth-aware methods: the target log-mass
    change per unit of model time), ``None`` where a method has none.
    """

    t: Tensor
    xt: Tensor
    ut: Tensor
    eps: Tensor | None = None
    sigma_t: Tensor | None = None
    growth: Tensor | None = None


class Outputs(NamedTuple):
    """The model's outputs at a batch's ``(t, xt)``: the velocity, and the score and the
    growth where the model has those heads (``None`` otherwise)."""

    velocity: Tensor
    score: Tensor | None = None
    growth: Tensor | None = None


class TrainingData(Protocol):
    """What :func:`scflow.fit_flow` trains on: a method's draws at every step."""

    def plans(self) -> list[DiscretePlan | None]:
        """The global plans held (``None`` where pairs are drawn per step); under
        ``torch.distributed`` they are broadcast from rank 0 in place."""

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """One step's training data in model time."""

    def finish(self) -> None:
        """Called once after the last step (e.g. to report unconverged minibatch solves)."""






def _solve(coupling: Coupling, x0: Tensor, x1: Tensor,
           cache: PlanCache | None) -> DiscretePlan:
    return coupling.discrete_plan(x0, x1) if cache is None else \
        cache.discrete_plan(coupling, x0, x1)


def kept_intervals(n_timepoints: int, holdout: int | None) -> list[tuple[int, int]]:
    """Consecutive ``(a, b)`` of the kept timepoints (``holdout`` bridged)."""
    keep = [k for k in range(n_timepoints) if k != holdout]
    return list(zip(keep[:-1], keep[1:], strict=True))


def minibatch_indices(n0: int, n1: int, batch_size: int, g: torch.Generator,
                      device: torch.device) -> tuple[Tensor, Tensor]:
    """The indices of :func:`minibatch`'s cells in each population (the same draws)."""
    return (torch.randint(n0, (batch_size,), generator=g, device=device),
            torch.randint(n1, (batch_size,), generator=g, device=device))


def minibatch(x0: Tensor, x1: Tensor, batch_size: int, g: torch.Generator
              ) -> tuple[Tensor, Tensor]:
    """``batch_size`` cells of each population, drawn uniformly with replacement from ``g``
    on their device: the cells a minibatch plan is solved between."""
    i0, i1 = minibatch_indices(len(x0), len(x1), batch_size, g, x0.device)
    return x0[i0], x1[i1]


@dataclass
class Interval:
    """One interval's populations, its start and span in model time, matcher and plan."""

    x0: Tensor
    x1: Tensor
    t0: float
    span: float
    matcher: FlowMatcher
    plan: DiscretePlan | None

    def draw(self, batch_size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Pairs ``(x0, x1)`` for one step: from the global plan, or a minibatch's."""
        if self.plan is not None:
            i, j = self.plan.sample_pairs(batch_size, g)
            return self.x0[i], self.x1[j]
        b0, b1 = minibatch(self.x0, self.x1, batch_size, g)
        if isinstance(self.matcher.coupling, Independent):
            return b0, b1
        i, j = self.matcher.coupling.sample(b0, b1, batch_size, g)
        return b0[i], b1[j]


class PairData:
    """Pairs per consecutive interval, each interval's local time mapped to model time."""

    def __init__(self, intervals: list[Interval], score: bool) -> None:
        self.intervals, self.score = intervals, score

    def plans(self) -> list[DiscretePlan | None]:
        return [iv.plan for iv in self.intervals]

    def finish(self) -> None:
        pass

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        ts, xts, uts, eps, sig = [], [], [], [], []
        for iv in self.intervals:
            x0, x1 = iv.draw(batch_size, generator)
            fs = iv.matcher.sample_pairs(x0, x1, generator=generator, with_score=False)
            ts.append(iv.t0 + fs.t * iv.span)
            xts.append(fs.xt)
            uts.append(fs.ut / iv.span)
            if self.score:
                eps.append(fs.eps)
                sig.append(iv.matcher.path.sigma_t(fs.t))
        if not self.score:
            return Batch(torch.cat(ts), torch.cat(xts), torch.cat(uts))
        return Batch(torch.cat(ts), torch.cat(xts), torch.cat(uts), torch.cat(eps),
                     torch.cat(sig))


@dataclass
class ChainData:
    """The kept populations, their times, the chained plans and the spline through them."""

    xs: list[Tensor]
    times: Tensor
    chained: list[DiscretePlan]
    path: SplinePath
    basis: Tensor  #: what the spline needs of the knot times, validated once

    def plans(self) -> list[DiscretePlan | None]:
        return list(self.chained)

    def finish(self) -> None:
        pass

    def knots(self, idx: Tensor) -> Tensor:
        """``(n, K, d)`` cells of the trajectories ``idx`` (one index per kept timepoint)."""
        return torch.stack([x[idx[:, k]] for k, x in enumerate(self.xs)], dim=1)

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` trajectories per segment, each with one time in its segment."""
        nseg = len(self.xs) - 1
        n = batch_size * nseg
        knots = self.knots(sample_trajectories(self.chained, n, generator=generator))
        seg = torch.arange(nseg, device=knots.device).repeat_interleave(batch_size)
        u = torch.rand(n, generator=generator, device=knots.device, dtype=knots.dtype)
        t = self.times[seg] + u * (self.times[seg + 1] - self.times[seg])
        eps = self.path.noise(knots, generator)
        xt, ut, sig = self.path.sample_xt_ut(t, knots, self.times, eps, self.basis)
        return Batch(t, xt, ut, eps, sig)


def chain_data(tc: TimeCourse, sigma: float, holdout: int | None, *, coupling: Coupling,
               spline: str = "natural", window: int | None = None,
               cache: PlanCache | None = None) -> ChainData:
    """The chain through every kept timepoint (``holdout`` left out)."""
    keep = [k for k in range(tc.n_timepoints) if k != holdout]
    xs = [tc.xs[k] for k in keep]
    times = torch.as_tensor(np.asarray(tc.times)[keep], dtype=xs[0].dtype, device=xs[0].device)
    path = SplinePath(sigma, kind=spline, window=window)
    if len(xs) < 2:
        raise ValueError(f"xs must hold at least 2 populations, got {len(xs)}")
    plans = [_solve(coupling, a, b, cache) for a, b in zip(xs[:-1], xs[1:], strict=True)]
    return ChainData(xs, times, plans, path, path.basis(times))


def pair_data(tc: TimeCourse, matcher: Callable[[float], FlowMatcher], coupling: str,
              holdout: int | None, *, cache: PlanCache | None = None,
              score: bool = False) -> PairData:
    """Pairs per kept interval (``holdout`` bridged), each drawn by ``matcher(span)``, the
    :class:`~scflow.FlowMatcher` of an interval of ``span`` units of model time; global
    plans (``coupling="global"``, through ``cache``) or minibatch ones (``"minibatch"``);
    ``score``: also the noise and ``sigma_t`` of every draw (score networks)."""
    out = []
    for a, b in kept_intervals(tc.n_timepoints, holdout):
        span = float(tc.times[b] - tc.times[a])
        m = matcher(span)
        x0, x1 = tc.xs[a], tc.xs[b]
        plan = None
        if coupling == "global" and not isinstance(m.coupling, Independent):
            plan = _solve(m.coupling, x0, x1, cache)
        elif coupling == "minibatch":
            m = minibatch_matcher(m)
        out.append(Interval(x0, x1, float(tc.times[a]), span, m, plan))
    return PairData(out, score=score)


#: marginal tolerance of the Sinkhorn plans solved on each step's minibatch (global plans
#: keep their coupling's, 1e-6): ``batch_size`` pairs are drawn from each, so a plan within
#: 1e-4 (0.3% of its mass moved, measured on EMT at reg 0.125) is drawn from as the exact one
#: is, while 1e-6 took 5000 iterations (the cap) per plan at ``sbcfm``'s ``sigma=0.25``
#: (``benchmarks/minibatch_sinkhorn.py``)
MINIBATCH_SINKHORN_TOL = 1e-4


def minibatch_matcher(matcher: FlowMatcher) -> FlowMatcher:
    """``matcher`` for minibatch plans: an entropic coupling solved to
    :data:`MINIBATCH_SINKHORN_TOL`; any other coupling as it is."""
    plan = matcher.coupling
    if isinstance(plan, EntropicOT) and plan.tol < MINIBATCH_SINKHORN_TOL:
        return FlowMatcher(matcher.path, replace(plan, tol=MINIBATCH_SINKHORN_TOL))
    return matcher
