"""The leave-one-timepoint-out protocol of TorchCFM (Tong et al. 2023), on tensors.

To hold out timepoint ``k``: train without its cells, bridging ``k - 1 -> k + 1``; push
every cell of ``k - 1`` to the time of ``k`` with ``n_euler`` Euler steps; score against all
real cells of ``k`` by exact W1 (and W2, MMD), uniform weights. Interior timepoints only.

Non-neural references: ``static_ot``, the McCann interpolant of the exact OT plan between
``k - 1`` and ``k + 1`` at the held-out time (the midpoint in index time), scored with the
plan's weights; ``static_spline``, each cell of ``k - 1`` followed through the exact plans of
the kept timepoints (backward and forward), a spline in time through the cells drawn,
evaluated at the held-out time; ``static_partial``, the growth-aware interpolant of the exact
*partial* OT plan between ``k - 1`` and ``k + 1`` (each population weighted by its relative
size, by default its number of cells): matched mass moves along straight lines, unmatched
mass appears (growth) or fades (death) in place, linearly in time; ``static_mean_spline``,
the cloud of ``static_ot`` moved so that its centre sits on the spline in time through the
mean cells of every kept timepoint: the shape comes from the neighbours' plan, the position
from the whole time course.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from math import nan

import pandas as pd
import torch
from torch import Tensor

from ._checks import is_number
from .couplings import ExactOT, PartialOT, sample_trajectories_through
from .integrate import integrate
from .intervals import bootstrap_w1, check_n_boot
from .metrics import mmd, sampling_floor, wasserstein
from .paths import SplinePath
from .timecourse import TimeCourse
from .train import NEURAL_METHODS, _chain, fit_flow

__all__ = ["leave_one_out_tc", "static_ot_interpolant", "static_partial_interpolant",
           "static_mean_spline_interpolant", "static_spline_predict", "STATIC_METHODS",
           "ALL_METHODS"]

STATIC_METHODS = ("static_ot", "static_spline", "static_partial", "static_mean_spline")
ALL_METHODS = (*NEURAL_METHODS, *STATIC_METHODS)


def static_ot_interpolant(x0: Tensor, x1: Tensor, s: float = 0.5) -> tuple[Tensor, Tensor]:
    """McCann interpolant at fraction ``s``: the support points of the exact plan, moved.

    Returns the points ``(1 - s) x0_i + s x1_j`` of every pair with mass, and their masses.
    """
    plan = ExactOT().plan(x0, x1)
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


def _fraction(tc: TimeCourse, k: int) -> float:
    """Where timepoint ``k`` sits between ``k - 1`` (0) and ``k + 1`` (1), in model time."""
    t_prev, t_k, t_next = (float(tc.times[i]) for i in (k - 1, k, k + 1))
    return (t_k - t_prev) / (t_next - t_prev)


def static_mean_spline_interpolant(tc: TimeCourse, k: int, *, spline: str = "natural",
                                   window: int | None = None) -> tuple[Tensor, Tensor]:
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
    s = _fraction(tc, k)
    pts, w = static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], s)
    means = torch.stack([tc.xs[r].mean(0) for r in keep])[None]  # (1, K, d)
    t = torch.full((1,), float(tc.times[k]), dtype=times.dtype, device=times.device)
    centre = SplinePath(kind=spline, window=window).mu_t(t, means, times)[0]
    chord = (1 - s) * tc.xs[k - 1].mean(0) + s * tc.xs[k + 1].mean(0)
    return pts + (centre - chord), w


#: deterministic predictions of timepoint ``k`` from its neighbours' plan: solved once
PAIR_METHODS = ("static_ot", "static_partial", "static_mean_spline")


def static_pair_predict(method: str, tc: TimeCourse, k: int,
                        mass: Sequence[float] | None = None, *, spline: str = "natural",
                        window: int | None = None) -> tuple[Tensor, Tensor]:
    """``static_ot``, ``static_partial`` or ``static_mean_spline`` at timepoint ``k``.

    ``mass``: the relative population size at every timepoint (``static_partial``; default
    the numbers of cells); ``spline``, ``window``: ``static_mean_spline``'s spline. Returns
    the weighted points, as the interpolants do.
    """
    if method == "static_mean_spline":
        return static_mean_spline_interpolant(tc, k, spline=spline, window=window)
    s = _fraction(tc, k)
    if method == "static_partial":
        pair = None if mass is None else (float(mass[k - 1]), float(mass[k + 1]))
        return static_partial_interpolant(tc.xs[k - 1], tc.xs[k + 1], s, pair)
    return static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], s)


def static_spline_predict(tc: TimeCourse, t: float, *, start: int, holdout: int | None = None,
                          spline: str = "natural", window: int | None = None,
                          random_state: int = 0) -> Tensor:
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
    chain = _chain(tc, 0.0, holdout, spline, window)  # the set-up mmfm trains on
    dev = chain.times.device
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    cells = torch.arange(len(tc.xs[start]), device=dev)
    idx = sample_trajectories_through(chain.plans, keep.index(start), cells, generator=g)
    knots = torch.stack([x[idx[:, r]] for r, x in enumerate(chain.xs)], dim=1)
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


def _scores(pred: Tensor, real: Tensor, weights: Tensor | None = None, *,
            with_mmd: bool = True, n_boot: int = 0) -> dict[str, float]:
    real = real.to(pred.device)
    if n_boot:  # the exact W1 and its bootstrap interval over cells (intervals.bootstrap_w1)
        ci = bootstrap_w1(pred, real, n_boot=n_boot, weights=weights)
        out = {"w1": ci.w1, "w1_lo": ci.lo, "w1_hi": ci.hi}
    else:
        out = {"w1": wasserstein(pred, real, a=weights), "w1_lo": nan, "w1_hi": nan}
    out["w2"] = wasserstein(pred, real, p=2, a=weights)
    if not with_mmd:
        return out
    if weights is None:
        out["mmd"] = mmd(pred, real)
    else:  # MMD of the weighted cloud: resample it to the size of the real one
        g = torch.Generator(device=weights.device).manual_seed(0)
        idx = torch.multinomial(weights / weights.sum(), len(real), replacement=True,
                                generator=g)
        out["mmd"] = mmd(pred[idx], real)
    return out


def interior_holdouts(tc: TimeCourse, holdouts: Sequence[int] | None, what: str
                      ) -> list[int]:
    """``holdouts`` checked to be interior timepoint indices (default all of them)."""
    interior = list(range(1, tc.n_timepoints - 1))
    if not interior:
        raise ValueError(f"{what} needs at least three timepoints")
    ks = interior if holdouts is None else [int(k) for k in holdouts]
    bad = [k for k in ks if k not in interior]
    if bad:
        raise ValueError(f"holdouts must be interior timepoint indices {interior}, got {bad}")
    return ks


def leave_one_out_tc(tc: TimeCourse, methods: Sequence[str] = ALL_METHODS,
                     seeds: Sequence[int] = (0, 1, 2), *,
                     holdouts: Sequence[int] | None = None, n_euler: int = 100,
                     device: str | torch.device = "auto", progress: bool | None = None,
                     mass: Sequence[float] | None = None, n_boot: int = 0,
                     **train_kwargs) -> pd.DataFrame:
    """Run the protocol on a :class:`TimeCourse` (scale it first, e.g. ``whiten=True``).

    Parameters
    ----------
    tc
        The time course (model times set by its ``time_scale``).
    methods
        Any of ``icfm``, ``otcfm``, ``sbcfm``, ``mmfm``, ``static_ot``, ``static_spline``,
        ``static_partial``, ``static_mean_spline``.
    seeds
        One fit per seed and held-out timepoint.
    holdouts
        Timepoint indices to hold out (default: every interior one).
    n_euler
        Euler steps from ``k - 1`` to ``k``.
    mass
        ``static_partial``: the relative size of the population at every timepoint (default
        its number of cells).
    n_boot
        Bootstrap replicates of each W1 over cells (:func:`scflow.intervals.bootstrap_w1`,
        95%, centred on the score, seed 0); 0: no interval (``w1_lo``, ``w1_hi`` NaN).
    **train_kwargs
        Passed to :func:`scflow.fit_flow` (``n_steps``, ``batch_size``, ``lr``, ``sigma``,
        ``hidden``, ``coupling``...).

    Returns
    -------
    One row per method, held-out timepoint and seed: ``method``, ``holdout`` (the label),
    ``holdout_index``, ``seed``, ``w1``, ``w1_lo``, ``w1_hi`` (its interval over cells),
    ``w2``, ``mmd``, ``floor`` (W1 between two halves of the held-out cells), ``seconds``
    (fit and push).
    """
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"methods must be among {ALL_METHODS}, got {unknown}")
    check_mass(mass, tc.n_timepoints)
    n_boot = check_n_boot(n_boot)
    holdouts = interior_holdouts(tc, holdouts, "leave-one-out")
    rows = []
    for k in holdouts:
        x_prev, x_real = tc.xs[k - 1], tc.xs[k]
        t_prev, t_k = float(tc.times[k - 1]), float(tc.times[k])
        base = {"holdout": tc.labels[k], "holdout_index": k,
                "floor": sampling_floor(x_real)}
        for method in methods:
            if method in PAIR_METHODS:  # deterministic: solved once, one row per seed
                start = time.perf_counter()
                pts, w = static_pair_predict(method, tc, k, mass,
                                             **spline_options(train_kwargs))
                scores = {**_scores(pts, x_real, w, n_boot=n_boot),
                          "seconds": time.perf_counter() - start}
                rows += [{"method": method, **base, "seed": int(s), **scores} for s in seeds]
                continue
            if method == "static_spline":  # random chain draws: one per seed
                for seed in seeds:
                    start = time.perf_counter()
                    pred = static_spline_predict(tc, t_k, start=k - 1, holdout=k,
                                                 random_state=seed,
                                                 **spline_options(train_kwargs))
                    rows.append({"method": method, **base, "seed": int(seed),
                                 **_scores(pred, x_real, n_boot=n_boot),
                                 "seconds": time.perf_counter() - start})
                continue
            for seed in seeds:
                start = time.perf_counter()
                model = fit_flow(tc, method, holdout=k, device=device, random_state=seed,
                                 progress=progress, **train_kwargs)
                pred = integrate(model, x_prev.to(model.device), t_prev, t_k, n_steps=n_euler)
                scores = _scores(pred, x_real, n_boot=n_boot)
                rows.append({"method": method, **base, "seed": int(seed), **scores,
                             "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows, columns=["method", "holdout", "holdout_index", "seed", "w1",
                                       "w1_lo", "w1_hi", "w2", "mmd", "floor", "seconds"])


def summarize(df: pd.DataFrame, by: Sequence[str] = ("method", "holdout_index", "holdout")
              ) -> pd.DataFrame:
    """Mean ± std of each score over seeds, per method and held-out (or scored) timepoint.

    ``by``: the grouping columns (the roll-out table groups by ``method``, ``protocol``,
    ``time_index``). Every score column present (``w1``, ``w1_lo``, ``w1_hi``, ``w2``,
    ``mmd``, ``floor``, ``seconds``) is summarised (``w1_lo_mean``, ``w1_hi_mean``: the
    interval over cells, averaged over seeds).
    """
    scores = [c for c in ("w1", "w1_lo", "w1_hi", "w2", "mmd", "floor", "seconds")
              if c in df.columns]
    out = df.groupby(list(by), sort=False)[scores].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()
