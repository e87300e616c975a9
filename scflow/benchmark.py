"""Old path of the leave-one-out protocol: re-exports :mod:`scflow.protocols`."""

from __future__ import annotations

from .protocols.leave_one_out import ALL_METHODS, leave_one_out_tc
from .protocols.scoring import interior_holdouts, summarize
from .protocols.scoring import scores as _scores  # noqa: F401 (the old private name)
from .protocols.static import (
    PAIR_METHODS,
    STATIC_METHODS,
    check_mass,
    spline_options,
    static_mean_spline_interpolant,
    static_ot_interpolant,
    static_pair_predict,
    static_partial_interpolant,
    static_spline_predict,
)
from .protocols.static import fraction as _fraction  # noqa: F401 (the old private name)

__all__ = ["leave_one_out_tc", "static_ot_interpolant", "static_partial_interpolant",
           "static_mean_spline_interpolant", "static_spline_predict", "static_pair_predict",
           "STATIC_METHODS", "ALL_METHODS", "PAIR_METHODS", "check_mass", "spline_options",
           "interior_holdouts", "summarize"]
