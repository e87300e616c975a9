"""What every coupling shares: the base class, the checks and the errors.

A coupling computes a transport plan between two point clouds (:meth:`Coupling.plan`) and
draws index pairs from it (:meth:`Coupling.sample`). A solver that stops before convergence
says so with a :class:`ConvergenceWarning`; a plan that is unusable (not finite, no mass)
raises :class:`ConvergenceError`. Nothing is ever replaced by a uniform plan behind the
caller's back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._lazy import ot
from .plan import DiscretePlan

__all__ = ["Coupling", "ConvergenceError", "ConvergenceWarning", "squared_distances",
           "uniform", "check_points", "check_plan"]


class ConvergenceWarning(UserWarning):
    """An OT solver stopped before reaching its tolerance; the plan is approximate."""

class ConvergenceError(RuntimeError):
    """An OT solver returned a plan that cannot be used (not finite or without mass)."""

def squared_distances(x0: Tensor, x1: Tensor) -> Tensor:
    """Squared Euclidean cost matrix ``(n, m)``, on the inputs' device."""
    return ot.dist(x0, x1, metric="sqeuclidean")

def uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)

def check_points(x0: Tensor, x1: Tensor) -> None:
    if x0.dim() != 2 or x1.dim() != 2:
        raise ValueError(f"x0 and x1 must be 2-D (cells, dims); got {tuple(x0.shape)}, "
                         f"{tuple(x1.shape)}")
    if x0.shape[1] != x1.shape[1]:
        raise ValueError(f"x0 and x1 must have the same number of dims; got {x0.shape[1]} "
                         f"and {x1.shape[1]}")
    if len(x0) == 0 or len(x1) == 0:
        raise ValueError("x0 and x1 must each hold at least one point")

def check_plan(plan: Tensor, name: str) -> Tensor:
    if not torch.isfinite(plan).all():
        raise ConvergenceError(f"{name} returned a plan with non-finite entries; try a larger "
                               "reg or more iterations")
    if plan.sum() <= 0:
        raise ConvergenceError(f"{name} returned a plan without mass; try a larger reg")
    return plan

class Coupling:
    """A coupling between two point clouds: ``plan`` (solved by a subclass), then pairs drawn
    from it (``discrete_plan``, ``sample``)."""

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def discrete_plan(self, x0: Tensor, x1: Tensor) -> DiscretePlan:
        """The plan between the two clouds, ready to draw pairs from."""
        return DiscretePlan(self.plan(x0, x1).detach())

    def sample(self, x0: Tensor, x1: Tensor, n: int | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` (default ``len(x0)``) index pairs ``(i, j)`` from the plan."""
        return self.discrete_plan(x0, x1).sample_pairs(n or len(x0), generator)
