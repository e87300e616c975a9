"""The roll-out protocol of the Var-RUOT / CytoBridge papers, on tensors.

Train on all timepoints (or without one, the hold-one-out variant), push every cell of the
first timepoint forward from ``t_0`` only (never restarted at an observed time), and at each
later timepoint score the pushed cells against all real cells there by exact W1 and W2.
Raw units (build the time course with ``whiten=False``), time is the timepoint index, Euler
with ``n_euler`` steps per unit of model time.

In the hold-one-out variant the held-out timepoint may be the last one: the model is then
trained on the timepoints before it and the roll-out extrapolates. ``static_spline``
(follow each first-timepoint cell through the exact plans of the kept timepoints, a spline
through them, evaluated at the held-out time), ``static_ot`` (McCann interpolant of the
neighbours; interior only), ``static_partial`` (its growth-aware, partial-OT form) and
``static_mean_spline`` (static OT re-centred on the spline through the timepoints' means;
interior only) are the non-neural references there. On the train-on-all
protocol a non-neural method would return the observed cells themselves, so only neural
methods are scored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
from torch import Tensor

from ..config import TrainConfig
from ..integrate import integrate
from ..methods import check as methods_check
from ..methods import get
from ..metrics import sampling_floor
from ..model import FlowModel
from ..timecourse import TimeCourse
from ..train import fit_flow
from ..training_data import PlanCache
from .scoring import scores as _score
from .static import check_mass, static_predict

__all__ = ["rollout_tc", "roll_out", "truncate", "ROLLOUT_COLUMNS"]

ROLLOUT_COLUMNS = ["method", "protocol", "holdout", "holdout_index", "timepoint",
                   "time_index", "seed", "w1", "w2", "floor", "seconds"]


def truncate(tc: TimeCourse, n: int) -> TimeCourse:
    """The first ``n`` timepoints (same scaler)."""
    return TimeCourse(tc.xs[:n], tc.times[:n], tc.labels[:n], tc.values[:n], tc.mean,
                      tc.scale)


def roll_out(model: FlowModel, x0: Tensor, times: Sequence[float], *,
             n_euler: int = 100) -> list[Tensor]:
    """Push ``x0`` from ``times[0]`` through every later time, never restarting.

    Euler with ``n_euler`` steps per unit of model time (at least one per interval).
    Returns the cells at ``times[1:]``.
    """
    out, x = [], x0.to(model.device)
    for a, b in zip(times[:-1], times[1:], strict=True):
        x = integrate(model, x, float(a), float(b),
                      n_steps=max(1, round(n_euler * (float(b) - float(a)))))
        out.append(x)
    return out


def rollout_tc(tc: TimeCourse, methods: Sequence[str] = ("otcfm", "mmfm"),
               seeds: Sequence[int] = (0, 1, 2), *, holdouts: Sequence[int] | None = None,
               n_euler: int = 100, device: str = "auto", progress: bool | None = None,
               mass: Sequence[float] | None = None, config: TrainConfig | None = None,
               plan_cache: PlanCache | None = None, **train_kwargs) -> pd.DataFrame:
    """Run the roll-out protocol on a :class:`TimeCourse` (raw units: ``whiten=False``).

    Parameters
    ----------
    tc
        The time course; time should be the timepoint index.
    methods
        Neural methods (``icfm``, ``otcfm``, ``sbcfm``, ``mmfm``); with ``holdouts`` also
        ``static_spline``, ``static_ot``, ``static_partial`` and ``static_mean_spline``.
    seeds
        One fit per seed (and held-out timepoint).
    holdouts
        ``None``: train on all timepoints and score every later one. Otherwise the
        hold-one-out variant for each timepoint index given (``1 .. K - 1``; the last is an
        extrapolation): train without it, roll out from ``t_0``, score at it.
    n_euler
        Euler steps per unit of model time.
    mass
        ``static_partial``: the relative population size at every timepoint (default the
        numbers of cells).
    config, **train_kwargs
        The training options (:class:`~scflow.config.TrainConfig` or its fields by name).
    plan_cache
        Global plans to reuse (default: a new cache for this call).

    Returns
    -------
    One row per method, seed and scored timepoint: ``method``, ``protocol`` (``"all"`` or
    ``"holdout"``), ``holdout``/``holdout_index`` (``""``/``-1`` on ``"all"``),
    ``timepoint``, ``time_index``, ``seed``, ``w1``, ``w2``, ``floor`` (W1 between two
    halves of the real cells there), ``seconds``.
    """
    methods_check(methods)
    if tc.n_timepoints < 2:
        raise ValueError("the roll-out protocol needs at least two timepoints")
    check_mass(mass, tc.n_timepoints)
    cfg = TrainConfig.from_options(config, **train_kwargs)
    cache = PlanCache() if plan_cache is None else plan_cache
    if holdouts is None:
        static = [m for m in methods if not get(m).neural]
        if static:
            raise ValueError(f"methods {static} need holdouts: on the train-on-all protocol "
                             "a non-neural method returns the observed cells themselves")
    else:
        holdouts = [int(k) for k in holdouts]
        bad = [k for k in holdouts if not 1 <= k < tc.n_timepoints]
        if bad:
            raise ValueError(f"holdouts must be timepoint indices 1..{tc.n_timepoints - 1}, "
                             f"got {bad}")
        if tc.n_timepoints < 3:
            raise ValueError("the hold-one-out roll-out needs at least three timepoints")
    floors = {k: sampling_floor(tc.xs[k]) for k in range(1, tc.n_timepoints)}
    rows: list[dict] = []
    solved: dict[tuple[str, int], tuple[dict, float]] = {}  # deterministic: once per seed set

    def row(method, k_out, k, seed, scores, seconds):
        rows.append({"method": method, "protocol": "all" if k_out is None else "holdout",
                     "holdout": "" if k_out is None else tc.labels[k_out],
                     "holdout_index": -1 if k_out is None else k_out,
                     "timepoint": tc.labels[k], "time_index": k, "seed": int(seed),
                     **scores, "floor": floors[k], "seconds": seconds})

    for method in methods:
        entry = get(method)
        for seed in seeds:
            if holdouts is None:
                start = time.perf_counter()
                model = fit_flow(tc, method, device=device, random_state=seed,
                                 progress=progress, config=cfg, plan_cache=cache)
                preds = roll_out(model, tc.xs[0], tc.times, n_euler=n_euler)
                for k, pred in enumerate(preds, start=1):
                    row(method, None, k, seed, _score(pred, tc.xs[k], with_mmd=False),
                        time.perf_counter() - start)
                continue
            for k in holdouts:
                start = time.perf_counter()
                # the last timepoint held out: train on those before it, extrapolate
                sub, hold = (truncate(tc, k), None) if k == tc.n_timepoints - 1 else (tc, k)
                t_k = float(tc.times[k])
                if not entry.neural and entry.shape == "pair":
                    if hold is None:
                        continue  # no right neighbour: nothing to interpolate
                    if (method, k) not in solved:  # deterministic: once per seed set
                        pts, w = static_predict(method, tc, t_k, start=k - 1, holdout=k,
                                                random_state=seed, mass=mass,
                                                spline=cfg.spline, window=cfg.window,
                                                plan_cache=cache)
                        solved[method, k] = (_score(pts, tc.xs[k], w, with_mmd=False),
                                             time.perf_counter() - start)
                    sc, seconds = solved[method, k]
                    row(method, k, k, seed, sc, seconds)
                    continue
                if not entry.neural:  # chains: from the first timepoint, one draw per seed
                    pred, w = static_predict(method, sub, t_k, start=0, holdout=hold,
                                             random_state=seed, mass=mass, spline=cfg.spline,
                                             window=cfg.window, plan_cache=cache)
                else:
                    model = fit_flow(sub, method, holdout=hold, device=device,
                                     random_state=seed, progress=progress, config=cfg,
                                     plan_cache=cache)
                    pred, w = roll_out(model, tc.xs[0], tc.times[: k + 1],
                                       n_euler=n_euler)[-1], None
                row(method, k, k, seed, _score(pred, tc.xs[k], w, with_mmd=False),
                    time.perf_counter() - start)
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)
