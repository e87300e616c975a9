"""Flow matching = a probability path composed with a coupling.

``FlowMatcher(path, coupling).sample(x0, x1)`` draws pairs from the coupling, times, points
on the conditional paths and their target velocities (plus noise and score target). The
three named methods are compositions, not subclasses:

- I-CFM: ``LinearPath(sigma)`` + ``Independent()``
- OT-CFM: ``LinearPath(sigma)`` + ``ExactOT()``
- SB-CFM: ``BrownianBridgePath(sigma)`` + ``EntropicOT(reg=2 * sigma**2)``

The methods by name (for ``fit``, ``leave_one_out`` and the CLI) are in
:mod:`scflow.methods`, one module each, with these presets (``scflow.icfm``,
``scflow.otcfm``, ``scflow.sbcfm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..couplings import Coupling
from ..paths import ProbabilityPath

__all__ = ["FlowMatcher", "FlowSample"]


class FlowSample(NamedTuple):
    """One draw of flow matching training data (all tensors on the inputs' device)."""

    t: Tensor  #: (n,) times in [0, 1]
    x0: Tensor  #: (n, d) source points actually paired
    x1: Tensor  #: (n, d) target points actually paired
    xt: Tensor  #: (n, d) points on the conditional paths
    ut: Tensor  #: (n, d) target velocities
    eps: Tensor  #: (n, d) standard normal noise of the draw
    score: Tensor | None  #: (n, d) conditional score target, where sigma_t > 0
    i: Tensor | None = None  #: (n,) indices into the given x0
    j: Tensor | None = None  #: (n,) indices into the given x1


@dataclass(frozen=True)
class FlowMatcher:
    """Compose a conditional path with a coupling.

    Parameters
    ----------
    path
        A :mod:`scflow.paths` path.
    coupling
        A :mod:`scflow.couplings` coupling, or ``None`` to pair ``x0[k]`` with ``x1[k]`` as
        given (the Gaussian-prior paths, or pairs drawn elsewhere).
    """

    path: ProbabilityPath
    coupling: Coupling | None = None

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor | None = None,
               generator: torch.Generator | None = None, n: int | None = None) -> FlowSample:
        """Draw pairs, times, path points and targets.

        Parameters
        ----------
        x0, x1
            Source and target clouds ``(n0, d)`` and ``(n1, d)``.
        t
            Times ``(n,)``; uniform on [0, 1] when omitted.
        generator
            Random generator on the inputs' device; draws are repeatable with it.
        n
            Number of pairs (default ``len(x0)``).
        """
        i = j = None
        if self.coupling is not None:
            i, j = self.coupling.sample(x0, x1, n, generator)
            x0, x1 = x0[i], x1[j]
        elif x0.shape != x1.shape:
            raise ValueError(f"without a coupling x0 and x1 must have the same shape; got "
                             f"{tuple(x0.shape)} and {tuple(x1.shape)}")
        return self.sample_pairs(x0, x1, t, generator)._replace(i=i, j=j)

    def sample_pairs(self, x0: Tensor, x1: Tensor, t: Tensor | None = None,
                     generator: torch.Generator | None = None, *,
                     with_score: bool = True) -> FlowSample:
        """Path points and targets for pairs already drawn (``x0[k]`` with ``x1[k]``).

        ``with_score=False`` skips the score target (and its check that ``sigma_t > 0``,
        which waits for the device): the training loop's fast path.
        """
        n = len(x1)
        if t is None:
            t = torch.rand(n, generator=generator, device=x1.device, dtype=x1.dtype)
        elif t.shape != (n,):
            raise ValueError(f"t must have shape ({n},), got {tuple(t.shape)}")
        eps = self.path.noise(x0, x1, generator)
        xt = self.path.sample_xt(t, x0, x1, eps)
        ut = self.path.target_velocity(t, x0, x1, eps)
        score = None
        if with_score and bool((self.path.sigma_t(t) > 0).all()):
            score = self.path.score(t, eps)
        return FlowSample(t, x0, x1, xt, ut, eps, score)
