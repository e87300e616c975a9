"""Exact partial OT between populations of different sizes (POT's network simplex)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import is_number
from .._lazy import ot
from .base import (
    ConvergenceError,
    ConvergenceWarning,
    Coupling,
    check_plan,
    check_points,
    squared_distances,
)

__all__ = ["PartialOT"]


@dataclass(frozen=True)
class PartialOT(Coupling):
    """Exact partial OT between two populations of different sizes (POT's network simplex).

    Each population carries a total mass, its relative size, shared equally among its
    cells; by default the number of cells, the relative-mass convention of TIGON and
    DeepRUOT for time courses sampled in proportion to population size. The plan moves all
    of the smaller population's mass at least squared-Euclidean cost and leaves the rest of
    the larger one unmatched: growth where the later population is larger, death where it
    is smaller (Caffarelli & McCann 2010; Chapel et al. 2020). Equal masses give the exact
    OT plan. No parameter is tuned: the masses say how much is matched.

    Parameters
    ----------
    mass
        ``(mass0, mass1)``, the relative sizes of the two populations; ``None``: their
        numbers of cells.
    num_iter_max
        Iteration cap of the network simplex.
    n_dummies
        Reservoir points that absorb the unmatched mass (POT's ``nb_dummies``); more of
        them make large problems more stable.
    """

    mass: tuple[float, float] | None = None
    num_iter_max: int = 10_000_000
    n_dummies: int = 100

    def __post_init__(self) -> None:
        if self.mass is not None:
            m = tuple(self.mass)
            if len(m) != 2 or not all(is_number(v, lower=0, strict=True) for v in m):
                raise ValueError(f"mass must be two finite numbers > 0 (the relative sizes "
                                 f"of the two populations), got {self.mass!r}")
        if int(self.n_dummies) < 1:
            raise ValueError(f"n_dummies must be >= 1, got {self.n_dummies!r}")

    def masses(self, x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
        """Mass of each cell of ``x0`` and ``x1`` (float64); the larger total is one."""
        check_points(x0, x1)
        m0, m1 = (float(len(x0)), float(len(x1))) if self.mass is None else map(float,
                                                                                self.mass)
        top = max(m0, m1)
        return (torch.full((len(x0),), m0 / top / len(x0), dtype=torch.float64,
                           device=x0.device),
                torch.full((len(x1),), m1 / top / len(x1), dtype=torch.float64,
                           device=x1.device))

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        """The unnormalised plan: rows at most ``a``, columns at most ``b`` (see
        :meth:`masses`), total ``min(a.sum(), b.sum())``."""
        a, b = self.masses(x0, x1)
        cost = squared_distances(x0.double(), x1.double())
        moved = float(min(a.sum(), b.sum()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                plan, log = ot.partial.partial_wasserstein(
                    a, b, cost, m=moved, nb_dummies=int(self.n_dummies), log=True,
                    numItermax=self.num_iter_max)
            except ValueError as err:  # POT: the simplex did not reach a feasible plan
                raise ConvergenceError(f"PartialOT: {err} (raise num_iter_max or "
                                       f"n_dummies)") from err
        if log.get("result_code", 1) != 1:
            warnings.warn(f"PartialOT: network simplex stopped before optimality "
                          f"({log.get('warning')}); raise num_iter_max", ConvergenceWarning,
                          stacklevel=2)
        plan = check_plan(plan, "PartialOT")
        if abs(float(plan.sum()) - moved) > 1e-6 * moved:
            raise ConvergenceError(f"PartialOT: the plan moves {float(plan.sum()):.6g}, not "
                                   f"{moved:.6g}; raise n_dummies")
        return plan.to(x0.dtype)
