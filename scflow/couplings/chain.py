"""A coupling over a whole time course: consecutive plans chained into trajectories."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import Coupling
from .exact import ExactOT
from .plan import DiscretePlan, sample_trajectories, sample_trajectories_through

__all__ = ["TimeCourseCoupling"]


@dataclass(frozen=True)
class TimeCourseCoupling:
    """A coupling over a whole time course: one plan per consecutive pair, chained.

    Draws trajectories, one cell index per timepoint, by following each consecutive plan's
    conditional (exact or entropic). Two timepoints give the pair coupling itself.

    Parameters
    ----------
    coupling
        The pairwise coupling solved between consecutive timepoints (default exact OT).
    """

    coupling: Coupling = field(default_factory=lambda: ExactOT())

    def __post_init__(self) -> None:
        if not isinstance(self.coupling, Coupling):
            raise ValueError(f"coupling must be a scflow coupling (ExactOT(), EntropicOT(reg)"
                             f"...), got {self.coupling!r}")

    def plans(self, xs: list[Tensor]) -> list[DiscretePlan]:
        """The plan between each consecutive pair of the populations ``xs``."""
        if len(xs) < 2:
            raise ValueError(f"xs must hold at least 2 populations, got {len(xs)}")
        return [self.coupling.discrete_plan(a, b) for a, b in zip(xs[:-1], xs[1:],
                                                                   strict=True)]

    def sample(self, xs: list[Tensor], n: int | None = None, *, at: int = 0,
               start: Tensor | None = None, generator: torch.Generator | None = None,
               plans: list[DiscretePlan] | None = None) -> Tensor:
        """Draw ``n`` trajectories (or one through each ``start`` cell of timepoint ``at``).

        Returns the ``(n, len(xs))`` indices; ``plans`` reuses plans already solved.
        """
        plans = self.plans(xs) if plans is None else plans
        if start is None:
            if at != 0:
                raise ValueError("give start (cells of timepoint at) when at != 0")
            return sample_trajectories(plans, n, generator=generator)
        return sample_trajectories_through(plans, at, start, generator=generator)
