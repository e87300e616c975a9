"""Old path of the error budget: re-exports :mod:`scflow.protocols.error_budget`."""

from __future__ import annotations

from .protocols.error_budget import COLUMNS, error_budget_tc

__all__ = ["error_budget_tc", "COLUMNS"]
