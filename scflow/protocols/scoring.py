"""Scores of a prediction against real cells, and the checks and summaries the protocols
share."""

from __future__ import annotations

from collections.abc import Sequence
from math import nan

import pandas as pd
from torch import Tensor

from ..flow.timecourse import TimeCourse
from ..methods import reference
from ..metrics import mmd, wasserstein
from .intervals import bootstrap_w1, paired_bootstrap_w1

__all__ = ["scores", "paired_scores", "interior_holdouts", "summarize", "REFERENCE",
           "DIFF_COLUMNS"]

#: the no-network reference every leave-one-out row is compared with, paired
REFERENCE = reference("leave_one_out")
#: the paired difference to :data:`REFERENCE` and its interval
DIFF_COLUMNS = [f"diff_{REFERENCE}", f"diff_{REFERENCE}_lo", f"diff_{REFERENCE}_hi"]


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


def paired_scores(preds: dict, real: Tensor, w1: dict[str, float], *, n_boot: int = 0
                  ) -> dict[str, dict[str, float]]:
    """W1 intervals and the paired difference to :data:`REFERENCE` of predictions of one
    set of real cells.

    ``preds``: ``{name: (points, weights)}`` (weights ``None``: uniform), the reference
    among them under the name ``"static_ot"``; ``w1``: their exact W1 (the scores of
    :func:`scores`). With ``n_boot``, every prediction is scored on the same bootstrap
    resamples of the real cells (:func:`scflow.protocols.intervals.paired_bootstrap_w1`, 95%,
    centred, seed 0; predictions of the same number of cells with uniform weights, e.g. the
    cells of ``k - 1`` pushed by two methods, are resampled cell for cell together), so the
    difference's interval is read off paired replicates. Without: the difference alone.

    Returns, per name: ``w1_lo``, ``w1_hi`` (NaN without ``n_boot``) and ``diff_static_ot``,
    ``diff_static_ot_lo``, ``diff_static_ot_hi`` (``W1 - W1(static_ot)``: below 0 is better
    than the reference).
    """
    if REFERENCE not in preds:
        raise ValueError(f"preds must hold the reference {REFERENCE!r}, got {list(preds)}")
    d, lo, hi = DIFF_COLUMNS
    if not n_boot:
        return {name: {"w1_lo": nan, "w1_hi": nan, d: w1[name] - w1[REFERENCE], lo: nan,
                       hi: nan} for name in preds}
    paired = paired_bootstrap_w1({name: (p.to(real.device), w) for name, (p, w)
                                  in preds.items()}, real, reference=REFERENCE, n_boot=n_boot)
    return {name: {"w1_lo": ci.lo, "w1_hi": ci.hi, d: w1[name] - w1[REFERENCE],
                   lo: paired.diff_lo[name], hi: paired.diff_hi[name]}
            for name, ci in paired.intervals.items()}


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
    ``time_index``). Every score column present (``w1``, ``w1_lo``, ``w1_hi``,
    ``diff_static_ot`` and its ``_lo`` / ``_hi``, ``w2``, ``mmd``, ``floor``, ``seconds``)
    is summarised (``w1_lo_mean``, ``w1_hi_mean``: the interval over cells, averaged over
    seeds; the same for the difference's).
    """
    scores = [c for c in ("w1", "w1_lo", "w1_hi", *DIFF_COLUMNS, "w2", "mmd", "floor",
                          "seconds") if c in df.columns]
    out = df.groupby(list(by), sort=False)[scores].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()
