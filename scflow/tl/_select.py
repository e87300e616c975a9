"""``method="auto"``: the AnnData side of :func:`scflow.protocols.selection.select_method`.

``tl.fit(method="auto")`` chooses among neural candidates (a fit trains a field) by
leave-one-out on the timepoints it may read (all but ``holdout``), trains the chosen one,
and stores the inner scores it chose by under ``adata.uns[key_added]["selection"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._progress import announce
from .._settings import logger
from ..flow.timecourse import TimeCourse
from ..methods import names
from ..protocols.selection import FIT_CANDIDATES, Selection, parse_candidate, select_method
from ..training.config import TrainConfig

__all__ = ["choose_for_fit", "selection_record", "check_fit_candidates"]


def check_fit_candidates(candidates: Sequence | None) -> list:
    """The candidates of ``tl.fit(method="auto")``, checked to be neural methods."""
    if candidates is None:
        return list(FIT_CANDIDATES)
    if isinstance(candidates, (str, Mapping)):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates must list at least one method, got an empty list")
    static = [c for c in candidates if parse_candidate(c)[0] not in names("neural")]
    if static:
        raise ValueError(f"candidates of tl.fit(method='auto') must be methods that train a "
                         f"field {names('neural')}, got {static}")
    return candidates


def choose_for_fit(tc: TimeCourse, candidates: Sequence, *, holdout: int | None,
                   random_state: int, device, config: TrainConfig, progress: bool | None = None,
                   shown: Sequence[str] | None = None) -> Selection:
    """Run the selection for a fit: inner seed ``random_state``, the fit's training options
    (a candidate's own settings override them), ``holdout`` never read.

    ``progress``: a bar over the inner fits, then the choice and each candidate's inner W1
    written where progress is shown (the default verbosity; ``progress=False`` or
    ``scflow.settings.verbosity = 0`` silence both). ``shown``: how each timepoint is shown
    (the user's time labels, :func:`scflow._adata.time_labels.display_labels`).
    """
    shown = [str(v) for v in (tc.labels if shown is None else shown)]
    logger.info(f"method='auto': choosing among {len(candidates)} candidates by "
                f"leave-one-out on the kept timepoints")
    sel = select_method(tc, candidates, holdout=holdout, seeds=(random_state,),
                        device=device, progress=progress, config=config)
    for label, why in sel.skipped.items():
        logger.warning(f"method='auto': candidate {label} skipped: {why}")
    if sel.fallback:
        logger.warning(f"method='auto': {sel.reason}")
    else:
        announce(choice_report(sel, shown), progress)
    return sel


def choice_report(sel: Selection, shown: Sequence[str]) -> str:
    """``method='auto' chose ...``: the choice, the timepoints held out in turn (as shown to
    the user) and every candidate's mean inner W1."""
    held = ", ".join(shown[i] for i in sel.inner_holdouts)
    summary = sel.summary
    width = max(len("candidate"), *(len(str(c)) for c in summary["candidate"]))
    n = int(summary["n"].max()) if len(summary) else 0
    lines = [f"method='auto' chose {sel.candidate}: lowest mean W1 when each kept timepoint "
             f"({held}) is held out in turn and predicted",
             f"  {'candidate':<{width}}  inner W1 (mean ± std over {n})"]
    for r in summary.itertuples():
        spread = "" if pd.isna(r.w1_std) else f" ± {r.w1_std:.3f}"
        mark = "  <- chosen" if r.chosen else ""
        lines.append(f"  {str(r.candidate):<{width}}  {r.w1_mean:.3f}{spread}{mark}")
    return "\n".join(lines)


def selection_record(sel: Selection, labels: Sequence[str]) -> dict:
    """What ``tl.fit`` stores of a selection (h5ad-safe: ``write_h5ad`` keeps DataFrames).

    ``chosen`` (the candidate's label), ``method``, ``fallback``, ``reason`` (``""`` unless
    it fell back), ``inner_holdouts`` (time labels held out in turn), ``skipped`` (a
    DataFrame: ``candidate`` and ``reason`` of each candidate whose inner fit diverged),
    ``summary`` (a DataFrame, one row per candidate: ``candidate``, ``method``, ``w1_mean``,
    ``w1_std``, ``n``, ``chosen``) and ``scores`` (a DataFrame of the inner rows:
    ``candidate``, ``holdout`` (time label), ``seed``, ``w1``, ``w2``, ``floor``; absent
    after a fallback).
    ``labels``: the time label (string) of every timepoint index.
    """
    summary = sel.summary
    rec = {
        "chosen": sel.candidate, "method": sel.method, "fallback": bool(sel.fallback),
        "reason": sel.reason,
        "inner_holdouts": np.asarray([str(labels[i]) for i in sel.inner_holdouts],
                                     dtype=object),
        "skipped": pd.DataFrame({
            "candidate": np.asarray(list(sel.skipped), dtype=object),
            "reason": np.asarray(list(sel.skipped.values()), dtype=object)}),
        "summary": pd.DataFrame({
            "candidate": summary["candidate"].astype(str).to_numpy(dtype=object),
            "method": summary["method"].astype(str).to_numpy(dtype=object),
            "w1_mean": summary["w1_mean"].to_numpy(dtype=np.float64),
            "w1_std": summary["w1_std"].to_numpy(dtype=np.float64),
            "n": summary["n"].to_numpy(dtype=np.int64),
            "chosen": summary["chosen"].to_numpy(dtype=bool)}),
    }
    scores = sel.scores
    if len(scores):
        rec["scores"] = pd.DataFrame({
            "candidate": scores["candidate"].astype(str).to_numpy(dtype=object),
            "holdout": np.asarray([str(labels[i]) for i in scores["holdout_index"]],
                                  dtype=object),
            "seed": scores["seed"].to_numpy(dtype=np.int64),
            **{c: scores[c].to_numpy(dtype=np.float64) for c in ("w1", "w2", "floor")}})
    return rec
