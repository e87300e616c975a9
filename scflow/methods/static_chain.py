"""``static_chain``: the roll-out reference, the first timepoint carried by chained exact OT
plans with no network (:mod:`scflow.references.chain`)."""

from __future__ import annotations

import numpy as np

from ..couplings import ExactOT
from ..references.chain import static_chain_predict
from ..training.registry import StaticMethod, register

__all__ = ["StaticChain"]


@register
class StaticChain(StaticMethod):
    name = "static_chain"
    shape = "chain"
    summary = ("no network: the first cells carried by chained exact OT plans, barycentric "
               "projection (the roll-out reference)")
    deterministic = True
    reference_of = ("rollout", "rollout_holdout")
    protocols = ("rollout", "rollout_holdout")
    order = 100
    coupling = ExactOT

    def predict(self, tc, t, *, start, holdout, random_state=0, mass=None,
                spline="natural", window=None, plan_cache=None):
        at = np.flatnonzero(np.isclose(np.asarray(tc.times, dtype=np.float64), float(t)))
        if len(at) != 1:
            raise ValueError(f"{self.name} predicts at a timepoint: t={t!r} is the model "
                             f"time of none of {list(tc.times)}")
        return static_chain_predict(tc, int(at[0]), holdout=holdout, start=start), None
