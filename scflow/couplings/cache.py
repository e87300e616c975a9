"""Plans solved once: a cache shared by every fit and reference on one time course."""

from __future__ import annotations

import hashlib

import numpy as np
from torch import Tensor

from .base import Coupling
from .plan import DiscretePlan

__all__ = ["PlanCache"]


def _digest(x: Tensor) -> str:
    return hashlib.sha256(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes()).hexdigest()


class PlanCache:
    """Global plans, solved once per coupling and pair of populations (by content).

    Keys are the coupling (its ``repr``: type and parameters), the device and a digest of
    both populations, so a cache can be shared by every fit on one time course: seeds,
    methods with the same coupling (``otcfm``, ``mmfm``, ``static_spline``, and the dense
    plan of ``static_ot`` / ``static_mean_spline``) and held-out timepoints (each interval
    not touching the held-out one is shared). Plans are not modified by drawing from them.
    The dense ``n x m`` plans are kept too (float32: 4 bytes per cell pair), so keep a cache
    for one time course at a time. ``solved`` and ``reused`` count what it did.
    """

    def __init__(self) -> None:
        self._dense: dict[tuple, Tensor] = {}
        self._plans: dict[tuple, DiscretePlan] = {}
        self.solved = 0
        self.reused = 0

    def __len__(self) -> int:
        return len(self._dense)

    @staticmethod
    def _key(coupling: Coupling, x0: Tensor, x1: Tensor) -> tuple:
        return (repr(coupling), str(x0.device), tuple(x0.shape), tuple(x1.shape),
                _digest(x0), _digest(x1))

    def plan(self, coupling: Coupling, x0: Tensor, x1: Tensor) -> Tensor:
        """``coupling.plan(x0, x1)``, solved on the first call only."""
        key = self._key(coupling, x0, x1)
        dense = self._dense.get(key)
        if dense is None:
            dense = self._dense[key] = coupling.plan(x0, x1)
            self.solved += 1
        else:
            self.reused += 1
        return dense

    def discrete_plan(self, coupling: Coupling, x0: Tensor, x1: Tensor) -> DiscretePlan:
        """``coupling.discrete_plan(x0, x1)`` from the cached dense plan."""
        key = self._key(coupling, x0, x1)
        dense = self.plan(coupling, x0, x1)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = DiscretePlan(dense.detach())
        return plan
