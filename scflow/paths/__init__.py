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

One small class per path, as TorchCFM: :mod:`~scflow.paths.linear` (``LinearPath``,
``BrownianBridgePath``), :mod:`~scflow.paths.gaussian` (the Gaussian-prior paths) and
:mod:`~scflow.paths.spline` (``SplinePath`` through K knots).
"""

from __future__ import annotations

from .base import ProbabilityPath
from .gaussian import GaussianOTPath, VEDiffusionPath, VPDiffusionPath
from .linear import BrownianBridgePath, LinearPath
from .spline import SPLINE_KINDS, SplinePath

__all__ = [
    "ProbabilityPath",
    "LinearPath",
    "BrownianBridgePath",
    "GaussianOTPath",
    "VPDiffusionPath",
    "VEDiffusionPath",
    "SplinePath",
    "SPLINE_KINDS",
]
