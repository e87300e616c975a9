"""Scores of a prediction against real cells, and the checks and summaries the protocols
share."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor

from ..metrics import mmd, wasserstein
from ..timecourse import TimeCourse

__all__ = ["scores", "interior_holdouts", "summarize"]


def scores(pred: Tensor, real: Tensor, weights: Tensor | None = None, *,
            with_mmd: bool = True) -> dict[str, float]:
    """Exact W1 and W2 (and MMD) of ``pred`` (weighted by ``weights``) against ``real``."""
    real = real.to(pred.device)
    out = {"w1": wasserstein(pred, real, a=weights), "w2": wasserstein(pred, real, p=2,
                                                                      a=weights)}
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



def summarize(df: pd.DataFrame, by: Sequence[str] = ("method", "holdout_index", "holdout")
              ) -> pd.DataFrame:
    """Mean ± std of each score over seeds, per method and held-out (or scored) timepoint.

    ``by``: the grouping columns (the roll-out table groups by ``method``, ``protocol``,
    ``time_index``). Every score column present (``w1``, ``w2``, ``mmd``, ``floor``,
    ``seconds``) is summarised.
    """
    scores = [c for c in ("w1", "w2", "mmd", "floor", "seconds") if c in df.columns]
    out = df.groupby(list(by), sort=False)[scores].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()
