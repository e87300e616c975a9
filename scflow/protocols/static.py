"""The non-neural predictions of a held-out timepoint (no network).

``static_ot``: the McCann interpolant of the exact OT plan between the neighbours ``k - 1``
and ``k + 1`` at the held-out time (the midpoint in index time), scored with the plan's
weights; ``static_partial``: its growth-aware form, the interpolant of the exact *partial*
OT plan (each population weighted by its relative size, by default its number of cells):
matched mass moves along straight lines, unmatched mass appears (growth) or fades (death) in
place, linearly in time; ``static_mean_spline``: the cloud of ``static_ot`` moved so that its
centre sits on the spline in time through the mean cells of every kept timepoint;
``static_spline``: each cell of a start timepoint followed through the exact plans of the
kept timepoints (backward and forward), a spline in time through the cells drawn, evaluated
at the held-out time.

Each is registered in :mod:`scflow.methods` with a ``predict_*`` function of one signature,
``(tc, t, *, start, holdout, random_state, mass, spline, window, plan_cache)`` returning
``(points, weights)`` (``weights`` ``None``: uniform).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import is_number
from ..couplings import ExactOT, PartialOT, sample_trajectories_through
from ..methods import get, names
from ..paths import SplinePath
from ..timecourse import TimeCourse
from ..training_data import PlanCache, chain_data

__all__ = ["static_ot_interpolant", "static_partial_interpolant",
           "static_mean_spline_interpolant", "static_spline_predict", "static_pair_predict",
           "static_predict", "fraction", "check_mass", "spline_options", "STATIC_METHODS",
           "PAIR_METHODS"]

#: the registered non-neural methods
STATIC_METHODS = names("static")

def static_ot_interpolant(x0: Tensor, x1: Tensor, s: float = 0.5, *,
                          plan_cache: PlanCache | None = None) -> tuple[Tensor, Tensor]:
    """McCann interpolant at fraction ``s``: the support points of the exact plan, moved.

    Returns the points ``(1 - s) x0_i + s x1_j`` of every pair with mass, and their masses.
    ``plan_cache``: take the exact plan from it (solved there once).
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


#: deterministic predictions of timepoint ``k`` from its neighbours' plan: solved once
PAIR_METHODS = tuple(m for m in STATIC_METHODS
                     if get(m).deterministic and get(m).shape == "pair")


def static_pair_predict(method: str, tc: TimeCourse, k: int,
                        mass: Sequence[float] | None = None, *, spline: str = "natural",
                        window: int | None = None) -> tuple[Tensor, Tensor]:
    """``static_ot``, ``static_partial`` or ``static_mean_spline`` at timepoint ``k``.

    ``mass``: the relative population size at every timepoint (``static_partial``; default
    the numbers of cells); ``spline``, ``window``: ``static_mean_spline``'s spline. Returns
    the weighted points, as the interpolants do.
    """
    return static_predict(method, tc, float(tc.times[k]), start=k - 1, holdout=k, mass=mass,
                          spline=spline, window=window)


def static_predict(method: str, tc: TimeCourse, t: float, *, start: int,
                   holdout: int | None, random_state: int = 0,
                   mass: Sequence[float] | None = None, spline: str = "natural",
                   window: int | None = None, plan_cache: PlanCache | None = None
                   ) -> tuple[Tensor, Tensor | None]:
    """The registered static ``method``'s prediction at model time ``t`` (see the module)."""
    entry = get(method)
    if entry.kind != "static":
        raise ValueError(f"method must be one of {STATIC_METHODS}, got {method!r}")
    return entry.predictor()(tc, t, start=start, holdout=holdout, random_state=random_state,
                             mass=mass, spline=spline, window=window, plan_cache=plan_cache)


def predict_static_ot(tc: TimeCourse, t: float, *, holdout: int,
                      plan_cache: PlanCache | None = None, **_) -> tuple[Tensor, Tensor]:
    """Registry entry ``static_ot``: :func:`static_ot_interpolant` of the neighbours."""
    k = holdout
    return static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k),
                                 plan_cache=plan_cache)


def predict_static_partial(tc: TimeCourse, t: float, *, holdout: int,
                           mass: Sequence[float] | None = None, **_) -> tuple[Tensor, Tensor]:
    """Registry entry ``static_partial``: :func:`static_partial_interpolant`."""
    k = holdout
    pair = None if mass is None else (float(mass[k - 1]), float(mass[k + 1]))
    return static_partial_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k), pair)


def predict_static_mean_spline(tc: TimeCourse, t: float, *, holdout: int,
                               spline: str = "natural", window: int | None = None,
                               plan_cache: PlanCache | None = None, **_
                               ) -> tuple[Tensor, Tensor]:
    """Registry entry ``static_mean_spline``: :func:`static_mean_spline_interpolant`."""
    return static_mean_spline_interpolant(tc, holdout, spline=spline, window=window,
                                          plan_cache=plan_cache)


def predict_static_spline(tc: TimeCourse, t: float, *, start: int, holdout: int | None,
                          random_state: int = 0, spline: str = "natural",
                          window: int | None = None, plan_cache: PlanCache | None = None,
                          **_) -> tuple[Tensor, None]:
    """Registry entry ``static_spline``: :func:`static_spline_predict` (uniform weights)."""
    return static_spline_predict(tc, t, start=start, holdout=holdout, spline=spline,
                                 window=window, random_state=random_state,
                                 plan_cache=plan_cache), None


def static_spline_predict(tc: TimeCourse, t: float, *, start: int, holdout: int | None = None,
                          spline: str = "natural", window: int | None = None,
                          random_state: int = 0, plan_cache: PlanCache | None = None
                          ) -> Tensor:
    """The no-network multi-marginal prediction: splines through chained exact OT plans.

    Every cell of timepoint ``start`` is followed through the exact OT plans between the
    consecutive timepoints kept (all but ``holdout``), backward and forward, one cell drawn
    per timepoint from each plan's conditional; the spline in (model) time through the cells
    drawn is evaluated at ``t``.

    Returns
    -------
    ``(n_start, d)`` predicted cells at ``t``.
    """
    keep = [k for k in range(tc.n_timepoints) if k != holdout]
    if start not in keep:
        raise ValueError(f"start must be a kept timepoint index {keep}, got {start!r}")
    chain = chain_data(tc, 0.0, holdout, coupling=get("static_spline").coupling(),
                       spline=spline, window=window, cache=plan_cache)  # as mmfm trains on
    dev = chain.times.device
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    cells = torch.arange(len(tc.xs[start]), device=dev)
    idx = sample_trajectories_through(chain.plans(), keep.index(start), cells, generator=g)
    knots = chain.knots(idx)
    tt = torch.full((len(cells),), float(t), dtype=knots.dtype, device=dev)
    return chain.path.mean_and_velocity(tt, knots, chain.times, chain.basis)[0]



def spline_options(train_kwargs: dict) -> dict:
    """The ``spline`` and ``window`` among training options, for ``static_spline``."""
    return {key: train_kwargs[key] for key in ("spline", "window") if key in train_kwargs}


def check_mass(mass: Sequence[float] | None, n_timepoints: int) -> None:
    """Raise unless ``mass`` is ``None`` or one finite number > 0 per timepoint."""
    if mass is None:
        return
    values = list(mass)
    if len(values) != n_timepoints or not all(is_number(v, lower=0, strict=True) for v in values):
        raise ValueError(f"mass must hold one finite number > 0 per timepoint "
                         f"({n_timepoints}), got {mass!r}")
