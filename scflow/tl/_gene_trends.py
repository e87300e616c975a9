"""``tl.gene_trends``: gene expression along predicted trajectories, through PCA loadings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._checks import positive_int, seed
from ._anndata import check_adata
from ._store import h5ad_safe, load_model, log_added, read_fit
from ._trajectories import check_solver, start_cells
from ._velocity import device, gene_loadings, push, rep_of

__all__ = ["gene_trends", "pca_mean"]


def pca_mean(adata: AnnData) -> np.ndarray:
    """The genes' mean removed by PCA: ``uns["pca"]["mean"]``, else the mean of ``X``."""
    pca = adata.uns.get("pca")
    if isinstance(pca, dict) and "mean" in pca:
        mean = np.asarray(pca["mean"], dtype=np.float64).ravel()
        if mean.shape == (adata.n_vars,):
            return mean
    x = adata.X
    return np.asarray(x.mean(0) if sp.issparse(x) else np.mean(x, axis=0),
                      dtype=np.float64).ravel()


def gene_trends(adata: AnnData, genes: str | Sequence[str], *, key: str = "scflow",
                groupby: str | None = None, start_time=None, end_time=None,
                n_steps: int = 100, n_save: int = 20, stochastic: bool = False,
                random_state: int = 0) -> pd.DataFrame:
    """Expression of genes along the predicted trajectories, per group of starting cells.

    Every cell of ``start_time`` is carried to ``end_time`` and its states are mapped to
    genes through the PCA loadings: ``x_genes = mean + paths @ varm["PCs"][:, :n_dims].T``
    (the mean PCA removed: ``uns["pca"]["mean"]`` when present, else the mean of
    ``adata.X`` over cells, which is what :func:`scanpy.pp.pca` subtracts as long as ``X``
    is unchanged since). Needs a fit on ``use_rep="X_pca"``.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]`` and ``varm["PCs"]``.
    genes
        Gene names (``var_names``).
    key
        The fit's ``key_added``.
    groupby
        Column of ``obs`` grouping the starting cells, e.g. the fates of
        :func:`scflow.tl.fate`; cells with no label are left out. Default: one group
        ``"all"``.
    start_time, end_time
        Times in ``obs[time_key]`` units (default first and last timepoints);
        ``start_time`` must be a timepoint.
    n_steps, n_save
        Euler steps and the number of saved intervals (``n_save`` divides ``n_steps``).
    stochastic, random_state
        Sample the SDE of an SB-CFM model, with this seed.

    Returns
    -------
    A long DataFrame with columns ``gene``, ``time`` (``obs`` units), ``model_time``,
    ``group``, ``mean``, ``std`` and ``n_cells``, also written as a dict of arrays (one per
    column) to ``adata.uns[key]["gene_trends"]``.
    """
    check_adata(adata, writing=True)
    rec = read_fit(adata, key)
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise ValueError("genes: give at least one gene name")
    missing = [g for g in genes if g not in adata.var_names]
    if missing:
        raise KeyError(f"genes {missing[:5]} are not in adata.var_names")
    if groupby is not None and groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs; run "
                       "scflow.tl.fate first for fate groups")
    pcs = gene_loadings(adata, rec)
    n_steps = positive_int(n_steps, "n_steps")
    n_save = positive_int(n_save, "n_save")
    if n_steps % n_save:
        raise ValueError(f"n_save must divide n_steps ({n_steps}), got {n_save}")
    random_state = seed(random_state)
    tl = rec.timeline
    t0 = tl.times[0] if start_time is None else tl.model_time(start_time, "start_time")
    t1 = tl.times[-1] if end_time is None else tl.model_time(end_time, "end_time")
    if t0 == t1:
        raise ValueError("end_time must differ from start_time")
    check_solver(rec, "euler", stochastic, t0, t1)
    k0 = 0 if start_time is None else tl.index_of(start_time)
    mask = start_cells(adata, rec, k0, start_time, "start_time")
    labels = (pd.Series("all", index=adata.obs_names[mask]) if groupby is None
              else adata.obs[groupby][mask])
    keep = labels.notna().to_numpy()
    if not keep.any():
        raise ValueError(f"no cell of the start time has a {groupby!r} label")
    gidx = adata.var_names.get_indexer(genes)
    mean = pca_mean(adata)[gidx]
    model = load_model(adata, key, device=device())
    path = push(model, rec, rep_of(adata, rec)[mask][keep], t0, t1, n_steps=n_steps,
                stochastic=bool(stochastic), random_state=random_state, n_save=n_save)
    expr = mean + path @ pcs[gidx].T  # (n_save + 1, n_cells, n_genes)
    grid = np.linspace(t0, t1, n_save + 1)
    df = _long(expr, genes, labels[keep].astype(str).to_numpy(), grid, tl.to_obs(grid))
    adata.uns[key]["gene_trends"] = h5ad_safe({c: df[c].to_numpy() for c in df.columns})
    log_added((f"{key}/gene_trends", f"{len(genes)} genes along trajectories", "adata.uns"))
    return df


def _long(expr: np.ndarray, genes: list[str], groups: np.ndarray, model_t: np.ndarray,
          obs_t: np.ndarray) -> pd.DataFrame:
    rows = []
    for grp in pd.unique(groups):
        sub = expr[:, groups == grp]
        m, s = sub.mean(1), sub.std(1)
        for j, gene in enumerate(genes):
            rows.append(pd.DataFrame({"gene": gene, "time": obs_t, "model_time": model_t,
                                      "group": grp, "mean": m[:, j], "std": s[:, j],
                                      "n_cells": sub.shape[1]}))
    return pd.concat(rows, ignore_index=True)
