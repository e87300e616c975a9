"""``static_partial``: the growth-aware interpolant of the exact partial OT plan between the
neighbours, each population weighted by its relative size (by default its number of cells)."""

from __future__ import annotations

from ..references.interpolants import fraction, static_partial_interpolant
from ..training.registry import StaticMethod, register

__all__ = ["StaticPartial"]


@register
class StaticPartial(StaticMethod):
    name = "static_partial"
    summary = "growth-aware interpolant of the exact partial OT plan"
    deterministic = True
    takes_mass = True
    protocols = ("leave_one_out",)
    order = 80

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        k = holdout
        pair = None if mass is None else (float(mass[k - 1]), float(mass[k + 1]))
        return static_partial_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k), pair)
