"""Plans kept ready to draw from, and chained into trajectories.

:class:`DiscretePlan` keeps a plan in a form that draws pairs, or a next index given a
current one, on the device in O(batch log nnz); :func:`sample_trajectories` chains
consecutive plans into whole trajectories (one index per timepoint), the K-knot
generalisation of a pair.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DiscretePlan", "sample_trajectories", "sample_trajectories_through",
           "transpose_plan"]


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
