"""I-CFM: independent pairs on straight paths with constant noise (Lipman et al. 2023;
Tong et al. 2023)."""

from __future__ import annotations

from ..couplings import Independent
from ..flow.matching import FlowMatcher
from ..paths import LinearPath
from ..training.registry import PairMethod, register

__all__ = ["icfm", "ICFM", "DEFAULT_SIGMA"]

#: path noise (TorchCFM's default)
DEFAULT_SIGMA = 0.1


def icfm(sigma: float = DEFAULT_SIGMA) -> FlowMatcher:
    """Independent-coupling CFM: ``LinearPath(sigma)`` + ``Independent()``."""
    return FlowMatcher(LinearPath(sigma), Independent())


@register
class ICFM(PairMethod):
    name = "icfm"
    summary = "independent pairs, linear paths (I-CFM)"
    default_sigma = DEFAULT_SIGMA
    protocols = ("leave_one_out",)
    order = 40

    def matcher(self, sigma: float) -> FlowMatcher:
        return icfm(sigma)
