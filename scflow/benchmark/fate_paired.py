"""Paired bootstrap of Pearson r over cells: fate predictions of the same cells, scored on
shared resamples.

A fate table compares several predictions of one truth on the same cells (methods, seeds,
readouts, a null). Two intervals that overlap say little about the difference of two
rows: the same cells make both scores move together. :func:`paired_pearson` draws the
bootstrap resamples once (cells with replacement, ``numpy.random.default_rng``) and scores
every prediction on each of them, so the difference of any two rows, or the mean over
seeds of the differences, has its own percentile interval
(:meth:`PairedPearson.difference`). The replicate of each single row is the one of
:func:`scflow.fate_benchmark.pearson_ci` with the same ``random_state``: the same draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import integer, number, seed

__all__ = ["PairedPearson", "paired_pearson"]

_BLOCK = 64  # resamples scored at once


@dataclass(frozen=True)
class PairedPearson:
    """Pearson r of several predictions of one truth, on shared bootstrap resamples.

    Attributes
    ----------
    names
        The predictions, in the order of the rows of ``replicates``.
    r
        Pearson r of each prediction on all cells (NaN for a constant prediction).
    replicates
        ``(len(names), n_boot)``: r of each prediction on each resample.
    level
        Coverage of the intervals.
    """

    names: tuple[str, ...]
    r: np.ndarray
    replicates: np.ndarray
    level: float

    def _row(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no prediction named {name!r}; have {list(self.names)}") from None

    def _bounds(self, reps: np.ndarray) -> tuple[float, float]:
        reps = reps[np.isfinite(reps)]
        if not len(reps):
            return float("nan"), float("nan")
        lo, hi = np.quantile(reps, [(1 - self.level) / 2, (1 + self.level) / 2])
        return float(lo), float(hi)

    def interval(self, name: str) -> tuple[float, float, float]:
        """r of ``name`` and its percentile interval."""
        i = self._row(name)
        return (float(self.r[i]), *self._bounds(self.replicates[i]))

    def mean(self, names: str | Sequence[str]) -> tuple[float, float, float]:
        """The mean r of ``names`` (e.g. one row per seed), on all cells and on each
        resample, and its percentile interval."""
        names = [names] if isinstance(names, str) else list(names)
        if not names:
            raise ValueError("names must list at least one prediction")
        a = np.array([self._row(n) for n in names])
        return (float(np.mean(self.r[a])), *self._bounds(self.replicates[a].mean(0)))

    def difference(self, names: str | Sequence[str], references: str | Sequence[str]
                   ) -> tuple[float, float, float]:
        """``r(names) - r(references)``, paired: the mean over the pairs (e.g. one per seed)
        of the differences, on all cells and on each resample, and its percentile interval.

        Parameters
        ----------
        names, references
            One name each, or two lists of the same length (pair ``i``: ``names[i]`` minus
            ``references[i]``; a reference may repeat, e.g. a null without seeds).
        """
        names = [names] if isinstance(names, str) else list(names)
        references = [references] if isinstance(references, str) else list(references)
        if not names or len(names) != len(references):
            raise ValueError(f"names and references must pair up, got {len(names)} and "
                             f"{len(references)}")
        a = np.array([self._row(n) for n in names])
        b = np.array([self._row(n) for n in references])
        point = float(np.mean(self.r[a] - self.r[b]))
        reps = (self.replicates[a] - self.replicates[b]).mean(0)
        return (point, *self._bounds(reps))


def paired_pearson(preds: Mapping[str, np.ndarray], truth: np.ndarray, *, n_boot: int = 1000,
                   random_state: int = 0, level: float = 0.95) -> PairedPearson:
    """Score every prediction of ``preds`` against ``truth`` on the same resamples of cells.

    Parameters
    ----------
    preds
        Name -> ``(n,)`` prediction of the ``n`` cells of ``truth`` (finite values).
    truth
        ``(n,)`` the truth of the same cells.
    n_boot
        Resamples (cells drawn with replacement, ``n`` each).
    random_state
        Seed of ``numpy.random.default_rng``: resample ``b`` is its ``b``-th
        ``integers(0, n, n)`` draw, as in :func:`scflow.fate_benchmark.pearson_ci`.
    level
        Coverage of the percentile intervals.

    Returns
    -------
    :class:`PairedPearson`.

    Raises
    ------
    ValueError
        No prediction, a prediction of another length than ``truth``, fewer than 3 cells, or
        a value that is not finite.
    """
    n_boot = integer(n_boot, "n_boot", lower=1)
    level = number(level, "level", lower=0, strict=True)
    if level >= 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed(random_state))
    truth = np.asarray(truth, dtype=np.float64)
    if truth.ndim != 1 or len(truth) < 3 or not np.isfinite(truth).all():
        raise ValueError(f"truth must be a finite 1-D array of at least 3 cells, got shape "
                         f"{truth.shape}")
    if not preds:
        raise ValueError("preds must hold at least one prediction")
    names = tuple(str(k) for k in preds)
    p = np.stack([np.asarray(v, dtype=np.float64) for v in preds.values()])
    if p.shape[1:] != truth.shape or not np.isfinite(p).all():
        bad = [k for k, v in preds.items() if np.shape(v) != truth.shape
               or not np.isfinite(np.asarray(v, dtype=np.float64)).all()]
        raise ValueError(f"every prediction must be {len(truth)} finite values (one per cell "
                         f"of truth); not so for {bad}")
    n = len(truth)
    # centre first: the moments below then stay well conditioned
    p = p - p.mean(1, keepdims=True)
    t = truth - truth.mean()
    moments = np.concatenate([p, p * p, p * t])  # (3m, n)
    tt = np.stack([np.ones(n), t, t * t])  # (3, n)
    reps = np.empty((len(names), n_boot))
    m = len(names)
    for lo in range(0, n_boot, _BLOCK):
        hi = min(n_boot, lo + _BLOCK)
        w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                      for _ in range(lo, hi)], 1).astype(np.float64)  # (n, block)
        mp, mpp, mpt = np.split(moments @ w, 3)
        s, st, stt = tt @ w
        reps[:, lo:hi] = _corr(mp, mpp, mpt, s, st, stt, m)
    full = _corr(*np.split(moments.sum(1, keepdims=True), 3), *tt.sum(1)[:, None], m)[:, 0]
    return PairedPearson(names, full, reps, level)


def _corr(mp, mpp, mpt, s, st, stt, m):
    """Pearson r from weighted sums (``s`` the weight, ``st``/``stt`` of the truth)."""
    cov = mpt - mp * st / s
    vp = mpp - mp * mp / s
    vt = np.broadcast_to(stt - st * st / s, cov.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vp * vt)
    return np.where((vp > 1e-12 * np.maximum(mpp, 1e-300)) & (vt > 0), r, np.nan)
