"""The no-network references every method is scored beside (DESIGN.md): interpolants
between the neighbours of a timepoint (:mod:`~scflow.references.interpolants`: static OT,
its partial and mean-spline forms, the count-mix null) and the roll-out reference
(:mod:`~scflow.references.chain`: the first timepoint carried by chained exact plans).
They sit low, beside the couplings: protocols, methods and growth read the same code.
"""

from __future__ import annotations

from .chain import carry_first_cells, chain_images, static_chain_predict
from .interpolants import (
    fraction,
    static_mean_spline_interpolant,
    static_mix_interpolant,
    static_ot_interpolant,
    static_partial_interpolant,
)

__all__ = ["carry_first_cells", "chain_images", "fraction", "static_chain_predict",
           "static_mean_spline_interpolant", "static_mix_interpolant",
           "static_ot_interpolant", "static_partial_interpolant"]
