"""``static_mean_spline``: ``static_ot``'s cloud re-centred on the spline in time through
the mean cells of every kept timepoint."""

from __future__ import annotations

from ..references.interpolants import static_mean_spline_interpolant
from ..training.registry import StaticMethod, register

__all__ = ["StaticMeanSpline"]


@register
class StaticMeanSpline(StaticMethod):
    name = "static_mean_spline"
    summary = "static_ot re-centred on the spline through the timepoints' means"
    deterministic = True
    protocols = ("leave_one_out",)
    order = 90
    candidates = ({},)

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        return static_mean_spline_interpolant(tc, holdout, spline=spline, window=window,
                                              plan_cache=plan_cache)
