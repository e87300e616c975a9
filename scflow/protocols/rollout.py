"""The roll-out protocol of the Var-RUOT / CytoBridge papers, on tensors.

Train on all timepoints (or without one, the hold-one-out variant), push every cell of the
first timepoint forward from ``t_0`` only (never restarted at an observed time), and at each
later timepoint score the pushed cells against all real cells there by exact W1 and W2.
Raw units (build the time course with ``whiten=False``), time is the timepoint index, Euler
with ``n_euler`` steps per unit of model time. On a whitened time course, the hold-one-out
variant refits the scaler on the kept cells (those before ``k`` when ``k`` is the last)
before anything is trained or solved, and scores in the units of the time course given.

In the hold-one-out variant the held-out timepoint may be the last one: the model is then
trained on the timepoints before it and the roll-out extrapolates. The non-neural
references there all start from ``t_0``, as the networks do: ``static_spline`` (follow each
first-timepoint cell through the exact plans of the kept timepoints, a spline through them,
evaluated at the held-out time), ``static_chain`` (the first cells carried by barycentric
projection through the chained exact plans, a straight line across the held-out time;
interior only), and ``static_ot`` (McCann interpolant; interior only), ``static_partial``
(its growth-aware, partial-OT form) and ``static_mean_spline`` (static OT re-centred on
the spline through the timepoints' means), each between the first cells carried to
``k - 1`` by draws from the chained plans and the cells of ``k + 1``.

The train-on-all protocol scores cells the model was trained on: it measures fit, not
prediction. Its no-network reference ``static_chain`` (:mod:`scflow.references.chain`)
shows how low that score goes with no network at all (EMT 10-D .149 / .138 / .150, mouse
2-D .0165 / .0157). Other non-neural methods would return the observed cells themselves
there and are refused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
import torch
from torch import Tensor

from ..couplings import PlanCache
from ..flow.integrate import integrate
from ..flow.model import FlowModel
from ..flow.timecourse import TimeCourse
from ..methods import check as methods_check
from ..methods import default_methods, get, reference
from ..metrics import sampling_floor
from ..references.chain import carry_first_cells, static_chain_predict
from ..training.config import TrainConfig
from ..training.loop import fit_flow
from .intervals import check_n_boot
from .scoring import scores as _score
from .static import check_mass, static_predict

__all__ = ["rollout_tc", "roll_out", "truncate", "ROLLOUT_COLUMNS", "CHAIN_REFERENCE"]

ROLLOUT_COLUMNS = ["method", "protocol", "holdout", "holdout_index", "timepoint",
                   "time_index", "seed", "w1", "w1_lo", "w1_hi", "w2", "floor", "seconds"]
#: the no-network reference of the roll-out protocols (:mod:`scflow.references.chain`)
CHAIN_REFERENCE = reference("rollout")


def truncate(tc: TimeCourse, n: int) -> TimeCourse:
    """The first ``n`` timepoints (same scaler)."""
    return tc.subset(range(n))


def _held_out(tc: TimeCourse, k: int) -> tuple[TimeCourse, int | None]:
    """What the hold-one-out roll-out trains on without timepoint ``k``: the time course
    with ``k`` held out (``k`` interior) or its first ``k`` timepoints (``k`` the last),
    with a whitened course's scaler refitted on those kept cells; and the index held out
    of it (``None`` when truncated)."""
    if k == tc.n_timepoints - 1:
        return truncate(tc, k).refit_scaler(None), None
    return tc.refit_scaler(k), k


def roll_out(model: FlowModel, x0: Tensor, times: Sequence[float], *,
             n_euler: int = 100, weighted: bool = False) -> list:
    """Push ``x0`` from ``times[0]`` through every later time, never restarting.

    Euler with ``n_euler`` steps per unit of model time (at least one per interval).
    Returns the cells at ``times[1:]``; with ``weighted`` (a model with a growth field)
    ``(cells, weights)`` there, each cell's log-weight
    carried along from 0 at ``times[0]``, the weights ``exp(log w) / n`` (float64).
    """
    out, x = [], x0.to(model.device)
    log_w = torch.zeros(len(x), device=x.device) if weighted else None
    for a, b in zip(times[:-1], times[1:], strict=True):
        n_steps = max(1, round(n_euler * (float(b) - float(a))))
        if not weighted:
            x = integrate(model, x, float(a), float(b), n_steps=n_steps)
            out.append(x)
            continue
        x, step = integrate(model, x, float(a), float(b), n_steps=n_steps, log_weights=True)
        log_w = log_w + step
        out.append((x, 1.0 / len(x) * torch.exp(log_w.double())))
    return out


def rollout_tc(tc: TimeCourse, methods: Sequence[str] = default_methods("rollout"),
               seeds: Sequence[int] = (0, 1, 2), *, holdouts: Sequence[int] | None = None,
               n_euler: int = 100, device: str = "auto", progress: bool | None = None,
               mass: Sequence[float] | None = None, config: TrainConfig | None = None,
               plan_cache: PlanCache | None = None, n_boot: int = 0,
               **train_kwargs) -> pd.DataFrame:
    """Run the roll-out protocol on a :class:`TimeCourse` (raw units: ``whiten=False``).

    Parameters
    ----------
    tc
        The time course; time should be the timepoint index.
    methods
        Neural methods and :data:`CHAIN_REFERENCE`, the no-network reference
        (:func:`scflow.references.chain.static_chain_predict`: the first timepoint carried
        by chained exact plans); with ``holdouts`` also the other static methods (default:
        the registry's roll-out list, :func:`scflow.methods.default_methods`).
        In the hold-one-out variant every static method starts from the first timepoint:
        ``static_ot``, ``static_partial`` and ``static_mean_spline`` interpolate between the
        first cells carried to ``k - 1`` by draws from the chained plans
        (:func:`~scflow.references.chain.carry_first_cells`, one draw per seed) and the
        cells of ``k + 1``; ``static_chain`` and those three need a right neighbour (not
        the last timepoint).
    seeds
        One fit per seed (and held-out timepoint).
    holdouts
        ``None``: train on all timepoints and score every later one. Otherwise the
        hold-one-out variant for each timepoint index given (``1 .. K - 1``; the last is an
        extrapolation): train without it, roll out from ``t_0``, score at it.
    n_euler
        Euler steps per unit of model time.
    mass
        Methods that take it (:attr:`scflow.methods.Method.takes_mass`): the relative
        population size at every timepoint (default the numbers of cells). Growth-aware
        methods (``learns_growth``) are scored as weighted clouds.
    config, **train_kwargs
        The training options (:class:`~scflow.TrainConfig` or its fields by name).
    plan_cache
        Global plans to reuse (default: a new cache for this call).
    n_boot
        Bootstrap replicates of each W1 over cells (:func:`scflow.protocols.intervals.bootstrap_w1`,
        95%, centred on the score, seed 0); 0: none (``w1_lo``, ``w1_hi`` NaN).

    Returns
    -------
    One row per method, seed and scored timepoint: ``method``, ``protocol`` (``"all"`` or
    ``"holdout"``), ``holdout``/``holdout_index`` (``""``/``-1`` on ``"all"``),
    ``timepoint``, ``time_index``, ``seed``, ``w1``, ``w1_lo``, ``w1_hi`` (its interval
    over cells), ``w2``, ``floor`` (W1 between two halves of the real cells there),
    ``seconds``.
    """
    methods_check(methods)
    if tc.n_timepoints < 2:
        raise ValueError("the roll-out protocol needs at least two timepoints")
    check_mass(mass, tc.n_timepoints)
    n_boot = check_n_boot(n_boot)
    cfg = TrainConfig.from_options(config, **train_kwargs)
    cache = PlanCache() if plan_cache is None else plan_cache
    if holdouts is None:
        static = [m for m in methods if not get(m).neural and m != CHAIN_REFERENCE]
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
    # per held-out k: the time course trained on (scaler refitted on its cells) and the
    # index held out of it (None: the last timepoint, cut off)
    fitted = {k: _held_out(tc, k) for k in holdouts or ()}
    counts = [float(len(x)) for x in tc.xs] if mass is None else list(mass)
    rows: list[dict] = []
    solved: dict[tuple[str, int], tuple] = {}  # deterministic: once per seed set

    def score(pred, k, w=None):
        return _score(pred, tc.xs[k], w, with_mmd=False, n_boot=n_boot)

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
                if method == CHAIN_REFERENCE:  # deterministic: solved once, every seed
                    if (method, -1) not in solved:
                        preds = [static_chain_predict(tc, k)
                                 for k in range(1, tc.n_timepoints)]
                        solved[method, -1] = ([score(p, k) for k, p in
                                               enumerate(preds, start=1)],
                                              time.perf_counter() - start)
                    for k, sc in enumerate(solved[method, -1][0], start=1):
                        row(method, None, k, seed, sc, solved[method, -1][1])
                    continue
                model = fit_flow(tc, method, device=device, random_state=seed,
                                 progress=progress, config=cfg, plan_cache=cache,
                                 mass=mass if entry.takes_mass else None)
                preds = roll_out(model, tc.xs[0], tc.times, n_euler=n_euler,
                                 weighted=entry.learns_growth)
                for k, pred in enumerate(preds, start=1):
                    pred, w = pred if entry.learns_growth else (pred, None)
                    row(method, None, k, seed, score(pred, k, w), time.perf_counter() - start)
                continue
            for k in holdouts:
                start = time.perf_counter()
                # the last timepoint held out: train on those before it, extrapolate; the
                # scaler of a whitened course sees the kept cells only, predictions are
                # mapped back to tc's units to be scored
                sub, hold = fitted[k]
                t_k = float(tc.times[k])
                if method == CHAIN_REFERENCE:
                    if hold is None:
                        continue  # no right neighbour: nothing to interpolate
                    if (method, k) not in solved:
                        pred = tc.from_course(static_chain_predict(sub, k, holdout=k), sub)
                        solved[method, k] = (score(pred, k), time.perf_counter() - start)
                    row(method, k, k, seed, *solved[method, k])
                    continue
                if not entry.neural and entry.shape == "pair":
                    if hold is None:
                        continue  # no right neighbour: nothing to interpolate
                    # restarted from t0: the first cells carried to k - 1 (one draw per
                    # seed), not the observed cells of k - 1
                    carried = carry_first_cells(sub, k - 1, holdout=k, random_state=seed)
                    xs = [carried if r == k - 1 else x for r, x in enumerate(sub.xs)]
                    pts, w = static_predict(method, replace(sub, xs=xs, raw=None), t_k,
                                            start=k - 1, holdout=k, random_state=seed,
                                            mass=counts, spline=cfg.spline, window=cfg.window)
                    row(method, k, k, seed, score(tc.from_course(pts, sub), k, w),
                        time.perf_counter() - start)
                    continue
                if not entry.neural:  # chains: from the first timepoint, one draw per seed
                    pred, w = static_predict(method, sub, t_k, start=0, holdout=hold,
                                             random_state=seed, mass=mass, spline=cfg.spline,
                                             window=cfg.window, plan_cache=cache)
                else:
                    model = fit_flow(sub, method, holdout=hold, device=device,
                                     random_state=seed, progress=progress, config=cfg,
                                     plan_cache=cache,
                                     mass=None if mass is None or not entry.takes_mass
                                     else list(mass)[: sub.n_timepoints])
                    pred = roll_out(model, sub.xs[0], tc.times[: k + 1], n_euler=n_euler,
                                    weighted=entry.learns_growth)[-1]
                    pred, w = pred if entry.learns_growth else (pred, None)
                row(method, k, k, seed, score(tc.from_course(pred, sub), k, w),
                    time.perf_counter() - start)
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)
