"""``method="auto"``: the AnnData side of :func:`scflow.selection.select_method`.

``tl.fit(method="auto")`` chooses among neural candidates (a fit trains a field) by
leave-one-out on the timepoints it may read (all but ``holdout``), trains the chosen one,
and stores the inner scores it chose by under ``adata.uns[key_added]["selection"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._settings import logger
from ..config import TrainConfig
from ..methods import names
from ..selection import FIT_CANDIDATES, Selection, parse_candidate, select_method
from ..timecourse import TimeCourse

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
                   random_state: int, device, config: TrainConfig) -> Selection:
    """Run the selection for a fit: inner seed ``random_state``, the fit's training options
    (a candidate's own settings override them), ``holdout`` never read."""
    logger.info(f"method='auto': choosing among {len(candidates)} candidates by "
                f"leave-one-out on the kept timepoints")
    sel = select_method(tc, candidates, holdout=holdout, seeds=(random_state,),
                        device=device, progress=False, config=config)
    for label, why in sel.skipped.items():
        logger.warning(f"method='auto': candidate {label} skipped: {why}")
    if sel.fallback:
        logger.warning(f"method='auto': {sel.reason}")
    else:
        logger.info(f"method='auto': chose {sel.candidate} (inner hold-outs: timepoints "
                    f"{sel.inner_holdouts})")
    return sel


def selection_record(sel: Selection, labels: Sequence[str]) -> dict:
    """What ``tl.fit`` stores of a selection: plain values and arrays (h5ad-safe).

    ``chosen`` (the candidate's label), ``method``, ``fallback``, ``reason`` (``""`` unless
    it fell back), ``inner_holdouts`` (time labels held out in turn), ``skipped``
    (``candidate`` and ``reason`` of each candidate whose inner fit diverged), ``summary`` (per
    candidate: ``candidate``, ``w1_mean``, ``w1_std``, ``n``) and ``scores`` (the inner rows:
    ``candidate``, ``holdout``, ``seed``, ``w1``, ``w2``, ``floor``), each a dict of arrays.
    ``labels``: the time label (string) of every timepoint index.
    """
    summary = sel.summary
    rec = {
        "chosen": sel.candidate, "method": sel.method, "fallback": bool(sel.fallback),
        "reason": sel.reason,
        "inner_holdouts": np.asarray([str(labels[i]) for i in sel.inner_holdouts],
                                     dtype=object),
        "skipped": {"candidate": np.asarray(list(sel.skipped), dtype=object),
                    "reason": np.asarray(list(sel.skipped.values()), dtype=object)},
        "summary": {"candidate": summary["candidate"].astype(str).to_numpy(dtype=object),
                    "w1_mean": summary["w1_mean"].to_numpy(dtype=np.float64),
                    "w1_std": summary["w1_std"].to_numpy(dtype=np.float64),
                    "n": summary["n"].to_numpy(dtype=np.int64)},
    }
    scores = sel.scores
    if len(scores):
        rec["scores"] = {
            "candidate": scores["candidate"].astype(str).to_numpy(dtype=object),
            "holdout": np.asarray([str(labels[i]) for i in scores["holdout_index"]],
                                  dtype=object),
            "seed": scores["seed"].to_numpy(dtype=np.int64),
            **{c: scores[c].to_numpy(dtype=np.float64) for c in ("w1", "w2", "floor")},
        }
    return rec
