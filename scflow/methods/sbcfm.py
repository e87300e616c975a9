"""SB-CFM: entropic OT pairs on Brownian bridges, with a score network (Tong et al. 2023).

``sigma`` is the Brownian diffusion per unit of model time; an interval of span ``h`` uses
``sigma * sqrt(h)``, and its plan the entropic blur ``2 sigma_h**2`` of a Brownian reference.
"""

from __future__ import annotations

from ..couplings import EntropicOT
from ..flow.matching import FlowMatcher
from ..paths import BrownianBridgePath
from ..training.registry import PairMethod, register

__all__ = ["sbcfm", "SBCFM", "DEFAULT_SIGMA"]

#: the diffusion per unit of model time (whitened data)
DEFAULT_SIGMA = 0.5


def sbcfm(sigma: float = DEFAULT_SIGMA) -> FlowMatcher:
    """Schrödinger-bridge CFM: ``BrownianBridgePath(sigma)`` + ``EntropicOT(2 sigma**2)``."""
    return FlowMatcher(BrownianBridgePath(sigma), EntropicOT(reg=2 * sigma**2))


@register
class SBCFM(PairMethod):
    name = "sbcfm"
    summary = "entropic OT pairs, Brownian bridges, a score network (SB-CFM)"
    default_sigma = DEFAULT_SIGMA
    diffusion = True
    has_score = True
    plan_bytes = 64
    protocols = ("leave_one_out",)
    order = 30
    candidates = ({},)

    def matcher(self, sigma: float) -> FlowMatcher:
        return sbcfm(sigma)
