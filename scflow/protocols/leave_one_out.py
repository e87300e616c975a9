"""The leave-one-timepoint-out protocol of TorchCFM (Tong et al. 2023), on tensors.

To hold out timepoint ``k``: train without its cells, bridging ``k - 1 -> k + 1``; push
every cell of ``k - 1`` to the time of ``k`` with ``n_euler`` Euler steps; score against all
real cells of ``k`` by exact W1 (and W2, MMD), uniform weights. Interior timepoints only.

A whitened time course (``whiten=True``) has its scaler refitted on the kept cells for each
held-out ``k`` (:meth:`~scflow.flow.timecourse.TimeCourse.refit_scaler`): every fit and static
prediction works in those units and never reads ``k``'s cells; its prediction is mapped
back to the units of the time course given (the scaler fitted on all cells, the units the
published tables use) and scored there, so scores stay comparable across held-out times.
The non-neural references (``static_*``) are in :mod:`scflow.protocols.static`.

Global plans are solved once per time course (a :class:`~scflow.couplings.PlanCache`
shared by every seed, method and held-out timepoint).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
import torch

from ..couplings import PlanCache
from ..flow.integrate import integrate
from ..flow.timecourse import TimeCourse
from ..methods import check as methods_check
from ..methods import get, names
from ..metrics import sampling_floor, wasserstein
from ..training.config import TrainConfig
from ..training.loop import fit_flow
from .intervals import check_n_boot
from .scoring import DIFF_COLUMNS, REFERENCE, interior_holdouts, paired_scores, scores
from .static import check_mass, static_predict

__all__ = ["leave_one_out_tc", "ALL_METHODS", "LOO_COLUMNS"]

#: every registered method
ALL_METHODS = names()
LOO_COLUMNS = ["method", "holdout", "holdout_index", "seed", "w1", "w1_lo", "w1_hi",
               *DIFF_COLUMNS, "w2", "mmd", "floor", "seconds"]


def leave_one_out_tc(tc: TimeCourse, methods: Sequence[str] = ALL_METHODS,
                     seeds: Sequence[int] = (0, 1, 2), *,
                     holdouts: Sequence[int] | None = None, n_euler: int = 100,
                     device: str | torch.device = "auto", progress: bool | None = None,
                     mass: Sequence[float] | None = None, config: TrainConfig | None = None,
                     plan_cache: PlanCache | None = None, n_boot: int = 0,
                     **train_kwargs) -> pd.DataFrame:
    """Run the protocol on a :class:`TimeCourse` (scale it first, e.g. ``whiten=True``).

    Scores are in ``tc``'s units; a whitened ``tc`` is refitted on the kept cells for each
    held-out timepoint before anything is trained or solved (see the module).

    Parameters
    ----------
    tc
        The time course (model times set by its ``time_scale``).
    methods
        Any registered method (:func:`scflow.methods.names`), neural or static.
    seeds
        One fit per seed and held-out timepoint.
    holdouts
        Timepoint indices to hold out (default: every interior one).
    n_euler
        Euler steps from ``k - 1`` to ``k``.
    mass
        Methods that take it (``takes_mass``): the relative size of the population at every
        timepoint (default its number of cells). Growth-aware methods (``learns_growth``)
        are scored as weighted clouds.
    config, **train_kwargs
        The training options (:class:`~scflow.TrainConfig`, or its fields by name:
        ``n_steps``, ``batch_size``, ``lr``, ``sigma``, ``hidden``, ``coupling``...);
        ``spline`` and ``window`` also serve ``static_spline`` and ``static_mean_spline``.
    plan_cache
        Global plans to reuse (default: a new cache for this call).
    n_boot
        Bootstrap replicates over cells (95%, centred on the score, seed 0) of each W1 and
        of its difference to ``static_ot``, every prediction of a held-out timepoint scored
        on the same resamples of its real cells (:func:`~scflow.protocols.scoring.
        paired_scores`); 0: no interval (``w1_lo``, ``w1_hi``, ``diff_static_ot_lo``,
        ``diff_static_ot_hi`` NaN).

    Returns
    -------
    One row per method, held-out timepoint and seed: ``method``, ``holdout`` (the label),
    ``holdout_index``, ``seed``, ``w1``, ``w1_lo``, ``w1_hi`` (its interval over cells),
    ``diff_static_ot`` (``w1`` minus static OT's at the same held-out time; static OT is
    solved for it when not among ``methods``) with ``diff_static_ot_lo``,
    ``diff_static_ot_hi`` (its paired interval), ``w2``, ``mmd``, ``floor`` (W1 between
    two halves of the held-out cells), ``seconds`` (fit and push, or the static
    prediction; scoring not included).
    """
    methods_check(methods)
    check_mass(mass, tc.n_timepoints)
    n_boot = check_n_boot(n_boot)
    cfg = TrainConfig.from_options(config, **train_kwargs)
    cache = PlanCache() if plan_cache is None else plan_cache
    holdouts = interior_holdouts(tc, holdouts, "leave-one-out")
    rows = []
    for k in holdouts:
        rows += _held_out_rows(tc, k, methods, seeds, n_euler=n_euler, device=device,
                               progress=progress, mass=mass, cfg=cfg, cache=cache,
                               n_boot=n_boot)
    return pd.DataFrame(rows, columns=LOO_COLUMNS)


def _held_out_rows(tc: TimeCourse, k: int, methods: Sequence[str], seeds: Sequence[int], *,
                   n_euler: int, device, progress, mass, cfg: TrainConfig, cache: PlanCache,
                   n_boot: int) -> list[dict]:
    """The rows of held-out timepoint ``k``: every method and seed, scored with the paired
    difference to static OT."""
    fit_tc = tc.refit_scaler(k)  # the scaler sees the kept cells only
    x_prev, x_real = fit_tc.xs[k - 1], tc.xs[k]
    t_prev, t_k = float(tc.times[k - 1]), float(tc.times[k])
    base = {"holdout": tc.labels[k], "holdout_index": k, "floor": sampling_floor(x_real)}
    preds: dict[str, tuple] = {}  # name -> (points in tc's units, weights)
    w1: dict[str, float] = {}
    scored: list[tuple[str, dict]] = []  # (name of its prediction, row)

    def score(name, pts, w, seconds):  # in tc's units, kept for the paired intervals
        preds[name] = (tc.from_course(pts, fit_tc), w)
        row = {**scores(preds[name][0], x_real, w), "seconds": seconds}
        w1[name] = row["w1"]
        return row

    def static(method, seed):
        start = time.perf_counter()
        pts, w = static_predict(method, fit_tc, t_k, start=k - 1, holdout=k,
                                random_state=seed, mass=mass, spline=cfg.spline,
                                window=cfg.window, plan_cache=cache)
        return pts, w, time.perf_counter() - start

    for method in methods:
        entry = get(method)
        if not entry.neural:  # deterministic ones: solved once, one row per seed
            for seed in seeds[:1] if entry.deterministic else seeds:
                name = method if entry.deterministic else f"{method}/{seed}"
                row = score(name, *static(method, seed))
                scored += [(name, {"method": method, **base, "seed": int(s), **row})
                           for s in (seeds if entry.deterministic else [seed])]
            continue
        for seed in seeds:
            start = time.perf_counter()
            model = fit_flow(fit_tc, method, holdout=k, device=device, random_state=seed,
                             progress=progress, config=cfg, plan_cache=cache,
                             mass=mass if entry.takes_mass else None)
            pred = integrate(model, x_prev.to(model.device), t_prev, t_k, n_steps=n_euler,
                             log_weights=entry.learns_growth)
            # growth-aware methods: each pushed cell weighs its expected descendants
            pred, w = ((pred[0], torch.exp(pred[1].double())) if entry.learns_growth
                       else (pred, None))
            name = f"{method}/{seed}"
            row = score(name, pred, w, time.perf_counter() - start)
            scored.append((name, {"method": method, **base, "seed": int(seed), **row}))
    if REFERENCE not in preds:  # the reference of the paired differences
        pts, w, _ = static(REFERENCE, 0)
        preds[REFERENCE] = (tc.from_course(pts, fit_tc), w)
        w1[REFERENCE] = wasserstein(preds[REFERENCE][0], x_real, a=w)
    paired = paired_scores(preds, x_real, w1, n_boot=n_boot)
    return [{**row, **paired[name]} for name, row in scored]
