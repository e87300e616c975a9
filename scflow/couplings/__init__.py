"""Couplings between two empirical distributions, and sampling from their plans.

A subpackage per problem family, as POT's: :mod:`~scflow.couplings.exact` (the
independent coupling and exact OT), :mod:`~scflow.couplings.entropic` (Sinkhorn, balanced
and unbalanced), :mod:`~scflow.couplings.partial` (exact partial OT),
:mod:`~scflow.couplings.growth` (the semi-relaxed plan of growth-aware fits) and
:mod:`~scflow.couplings.chain` (consecutive plans chained through a time course). Every
coupling is a :class:`Coupling`: ``plan(x0, x1)`` solved by POT on the caller's tensors
and device, then pairs drawn from it (:class:`DiscretePlan`).
"""

from __future__ import annotations

from .base import (
    ConvergenceError,
    ConvergenceWarning,
    Coupling,
    check_plan,
    check_points,
    squared_distances,
)
from .cache import PlanCache
from .chain import TimeCourseCoupling
from .entropic import SCALING_SINKHORN_MAX, EntropicOT, UnbalancedOT, sinkhorn
from .exact import ExactOT, Independent
from .growth import GrowthOT, mean_cost, population_masses
from .partial import PartialOT
from .plan import (
    DiscretePlan,
    sample_trajectories,
    sample_trajectories_through,
    transpose_plan,
)

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "Coupling",
    "DiscretePlan",
    "Independent",
    "ExactOT",
    "EntropicOT",
    "UnbalancedOT",
    "PartialOT",
    "PlanCache",
    "GrowthOT",
    "TimeCourseCoupling",
    "population_masses",
    "mean_cost",
    "sample_trajectories",
    "sample_trajectories_through",
    "transpose_plan",
    "squared_distances",
    "sinkhorn",
    "check_points",
    "check_plan",
    "SCALING_SINKHORN_MAX",
]
