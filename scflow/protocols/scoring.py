"""Scores of a prediction against real cells, and the checks and summaries the protocols
share."""

from __future__ import annotations

from collections.abc import Sequence
from math import nan

import pandas as pd
from torch import Tensor

from ..flow.timecourse import TimeCourse
from ..metrics import mmd, wasserstein
from .intervals import bootstrap_w1

__all__ = ["scores", "interior_holdouts", "summarize"]


def scores(pred: Tensor, real: Tensor, weights: Tensor | None = None, *,
           with_mmd: bool = True, n_boot: int = 0) -> dict[str, float]:
    """Exact W1 and W2 (and MMD) of ``pred`` (weighted by ``weights``) against ``real``.

    ``n_boot``: bootstrap replicates of W1 over cells
    (:func:`scflow.protocols.intervals.bootstrap_w1`, 95%, centred on the score, seed 0)
    for ``w1_lo`` and ``w1_hi``; 0: those are NaN.
    """
    real = real.to(pred.device)
    if n_boot:
        ci = bootstrap_w1(pred, real, n_boot=n_boot, weights=weights)
        out = {"w1": ci.w1, "w1_lo": ci.lo, "w1_hi": ci.hi}
    else:
        out = {"w1": wasserstein(pred, real, a=weights), "w1_lo": nan, "w1_hi": nan}
    out["w2"] = wasserstein(pred, real, p=2, a=weights)
    if not with_mmd:
        return out
    out["mmd"] = mmd(pred, real, a=weights)  # the weighted cloud's MMD
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
