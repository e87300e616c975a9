"""Paths through K knots (multi-marginal flow matching): cubic splines in time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import integer, number
from .base import col

__all__ = ["SplinePath", "SPLINE_KINDS"]


# ----- paths through K knots (multi-marginal flow matching) -----
SPLINE_KINDS = ("natural", "pchip")

def _check_times(times: Tensor) -> Tensor:
    if times.dim() != 1 or len(times) < 2:
        raise ValueError(f"times must be a 1-D tensor of at least 2 knot times, got shape "
                         f"{tuple(times.shape)}")
    if not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be strictly increasing")
    return times

def _natural_second_derivatives(times: Tensor, window: int | None) -> Tensor:
    """Second derivatives at the two ends of each segment, as linear maps of the knots.

    Returns ``(K - 1, 2, K)`` float64: entry ``[i, e]`` is the row vector ``c`` with
    ``S''(times[i + e]) = c @ y`` for the natural cubic spline through the knots
    ``lo..hi`` of segment ``i``'s window (all knots when ``window`` is ``None``).
    """
    tt = times.detach().to(torch.float64)
    big_k = len(tt)
    out = torch.zeros(big_k - 1, 2, big_k, dtype=torch.float64, device=tt.device)
    cache: dict[tuple[int, int], Tensor] = {}
    for i in range(big_k - 1):
        lo, hi = (0, big_k - 1) if window is None else (max(0, i - window + 1),
                                                        min(big_k - 1, i + window))
        if (lo, hi) not in cache:
            m = hi - lo + 1
            full = torch.zeros(m, big_k, dtype=torch.float64, device=tt.device)
            if m > 2:
                h = tt[lo + 1: hi + 1] - tt[lo:hi]  # (m - 1,)
                a = torch.zeros(m - 2, m - 2, dtype=torch.float64, device=tt.device)
                b = torch.zeros(m - 2, big_k, dtype=torch.float64, device=tt.device)
                for r in range(m - 2):  # equation at interior knot lo + r + 1
                    a[r, r] = 2 * (h[r] + h[r + 1])
                    if r > 0:
                        a[r, r - 1] = h[r]
                    if r < m - 3:
                        a[r, r + 1] = h[r + 1]
                    k = lo + r + 1
                    b[r, k - 1] += 6 / h[r]
                    b[r, k] -= 6 / h[r] + 6 / h[r + 1]
                    b[r, k + 1] += 6 / h[r + 1]
                full[1:-1] = torch.linalg.solve(a, b)
            cache[lo, hi] = full
        full = cache[lo, hi]
        out[i, 0], out[i, 1] = full[i - lo], full[i + 1 - lo]
    return out

def _pchip_slopes(h: Tensor, y: Tensor) -> Tensor:
    """Knot derivatives of the monotone cubic (Fritsch–Carlson, as SciPy's PCHIP).

    ``h``: ``(K - 1,)`` knot spacings; ``y``: ``(n, K, d)``. Returns ``(n, K, d)``.
    """
    hh = h[None, :, None]
    m = (y[:, 1:] - y[:, :-1]) / hh  # secant slopes (n, K - 1, d)
    if y.shape[1] == 2:
        return torch.cat([m, m], 1)
    h0, h1 = hh[:, :-1], hh[:, 1:]
    m0, m1 = m[:, :-1], m[:, 1:]
    w1, w2 = 2 * h1 + h0, h1 + 2 * h0
    same = (torch.sign(m0) * torch.sign(m1)) > 0
    safe0 = torch.where(same, m0, torch.ones_like(m0))
    safe1 = torch.where(same, m1, torch.ones_like(m1))
    inner = torch.where(same, (w1 + w2) / (w1 / safe0 + w2 / safe1), torch.zeros_like(m0))

    def end(h0: Tensor, h1: Tensor, m0: Tensor, m1: Tensor) -> Tensor:
        d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        d = torch.where(torch.sign(d) != torch.sign(m0), torch.zeros_like(d), d)
        flip = (torch.sign(m0) != torch.sign(m1)) & (d.abs() > 3 * m0.abs())
        return torch.where(flip, 3 * m0, d)

    first = end(hh[:, :1], hh[:, 1:2], m[:, :1], m[:, 1:2])
    last = end(hh[:, -1:], hh[:, -2:-1], m[:, -1:], m[:, -2:-1])
    return torch.cat([first, inner, last], 1)

@dataclass(frozen=True)
class SplinePath:
    """A path through ``K`` knots ``x_{t_1}, ..., x_{t_K}`` at their times, with noise.

    Multi-marginal flow matching: a trajectory draws one cell per timepoint (chained
    couplings, :func:`scflow.couplings.sample_trajectories`), and the conditional path is a
    cubic spline in time through those cells, so the target velocity at ``t`` knows where
    the cell came from and where it goes next. ``x_t = mu_t + sigma_t eps``,
    ``u_t = mu'_t + sigma'_t eps``.

    Parameters
    ----------
    sigma
        Noise level: constant ``sigma`` or, with ``brownian=True``, a Brownian bridge of
        diffusion ``sigma`` pinned at every knot (``sigma_t^2 = sigma^2 (t - t_i)(t_{i+1}
        - t) / (t_{i+1} - t_i)`` on segment ``i``; the SDE form).
    kind
        ``"natural"`` (natural cubic spline, linear in the knots) or ``"pchip"`` (monotone
        piecewise cubic, no overshoot between knots).
    window
        Natural splines only: on segment ``[t_i, t_{i+1}]`` fit the spline through the
        ``window`` knots on each side (``t_{i-window+1} .. t_{i+window}``) only; ``None``
        uses every knot, ``1`` gives straight lines between consecutive knots.
    brownian
        See ``sigma``.

    Notes
    -----
    ``t`` is a ``(n,)`` tensor of times within ``[times[0], times[-1]]`` (any units: the
    knot times set them), ``xs`` the ``(n, K, d)`` knots and ``times`` the ``(K,)`` knot
    times. With two knots at times 0 and 1 this is :class:`LinearPath` (constant noise) or
    :class:`BrownianBridgePath` (``brownian=True``) exactly.
    """

    sigma: float = 0.0
    kind: str = "natural"
    window: int | None = None
    brownian: bool = False

    def __post_init__(self) -> None:
        number(self.sigma, "sigma", lower=0)
        if self.kind not in SPLINE_KINDS:
            raise ValueError(f"kind must be one of {SPLINE_KINDS}, got {self.kind!r}")
        if self.window is not None:
            integer(self.window, "window", lower=1, expected="a positive integer or None")
        if self.window is not None and self.kind != "natural":
            raise ValueError("window applies to kind='natural' only (PCHIP is already local)")
        if self.brownian and self.sigma <= 0:
            raise ValueError("brownian=True needs sigma > 0")

    # ----- where each time falls -----
    @staticmethod
    def _segment(t: Tensor, times: Tensor, check: bool = True
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """Segment index of each time, its left knot time and the segment length.

        ``check=False`` skips validating ``times`` (already done when a basis was built:
        the check waits for the device, so the training loop does it once)."""
        times = (_check_times(times) if check else times).to(t.dtype)
        i = torch.searchsorted(times, t.detach(), right=True) - 1
        i = i.clamp_(0, len(times) - 2)
        left = times[i]
        return i, left, times[i + 1] - left

    def basis(self, times: Tensor) -> Tensor:
        """Validate the knot times and precompute what depends on them only; pass it on.

        Natural splines: the ``(K - 1, 2, K)`` second-derivative maps; PCHIP: the knot
        spacings ``(K - 1,)``.
        """
        times = _check_times(times)
        if self.kind != "natural":
            return times[1:] - times[:-1]
        return _natural_second_derivatives(times, self.window)

    def mean_and_velocity(self, t: Tensor, xs: Tensor, times: Tensor,
                          basis: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``mu_t`` and ``mu'_t`` of each knot row at its time: two ``(n, d)`` tensors."""
        if xs.dim() != 3 or xs.shape[1] != len(times) or xs.shape[0] != t.shape[0]:
            raise ValueError(f"xs must have shape (n, K, d) = ({t.shape[0]}, {len(times)}, d)"
                             f", got {tuple(xs.shape)}")
        if basis is None:
            basis = self.basis(times)  # validates the times
        i, left, h = self._segment(t, times, check=False)
        s = ((t - left) / h).to(xs.dtype)
        hc = h.to(xs.dtype)[:, None]
        rows = torch.arange(len(t), device=xs.device)
        y0, y1 = xs[rows, i], xs[rows, i + 1]
        sc = s[:, None]
        if self.kind == "natural":
            c = basis.to(device=xs.device, dtype=xs.dtype)[i]  # (n, 2, K)
            m = torch.einsum("nek,nkd->ned", c, xs)  # second derivatives at both ends
            a, b = 1 - sc, sc
            mu = a * y0 + b * y1 + ((a**3 - a) * m[:, 0] + (b**3 - b) * m[:, 1]) * hc**2 / 6
            dmu = ((y1 - y0) / hc
                   + (-(3 * a**2 - 1) * m[:, 0] + (3 * b**2 - 1) * m[:, 1]) * hc / 6)
            return mu, dmu
        d = _pchip_slopes(basis.to(device=xs.device, dtype=xs.dtype), xs)
        d0, d1 = d[rows, i], d[rows, i + 1]
        s2, s3 = sc**2, sc**3
        mu = ((2 * s3 - 3 * s2 + 1) * y0 + (s3 - 2 * s2 + sc) * hc * d0
              + (-2 * s3 + 3 * s2) * y1 + (s3 - s2) * hc * d1)
        dmu = ((6 * s2 - 6 * sc) * (y0 - y1) / hc + (3 * s2 - 4 * sc + 1) * d0
               + (3 * s2 - 2 * sc) * d1)
        return mu, dmu

    def mu_t(self, t: Tensor, xs: Tensor, times: Tensor) -> Tensor:
        return self.mean_and_velocity(t, xs, times)[0]

    def dmu_t(self, t: Tensor, xs: Tensor, times: Tensor) -> Tensor:
        """Time derivative of :meth:`mu_t`."""
        return self.mean_and_velocity(t, xs, times)[1]

    def sigma_t(self, t: Tensor, times: Tensor) -> Tensor:
        if not self.brownian:
            return torch.full_like(t, self.sigma)
        _, left, h = self._segment(t, times)
        u, v = t - left, left + h - t
        return self.sigma * torch.sqrt((u * v / h).clamp_min(0))

    def dsigma_t(self, t: Tensor, times: Tensor) -> Tensor:
        """Time derivative of :meth:`sigma_t`."""
        if not self.brownian:
            return torch.zeros_like(t)
        _, left, h = self._segment(t, times)
        u, v = t - left, left + h - t
        f = torch.sqrt((u * v / h).clamp_min(1e-12))
        return self.sigma * (v - u) / (2 * h * f)

    def noise(self, xs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal noise, one ``(d,)`` draw per knot row."""
        return torch.randn((xs.shape[0], xs.shape[2]), generator=generator, device=xs.device,
                           dtype=xs.dtype)

    def sample_xt_ut(self, t: Tensor, xs: Tensor, times: Tensor, eps: Tensor,
                     basis: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``x_t = mu_t + sigma_t eps``, ``u_t = mu'_t + sigma'_t eps`` and ``sigma_t``, with
        the spline evaluated once (``basis``: from :meth:`basis`, or built here)."""
        mu, dmu = self.mean_and_velocity(t, xs, times, basis)
        sig = self.sigma_t(t, times)
        return (mu + col(sig, eps) * eps, dmu + col(self.dsigma_t(t, times), eps) * eps,
                sig)

    def sample_xt(self, t: Tensor, xs: Tensor, times: Tensor, eps: Tensor) -> Tensor:
        """``x_t = mu_t + sigma_t * eps``."""
        return self.sample_xt_ut(t, xs, times, eps)[0]

    def target_velocity(self, t: Tensor, xs: Tensor, times: Tensor, eps: Tensor) -> Tensor:
        """``u_t = mu'_t + sigma'_t * eps``."""
        return self.sample_xt_ut(t, xs, times, eps)[1]

    def score(self, t: Tensor, eps: Tensor, times: Tensor) -> Tensor:
        """Score of the conditional path at the drawn point, ``-eps / sigma_t``."""
        return -eps / col(self.sigma_t(t, times), eps)
