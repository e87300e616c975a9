"""The independent coupling (I-CFM) and the exact OT plan (POT's network simplex)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .._lazy import ot
from .base import ConvergenceWarning, Coupling, check_plan, check_points, squared_distances, uniform

__all__ = ["Independent", "ExactOT"]


@dataclass(frozen=True)
class Independent(Coupling):
    """The product coupling: ``i`` and ``j`` drawn independently and uniformly (I-CFM)."""

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        check_points(x0, x1)
        return torch.outer(uniform(len(x0), x0), uniform(len(x1), x1))

    def sample(self, x0, x1, n=None, generator=None):
        check_points(x0, x1)
        n = n or len(x0)
        i = torch.randint(len(x0), (n,), generator=generator, device=x0.device)
        j = torch.randint(len(x1), (n,), generator=generator, device=x1.device)
        return i, j

@dataclass(frozen=True)
class ExactOT(Coupling):
    """Exact optimal transport plan for the squared Euclidean cost (POT's network simplex).

    Parameters
    ----------
    num_iter_max
        Iteration cap of the network simplex. Reaching it gives a feasible but not optimal
        plan, reported by a :class:`ConvergenceWarning`.
    """

    num_iter_max: int = 10_000_000

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        check_points(x0, x1)
        cost = squared_distances(x0.double(), x1.double())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.emd(uniform(len(x0), cost), uniform(len(x1), cost), cost,
                               numItermax=self.num_iter_max, log=True)
        if log.get("result_code", 1) != 1:
            warnings.warn(f"ExactOT: network simplex stopped before optimality "
                          f"({log.get('warning')}); raise num_iter_max", ConvergenceWarning,
                          stacklevel=2)
        return check_plan(plan, "ExactOT").to(x0.dtype)
