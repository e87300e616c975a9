"""Couplings between two empirical distributions, and sampling from their plans.

A coupling computes a transport plan between two point clouds (``plan``) and draws index
pairs from it (``sample``). Plans are solved by POT (exact network simplex, Sinkhorn in the
log domain, unbalanced Sinkhorn, exact partial transport) on the caller's tensors and stay on
their device. A solver that stops before convergence says so with a
:class:`ConvergenceWarning`; a plan that is unusable (not finite, no mass) raises
:class:`ConvergenceError`. Nothing is ever replaced by a uniform plan behind the caller's
back.

:class:`DiscretePlan` keeps a plan in a form that draws pairs, or a next index given a
current one, on the device in O(batch log nnz); :func:`sample_trajectories` chains
consecutive plans into whole trajectories (one index per timepoint), the K-knot
generalisation of a pair.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._checks import is_number, number
from ._lazy import ot

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "DiscretePlan",
    "Independent",
    "ExactOT",
    "EntropicOT",
    "UnbalancedOT",
    "PartialOT",
    "TimeCourseCoupling",
    "sample_trajectories",
    "sample_trajectories_through",
    "squared_distances",
]


class ConvergenceWarning(UserWarning):
    """An OT solver stopped before reaching its tolerance; the plan is approximate."""


class ConvergenceError(RuntimeError):
    """An OT solver returned a plan that cannot be used (not finite or without mass)."""


def squared_distances(x0: Tensor, x1: Tensor) -> Tensor:
    """Squared Euclidean cost matrix ``(n, m)``, on the inputs' device."""
    return ot.dist(x0, x1, metric="sqeuclidean")


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def _check_points(x0: Tensor, x1: Tensor) -> None:
    if x0.dim() != 2 or x1.dim() != 2:
        raise ValueError(f"x0 and x1 must be 2-D (cells, dims); got {tuple(x0.shape)}, "
                         f"{tuple(x1.shape)}")
    if x0.shape[1] != x1.shape[1]:
        raise ValueError(f"x0 and x1 must have the same number of dims; got {x0.shape[1]} "
                         f"and {x1.shape[1]}")
    if len(x0) == 0 or len(x1) == 0:
        raise ValueError("x0 and x1 must each hold at least one point")


def _check_plan(plan: Tensor, name: str) -> Tensor:
    if not torch.isfinite(plan).all():
        raise ConvergenceError(f"{name} returned a plan with non-finite entries; try a larger "
                               "reg or more iterations")
    if plan.sum() <= 0:
        raise ConvergenceError(f"{name} returned a plan without mass; try a larger reg")
    return plan


class DiscretePlan:
    """A transport plan kept as its positive entries and their cumulative mass.

    Parameters
    ----------
    plan
        Non-negative ``(n, m)`` matrix. It need not sum to one.

    Notes
    -----
    Drawing ``k`` pairs is one ``searchsorted`` over the cumulative mass of the nonzero
    entries: exact plans have at most ``n + m - 1`` of them, so this is cheap and needs no
    ``n x m`` memory after construction.
    """

    def __init__(self, plan: Tensor) -> None:
        if plan.dim() != 2:
            raise ValueError(f"plan must be 2-D, got shape {tuple(plan.shape)}")
        if (plan < 0).any() or not torch.isfinite(plan).all():
            raise ValueError("plan must be finite and non-negative")
        self.shape = tuple(plan.shape)
        rows, cols = torch.nonzero(plan, as_tuple=True)  # row-major order
        w = plan[rows, cols].to(torch.float64)
        total = w.sum()
        if total <= 0:
            raise ValueError("plan has no mass")
        self.rows, self.cols = rows, cols
        self.mass = w / total
        self.cdf = torch.cumsum(self.mass, 0)
        counts = torch.bincount(rows, minlength=self.shape[0])
        self.row_ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        start = torch.cat([self.cdf.new_zeros(1), self.cdf])
        self._row_start = start[self.row_ptr[:-1]]
        self._row_mass = start[self.row_ptr[1:]] - self._row_start
        # for sample_pairs: the cdf with its last entry at +inf, so a uniform draw always
        # lands on an entry (no clamp), and the same entries as self.cdf otherwise
        self._cdf_open = self.cdf.clone()
        self._cdf_open[-1] = math.inf

    @property
    def device(self) -> torch.device:
        return self.cdf.device

    @property
    def nnz(self) -> int:
        return int(self.rows.numel())

    def row_marginal(self) -> Tensor:
        """Mass of each source point (sums to one)."""
        return self._row_mass.clone()

    def col_marginal(self) -> Tensor:
        """Mass of each target point (sums to one)."""
        return torch.zeros(self.shape[1], dtype=self.mass.dtype, device=self.device).index_add_(
            0, self.cols, self.mass)

    def _draw(self, lo: Tensor, width: Tensor, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(lo.shape, generator=generator, device=self.device, dtype=torch.float64)
        k = torch.searchsorted(self.cdf, lo + u * width, right=True)
        return k.clamp_(max=self.nnz - 1)

    def sample_pairs(self, n: int, generator: torch.Generator | None = None
                     ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` index pairs ``(i, j)`` with probability proportional to the plan."""
        # the hot path of every training step: one uniform draw, one searchsorted, two
        # gathers (the same draws as ``_draw(0, 1)``, with fewer kernels)
        u = torch.rand(n, generator=generator, device=self.device, dtype=torch.float64)
        k = torch.searchsorted(self._cdf_open, u, right=True)
        return self.rows.index_select(0, k), self.cols.index_select(0, k)

    def sample_given_rows(self, i: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw one target index for each source index in ``i`` from the plan's row ``i``."""
        i = i.to(self.device)
        mass = self._row_mass[i]
        if (mass <= 0).any():
            bad = i[mass <= 0][:5].tolist()
            raise ValueError(f"rows {bad} of the plan carry no mass: no conditional to draw from")
        k = self._draw(self._row_start[i], mass, generator)
        # guard against float round-off at segment ends
        k = torch.minimum(torch.maximum(k, self.row_ptr[i]), self.row_ptr[i + 1] - 1)
        return self.cols[k]


def sample_trajectories(plans: list[DiscretePlan], n: int | None = None, *,
                        start: Tensor | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    """Chain consecutive plans into trajectories: one index per timepoint.

    Parameters
    ----------
    plans
        Plans between timepoints ``k`` and ``k + 1``; plan ``k`` has as many columns as
        plan ``k + 1`` has rows.
    n
        Number of trajectories, their first index drawn from the first plan's row marginal.
    start
        Alternatively, the first indices themselves.
    generator
        Random generator on the plans' device.

    Returns
    -------
    ``(n, len(plans) + 1)`` long tensor of indices into each timepoint.
    """
    if not plans:
        raise ValueError("plans must hold at least one plan")
    for a, b in zip(plans, plans[1:], strict=False):
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"consecutive plans do not chain: {a.shape} then {b.shape}")
    if start is None:
        if n is None:
            raise ValueError("give n or start")
        start, _ = plans[0].sample_pairs(n, generator)
    idx = [start.to(plans[0].device)]
    for plan in plans:
        idx.append(plan.sample_given_rows(idx[-1], generator))
    return torch.stack(idx, dim=1)


def transpose_plan(plan: DiscretePlan) -> DiscretePlan:
    """The same plan read backwards (targets as rows), for drawing back in time."""
    dense = torch.zeros(plan.shape[1], plan.shape[0], dtype=plan.mass.dtype,
                        device=plan.device)
    dense[plan.cols, plan.rows] = plan.mass
    return DiscretePlan(dense)


def sample_trajectories_through(plans: list[DiscretePlan], at: int, start: Tensor, *,
                                generator: torch.Generator | None = None) -> Tensor:
    """Trajectories through given cells of timepoint ``at``, drawn forward and backward.

    Each trajectory starts at ``start[r]`` of timepoint ``at``, goes forward through the
    conditionals of plans ``at, at + 1, ...`` and backward through the column conditionals of
    plans ``at - 1, ..., 0``. With ``at = 0`` it is :func:`sample_trajectories`.

    Returns
    -------
    ``(len(start), len(plans) + 1)`` long tensor of indices into each timepoint.
    """
    if not 0 <= at <= len(plans):
        raise ValueError(f"at must index a timepoint (0..{len(plans)}), got {at!r}")
    start = start.to(plans[0].device if plans else start.device)
    forward = (sample_trajectories(plans[at:], start=start, generator=generator)
               if at < len(plans) else start[:, None])
    if at == 0:
        return forward
    back = sample_trajectories([transpose_plan(p) for p in reversed(plans[:at])],
                               start=start, generator=generator)
    return torch.cat([back.flip(1)[:, :-1], forward], dim=1)


class _PlanCoupling:
    """Shared ``sample``: solve the plan, then draw pairs from it."""

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def discrete_plan(self, x0: Tensor, x1: Tensor) -> DiscretePlan:
        """The plan between the two clouds, ready to draw pairs from."""
        return DiscretePlan(self.plan(x0, x1).detach())

    def sample(self, x0: Tensor, x1: Tensor, n: int | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` (default ``len(x0)``) index pairs ``(i, j)`` from the plan."""
        return self.discrete_plan(x0, x1).sample_pairs(n or len(x0), generator)


@dataclass(frozen=True)
class Independent(_PlanCoupling):
    """The product coupling: ``i`` and ``j`` drawn independently and uniformly (I-CFM)."""

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        _check_points(x0, x1)
        return torch.outer(_uniform(len(x0), x0), _uniform(len(x1), x1))

    def sample(self, x0, x1, n=None, generator=None):
        _check_points(x0, x1)
        n = n or len(x0)
        i = torch.randint(len(x0), (n,), generator=generator, device=x0.device)
        j = torch.randint(len(x1), (n,), generator=generator, device=x1.device)
        return i, j


@dataclass(frozen=True)
class ExactOT(_PlanCoupling):
    """Exact optimal transport plan for the squared Euclidean cost (POT's network simplex).

    Parameters
    ----------
    num_iter_max
        Iteration cap of the network simplex. Reaching it gives a feasible but not optimal
        plan, reported by a :class:`ConvergenceWarning`.
    """

    num_iter_max: int = 10_000_000

    def plan(self, x0: Tensor, x1: Tensor) -> Tensor:
        _check_points(x0, x1)
        cost = squared_distances(x0.double(), x1.double())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.emd(_uniform(len(x0), cost), _uniform(len(x1), cost), cost,
                               numItermax=self.num_iter_max, log=True)
        if log.get("result_code", 1) != 1:
            warnings.warn(f"ExactOT: network simplex stopped before optimality "
                          f"({log.get('warning')}); raise num_iter_max", ConvergenceWarning,
                          stacklevel=2)
        return _check_plan(plan, "ExactOT").to(x0.dtype)


def _entropic_problem(x0: Tensor, x1: Tensor, normalize_cost: bool
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Cost (float64, optionally divided by its maximum) and uniform marginals."""
    _check_points(x0, x1)
    cost = squared_distances(x0.double(), x1.double())
    if normalize_cost:
        cost = cost / cost.max()
    return cost, _uniform(len(x0), cost), _uniform(len(x1), cost)


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
class EntropicOT(_PlanCoupling):
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
        _check_plan(plan, "EntropicOT")
        err = _sinkhorn_error(plan, a, b)
        if err > 10 * self.tol:
            warnings.warn(f"EntropicOT: Sinkhorn stopped after {self.num_iter_max} iterations "
                          f"with marginal error {err:.2e} > tol {self.tol:.0e}; raise "
                          "num_iter_max or reg", ConvergenceWarning, stacklevel=2)
        return plan.to(x0.dtype)


@dataclass(frozen=True)
class UnbalancedOT(_PlanCoupling):
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
        _check_plan(plan, "UnbalancedOT")
        errs = log.get("err", [])
        if len(errs) and float(errs[-1]) > self.tol:
            warnings.warn(f"UnbalancedOT: stopped after {self.num_iter_max} iterations with "
                          f"error {float(errs[-1]):.2e} > tol {self.tol:.0e}",
                          ConvergenceWarning, stacklevel=2)
        return plan.to(x0.dtype)


@dataclass(frozen=True)
class PartialOT(_PlanCoupling):
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
        _check_points(x0, x1)
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
        plan = _check_plan(plan, "PartialOT")
        if abs(float(plan.sum()) - moved) > 1e-6 * moved:
            raise ConvergenceError(f"PartialOT: the plan moves {float(plan.sum()):.6g}, not "
                                   f"{moved:.6g}; raise n_dummies")
        return plan.to(x0.dtype)


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

    coupling: _PlanCoupling = field(default_factory=lambda: ExactOT())

    def __post_init__(self) -> None:
        if not isinstance(self.coupling, _PlanCoupling):
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
