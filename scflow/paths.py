"""Conditional probability paths for flow matching.

Each path is a Gaussian conditional path ``x_t = mu_t(x0, x1) + sigma_t * eps`` with
``eps ~ N(0, I)``. A path only states its mean, its standard deviation and their time
derivatives; the sample, the target velocity ``u_t = mu'_t + sigma'_t * eps`` (the time
derivative of the conditional flow at fixed ``eps``) and the score target
``-eps / sigma_t`` follow from those for every path.

Time ``t`` is a tensor of shape ``(n,)`` in ``[0, 1]``; ``x0`` and ``x1`` are ``(n, d)``.

For the Gaussian-prior paths of Lipman et al. (2023) (:class:`GaussianOTPath`,
:class:`VPDiffusionPath`, :class:`VEDiffusionPath`) the noise ``eps`` *is* the source
sample ``x0``: the mean depends on ``x1`` only, and the source of the flow is the prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ProbabilityPath",
    "LinearPath",
    "BrownianBridgePath",
    "GaussianOTPath",
    "VPDiffusionPath",
    "VEDiffusionPath",
]


def _col(t: Tensor, like: Tensor) -> Tensor:
    """Reshape a ``(n,)`` time tensor to broadcast against ``(n, d)``."""
    return t.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


class ProbabilityPath:
    """Base of the Gaussian conditional paths: subclasses give mean, sigma and derivatives."""

    #: whether ``eps`` is the source sample (Gaussian-prior paths)
    noise_is_source: bool = False

    def mu_t(self, t: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
        raise NotImplementedError

    def dmu_t(self, t: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
        """Time derivative of :meth:`mu_t`."""
        raise NotImplementedError

    def sigma_t(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def dsigma_t(self, t: Tensor) -> Tensor:
        """Time derivative of :meth:`sigma_t`."""
        raise NotImplementedError

    # ----- derived quantities, shared by every path -----
    def noise(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The standard normal noise of a draw (the source itself for Gaussian-prior paths)."""
        if self.noise_is_source:
            return x0
        return torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)

    def sample_xt(self, t: Tensor, x0: Tensor, x1: Tensor, eps: Tensor) -> Tensor:
        """``x_t = mu_t + sigma_t * eps``."""
        return self.mu_t(t, x0, x1) + _col(self.sigma_t(t), x1) * eps

    def target_velocity(self, t: Tensor, x0: Tensor, x1: Tensor, eps: Tensor) -> Tensor:
        """``u_t = mu'_t + sigma'_t * eps``: the velocity of the conditional flow."""
        return self.dmu_t(t, x0, x1) + _col(self.dsigma_t(t), x1) * eps

    def score(self, t: Tensor, eps: Tensor) -> Tensor:
        """Score of the conditional path at the drawn point, ``-eps / sigma_t``."""
        return -eps / _col(self.sigma_t(t), eps)


@dataclass(frozen=True)
class LinearPath(ProbabilityPath):
    """Straight line with constant noise: ``mu_t = (1-t) x0 + t x1``, ``sigma_t = sigma``.

    I-CFM with an :class:`~scflow.couplings.Independent` coupling, OT-CFM with
    :class:`~scflow.couplings.ExactOT` (Tong et al. 2023). ``u_t = x1 - x0``.
    """

    sigma: float = 0.0

    def __post_init__(self) -> None:
        if not (self.sigma >= 0 and math.isfinite(self.sigma)):
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma!r}")

    def mu_t(self, t, x0, x1):
        tc = _col(t, x1)
        return (1 - tc) * x0 + tc * x1

    def dmu_t(self, t, x0, x1):
        return x1 - x0

    def sigma_t(self, t):
        return torch.full_like(t, self.sigma)

    def dsigma_t(self, t):
        return torch.zeros_like(t)


@dataclass(frozen=True)
class BrownianBridgePath(ProbabilityPath):
    """Brownian bridge between the pair: ``sigma_t = sigma * sqrt(t (1 - t))``.

    With an entropic OT coupling of ``reg = 2 sigma**2`` this is SB-CFM; the marginals
    are those of the Schrödinger bridge with Brownian reference of diffusion ``sigma``.
    ``u_t = (1 - 2t) / (2 t (1 - t)) (x_t - mu_t) + x1 - x0``.
    """

    sigma: float = 1.0

    def __post_init__(self) -> None:
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise ValueError(f"sigma must be a finite number > 0, got {self.sigma!r}")

    def mu_t(self, t, x0, x1):
        tc = _col(t, x1)
        return (1 - tc) * x0 + tc * x1

    def dmu_t(self, t, x0, x1):
        return x1 - x0

    def sigma_t(self, t):
        return self.sigma * torch.sqrt(t * (1 - t))

    def dsigma_t(self, t):
        # d/dt sqrt(t(1-t)) = (1 - 2t) / (2 sqrt(t(1-t))); clamp away from the knots
        s = torch.sqrt((t * (1 - t)).clamp_min(1e-12))
        return self.sigma * (1 - 2 * t) / (2 * s)


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
        return _col(t, x1) * x1

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
        return _col(alpha, x1) * x1

    def dmu_t(self, t, x0, x1):
        _, dalpha = self._alpha(1 - t)
        return -_col(dalpha, x1) * x1

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
