"""The benchmark protocols, on tensors: leave one timepoint out (TorchCFM's), the roll-outs
(Var-RUOT / CytoBridge), the error budget, choosing a method without the test (nested
selection), the bootstrap intervals and the published numbers.

Public helpers: :func:`leave_one_out_tc`, :func:`rollout_tc` / :func:`roll_out`,
:func:`error_budget_tc`, :func:`select_method` / :func:`nested_leave_one_out`
(:mod:`~scflow.protocols.selection`), :func:`bootstrap_w1` /
:func:`paired_bootstrap_w1` (:mod:`~scflow.protocols.intervals`), the static methods'
predictions (:func:`static_predict`), :func:`scores` / :func:`summarize`, the published
tables (:mod:`~scflow.protocols.published`). The AnnData front ends are
``scflow.tl.leave_one_out`` and ``scflow.tl.error_budget``; the command line is ``scflow
benchmark`` (:mod:`scflow.benchmark`, which writes the report).
"""

from __future__ import annotations

from .error_budget import error_budget_tc
from .intervals import bootstrap_w1, paired_bootstrap_w1
from .leave_one_out import ALL_METHODS, leave_one_out_tc
from .published import LEAVE_ONE_OUT, ROLLOUT, ROLLOUT_HOLDOUT
from .rollout import CHAIN_REFERENCE, ROLLOUT_COLUMNS, roll_out, rollout_tc, truncate
from .scoring import interior_holdouts, scores, summarize
from .selection import nested_leave_one_out, select_method
from .static import check_mass, static_pair_predict, static_predict

__all__ = [
    "ALL_METHODS", "CHAIN_REFERENCE", "LEAVE_ONE_OUT", "ROLLOUT", "ROLLOUT_COLUMNS",
    "ROLLOUT_HOLDOUT", "bootstrap_w1", "check_mass", "error_budget_tc", "interior_holdouts",
    "leave_one_out_tc", "nested_leave_one_out", "paired_bootstrap_w1", "roll_out",
    "rollout_tc", "scores", "select_method", "static_pair_predict", "static_predict",
    "summarize", "truncate",
]
