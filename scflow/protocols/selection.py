"""Choosing a method on the user's own data, by leave-one-out on the kept timepoints only.

:func:`select_method` scores every candidate (a method, or a method with settings) by the
leave-one-timepoint-out protocol run on the timepoints it may read: all of them, or all but
``holdout`` (that timepoint's cells are dropped before anything is computed, the whitening
scaler included: a whitened time course is refitted on the kept cells, and the inner scores
are in those units). Each interior kept timepoint is held out in turn (the inner hold-out,
whose cells the scaler of each inner fit does not see either:
:func:`~scflow.protocols.leave_one_out_tc`); the candidate with the lowest mean
W1 over the inner hold-outs and seeds is chosen, ties (equal up to rounding, :data:`TIE`)
going to the earlier candidate. With three kept timepoints each inner fit sees only two:
candidates that differ only in how they use more (``mmfm`` and ``otcfm``,
``static_mean_spline`` and ``static_ot``) then score the same, and the earlier is taken.

:func:`nested_leave_one_out` is the honest benchmark of that choice: for each outer held-out
timepoint ``k``, select on the other timepoints, then score the chosen candidate at ``k``.

Too few timepoints: an inner hold-out needs three kept timepoints (an interior one to hold
out and its two neighbours). With two (e.g. mouse 2-D, 3 timepoints, one held out), nothing
can be scored without reading the held-out cells; the choice then falls back to the
``fallback`` candidate (default: the first), and the :class:`Selection` says so
(``fallback=True``, ``reason``) and a ``UserWarning`` is issued. No extrapolation score is
used in its place: the static references cannot extrapolate, so it would not compare like
for like.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._checks import integer, seed
from .._errors import TrainingDivergedError
from .._progress import Progress
from ..couplings import PlanCache
from ..flow.timecourse import TimeCourse
from ..methods import fit_candidates, reference_candidates
from ..training.config import TrainConfig
from .leave_one_out import ALL_METHODS, leave_one_out_tc
from .scoring import interior_holdouts

__all__ = ["Selection", "select_method", "nested_leave_one_out", "candidate_label",
           "parse_candidate", "first_best", "FIT_CANDIDATES", "ALL_CANDIDATES"]

#: settings a candidate may carry (the training options, :class:`scflow.TrainConfig`)
SETTINGS = TrainConfig.names()

#: the columns of :attr:`Selection.scores` (also when empty, after a fallback)
SCORE_COLUMNS = ["candidate", "method", "holdout", "holdout_index", "seed", "w1", "w1_lo",
                 "w1_hi", "w2", "mmd", "floor", "seconds"]
#: inner means this close (relative) are a tie, taken by the earlier candidate: the cells
#: are float32, so equal predictions computed two ways differ from about 1e-8 on
TIE = 1e-6
#: what ``tl.fit(method="auto")`` chooses among: methods that train a field, each with the
#: settings its class offers (:func:`scflow.methods.fit_candidates`)
FIT_CANDIDATES: tuple = fit_candidates()
#: what ``tl.leave_one_out(select=True)`` chooses among: the fit candidates and the static
#: references that are candidates (:func:`scflow.methods.reference_candidates`)
ALL_CANDIDATES: tuple = (*FIT_CANDIDATES, *reference_candidates())


def parse_candidate(candidate: Any) -> tuple[str, dict]:
    """``(method, settings)`` of a candidate given as a name or a ``{"method": ...}`` dict;
    a ``ValueError`` for an unknown method or setting."""
    if isinstance(candidate, str):
        method, settings = candidate, {}
    elif isinstance(candidate, Mapping) and "method" in candidate:
        method = candidate["method"]
        settings = {k: v for k, v in candidate.items() if k != "method"}
    else:
        raise ValueError(f"candidates must be method names or dicts with a 'method' key, "
                         f"got {candidate!r}")
    if method not in ALL_METHODS:
        raise ValueError(f"candidates: method must be among {ALL_METHODS}, got {method!r}")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"candidates: settings must be among {SETTINGS}, got {unknown}")
    return method, settings


def candidate_label(candidate: Any) -> str:
    """``"mmfm(window=1)"``: the method and its settings, sorted by name."""
    method, settings = parse_candidate(candidate)
    if not settings:
        return method
    return f"{method}({', '.join(f'{k}={settings[k]!r}' for k in sorted(settings))})"


@dataclass
class Selection:
    """The candidate chosen by :func:`select_method`, and the inner scores it chose by.

    Attributes
    ----------
    method, settings
        The chosen method and the settings it carries (to pass on to the fit).
    candidate
        Its label (:func:`candidate_label`).
    summary
        One row per candidate: ``candidate``, ``method``, ``w1_mean``, ``w1_std``, ``n``
        (inner hold-outs x seeds scored), ``chosen``. Empty on a fallback.
    scores
        The inner leave-one-out rows: those of :func:`scflow.protocols.leave_one_out_tc`,
        with ``candidate`` and ``holdout_index`` as an index into the full time course.
    holdout
        The timepoint index never read (``None``: every timepoint was read).
    fallback, reason
        Whether the choice fell back to the fallback candidate, and why.
    inner_holdouts
        The timepoint indices (of the full time course) held out in turn.
    skipped
        ``{candidate: reason}``: candidates whose inner fits diverged
        (:class:`~scflow.TrainingDivergedError`), left out of the choice (their
        ``w1_mean`` is NaN in ``summary``).
    """

    method: str
    settings: dict
    candidate: str
    summary: pd.DataFrame
    scores: pd.DataFrame
    holdout: int | None = None
    fallback: bool = False
    reason: str = ""
    inner_holdouts: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)


def _kept(tc: TimeCourse, holdout: int | None) -> tuple[TimeCourse, list[int]]:
    """The time course without ``holdout`` (same times; a whitened course's scaler refitted
    on the kept cells), and the kept indices."""
    keep = [r for r in range(tc.n_timepoints) if r != holdout]
    sub = tc.subset(keep)
    return (sub if holdout is None else sub.refit_scaler(None)), keep


def select_method(tc: TimeCourse, candidates: Sequence = FIT_CANDIDATES, *,
                  holdout: int | None = None, seeds: Sequence[int] = (0,),
                  fallback: Any = None, n_euler: int = 100, device: str = "auto",
                  progress: bool | None = None, plan_cache: PlanCache | None = None,
                  **train_kwargs) -> Selection:
    """Choose among ``candidates`` by leave-one-out on the kept timepoints only.

    Parameters
    ----------
    tc
        The time course (scaled as the fit will be).
    candidates
        Method names (any registered method, neural or static) or dicts ``{"method": ...,
        setting: value}`` with settings among the training options of :class:`scflow.TrainConfig`
        (``n_steps``, ``sigma``, ``window``...).
    holdout
        A timepoint index whose cells are never read (the outer held-out timepoint), or
        ``None``.
    seeds
        One inner fit per seed, inner hold-out and neural candidate.
    fallback
        The candidate taken when fewer than three timepoints are kept (default the first).
    n_euler, device
        As in :func:`scflow.protocols.leave_one_out_tc`.
    progress
        Show one bar over the inner fits (candidate x inner hold-out x seed), the candidate
        being scored beside it; ``None`` (default): at ``scflow.settings.verbosity >= 1``.
        The fits' own training bars are not shown.
    plan_cache
        A :class:`~scflow.couplings.PlanCache` shared by every candidate (default a new
        one): candidates with the same coupling solve each plan once.
    **train_kwargs
        Training options shared by every candidate (``config=`` a
        :class:`~scflow.TrainConfig`, or its fields by name); a candidate's settings
        override them.

    Returns
    -------
    A :class:`Selection`.
    """
    if isinstance(candidates, (str, Mapping)):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates must list at least one method, got an empty list")
    parsed = [parse_candidate(c) for c in candidates]
    labels = [candidate_label(c) for c in candidates]
    if len(set(labels)) != len(labels):
        raise ValueError(f"candidates must differ, got {labels}")
    seeds = [seed(s, "seeds") for s in seeds]
    if not seeds:
        raise ValueError("seeds must list at least one seed, got an empty list")
    if holdout is not None:
        holdout = integer(holdout, "holdout", lower=0, upper=tc.n_timepoints - 1,
                          expected=f"a timepoint index (0..{tc.n_timepoints - 1}) or None")
    sub, keep = _kept(tc, holdout)
    if sub.n_timepoints < 3:
        fb = candidates[0] if fallback is None else fallback
        method, settings = parse_candidate(fb)
        reason = (f"{sub.n_timepoints} kept timepoints: an inner hold-out needs 3 (an "
                  f"interior one and its neighbours); fell back to {candidate_label(fb)}")
        warnings.warn(f"select_method: {reason}", UserWarning, stacklevel=2)
        return Selection(method, settings, candidate_label(fb), _summary([], labels, parsed),
                         pd.DataFrame(columns=SCORE_COLUMNS), holdout, True, reason)
    inner = list(range(1, sub.n_timepoints - 1))
    cache = PlanCache() if plan_cache is None else plan_cache
    frames, skipped = [], {}
    # one bar over every inner fit (candidate x inner hold-out x seed); the fits' own
    # training bars stay off
    with Progress(total=len(parsed) * len(inner) * len(seeds), desc="scflow auto",
                  enabled=progress) as bar:
        for (method, settings), label in zip(parsed, labels, strict=True):
            parts = []
            try:
                for k in inner:
                    bar.set_postfix(candidate=label)
                    parts.append(leave_one_out_tc(sub, [method], seeds, holdouts=[k],
                                                  n_euler=n_euler, device=device,
                                                  progress=False, plan_cache=cache,
                                                  **{**train_kwargs, **settings}))
                    bar.update(len(seeds))
                df = pd.concat(parts, ignore_index=True)
            except TrainingDivergedError as err:  # one candidate's failure is not the choice's
                skipped[label] = str(err)
                warnings.warn(f"select_method: candidate {label} skipped, its inner fit "
                              f"diverged ({err})", UserWarning, stacklevel=2)
                df = pd.DataFrame(columns=SCORE_COLUMNS[1:])
            df.insert(0, "candidate", label)
            df["holdout_index"] = [keep[i] for i in df["holdout_index"]]
            frames.append(df)
    if len(skipped) == len(labels):
        raise TrainingDivergedError(f"select_method: every candidate's inner fit diverged: "
                                    f"{skipped}")
    scores = pd.concat([f for f in frames if len(f)], ignore_index=True)
    summary = _summary(frames, labels, parsed)
    best = first_best(summary["w1_mean"].to_numpy())
    summary.loc[best, "chosen"] = True
    method, settings = parsed[best]
    return Selection(method, settings, labels[best], summary, scores, holdout,
                     inner_holdouts=[keep[i] for i in inner], skipped=skipped)


def first_best(means: np.ndarray) -> int:
    """Index of the first of the lowest ``means``, equal up to rounding (:data:`TIE`).

    With three kept timepoints the inner fits see two, and candidates that differ only
    beyond two (``mmfm`` and ``otcfm``, ``static_mean_spline`` and ``static_ot``) score the
    same but for float32 rounding (measured on EMT 10-D: 2.25098118 and 2.25098122): the
    earlier candidate is taken, not the rounding's pick.
    """
    means = np.asarray(means, dtype=np.float64)
    low = np.nanmin(means)  # a NaN mean: a candidate skipped (it diverged)
    return int(np.flatnonzero(means <= low + TIE * max(1.0, abs(low)))[0])


def _summary(frames: list[pd.DataFrame], labels: list[str], parsed: list) -> pd.DataFrame:
    rows = []
    for i, (label, (method, _)) in enumerate(zip(labels, parsed, strict=True)):
        w = frames[i]["w1"] if frames else pd.Series(dtype=float)
        rows.append({"candidate": label, "method": method, "w1_mean": w.mean(),
                     "w1_std": w.std(), "n": len(w), "chosen": False})
    return pd.DataFrame(rows, columns=["candidate", "method", "w1_mean", "w1_std", "n",
                                       "chosen"])


def nested_leave_one_out(tc: TimeCourse, candidates: Sequence = ALL_CANDIDATES,
                         seeds: Sequence[int] = (0, 1, 2), *,
                         holdouts: Sequence[int] | None = None,
                         select_seeds: Sequence[int] = (0,), n_euler: int = 100,
                         device: str = "auto", progress: bool | None = None,
                         n_boot: int = 0, **train_kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Leave-one-out of the selected method: choose without ``k``, then score at ``k``.

    For every outer held-out interior timepoint ``k``: :func:`select_method` on the other
    timepoints (``select_seeds``), then the chosen candidate is run on the protocol at ``k``
    with ``seeds``, exactly as :func:`~scflow.protocols.leave_one_out_tc` runs any method
    (``n_boot``: bootstrap replicates of the outer W1 over cells; the inner scores have
    none).

    Returns
    -------
    ``(rows, inner)``: the outer rows (those of ``leave_one_out_tc`` with ``method`` set to
    ``"auto"``, and ``chosen``, the candidate chosen for that ``k``, and ``fallback``), and
    the inner rows every choice was made by (``outer_holdout_index`` added).
    """
    ks = interior_holdouts(tc, holdouts, "nested leave-one-out")
    cache = PlanCache()  # one time course: inner and outer fits share their plans
    rows, inner = [], []
    for k in ks:
        sel = select_method(tc, candidates, holdout=k, seeds=select_seeds, n_euler=n_euler,
                            device=device, progress=progress, plan_cache=cache,
                            **train_kwargs)
        df = leave_one_out_tc(tc, [sel.method], seeds, holdouts=[k], n_euler=n_euler,
                              device=device, progress=progress, n_boot=n_boot,
                              plan_cache=cache, **{**train_kwargs, **sel.settings})
        df["method"] = "auto"
        df["chosen"] = sel.candidate
        df["fallback"] = sel.fallback
        rows.append(df)
        scores = sel.scores.copy()
        scores.insert(0, "outer_holdout_index", k)
        inner.append(scores)
    inner_df = pd.concat(inner, ignore_index=True) if inner else pd.DataFrame()
    return pd.concat(rows, ignore_index=True), inner_df
