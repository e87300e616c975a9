"""Fate probabilities on tensors: where cells end up, read among labelled later cells.

A fate is read at a later timepoint among the cells that carry a label there (possibly a
few among many): a point's *soft label* is the share of each fate among its ``k`` nearest
labelled cells. ``k`` can be chosen from the labels alone (:func:`select_neighbors`:
leave-one-out prediction of each labelled cell's own label from the others, Brier score).
Two estimates of where a cell ends up:

- :func:`flow_fate`: push the cell along the learned field, once (ODE) or ``n_draws``
  times (SDE, for models with a diffusion), and average the soft labels of the end points.
- :func:`transport_fate`: no network: entropic OT plans between consecutive populations,
  chained backward from the labelled timepoint (as Waddington-OT). Later populations are
  subsampled to ``max_cells``; every start cell gets its own row of the first plan from the
  Sinkhorn potential (the plan's conditional ``pi(y | x)`` extends to any ``x``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import integer, number
from .._lazy import ot
from ..couplings import ConvergenceError, ConvergenceWarning, sinkhorn
from ..flow.integrate import integrate
from ..flow.model import FlowModel
from .neighbors import NEIGHBOR_GRID, loo_brier, select_neighbors

__all__ = ["soft_labels", "soft_labels_many", "select_neighbors", "loo_brier", "NEIGHBOR_GRID",
           "DEFAULT_NEIGHBORS", "DEFAULT_MODE", "flow_fate", "transport_fate", "fate_bias"]

_CHUNK = 4096
#: labelled cells read around each end point by default (``tl.fate``; the score is flat in
#: it on simulations with clean labels, ``benchmarks/fate_simulation.py``)
DEFAULT_NEIGHBORS = 15
#: what ``tl.fate(mode="auto")`` runs: chosen on simulations (``benchmarks/fate_dynamics.py``:
#: the highest mean r over its LARRY-like cases, 0.941 against 0.928 for SDE draws and 0.904
#: for the best pull), never on a real data set's fate truth
DEFAULT_MODE = "transport"


def soft_labels(points: Tensor, ref: Tensor, codes: Tensor, n_fates: int, k: int) -> Tensor:
    """Share of each fate among the ``k`` nearest reference cells of each point.

    Parameters
    ----------
    points
        ``(n, d)`` query points.
    ref
        ``(m, d)`` labelled cells.
    codes
        ``(m,)`` fate index of each labelled cell, in ``0..n_fates - 1``.
    n_fates
        Number of fates.
    k
        Neighbours read (at most ``m``).

    Returns
    -------
    ``(n, n_fates)`` rows that sum to 1, on ``points``' device.
    """
    k = integer(k, "n_neighbors", lower=1)
    k = min(k, len(ref))
    ref = ref.to(points.device, points.dtype)
    codes = codes.to(points.device, torch.long)
    out = []
    for i in range(0, len(points), _CHUNK):
        nn = torch.cdist(points[i: i + _CHUNK], ref).topk(k, dim=1, largest=False).indices
        # counts per fate by scatter (memory chunk x fates, never chunk x k x fates)
        counts = points.new_zeros((len(nn), n_fates))
        counts.scatter_add_(1, codes[nn], points.new_ones(nn.shape))
        out.append(counts / k)
    if not out:
        return points.new_zeros((0, n_fates))
    return torch.cat(out)


def soft_labels_many(points: Tensor, ref: Tensor, codes: Tensor, n_fates: int,
                     ks: Sequence[int]) -> Tensor:
    """:func:`soft_labels` at several ``k`` from one neighbour search.

    Returns
    -------
    ``(len(ks), n, n_fates)``: row ``i`` the soft labels at ``ks[i]`` (each ``k`` capped at
    the number of reference cells).
    """
    ks = [min(integer(k, "n_neighbors", lower=1), len(ref)) for k in ks]
    if not ks:
        raise ValueError("ks must list at least one n_neighbors")
    ref = ref.to(points.device, points.dtype)
    codes = codes.to(points.device, torch.long)
    kmax = max(ks)
    out = []
    for i in range(0, len(points), _CHUNK):
        nn = torch.cdist(points[i: i + _CHUNK], ref).topk(kmax, dim=1, largest=False,
                                                          sorted=True).indices
        fates = codes[nn]
        per_k = []
        for k in ks:  # counts per fate by scatter (memory chunk x fates, never x k x fates)
            counts = points.new_zeros((len(nn), n_fates))
            counts.scatter_add_(1, fates[:, :k], points.new_ones((len(nn), k)))
            per_k.append(counts / k)
        out.append(torch.stack(per_k))
    if not out:
        return points.new_zeros((len(ks), 0, n_fates))
    return torch.cat(out, dim=1)


def _ks(n_neighbors) -> tuple[list[int], bool]:
    """``n_neighbors`` as a list, and whether it was one value."""
    if isinstance(n_neighbors, Sequence) and not isinstance(n_neighbors, str):
        return [integer(k, "n_neighbors", lower=1) for k in n_neighbors], False
    return [integer(n_neighbors, "n_neighbors", lower=1)], True


def flow_fate(model: FlowModel, x0: Tensor, t0: float, t1: float, ref: Tensor, codes: Tensor,
              n_fates: int, *, n_neighbors: int | Sequence[int] = 15, n_draws: int = 1,
              stochastic: bool = False, n_steps: int = 100,
              generator: torch.Generator | None = None, progress=None) -> Tensor:
    """Fate probabilities of cells pushed along the field from ``t0`` to ``t1``.

    Parameters
    ----------
    model
        The trained field.
    x0
        ``(n, d)`` cells in model coordinates.
    t0, t1
        Model times of the start and of the labelled timepoint.
    ref, codes, n_fates
        Labelled cells at ``t1`` (model coordinates), their fate index, the number of fates.
    n_neighbors
        Labelled cells read around each end point (:func:`soft_labels`), or a list of them
        (the same end points read at each).
    n_draws
        End points per cell (SDE draws; must be 1 for an ODE, whose push is deterministic).
    stochastic
        Euler–Maruyama with the model's diffusion (models with a score network).
    n_steps
        Integration steps per push.
    generator
        Random generator on the model's device (the SDE noise).
    progress
        A callable ``progress(n)`` told of each finished draw, or ``None``.

    Returns
    -------
    ``(n, n_fates)`` probabilities (rows sum to 1); ``(len(n_neighbors), n, n_fates)`` for a
    list.
    """
    ks, one = _ks(n_neighbors)
    n_draws = integer(n_draws, "n_draws", lower=1)
    if n_draws > 1 and not stochastic:
        raise ValueError(f"n_draws={n_draws} needs stochastic=True: an ODE push is "
                         "deterministic, every draw would end at the same point")
    x0 = x0.to(model.device, torch.float32)
    ref = ref.to(model.device, torch.float32)
    acc = x0.new_zeros((len(ks), len(x0), n_fates))
    for _ in range(n_draws):
        end = integrate(model, x0, float(t0), float(t1), n_steps=n_steps,
                        stochastic=stochastic, batch_size=_CHUNK * 4, generator=generator)
        bad = ~torch.isfinite(end).all(1)
        if bool(bad.any()):  # soft labels of NaN end points would read as plausible fates
            raise ValueError(f"flow_fate: {int(bad.sum())} of {len(end)} end points are not "
                             f"finite (NaN or inf): the field diverges between model times "
                             f"{float(t0):g} and {float(t1):g}")
        acc += soft_labels_many(end, ref, codes, n_fates, ks)
        if progress is not None:
            progress(1)
    acc /= n_draws
    return acc[0] if one else acc


def transport_fate(xs: Sequence[Tensor], ref: Tensor, codes: Tensor, n_fates: int, *,
                   reg: float = 0.05, n_neighbors: int | Sequence[int] = 15,
                   max_cells: int = 5000,
                   num_iter_max: int = 2000, generator: torch.Generator | None = None
                   ) -> Tensor:
    """Fate probabilities by chained entropic OT plans (no network).

    Parameters
    ----------
    xs
        Populations from the start timepoint to the labelled one, in model coordinates
        (at least two).
    ref, codes, n_fates
        Labelled cells of the last population, their fate index, the number of fates.
    reg
        Entropic regularisation of every plan (units of squared distance).
    n_neighbors
        Labelled cells read around each cell of the last population, or a list of them (the
        same plans carry each).
    max_cells
        Later populations are subsampled to at most this many cells (uniformly, with
        ``generator``); every start cell is kept.
    num_iter_max
        Sinkhorn iterations per plan.
    generator
        Random generator of the subsampling (CPU).

    Returns
    -------
    ``(len(xs[0]), n_fates)`` probabilities (rows sum to 1); ``(len(n_neighbors),
    len(xs[0]), n_fates)`` for a list.
    """
    ks, one = _ks(n_neighbors)
    if len(xs) < 2:
        raise ValueError(f"transport fates need at least two populations, got {len(xs)}")
    reg = number(reg, "reg", lower=0, strict=True)
    max_cells = integer(max_cells, "max_cells", lower=2)
    dev = xs[0].device
    subs = [xs[0]] + [_subsample(x, max_cells, generator).to(dev) for x in xs[1:]]
    last = soft_labels_many(subs[-1].to(torch.float64), ref.to(torch.float64), codes, n_fates,
                            ks)  # (len(ks), m, n_fates): every k carried by the same plans
    fate = last.transpose(0, 1).reshape(len(subs[-1]), -1)
    for m in range(len(subs) - 2, -1, -1):
        fate = _pull_back(subs[m], subs[m + 1], fate, reg, num_iter_max)
    fate = fate.reshape(len(fate), len(ks), n_fates).transpose(0, 1)
    fate = (fate / fate.sum(2, keepdim=True).clamp_min(1e-300)).to(xs[0].dtype)
    return fate[0] if one else fate


def _subsample(x: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=generator)[:n].to(x.device)]


def _pull_back(x: Tensor, y: Tensor, fate_y: Tensor, reg: float, num_iter_max: int) -> Tensor:
    """``E[fate(y) | x]`` under the entropic plan between ``x`` and ``y`` (uniform weights).

    The plan is solved between ``y`` and a subsample of ``x`` of ``y``'s size; every row of
    ``x`` then gets its conditional ``pi(y | x) ∝ exp(log v_j - |x - y_j|^2 / reg)``.
    """
    x64, y64 = x.to(torch.float64), y.to(torch.float64)
    anchor = x64 if len(x64) <= len(y64) else x64[torch.linspace(
        0, len(x64) - 1, len(y64), device=x.device).long()]
    cost = ot.dist(anchor, y64)
    a = torch.full((len(anchor),), 1.0 / len(anchor), dtype=torch.float64, device=x.device)
    b = torch.full((len(y64),), 1.0 / len(y64), dtype=torch.float64, device=x.device)
    _, log_v, err = sinkhorn(a, b, cost, reg, num_iter_max=num_iter_max, tol=1e-6, log=True)
    if not torch.isfinite(log_v).all():
        raise ConvergenceError(f"transport fate: Sinkhorn potentials are not finite at "
                               f"reg={reg}; try a larger reg")
    if err > 1e-4:
        warnings.warn(f"transport fate: Sinkhorn stopped after {num_iter_max} iterations with "
                      f"marginal error {err:.1e}; raise reg or num_iter_max", ConvergenceWarning,
                      stacklevel=3)
    out = []
    for i in range(0, len(x64), _CHUNK):
        logits = log_v[None, :] - ot.dist(x64[i: i + _CHUNK], y64) / reg
        out.append(torch.softmax(logits, dim=1) @ fate_y.to(torch.float64))
    return torch.cat(out)


def fate_bias(prob: Tensor, a: int, b: int) -> Tensor:
    """``P(a) / (P(a) + P(b))``; 0.5 where neither fate is reached."""
    pa, pb = prob[:, a], prob[:, b]
    s = pa + pb
    return torch.where(s > 0, pa / s.clamp_min(1e-300), torch.full_like(s, 0.5))
