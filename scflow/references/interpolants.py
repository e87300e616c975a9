"""The no-network references: interpolants between the neighbours of a timepoint.

Every neural method is scored beside these (DESIGN.md), and the growth-aware methods beside
the count-mix null; they sit low, beside the couplings, so protocols, methods and growth
read the same code:

- :func:`static_ot_interpolant`: the McCann interpolant of the exact OT plan;
- :func:`static_partial_interpolant`: its growth-aware form, the exact *partial* OT plan
  (matched mass moves along straight lines, unmatched mass appears or fades in place);
- :func:`static_mean_spline_interpolant`: the McCann cloud re-centred on the spline in time
  through the mean cells of every kept timepoint;
- :func:`static_mix_interpolant`: the count-mix null (no transport, the two populations
  mixed in proportion to their masses).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import number
from ..couplings import ExactOT, PartialOT, PlanCache, check_points
from ..flow.timecourse import TimeCourse
from ..paths import SplinePath

__all__ = ["static_ot_interpolant", "static_partial_interpolant",
           "static_mean_spline_interpolant", "static_mix_interpolant", "fraction"]


def static_ot_interpolant(x0: Tensor, x1: Tensor, s: float = 0.5, *,
                          plan_cache: PlanCache | None = None) -> tuple[Tensor, Tensor]:
    """McCann interpolant at fraction ``s``: the support points of the exact plan, moved.

    Returns the points ``(1 - s) x0_i + s x1_j`` of every pair with mass, and their masses.
    ``plan_cache``: a :class:`~scflow.couplings.PlanCache` to take the exact plan
    from (solved there once).
    """
    plan = ExactOT().plan(x0, x1) if plan_cache is None else \
        plan_cache.plan(ExactOT(), x0, x1)
    i, j = torch.nonzero(plan, as_tuple=True)
    return (1 - s) * x0[i] + s * x1[j], plan[i, j]

def static_partial_interpolant(x0: Tensor, x1: Tensor, s: float = 0.5,
                               mass: tuple[float, float] | None = None
                               ) -> tuple[Tensor, Tensor]:
    """Growth-aware interpolant at fraction ``s`` of the exact partial OT plan.

    The two populations weigh their relative sizes (``mass``; default their numbers of
    cells, see :class:`~scflow.couplings.PartialOT`). Matched mass moves along straight
    lines, as in :func:`static_ot_interpolant`; the unmatched rest of the larger population
    appears where it is observed (growth, weight ``s``) or fades where it was (death, weight
    ``1 - s``), so the total mass changes linearly in time: the interpolation of the
    generalised Wasserstein distance (Piccoli & Rossi 2014) between the two.

    Returns the points and their masses (total ``(1 - s) mass0 + s mass1``, scaled so that
    the larger mass is one).
    """
    if not 0.0 <= float(s) <= 1.0:
        raise ValueError(f"s must be in [0, 1], got {s!r}")
    coupling = PartialOT(mass=mass)
    a, b = coupling.masses(x0, x1)
    plan = coupling.plan(x0, x1).double()
    i, j = torch.nonzero(plan, as_tuple=True)
    died = (a - plan.sum(1)).clamp_(min=0)
    born = (b - plan.sum(0)).clamp_(min=0)
    keep0, keep1 = died > 1e-12 * a, born > 1e-12 * b
    pts = torch.cat([(1 - s) * x0[i] + s * x1[j], x0[keep0], x1[keep1]])
    w = torch.cat([plan[i, j], (1 - s) * died[keep0], s * born[keep1]])
    return pts, w.to(x0.dtype)

def fraction(tc: TimeCourse, k: int) -> float:
    """Where timepoint ``k`` sits between ``k - 1`` (0) and ``k + 1`` (1), in model time."""
    t_prev, t_k, t_next = (float(tc.times[i]) for i in (k - 1, k, k + 1))
    return (t_k - t_prev) / (t_next - t_prev)

def static_mean_spline_interpolant(tc: TimeCourse, k: int, *, spline: str = "natural",
                                   window: int | None = None,
                                   plan_cache: PlanCache | None = None
                                   ) -> tuple[Tensor, Tensor]:
    """:func:`static_ot_interpolant` between ``k - 1`` and ``k + 1``, re-centred on the means.

    The McCann cloud keeps its shape, and its centre (the plan-weighted mean, ``(1 - s)``
    times the mean of ``k - 1`` plus ``s`` times the mean of ``k + 1``) moves to the spline in
    time through the mean cells of every timepoint but ``k``, evaluated at ``k``'s time. The
    spline is :class:`~scflow.paths.SplinePath` (``spline``: ``"natural"`` or ``"pchip"``;
    ``window``: knots on each side), the one ``static_spline`` and ``mmfm`` fit through single
    cells; here it goes through population means, which carry far less sampling noise. When
    the means move along a line at constant speed this is :func:`static_ot_interpolant`.

    Returns the points and their masses, as :func:`static_ot_interpolant` does.
    """
    k = tc.interior_index(k, "k")
    keep = [r for r in range(tc.n_timepoints) if r != k]
    times = torch.as_tensor([float(tc.times[r]) for r in keep], dtype=tc.xs[0].dtype,
                            device=tc.xs[0].device)
    s = fraction(tc, k)
    pts, w = static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], s, plan_cache=plan_cache)
    means = torch.stack([tc.xs[r].mean(0) for r in keep])[None]  # (1, K, d)
    t = torch.full((1,), float(tc.times[k]), dtype=times.dtype, device=times.device)
    centre = SplinePath(kind=spline, window=window).mu_t(t, means, times)[0]
    chord = (1 - s) * tc.xs[k - 1].mean(0) + s * tc.xs[k + 1].mean(0)
    return pts + (centre - chord), w


def static_mix_interpolant(x0: Tensor, x1: Tensor, s: float = 0.5,
                           mass: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """The count-mix null: no transport, the two populations mixed by their masses.

    At fraction ``s`` the early cells weigh ``(1 - s) mass0`` together and the late ones
    ``s mass1`` (default masses: the numbers of cells), the linear change of mass that
    :func:`static_partial_interpolant` gives its unmatched cells. Any
    method that uses cell counts as growth should score below this.

    Returns the points (``x0`` then ``x1``) and their weights.
    """
    if not 0.0 <= float(s) <= 1.0:
        raise ValueError(f"s must be in [0, 1], got {s!r}")
    check_points(x0, x1)
    m0, m1 = (float(len(x0)), float(len(x1))) if mass is None else (
        number(mass[0], "mass", lower=0, strict=True),
        number(mass[1], "mass", lower=0, strict=True))
    w = torch.cat([torch.full((len(x0),), (1 - s) * m0 / len(x0), dtype=torch.float64),
                   torch.full((len(x1),), s * m1 / len(x1), dtype=torch.float64)])
    return torch.cat([x0, x1]), (w / w.sum()).to(x0.dtype).to(x0.device)
