"""The base of the Gaussian conditional paths: a path states mean, sigma, derivatives."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ProbabilityPath", "col"]


def col(t: Tensor, like: Tensor) -> Tensor:
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
        return self.mu_t(t, x0, x1) + col(self.sigma_t(t), x1) * eps

    def target_velocity(self, t: Tensor, x0: Tensor, x1: Tensor, eps: Tensor) -> Tensor:
        """``u_t = mu'_t + sigma'_t * eps``: the velocity of the conditional flow."""
        return self.dmu_t(t, x0, x1) + col(self.dsigma_t(t), x1) * eps

    def score(self, t: Tensor, eps: Tensor) -> Tensor:
        """Score of the conditional path at the drawn point, ``-eps / sigma_t``."""
        return -eps / col(self.sigma_t(t), eps)
