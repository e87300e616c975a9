"""``tl.growth_prior``: a prior growth rate per cell from proliferation and apoptosis genes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._adata.access import check_adata
from .._adata.store import check_key, log_added
from .._settings import logger
from ..growth.prior import ORGANISMS, marker_genes, prior_growth_rate

__all__ = ["growth_prior"]

#: below this many measured genes of a list, its score is noisy: a warning (as moscot, which
#: scores whatever scanpy finds); with none measured there is no score (an error)
MIN_GENES = 5
#: above this, expression does not look log-normalised (a warning, not an error)
LOG_MAX = 50.0


def growth_prior(adata: AnnData, organism: str | None = "mouse", *,
                 proliferation_genes: Sequence[str] | None = None,
                 apoptosis_genes: Sequence[str] | None = None, use_raw: bool | None = None,
                 layer: str | None = None, key_added: str = "growth_prior",
                 random_state: int = 0, copy: bool = False) -> AnnData | None:
    """Prior growth rate of every cell from proliferation and apoptosis gene scores.

    The scores are scanpy's :func:`scanpy.tl.score_genes` of the proliferation and the
    apoptosis markers; the rate is a birth rate minus a death rate, each a logistic
    function of its score (Waddington-OT's and moscot's calibration, per day:
    :func:`scflow.growth.prior.prior_growth_rate`). Pass ``growth_prior=key_added`` to
    :func:`scflow.tl.fit` with ``method="uotcfm"`` to use it as the prior of the growth-aware
    plan.

    Parameters
    ----------
    adata
        Annotated data with (log-normalised) expression in ``X``, ``raw`` or ``layer``.
    organism
        ``"mouse"`` or ``"human"``: the shipped marker lists (moscot's, see
        :func:`scflow.growth.prior.marker_genes`); ``None`` to give both lists yourself.
    proliferation_genes, apoptosis_genes
        Your own lists (each replaces the shipped one). Each list needs at least one gene
        among the measured genes; with fewer than :data:`MIN_GENES` its score rests on a
        few genes, and a ``UserWarning`` says so (moscot warns and continues likewise).
    use_raw, layer, random_state
        As :func:`scanpy.tl.score_genes` (``random_state`` picks its control genes).
    key_added
        Name of the ``obs`` column of the rate; the scores go to ``key_added +
        "_proliferation"`` and ``key_added + "_apoptosis"``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obs[key_added]``
        Prior growth rate of every cell: birth minus death rate, per day.
    ``adata.obs[key_added + "_proliferation"]``, ``adata.obs[key_added + "_apoptosis"]``
        The two gene scores.
    """
    import scanpy as sc

    check_adata(adata, writing=not copy)
    check_key(key_added, "key_added")
    if organism is not None and organism not in ORGANISMS:
        raise ValueError(f"organism must be one of {ORGANISMS} or None, got {organism!r}")
    lists = {}
    for kind, given in (("proliferation", proliferation_genes), ("apoptosis", apoptosis_genes)):
        if given is None:
            if organism is None:
                raise ValueError(f"organism=None needs {kind}_genes: a list of gene names")
            given = marker_genes(organism, kind)
        elif isinstance(given, str) or not all(isinstance(g, str) for g in given):
            raise ValueError(f"{kind}_genes must be a list of gene names, got {given!r}")
        lists[kind] = list(given)
    if layer is not None and use_raw:
        raise ValueError("use_raw=True and layer are exclusive: pass one of them")
    raw = adata.raw is not None and layer is None if use_raw is None else bool(use_raw)
    if raw and adata.raw is None:
        raise ValueError("use_raw=True but adata.raw is None")
    if layer is not None and layer not in adata.layers:
        raise ValueError(f"layer={layer!r} is not in adata.layers ({list(adata.layers)})")
    var_names = adata.raw.var_names if raw else adata.var_names
    for kind, genes in lists.items():
        measured = [g for g in dict.fromkeys(genes) if g in var_names]
        found = len(measured)
        logger.info(f"growth_prior: {found} of {len(genes)} {kind} genes are measured")
        lists[kind] = measured
        where = "adata.raw.var_names" if raw else "adata.var_names"
        if found == 0:
            raise ValueError(f"{kind}_genes: 0 of its {len(genes)} genes are in {where}; "
                             f"check the organism ({organism!r}) and the gene naming, or pass "
                             "your own list")
        if found < MIN_GENES:
            warnings.warn(f"growth_prior: {kind}_genes: only {found} of its {len(genes)} genes "
                          f"are in {where} ({measured}); the {kind} score rests on them alone "
                          f"(fewer than {MIN_GENES}), so the prior is noisy: check the gene "
                          "naming, or pass your own list", UserWarning, stacklevel=2)
    # score on a light AnnData holding the same matrix: nothing is written to adata until
    # both scores exist
    x = adata.raw.X if raw else adata.layers[layer] if layer is not None else adata.X
    top = float(x.max()) if x.shape[0] and x.shape[1] else 0.0
    if top > LOG_MAX:
        logger.warning(f"growth_prior: the expression reaches {top:.3g}; the rates' "
                       "calibration (Waddington-OT's) assumes log-normalised values "
                       "(scanpy.pp.normalize_total then scanpy.pp.log1p)")
    light = AnnData(x, obs=pd.DataFrame(index=adata.obs_names.copy()),
                    var=pd.DataFrame(index=var_names.copy()))
    scores = {}
    for kind, genes in lists.items():
        sc.tl.score_genes(light, genes, score_name=kind, random_state=random_state,
                          use_raw=False)
        scores[kind] = light.obs[kind].to_numpy(dtype=np.float64)
    rate = prior_growth_rate(scores["proliferation"], scores["apoptosis"])
    if copy:
        adata = adata.copy()
    adata.obs[f"{key_added}_proliferation"] = scores["proliferation"]
    adata.obs[f"{key_added}_apoptosis"] = scores["apoptosis"]
    adata.obs[key_added] = rate
    log_added((key_added, "prior growth rate per day (birth - death)", "adata.obs"),
              (f"{key_added}_proliferation", "proliferation score", "adata.obs"),
              (f"{key_added}_apoptosis", "apoptosis score", "adata.obs"))
    return adata if copy else None
