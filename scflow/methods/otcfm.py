"""OT-CFM: exact OT pairs on straight paths with constant noise (Tong et al. 2023;
Pooladian et al. 2023). The default method of ``tl.fit`` and :func:`scflow.fit_flow`."""

from __future__ import annotations

from ..couplings import ExactOT
from ..flow.matching import FlowMatcher
from ..paths import LinearPath
from ..training.registry import PROTOCOLS, PairMethod, register

__all__ = ["otcfm", "OTCFM", "DEFAULT_SIGMA"]

#: path noise (TorchCFM's default)
DEFAULT_SIGMA = 0.1


def otcfm(sigma: float = DEFAULT_SIGMA) -> FlowMatcher:
    """Optimal-transport CFM: ``LinearPath(sigma)`` + ``ExactOT()``."""
    return FlowMatcher(LinearPath(sigma), ExactOT())


@register
class OTCFM(PairMethod):
    name = "otcfm"
    summary = "exact OT pairs, linear paths (OT-CFM)"
    default_sigma = DEFAULT_SIGMA
    plan_bytes = 42
    protocols = PROTOCOLS
    order = 10
    candidates = ({},)
    fit_default = True

    def matcher(self, sigma: float) -> FlowMatcher:
        return otcfm(sigma)
