"""Fates on tensors: soft labels among the labelled cells of a later time, the truth-free
choice of the number of neighbours, fates along the flow (ODE or SDE pushes) and along
chained entropic transport (the reference), :mod:`~scflow.fate.core`. The AnnData face is
:func:`scflow.tl.fate`.
"""

from __future__ import annotations

from .core import (
    DEFAULT_NEIGHBORS,
    NEIGHBOR_GRID,
    fate_bias,
    flow_fate,
    loo_brier,
    select_neighbors,
    soft_labels,
    transport_fate,
)

__all__ = ["DEFAULT_NEIGHBORS", "NEIGHBOR_GRID", "fate_bias", "flow_fate", "loo_brier",
           "select_neighbors", "soft_labels", "transport_fate"]
