"""Where the leave-one-out error comes from: sampling, timing, the population's centre.

For a held-out timepoint ``k`` the protocol's static reference is the McCann interpolant of
the exact OT plan between ``k - 1`` and ``k + 1`` at ``k``'s fraction of the way in model
time (the midpoint in index time). Beside it, the noise level of a score and two oracles,
each allowed to look at the held-out cells, which bound what better timing or a better
centre could gain for an interpolant of that plan:

- ``floor``: W1 between two random halves of the held-out cells (sampling noise; not a
  strict bound, see :func:`~scflow.metrics.sampling_floor`);
- ``timing_oracle``: the same interpolant at the fraction that fits the held-out cells best
  (``best_fraction``): the error left if only the held-out *time* were known better;
- ``centre_oracle``: the interpolant at the protocol's fraction, moved so that its centre is
  the held-out mean: the error left if only the population's *centre* were known.

``w1_prev`` and ``w1_next``, the W1 from the held-out cells to each neighbour, show how
evenly the model time spaces them. None of these is a method: they read the held-out cells.
The plan is solved as the leave-one-out protocol solves it, with a whitened time course's
scaler refitted on the kept cells; every score is in the units of the time course given.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from .._checks import integer
from ..couplings import ExactOT
from ..flow.timecourse import TimeCourse
from ..metrics import sampling_floor, wasserstein
from ..references.interpolants import fraction
from .scoring import interior_holdouts

__all__ = ["error_budget_tc"]

COLUMNS = ["holdout", "holdout_index", "floor", "w1_prev", "w1_next", "fraction",
           "static_ot", "best_fraction", "timing_oracle", "centre_oracle"]


def error_budget_tc(tc: TimeCourse, holdouts: Sequence[int] | None = None, *,
                    n_fractions: int = 21) -> pd.DataFrame:
    """The error budget of every held-out timepoint (see the module's docstring).

    Parameters
    ----------
    tc
        The time course, scaled as the protocol scales it (e.g. ``whiten=True``).
    holdouts
        Interior timepoint indices (default all).
    n_fractions
        Fractions ``0, 1/(n-1), ..., 1`` searched by ``timing_oracle``; the protocol's own
        fraction is always searched too, so ``timing_oracle <= static_ot``.

    Returns
    -------
    One row per held-out timepoint: ``holdout`` (label), ``holdout_index``, ``floor``,
    ``w1_prev``, ``w1_next``, ``fraction`` (the protocol's), ``static_ot`` (W1 of the
    McCann interpolant there), ``best_fraction``, ``timing_oracle``, ``centre_oracle``.
    """
    n = integer(n_fractions, "n_fractions", lower=2)
    ks = interior_holdouts(tc, holdouts, "an error budget")
    return pd.DataFrame([_row(tc, k, n) for k in ks], columns=COLUMNS)


def _row(tc: TimeCourse, k: int, n_fractions: int) -> dict:
    """The budget of held-out timepoint ``k``."""
    x0, xk, x1 = tc.xs[k - 1], tc.xs[k], tc.xs[k + 1]
    s_protocol = fraction(tc, k)
    # solved once, moved to every fraction; as leave-one-out solves it: in the units of a
    # scaler fitted on the kept cells (a whitened course), the points then taken in tc's
    fit = tc.refit_scaler(k)
    plan = ExactOT().plan(fit.xs[k - 1], fit.xs[k + 1])
    i, j = torch.nonzero(plan, as_tuple=True)
    a, b, w = fit.xs[k - 1][i], fit.xs[k + 1][j], plan[i, j]

    def moved(s: float) -> torch.Tensor:  # the interpolant at s, in tc's units
        return tc.from_course((1 - s) * a + s * b, fit)

    grid = sorted({*(r / (n_fractions - 1) for r in range(n_fractions)), s_protocol})
    scores = {s: wasserstein(moved(s), xk, a=w) for s in grid}
    best = min(scores, key=scores.__getitem__)
    pts = moved(s_protocol)
    centre = (w[:, None] * pts).sum(0) / w.sum()
    return {"holdout": tc.labels[k], "holdout_index": k, "floor": sampling_floor(xk),
            "w1_prev": wasserstein(x0, xk), "w1_next": wasserstein(xk, x1),
            "fraction": s_protocol, "static_ot": scores[s_protocol], "best_fraction": best,
            "timing_oracle": scores[best],
            "centre_oracle": wasserstein(pts + (xk.mean(0) - centre), xk, a=w)}
