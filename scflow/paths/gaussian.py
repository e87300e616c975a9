"""Paths from a Gaussian prior (Lipman et al. 2023): the noise is the source sample."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ProbabilityPath, col

__all__ = ["GaussianOTPath", "VPDiffusionPath", "VEDiffusionPath"]


@dataclass(frozen=True)
class GaussianOTPath(ProbabilityPath):
    """Lipman et al.'s OT path from N(0, I): ``mu_t = t x1``, ``sigma_t = 1 - (1 - s) t``.

    ``u_t = (x1 - (1 - s) x_t) / (1 - (1 - s) t)`` with ``s = sigma_min``.
    """

    sigma_min: float = 1e-4
    noise_is_source = True

    def __post_init__(self) -> None:
        if not (0 < self.sigma_min < 1):
            raise ValueError(f"sigma_min must lie in (0, 1), got {self.sigma_min!r}")

    def mu_t(self, t, x0, x1):
        return col(t, x1) * x1

    def dmu_t(self, t, x0, x1):
        return x1

    def sigma_t(self, t):
        return 1 - (1 - self.sigma_min) * t

    def dsigma_t(self, t):
        return torch.full_like(t, -(1 - self.sigma_min))

@dataclass(frozen=True)
class VPDiffusionPath(ProbabilityPath):
    """Variance-preserving diffusion path (Lipman et al. 2023, eq. 19; Song et al. 2021).

    ``mu_t = alpha_{1-t} x1``, ``sigma_t = sqrt(1 - alpha_{1-t}^2)`` with
    ``alpha_s = exp(-T(s) / 2)``, ``T(s) = beta_min s + (beta_max - beta_min) s^2 / 2``.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    noise_is_source = True

    def __post_init__(self) -> None:
        if not (0 <= self.beta_min < self.beta_max):
            raise ValueError("beta_min and beta_max must satisfy 0 <= beta_min < beta_max")

    def _alpha(self, s: Tensor) -> tuple[Tensor, Tensor]:
        big_t = self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2
        beta = self.beta_min + (self.beta_max - self.beta_min) * s
        alpha = torch.exp(-0.5 * big_t)
        return alpha, -0.5 * beta * alpha  # alpha_s and d alpha_s / ds

    def mu_t(self, t, x0, x1):
        alpha, _ = self._alpha(1 - t)
        return col(alpha, x1) * x1

    def dmu_t(self, t, x0, x1):
        _, dalpha = self._alpha(1 - t)
        return -col(dalpha, x1) * x1

    def sigma_t(self, t):
        alpha, _ = self._alpha(1 - t)
        return torch.sqrt((1 - alpha**2).clamp_min(1e-12))

    def dsigma_t(self, t):
        alpha, dalpha = self._alpha(1 - t)
        # d/dt sqrt(1 - a(1-t)^2) = a a' / sqrt(1 - a^2)
        return alpha * dalpha / torch.sqrt((1 - alpha**2).clamp_min(1e-12))

@dataclass(frozen=True)
class VEDiffusionPath(ProbabilityPath):
    """Variance-exploding diffusion path (Lipman et al. 2023, eq. 17; Song et al. 2021).

    ``mu_t = x1``, ``sigma_t = sigma_{1-t}`` with ``sigma_s = sigma_min (sigma_max /
    sigma_min)^s``; ``u_t = -sigma'_{1-t} / sigma_{1-t} (x_t - x1)``.
    """

    sigma_min: float = 0.01
    sigma_max: float = 10.0
    noise_is_source = True

    def __post_init__(self) -> None:
        if not (0 < self.sigma_min < self.sigma_max):
            raise ValueError("sigma_min and sigma_max must satisfy 0 < sigma_min < sigma_max")

    def mu_t(self, t, x0, x1):
        return x1

    def dmu_t(self, t, x0, x1):
        return torch.zeros_like(x1)

    def sigma_t(self, t):
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (1 - t)

    def dsigma_t(self, t):
        return -math.log(self.sigma_max / self.sigma_min) * self.sigma_t(t)
