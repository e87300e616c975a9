"""Paths between pairs of cells: straight lines with constant noise, Brownian bridges."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import number
from .base import ProbabilityPath, col

__all__ = ["LinearPath", "BrownianBridgePath"]


class _StraightMean:
    """The straight mean both paths here share: ``mu_t = (1-t) x0 + t x1``, ``dmu_t = x1 - x0``."""

    def mu_t(self, t, x0, x1):
        tc = col(t, x1)
        return (1 - tc) * x0 + tc * x1

    def dmu_t(self, t, x0, x1):
        return x1 - x0


@dataclass(frozen=True)
class LinearPath(_StraightMean, ProbabilityPath):
    """Straight line with constant noise: ``mu_t = (1-t) x0 + t x1``, ``sigma_t = sigma``.

    I-CFM with an :class:`~scflow.couplings.Independent` coupling, OT-CFM with
    :class:`~scflow.couplings.ExactOT` (Tong et al. 2023). ``u_t = x1 - x0``.
    """

    sigma: float = 0.0

    def __post_init__(self) -> None:
        number(self.sigma, "sigma", lower=0)

    def sigma_t(self, t):
        return torch.full_like(t, self.sigma)

    def dsigma_t(self, t):
        return torch.zeros_like(t)


@dataclass(frozen=True)
class BrownianBridgePath(_StraightMean, ProbabilityPath):
    """Brownian bridge between the pair: ``sigma_t = sigma * sqrt(t (1 - t))``.

    With an entropic OT coupling of ``reg = 2 sigma**2`` this is SB-CFM; the marginals
    are those of the Schrödinger bridge with Brownian reference of diffusion ``sigma``.
    ``u_t = (1 - 2t) / (2 t (1 - t)) (x_t - mu_t) + x1 - x0``.
    """

    sigma: float = 1.0

    def __post_init__(self) -> None:
        number(self.sigma, "sigma", lower=0, strict=True)

    def sigma_t(self, t):
        return self.sigma * torch.sqrt(t * (1 - t))

    def dsigma_t(self, t):
        # d/dt sqrt(t(1-t)) = (1 - 2t) / (2 sqrt(t(1-t))); clamp away from the knots
        s = torch.sqrt((t * (1 - t)).clamp_min(1e-12))
        return self.sigma * (1 - 2 * t) / (2 * s)
