"""Distances between point clouds: exact Wasserstein (POT), MMD, energy distance."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ._lazy import ot
from .couplings import ConvergenceWarning

__all__ = ["wasserstein", "mmd", "energy_distance", "sampling_floor"]

ArrayLike = Tensor | np.ndarray


def _as_tensor(x: ArrayLike, name: str, like: Tensor | None = None) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    if t.dim() != 2 or len(t) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (points, dims), "
                         f"got shape {tuple(t.shape)}")
    if like is not None:
        if t.shape[1] != like.shape[1]:
            raise ValueError(f"x and y must have the same number of dims, got "
                             f"{like.shape[1]} and {t.shape[1]}")
        t = t.to(like.device)
    return t.to(torch.float64)


def wasserstein(x: ArrayLike, y: ArrayLike, p: int = 1, *, a: ArrayLike | None = None,
                b: ArrayLike | None = None, num_iter_max: int = 10_000_000) -> float:
    """Exact p-Wasserstein distance (Euclidean ground metric) by POT's network simplex.

    Parameters
    ----------
    x, y
        Point clouds ``(n, d)`` and ``(m, d)``.
    p
        1 or 2.
    a, b
        Weights of the points (default uniform); normalised to sum to one.
    num_iter_max
        Iteration cap of the solver; reaching it is reported by a ``ConvergenceWarning``.
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    xt = _as_tensor(x, "x")
    yt = _as_tensor(y, "y", like=xt)
    cost = ot.dist(xt, yt, metric="euclidean" if p == 1 else "sqeuclidean")
    wa = _weights(a, len(xt), cost, "a")
    wb = _weights(b, len(yt), cost, "b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value, log = ot.emd2(wa, wb, cost, numItermax=num_iter_max, log=True)
    if log.get("result_code", 1) != 1:
        warnings.warn(f"wasserstein: network simplex stopped before optimality "
                      f"({log.get('warning')}); the value is an upper bound",
                      ConvergenceWarning, stacklevel=2)
    value = float(value)
    return value if p == 1 else float(np.sqrt(max(value, 0.0)))


def _weights(w: ArrayLike | None, n: int, like: Tensor, name: str) -> Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(np.asarray(w) if not isinstance(w, Tensor) else w).to(like)
    if w.shape != (n,) or not bool(torch.isfinite(w).all()) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be {n} finite non-negative weights with positive sum, "
                         f"got shape {tuple(w.shape)}")
    return w / w.sum()


def _mean_pairwise(x: Tensor, y: Tensor, fn, chunk: int = 4096, wx: Tensor | None = None,
                   wy: Tensor | None = None) -> Tensor:
    """Mean of ``fn(squared distance)`` over all pairs, in chunks (memory O(chunk * m)).

    ``wx``, ``wy``: weights of the points, summing to one (default uniform): the mean is
    then ``sum_ij wx_i wy_j fn(|x_i - y_j|^2)``.
    """
    total = x.new_zeros(())
    if wx is None and wy is None:
        for c in torch.split(x, chunk):
            total = total + fn(torch.cdist(c, y).pow(2)).sum()
        return total / (len(x) * len(y))
    wx = torch.full((len(x),), 1.0 / len(x), dtype=x.dtype, device=x.device) if wx is None \
        else wx
    wy = torch.full((len(y),), 1.0 / len(y), dtype=y.dtype, device=y.device) if wy is None \
        else wy
    for c, wc in zip(torch.split(x, chunk), torch.split(wx, chunk), strict=True):
        total = total + (wc @ fn(torch.cdist(c, y).pow(2)) @ wy)
    return total


def mmd(x: ArrayLike, y: ArrayLike, *, bandwidths: Sequence[float] = (0.01, 0.1, 1, 10, 100),
        squared: bool = False, a: ArrayLike | None = None,
        b: ArrayLike | None = None) -> float:
    """Maximum mean discrepancy with a sum of Gaussian kernels (biased V-statistic).

    The kernel is ``sum_s exp(-|x - y|^2 / (2 s^2))`` over the ``bandwidths`` (TorchCFM's
    ``mix_rbf_mmd2`` list). ``a``, ``b``: weights of the points of ``x`` and ``y`` (default
    uniform; normalised to sum to one), e.g. the weights of a growth-aware prediction: the
    MMD between the weighted clouds, equal weights giving the unweighted value. Returns MMD,
    or MMD² with ``squared=True``.
    """
    xt = _as_tensor(x, "x")
    yt = _as_tensor(y, "y", like=xt)
    wa = None if a is None else _weights(a, len(xt), xt, "a")
    wb = None if b is None else _weights(b, len(yt), yt, "b")
    if not bandwidths or any(s <= 0 for s in bandwidths):
        raise ValueError(f"bandwidths must be positive, got {bandwidths!r}")

    def kernel(d2: Tensor) -> Tensor:
        return sum(torch.exp(-d2 / (2 * s**2)) for s in bandwidths)

    value = (_mean_pairwise(xt, xt, kernel, wx=wa, wy=wa)
             + _mean_pairwise(yt, yt, kernel, wx=wb, wy=wb)
             - 2 * _mean_pairwise(xt, yt, kernel, wx=wa, wy=wb)).clamp_min(0)
    return float(value if squared else value.sqrt())


def energy_distance(x: ArrayLike, y: ArrayLike) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Székely; V-statistic)."""
    xt = _as_tensor(x, "x")
    yt = _as_tensor(y, "y", like=xt)

    def dist(d2: Tensor) -> Tensor:
        return d2.clamp_min(0).sqrt()

    value = (2 * _mean_pairwise(xt, yt, dist) - _mean_pairwise(xt, xt, dist)
             - _mean_pairwise(yt, yt, dist))
    return float(value.clamp_min(0))


def sampling_floor(x: ArrayLike, *, n_splits: int = 5, random_state: int = 0) -> float:
    """Split-half W1: the mean exact W1 between two random halves of ``x``.

    The noise level of a W1 between samples half the size of ``x`` (the tables' ``split-half
    W1`` column; the name is kept for the API). It is *not* a floor: each half has half the
    points, so a prediction with as many points as ``x``, scored against all of ``x``, can
    land under it (measured: EMT 10-D, static OT moved onto the held-out mean, 1.60 against
    1.74; on the simulation OT-CFM 0.542 against 0.630). A model near it has little left to
    gain; one below it is not better than the data.
    """
    xt = _as_tensor(x, "x")
    if len(xt) < 4:
        raise ValueError("x must hold at least 4 points to split in halves")
    g = torch.Generator().manual_seed(int(random_state))
    values = []
    for _ in range(int(n_splits)):
        perm = torch.randperm(len(xt), generator=g).to(xt.device)
        half = len(xt) // 2
        values.append(wasserstein(xt[perm[:half]], xt[perm[half:2 * half]]))
    return float(np.mean(values))
