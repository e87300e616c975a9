"""Old path of the published numbers: re-exports :mod:`scflow.protocols.published`."""

from __future__ import annotations

from .protocols.published import LEAVE_ONE_OUT, ROLLOUT, ROLLOUT_HOLDOUT

__all__ = ["LEAVE_ONE_OUT", "ROLLOUT", "ROLLOUT_HOLDOUT"]
