"""Entropic OT (Sinkhorn) and unbalanced entropic OT, on the caller's device (POT)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import number
from .._lazy import ot
from .base import ConvergenceWarning, Coupling, check_plan, check_points, squared_distances, uniform

__all__ = ["EntropicOT", "UnbalancedOT", "sinkhorn", "SCALING_SINKHORN_MAX"]


def _entropic_problem(x0: Tensor, x1: Tensor, normalize_cost: bool
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Cost (float64, optionally divided by its maximum) and uniform marginals."""
    check_points(x0, x1)
    cost = squared_distances(x0.double(), x1.double())
    if normalize_cost:
        cost = cost / cost.max()
    return cost, uniform(len(x0), cost), uniform(len(x1), cost)

#: ``max(cost) / reg`` below this, the kernel ``exp(-cost / reg)`` cannot underflow in
#: float64, so POT's scaling iterations are exact; above it, its log-domain iterations
SCALING_SINKHORN_MAX = 600.0

def sinkhorn(a: Tensor, b: Tensor, cost: Tensor, reg: float, *, num_iter_max: int,
             tol: float, log: bool = False):
    """POT's Sinkhorn: the scaling iterations where the kernel cannot underflow, the
    log-domain ones otherwise; the same problem and solution (the scaling iterations are the
    faster: timings in BENCHMARKS.md, "What was tried").

    With ``log=True`` also returns ``(log_v, err)``: the log of the second scaling (the
    potential ``g / reg``) and the last marginal error POT measured.
    """
    scaling = float(cost.max()) / reg < SCALING_SINKHORN_MAX
    plan, info = ot.sinkhorn(a, b, cost, reg, method="sinkhorn" if scaling else "sinkhorn_log",
                             numItermax=num_iter_max, stopThr=tol, log=True, warn=False)
    if not log:
        return plan
    log_v = torch.log(info["v"]) if scaling else info["log_v"]
    err = float(info["err"][-1]) if len(info["err"]) else 0.0
    return plan, log_v, err

def _sinkhorn_error(plan: Tensor, a: Tensor, b: Tensor) -> float:
    """Marginal violation, in the Euclidean norm that POT's ``stopThr`` uses."""
    return float(torch.linalg.vector_norm(plan.sum(1) - a)
                 + torch.linalg.vector_norm(plan.sum(0) - b))

@dataclass(frozen=True)
class EntropicOT(Coupling):
    """Entropic OT plan (Sinkhorn; :func:`sinkhorn`) for the squared Euclidean cost.

    Parameters
    ----------
    reg
        Entropic regularisation, in units of the cost (squared distance). SB-CFM with a
        Brownian reference of diffusion ``sigma`` uses ``reg = 2 sigma**2``.
    num_iter_max, tol
        Iteration cap and marginal-violation tolerance; stopping at the cap with a larger
        violation is reported by a :class:`ConvergenceWarning`.
    normalize_cost
        Divide the cost by its maximum first (as TorchCFM's option of that name).
    """

    reg: float = 0.05
    num_iter_max: int = 5000
    tol: float = 1e-6
    normalize_cost: bool = False

    def __post_init__(self) -> None:
        number(self.reg, "reg", lower=0, strict=True)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        cost, a, b = _entropic_problem(x0, x1, self.normalize_cost)
        plan = sinkhorn(a, b, cost, self.reg, num_iter_max=self.num_iter_max, tol=self.tol)
        check_plan(plan, "EntropicOT")
        err = _sinkhorn_error(plan, a, b)
        if err > 10 * self.tol:
            warnings.warn(f"EntropicOT: Sinkhorn stopped after {self.num_iter_max} iterations "
                          f"with marginal error {err:.2e} > tol {self.tol:.0e}; raise "
                          "num_iter_max or reg", ConvergenceWarning, stacklevel=2)
        return plan.to(x0.dtype)

@dataclass(frozen=True)
class UnbalancedOT(Coupling):
    """Unbalanced entropic OT (Chizat et al. 2018): marginals relaxed by KL of weight ``reg_m``.

    Cells may gain or lose mass (growth and death); pairs are drawn from the normalised
    plan, and :meth:`plan` keeps the unnormalised one so growth can be read off its rows.
    """

    reg: float = 0.05
    reg_m: float = 1.0
    num_iter_max: int = 5000
    tol: float = 1e-6
    normalize_cost: bool = False

    def __post_init__(self) -> None:
        for name in ("reg", "reg_m"):
            number(getattr(self, name), name, lower=0, strict=True)

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        cost, a, b = _entropic_problem(x0, x1, self.normalize_cost)
        plan, log = ot.unbalanced.sinkhorn_unbalanced(
            a, b, cost, self.reg, self.reg_m, method="sinkhorn_stabilized",
            numItermax=self.num_iter_max, stopThr=self.tol, log=True)
        check_plan(plan, "UnbalancedOT")
        errs = log.get("err", [])
        if len(errs) and float(errs[-1]) > self.tol:
            warnings.warn(f"UnbalancedOT: stopped after {self.num_iter_max} iterations with "
                          f"error {float(errs[-1]):.2e} > tol {self.tol:.0e}",
                          ConvergenceWarning, stacklevel=2)
        return plan.to(x0.dtype)
