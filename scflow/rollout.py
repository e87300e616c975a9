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

from .benchmark import (
    ALL_METHODS,
    PAIR_METHODS,
    _scores,
    check_mass,
    spline_options,
    static_pair_predict,
    static_spline_predict,
)
from .growth_train import (  # growth hook: uotcfm
    GROWTH_METHOD,
    fit_growth_flow,
    growth_options,
    growth_roll_out,
    without_growth,
)
from .integrate import integrate
from .metrics import sampling_floor
from .model import FlowModel
from .timecourse import TimeCourse
from .train import NEURAL_METHODS, fit_flow

__all__ = ["rollout_tc", "roll_out", "ROLLOUT_COLUMNS"]

ROLLOUT_COLUMNS = ["method", "protocol", "holdout", "holdout_index", "timepoint",
                   "time_index", "seed", "w1", "w2", "floor", "seconds"]


def _truncate(tc: TimeCourse, n: int) -> TimeCourse:
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
               mass: Sequence[float] | None = None, **train_kwargs) -> pd.DataFrame:
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
    **train_kwargs
        Passed to :func:`scflow.fit_flow`.

    Returns
    -------
    One row per method, seed and scored timepoint: ``method``, ``protocol`` (``"all"`` or
    ``"holdout"``), ``holdout``/``holdout_index`` (``""``/``-1`` on ``"all"``),
    ``timepoint``, ``time_index``, ``seed``, ``w1``, ``w2``, ``floor`` (W1 between two
    halves of the real cells there), ``seconds``.
    """
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"methods must be among {ALL_METHODS}, got {unknown}")
    if tc.n_timepoints < 2:
        raise ValueError("the roll-out protocol needs at least two timepoints")
    check_mass(mass, tc.n_timepoints)
    if holdouts is None:
        static = [m for m in methods if m not in (*NEURAL_METHODS, GROWTH_METHOD)]
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
        for seed in seeds:
            if holdouts is None and method == GROWTH_METHOD:  # growth hook
                start = time.perf_counter()
                model = fit_growth_flow(tc, device=device, mass="counts" if mass is None
                                        else mass, random_state=seed, progress=progress,
                                        **growth_options(train_kwargs))
                preds = growth_roll_out(model, tc.xs[0], tc.times, n_euler=n_euler)
                for k, (pred, w) in enumerate(preds, start=1):
                    row(method, None, k, seed, _scores(pred, tc.xs[k], w, with_mmd=False),
                        time.perf_counter() - start)
                continue
            if holdouts is None:
                start = time.perf_counter()
                model = fit_flow(tc, method, device=device, random_state=seed,
                                 progress=progress, **without_growth(train_kwargs))
                preds = roll_out(model, tc.xs[0], tc.times, n_euler=n_euler)
                for k, pred in enumerate(preds, start=1):
                    row(method, None, k, seed, _scores(pred, tc.xs[k], with_mmd=False),
                        time.perf_counter() - start)
                continue
            for k in holdouts:
                start = time.perf_counter()
                # the last timepoint held out: train on those before it, extrapolate
                sub, hold = (_truncate(tc, k), None) if k == tc.n_timepoints - 1 else (tc, k)
                if method in PAIR_METHODS:
                    if hold is None:
                        continue  # no right neighbour: nothing to interpolate
                    if (method, k) not in solved:
                        pts, w = static_pair_predict(method, tc, k, mass,
                                                     **spline_options(train_kwargs))
                        solved[method, k] = (_scores(pts, tc.xs[k], w, with_mmd=False),
                                             time.perf_counter() - start)
                    scores, seconds = solved[method, k]
                    row(method, k, k, seed, scores, seconds)
                    continue
                if method == "static_spline":
                    pred = static_spline_predict(sub, float(tc.times[k]), start=0,
                                                 holdout=hold, random_state=seed,
                                                 **spline_options(train_kwargs))
                    scores = _scores(pred, tc.xs[k], with_mmd=False)
                elif method == GROWTH_METHOD:  # growth hook: weighted cells along the roll-out
                    model = fit_growth_flow(sub, holdout=hold, device=device,
                                            mass="counts" if mass is None else
                                            list(mass)[: sub.n_timepoints],
                                            random_state=seed, progress=progress,
                                            **growth_options(train_kwargs))
                    pred, w = growth_roll_out(model, tc.xs[0], tc.times[: k + 1],
                                              n_euler=n_euler)[-1]
                    scores = _scores(pred, tc.xs[k], w, with_mmd=False)
                else:
                    model = fit_flow(sub, method, holdout=hold, device=device,
                                     random_state=seed, progress=progress,
                                     **without_growth(train_kwargs))
                    pred = roll_out(model, tc.xs[0], tc.times[: k + 1], n_euler=n_euler)[-1]
                    scores = _scores(pred, tc.xs[k], with_mmd=False)
                row(method, k, k, seed, scores, time.perf_counter() - start)
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)
