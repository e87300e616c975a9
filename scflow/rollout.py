"""Old path of the roll-out protocol: re-exports :mod:`scflow.protocols.rollout`."""

from __future__ import annotations

from .protocols.rollout import ROLLOUT_COLUMNS, roll_out, rollout_tc

__all__ = ["rollout_tc", "roll_out", "ROLLOUT_COLUMNS"]
