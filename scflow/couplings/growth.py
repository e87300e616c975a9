"""Growth between snapshots: population masses and a growth-aware coupling.

A time course of snapshots says where cells are, and (through how many cells were seen, or
measured population sizes) how large each population is. When the population grows, a
balanced coupling must move every early cell onto states that are mostly new cells. The
coupling here gives each pair a mass instead:

:class:`GrowthOT` solves a *semi-relaxed* unbalanced entropic OT problem (Chizat et al.
2018; the growth-from-rows reading of Waddington-OT, Schiebinger et al. 2019)::

    min_P  <C, P> + reg KL(P | a x b) + reg_m KL(P 1 | a)   s.t.  P^T 1 = b

with ``a`` the mass of each early cell and ``b`` of each late cell (a population's mass
shared equally among its cells). The late population is matched exactly; each early cell
may send more or less than its own mass, so ``r_i = (P 1)_i / a_i`` is the number of
descendants a cell of mass one leaves over the interval, and ``log r_i / span`` its growth
rate (constant along the pair: mass ``a_i r_i^s`` at fraction ``s``). ``reg_m`` sets how
unevenly growth may fall: large values give every cell the same rate (the total mass change,
``log(m1 / m0) / span``: balanced transport of shapes), small ones let cells near many late
cells grow and cells far from any die.

The count-mix null, the reference for every count-based method, is
:func:`scflow.references.static_mix_interpolant`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import is_number, number
from .base import ConvergenceWarning, check_plan, check_points, squared_distances

__all__ = ["GrowthOT", "population_masses", "mean_cost", "semi_relaxed_sinkhorn", "MASS_MODES"]


#: how masses enter: ``"counts"`` (numbers of cells), ``"none"`` (equal masses: growth from
#: the shapes alone), or explicit numbers passed as ``mass=``
MASS_MODES = ("counts", "none")

def population_masses(n_cells: Sequence[int], mass: Sequence[float] | str | None = "counts"
                      ) -> list[float]:
    """The relative size of the population at every timepoint.

    Parameters
    ----------
    n_cells
        Number of cells observed at every timepoint.
    mass
        ``"counts"`` (default): the numbers of cells (populations sampled in proportion to
        their size, the convention of TIGON and DeepRUOT); ``"none"`` or ``None``: equal
        masses (growth is then learned from the shapes alone); or one finite number > 0 per
        timepoint (measured population sizes).

    Returns
    -------
    One mass per timepoint, scaled so that the largest is one.
    """
    if isinstance(mass, str):
        if mass not in MASS_MODES:
            raise ValueError(f"mass must be one of {MASS_MODES}, None or one number > 0 per "
                             f"timepoint, got {mass!r}")
        values = [float(n) for n in n_cells] if mass == "counts" else [1.0] * len(n_cells)
    elif mass is None:
        values = [1.0] * len(n_cells)
    else:
        values = list(mass)
        if len(values) != len(n_cells) or not all(is_number(v, lower=0, strict=True)
                                                 for v in values):
            raise ValueError(f"mass must hold one finite number > 0 per timepoint "
                             f"({len(n_cells)}), got {mass!r}")
        values = [float(v) for v in values]
    top = max(values)
    return [v / top for v in values]

@dataclass(frozen=True)
class GrowthOT:
    """Semi-relaxed unbalanced entropic OT: late cells matched, early cells' mass free.

    Parameters
    ----------
    reg
        Entropic regularisation, in units of the cost (squared Euclidean distance).
    reg_m
        Weight of the KL penalty on the early marginal: how strongly every early cell is
        held to the population's mean growth (large: uniform growth; small: cells near many
        late cells grow, cells far from them die), in units of the cost. (``uotcfm`` gives
        its ``reg_m`` in units of each interval's :func:`mean_cost` and passes the product
        here.)
    num_iter_max, tol
        Iteration cap and stopping threshold of POT's stabilised scaling iterations; a
        plan that is not within ``tol`` of the late marginal raises a warning.
    """

    reg: float = 0.1
    reg_m: float = 1.0
    num_iter_max: int = 10_000
    tol: float = 1e-5

    def __post_init__(self) -> None:
        number(self.reg, "reg", lower=0, strict=True)
        number(self.reg_m, "reg_m", lower=0, strict=True)

    def plan(self, x0: Tensor, x1: Tensor, mass: tuple[float, float] = (1.0, 1.0),
             prior: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The unnormalised plan (float64) and each early cell's log-growth ``log r_i``.

        ``mass``: the total masses of the two populations (shared equally among their
        cells). The plan's columns sum to the late cells' masses; ``log r_i`` is the log of
        row ``i``'s sum over the early cell's mass. ``prior``: each early cell's expected
        log-growth over the interval (e.g. :func:`scflow.growth.prior.prior_growth_rate`
        times its length); the rows are then pulled towards masses in proportion to
        ``exp(prior)`` instead of equal ones (only differences between cells matter).
        """
        plan, log_r, err = self.solve(x0, x1, mass, prior)
        if err > self.tol:
            warnings.warn(f"GrowthOT: the potentials still moved by {err:.2e} (in units of "
                          f"reg) after {self.num_iter_max} iterations; raise num_iter_max or "
                          "reg", ConvergenceWarning, stacklevel=2)
        return plan, log_r

    def solve(self, x0: Tensor, x1: Tensor, mass: tuple[float, float] = (1.0, 1.0),
              prior: Tensor | None = None) -> tuple[Tensor, Tensor, float]:
        """:meth:`plan` without the warning: the plan, ``log r_i`` and the last change of
        the potentials (in units of ``reg``; above ``tol``: not converged), for callers that
        solve many plans and report non-convergence once (minibatch ``uotcfm``)."""
        check_points(x0, x1)
        m0, m1 = (number(m, "mass", lower=0, strict=True) for m in mass)
        cost = squared_distances(x0.double(), x1.double())
        a = torch.full((len(x0),), m0 / len(x0), dtype=torch.float64, device=x0.device)
        b = torch.full((len(x1),), m1 / len(x1), dtype=torch.float64, device=x1.device)
        target = a  # the row masses the KL term pulls towards
        if prior is not None:
            prior = torch.as_tensor(prior, dtype=torch.float64, device=x0.device)
            if prior.shape != (len(x0),) or not bool(torch.isfinite(prior).all()):
                raise ValueError(f"prior must hold one finite log-growth per early cell "
                                 f"({len(x0)}), got shape {tuple(prior.shape)}")
            target = m0 * torch.softmax(prior, 0)
        plan, err = semi_relaxed_sinkhorn(target, b, cost, self.reg, self.reg_m,
                                          num_iter_max=int(self.num_iter_max), tol=self.tol)
        plan = check_plan(plan, "GrowthOT")
        rows = plan.sum(1)
        if bool((rows <= 0).any()):
            raise ValueError("GrowthOT: some early cells send no mass at all (the kernel "
                             "underflowed); raise reg")
        return plan, torch.log(rows / a), err

def mean_cost(x0: Tensor, x1: Tensor) -> float:
    """The mean squared distance over all pairs of an ``x0`` and an ``x1`` cell, in closed
    form (``mean |x0|^2 + mean |x1|^2 - 2 mean(x0) @ mean(x1)``, float64): the scale that
    ``uotcfm`` measures ``reg_m`` in (moscot's ``scale_cost="mean"``), so that its trade-off
    between moving and growing means the same in any dimension."""
    check_points(x0, x1)
    a, b = x0.double(), x1.double()
    value = float(a.pow(2).sum(1).mean() + b.pow(2).sum(1).mean()
                  - 2 * (a.mean(0) * b.mean(0)).sum())
    if not value > 0:
        raise ValueError("mean_cost: the two populations are one point, at the same place")
    return value

def semi_relaxed_sinkhorn(a: Tensor, b: Tensor, cost: Tensor, reg: float, reg_m: float, *,
                          num_iter_max: int = 10_000, tol: float = 1e-5
                          ) -> tuple[Tensor, float]:
    """Log-domain scaling iterations of the semi-relaxed problem of :class:`GrowthOT`.

    The plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / reg)``; ``g`` makes the columns
    sum to ``b`` exactly, ``f`` is the KL-relaxed update of Chizat et al. (2018),
    ``f = -reg_m / (reg_m + reg) * reg * log sum_j b_j exp((g_j - C_ij) / reg)``. (POT's
    ``sinkhorn_unbalanced`` with ``reg_m=(reg_m, inf)`` overflows when the populations
    are far apart at small ``reg``; these iterations stay in the log domain.)

    The blur is annealed from the cost's scale down to ``reg`` (epsilon scaling, each
    stage warm-started), which makes small ``reg`` affordable.

    Returns the plan and the last change of the potentials in units of ``reg``.
    """
    la, lb = torch.log(a)[:, None], torch.log(b)[None, :]
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    # epsilon scaling: solve at a blur halved from the cost's scale down to reg, each stage
    # warm-started from the last (the potentials are in units of the cost)
    stages = [reg]
    while stages[-1] < float(cost.max()) / 4 and len(stages) < 12:
        stages.append(stages[-1] * 2)
    err, n_iter = math.inf, 0
    for eps in reversed(stages):
        ratio = reg_m / (reg_m + eps)
        k = -cost / eps
        for _ in range(int(num_iter_max)):
            g = -eps * torch.logsumexp(k + f[:, None] / eps + la, dim=0)
            f_new = -ratio * eps * torch.logsumexp(k + g[None, :] / eps + lb, dim=1)
            err = float((f_new - f).abs().max()) / eps
            f = f_new
            n_iter += 1
            if err < tol:
                break
    k = -cost / reg
    g = -reg * torch.logsumexp(k + f[:, None] / reg + la, dim=0)  # columns exact
    return torch.exp(k + (f[:, None] + g[None, :]) / reg + la + lb), err
