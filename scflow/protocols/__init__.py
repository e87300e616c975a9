"""The benchmark protocols, on tensors: leave one timepoint out (TorchCFM's), the roll-outs
(Var-RUOT / CytoBridge), the error budget, the published numbers and the report.

Public helpers: :func:`leave_one_out_tc`, :func:`rollout_tc` / :func:`roll_out`,
:func:`error_budget_tc`, the non-neural predictions (:mod:`scflow.protocols.static`),
:func:`scores` / :func:`summarize`, the published tables (:mod:`scflow.protocols.published`)
and the report (:mod:`scflow.protocols.report`: Markdown, JSON, ``--append``). The AnnData
front ends are ``scflow.tl.leave_one_out`` and ``scflow.tl.error_budget``; the command line
is ``scflow benchmark``. The old module paths ``scflow.benchmark``, ``scflow.rollout``,
``scflow.error_budget`` and ``scflow.published`` re-export these.
"""

from __future__ import annotations

from .error_budget import error_budget_tc
from .leave_one_out import ALL_METHODS, leave_one_out_tc
from .published import LEAVE_ONE_OUT, ROLLOUT, ROLLOUT_HOLDOUT
from .rollout import ROLLOUT_COLUMNS, roll_out, rollout_tc, truncate
from .scoring import interior_holdouts, scores, summarize
from .static import (
    PAIR_METHODS,
    STATIC_METHODS,
    check_mass,
    fraction,
    static_mean_spline_interpolant,
    static_ot_interpolant,
    static_pair_predict,
    static_partial_interpolant,
    static_predict,
    static_spline_predict,
)

__all__ = [
    "ALL_METHODS", "LEAVE_ONE_OUT", "PAIR_METHODS", "ROLLOUT", "ROLLOUT_COLUMNS",
    "ROLLOUT_HOLDOUT", "STATIC_METHODS", "check_mass", "error_budget_tc", "fraction",
    "interior_holdouts", "leave_one_out_tc", "roll_out", "rollout_tc", "scores",
    "static_mean_spline_interpolant", "static_ot_interpolant", "static_pair_predict",
    "static_partial_interpolant", "static_predict", "static_spline_predict", "summarize",
    "truncate",
]
