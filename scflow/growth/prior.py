"""A prior on growth from gene scores: proliferation and apoptosis markers.

Waddington-OT (Schiebinger et al. 2019) and moscot turn two per-cell gene scores into a
prior growth rate: a birth rate that rises with the proliferation score and a death rate
that rises with the apoptosis score, each a logistic function between a low and a high
rate (per day), and ``rate = birth - death``. Over an interval of ``dt`` days a cell is
expected to leave ``exp(rate * dt)`` descendants. In ``uotcfm`` the prior sets the row
marginal the :class:`~scflow.growth.GrowthOT` plan is pulled towards (``reg_m``): cells
the genes call dividing are expected to send more mass forward before the data are seen.

The marker lists (:func:`marker_genes`) are moscot's (BSD-3-Clause, see
``scflow/_data/markers/NOTICE.md``): Tirosh et al. 2016 cell-cycle genes for proliferation,
MSigDB Hallmark apoptosis and P53 pathway genes for apoptosis. The scores themselves are
scanpy's :func:`scanpy.tl.score_genes` (:func:`scflow.tl.growth_prior`).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["ORGANISMS", "BIRTH", "DEATH", "marker_genes", "logistic_rate",
           "prior_growth_rate"]

#: organisms with shipped marker lists
ORGANISMS = ("mouse", "human")
#: birth rate per day against the proliferation score: ``low + (high - low) / (1 +
#: exp(-4 (score - center) / width))`` (Waddington-OT's and moscot's defaults)
BIRTH = {"high": 1.7, "low": 0.3, "center": 0.25, "width": 0.5}
#: death rate per day against the apoptosis score, the same logistic form
DEATH = {"high": 1.7, "low": 0.3, "center": 0.1, "width": 0.2}
_KINDS = ("proliferation", "apoptosis")


def marker_genes(organism: str, kind: str) -> list[str]:
    """The shipped marker genes of ``kind`` (``"proliferation"`` or ``"apoptosis"``) for
    ``organism`` (``"mouse"`` or ``"human"``), sorted."""
    if organism not in ORGANISMS:
        raise ValueError(f"organism must be one of {ORGANISMS}, got {organism!r}; pass your "
                         "own proliferation_genes and apoptosis_genes for other species")
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    text = (resources.files("scflow") / "_data" / "markers" / f"{organism}_{kind}.txt"
            ).read_text()
    return sorted({g.strip() for g in text.splitlines() if g.strip()})


def logistic_rate(score: np.ndarray, *, high: float, low: float, center: float,
                  width: float) -> np.ndarray:
    """``low + (high - low) / (1 + exp(-4 (score - center) / width))``: from ``low`` (far
    below ``center``) to ``high`` (far above), its slope ``(high - low) / width`` at
    ``center``."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    z = np.clip(-4.0 * (np.asarray(score, dtype=np.float64) - center) / width, -700, 700)
    return low + (high - low) / (1.0 + np.exp(z))


def prior_growth_rate(proliferation: np.ndarray | None, apoptosis: np.ndarray | None, *,
                      birth: dict | None = None, death: dict | None = None) -> np.ndarray:
    """Birth minus death rate (per day) of every cell from its two scores.

    A score that is ``None`` contributes the rate at score zero (as moscot and WOT do when
    one score is missing: a constant, which only shifts every cell's rate alike).
    ``birth`` / ``death``: the logistic's ``high``, ``low``, ``center``, ``width``
    (default :data:`BIRTH`, :data:`DEATH`).
    """
    if proliferation is None and apoptosis is None:
        raise ValueError("need a proliferation or an apoptosis score (or both)")
    n = len(proliferation if proliferation is not None else apoptosis)
    b = logistic_rate(np.zeros(n) if proliferation is None else proliferation,
                      **{**BIRTH, **(birth or {})})
    d = logistic_rate(np.zeros(n) if apoptosis is None else apoptosis,
                      **{**DEATH, **(death or {})})
    return b - d
