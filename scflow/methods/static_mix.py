"""``static_mix``: the count-mix null beside every count-based method: no transport, the
neighbours of the held-out timepoint mixed in proportion to their counts (or masses)."""

from __future__ import annotations

from ..references.interpolants import fraction, static_mix_interpolant
from ..training.registry import StaticMethod, register

__all__ = ["StaticMix"]


@register
class StaticMix(StaticMethod):
    name = "static_mix"
    summary = "count-mix null: the neighbours mixed in proportion to their counts"
    deterministic = True
    takes_mass = True
    order = 110

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        k = holdout
        pair = None if mass is None else (float(mass[k - 1]), float(mass[k + 1]))
        return static_mix_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k), pair)
