"""``static_spline``: the no-network multi-marginal prediction, splines in time through
cells drawn along the chained exact OT plans of the kept timepoints (what ``mmfm`` trains
on, with no network)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..couplings import ExactOT, PlanCache, sample_trajectories_through
from ..flow.timecourse import TimeCourse
from ..training.data import chain_data
from ..training.registry import StaticMethod, register

__all__ = ["StaticSpline", "static_spline_predict"]


def static_spline_predict(tc: TimeCourse, t: float, *, start: int, holdout: int | None = None,
                          spline: str = "natural", window: int | None = None,
                          random_state: int = 0, plan_cache: PlanCache | None = None
                          ) -> Tensor:
    """The no-network multi-marginal prediction: splines through chained exact OT plans.

    Every cell of timepoint ``start`` is followed through the exact OT plans between the
    consecutive timepoints kept (all but ``holdout``), backward and forward, one cell drawn
    per timepoint from each plan's conditional; the spline in (model) time through the cells
    drawn is evaluated at ``t``.

    Returns
    -------
    ``(n_start, d)`` predicted cells at ``t``.
    """
    keep = [k for k in range(tc.n_timepoints) if k != holdout]
    if start not in keep:
        raise ValueError(f"start must be a kept timepoint index {keep}, got {start!r}")
    chain = chain_data(tc, 0.0, holdout, coupling=ExactOT(),
                       spline=spline, window=window, cache=plan_cache)  # as mmfm trains on
    dev = chain.times.device
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    cells = torch.arange(len(tc.xs[start]), device=dev)
    idx = sample_trajectories_through(chain.plans(), keep.index(start), cells, generator=g)
    knots = chain.knots(idx)
    tt = torch.full((len(cells),), float(t), dtype=knots.dtype, device=dev)
    return chain.path.mean_and_velocity(tt, knots, chain.times, chain.basis)[0]


@register
class StaticSpline(StaticMethod):
    name = "static_spline"
    shape = "chain"
    summary = "spline through chained exact OT plans, no network"
    protocols = ("leave_one_out", "rollout_holdout")
    order = 70
    candidates = ({},)
    coupling = ExactOT

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        return static_spline_predict(tc, t, start=start, holdout=holdout, spline=spline,
                                     window=window, random_state=random_state,
                                     plan_cache=plan_cache), None
