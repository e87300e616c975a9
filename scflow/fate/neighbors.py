"""How many labelled cells a fate is read among (``k``), chosen from the labels alone.

A labelled cell's label is predicted from the other labelled cells (leave-one-out) by the
share of each fate among its ``k`` nearest; the ``k`` whose prediction scores best (Brier)
is chosen (:func:`select_neighbors`). No fate truth is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import integer, number

__all__ = ["loo_brier", "select_neighbors", "NEIGHBOR_GRID", "AUTO_PRIOR"]

_CHUNK = 4096
#: the Dirichlet pseudo-count of ``n_neighbors="auto"`` (Jeffreys, 0.5 per fate): separable
#: labels (every small k predicts every labelled cell perfectly) no longer tie at the
#: smallest k. On the simulations of ``benchmarks/fate_dynamics.py`` it picked the same k as
#: the plain score wherever the labels are LARRY-like, and 15-20 instead of 3 on clean
#: labels, where the no-motion read scores 0.952 at 15 against 0.870 at the plain choice
AUTO_PRIOR = 0.5
#: candidate ``k`` of :func:`select_neighbors` (those above its ``max_k`` are dropped)
NEIGHBOR_GRID = (3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 250)


def loo_brier(ref: Tensor, codes: Tensor, n_fates: int, ks: Sequence[int], *,
              prior: float = 0.0) -> Tensor:
    """Leave-one-out Brier score of the ``k``-nearest-neighbour soft label, for each ``k``.

    Each labelled cell's label is predicted by :func:`soft_labels` from the *other*
    labelled cells; the score is the mean over cells of ``sum_f (p_f - y_f)^2`` (0 is
    perfect, 2 the worst). With ``prior > 0`` the prediction is the posterior mean under
    a symmetric Dirichlet prior, ``(count_f + prior) / (k + prior * n_fates)``: a pure
    neighbourhood of ``k`` cells is then more certain the larger ``k`` is, so separable
    labels no longer score every small ``k`` the same (0).

    Parameters
    ----------
    ref
        ``(m, d)`` labelled cells.
    codes
        ``(m,)`` their fate index, in ``0..n_fates - 1``.
    n_fates
        Number of fates.
    ks
        Neighbour counts to score, each in ``1..m - 1``.
    prior
        Pseudo-count added to every fate (>= 0; 0: the plain share).

    Returns
    -------
    ``(len(ks),)`` float64 scores, in the order of ``ks``.
    """
    prior = number(prior, "prior", lower=0)
    m = len(ref)
    ks = [integer(k, "n_neighbors", lower=1, upper=max(1, m - 1)) for k in ks]
    if m < 2 or not ks:
        raise ValueError(f"leave-one-out needs at least 2 labelled cells and one k, got {m} "
                         f"cells and ks={list(ks)}")
    codes = codes.to(ref.device, torch.long)
    kmax = max(ks)
    idx = torch.as_tensor(ks, device=ref.device) - 1
    kf = (idx + 1).to(torch.float64)
    denom = kf + prior * n_fates
    total = torch.zeros(len(ks), dtype=torch.float64, device=ref.device)
    ref64 = ref.to(torch.float64)
    earlier = torch.ones(kmax, kmax, dtype=torch.bool, device=ref.device).tril(-1)
    # rows per chunk: the (chunk, kmax, kmax) comparison below stays near 2**24 entries
    chunk = max(1, min(_CHUNK, 2**24 // (kmax * kmax)))
    for i in range(0, m, chunk):
        d = torch.cdist(ref64[i: i + chunk], ref64)
        rows = torch.arange(len(d), device=ref.device)
        d[rows, rows + i] = float("inf")  # leave the cell itself out
        c = codes[d.topk(kmax, dim=1, largest=False).indices]  # (chunk, kmax) neighbour fates
        # Brier of p_f = (count_f + a) / (k + a F) without a one-hot over fates:
        # sum_f p_f^2 - 2 p_own + 1, where sum_f (count_f + a)^2 = S + 2 a k + F a^2 and
        # S = sum_f count_f^2 grows by 2 * (earlier neighbours of the same fate) + 1 at each
        same = ((c[:, :, None] == c[:, None, :]) & earlier).sum(2)
        sq = (2 * same + 1).cumsum(1)[:, idx].to(torch.float64)
        own = (c == codes[i: i + chunk, None]).cumsum(1)[:, idx].to(torch.float64)
        sq = sq + 2 * prior * kf + n_fates * prior ** 2
        total += (sq / denom ** 2 - 2 * (own + prior) / denom + 1).sum(0)
    return total / m


def select_neighbors(ref: Tensor, codes: Tensor, n_fates: int, *,
                     candidates: Sequence[int] = NEIGHBOR_GRID,
                     max_k: int | None = None, prior: float = 0.0) -> tuple[int, dict]:
    """Choose ``k`` of the soft labels from the labelled cells alone.

    The ``k`` whose soft label best predicts each labelled cell's own label from the other
    labelled cells (lowest leave-one-out Brier score, :func:`loo_brier`; the smallest such
    ``k`` on a tie). It reads only the labels, never a fate truth.

    Parameters
    ----------
    ref, codes, n_fates
        Labelled cells, their fate index, the number of fates.
    candidates
        Neighbour counts to try; those above ``max_k`` (or ``m - 1``) are dropped.
    max_k
        Largest ``k`` allowed (default ``m - 1``).
    prior
        Dirichlet pseudo-count of the scored prediction (:func:`loo_brier`).

    Returns
    -------
    The chosen ``k``, and ``{"candidates": [...], "brier": [...]}`` (the scores it chose by).

    Raises
    ------
    ValueError
        Fewer than 3 labelled cells, or no candidate within ``1..max_k``.
    """
    m = len(ref)
    if m < 3:
        raise ValueError(f"choosing n_neighbors needs at least 3 labelled cells, got {m}")
    cap = m - 1 if max_k is None else min(integer(max_k, "max_k", lower=1), m - 1)
    ks = sorted({integer(k, "candidates", lower=1) for k in candidates})
    ks = [k for k in ks if k <= cap]
    if not ks:
        raise ValueError(f"no candidate n_neighbors within 1..{cap} (the labelled cells allow "
                         f"no more); got candidates={list(candidates)}")
    brier = loo_brier(ref, codes, n_fates, ks, prior=prior)
    best = int(torch.argmin(brier))  # first minimum: the smallest k on a tie
    return ks[best], {"candidates": ks, "brier": brier.cpu().tolist()}
