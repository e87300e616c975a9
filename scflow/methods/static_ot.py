"""``static_ot``: the McCann interpolant of the exact OT plan between the neighbours of the
held-out timepoint, at its time (the non-neural reference of DESIGN.md)."""

from __future__ import annotations

from ..references.interpolants import fraction, static_ot_interpolant
from ..training.registry import StaticMethod, register

__all__ = ["StaticOT"]


@register
class StaticOT(StaticMethod):
    name = "static_ot"
    summary = "McCann interpolant of the exact OT plan between the neighbours"
    deterministic = True
    reference_of = ("leave_one_out",)
    protocols = ("leave_one_out",)
    order = 60
    candidates = ({},)

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        k = holdout
        return static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k),
                                     plan_cache=plan_cache)
