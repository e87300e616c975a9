"""``tl.gene_trends``: gene expression along predicted trajectories, through PCA loadings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._adata.access import check_adata
from .._adata.fit import check_steps, device, gene_loadings, push, rep_of
from .._adata.palette import category_colors
from .._adata.store import h5ad_safe, load_model, log_added, read_fit
from .._adata.time_labels import display_labels
from .._checks import check_memory, positive_int, seed
from ._genes import pca_mean, resolve_clip, to_genes
from ._guards import carried_genes, warn_uncarried
from ._trajectories import check_result_key, check_solver, start_cells

__all__ = ["gene_trends", "pca_mean"]  # pca_mean: from ._genes, kept importable here


def gene_trends(adata: AnnData, genes: str | Sequence[str], *, key: str = "scflow",
                groupby: str | None = None, start_time=None, end_time=None,
                n_steps: int = 100, n_save: int = 20, stochastic: bool = False,
                random_state: int = 0, clip: bool | None = None,
                key_added: str = "gene_trends") -> pd.DataFrame:
    """Expression of genes along the predicted trajectories, per group of starting cells.

    Every cell of ``start_time`` is carried to ``end_time`` and its states are mapped to
    genes through the PCA loadings: ``x_genes = mean + paths @ varm["PCs"][:, :n_dims].T``
    (the mean PCA removed: ``uns["pca"]["mean"]`` when present, else the mean of
    ``adata.X`` over cells, which is what :func:`scanpy.pp.pca` subtracts as long as ``X``
    is unchanged since). Needs a fit on ``use_rep="X_pca"``. Genes with zero loadings on the
    fitted PCs (e.g. left out of a PCA on highly variable genes) would give flat lines: a
    warning names them.

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
    clip
        Clip each cell's reconstructed expression at 0 before averaging (a linear PCA
        map can go below 0, which expression cannot). Default ``None``: clip when ``X``
        holds no negative value. The column ``frac_negative`` says how often it mattered.
    key_added
        Name under ``adata.uns[key]`` (so two results can be kept side by side).

    Returns
    -------
    A long DataFrame with columns ``gene``, ``time`` (``obs`` units), ``model_time``,
    ``group``, ``mean``, ``std``, ``n_cells``, ``frac_negative`` (the fraction of cells
    whose reconstruction was below 0, clipped or not) and ``clipped`` (whether values were
    clipped at 0), also written as a dict of arrays (one per column) to
    ``adata.uns[key][key_added]`` (with ``groupby``). ``df.attrs`` holds ``groupby``, the
    groups' colours (``colors``: scanpy's colours of ``obs[groupby]``), ``time_key`` and the
    timepoints, for :func:`scflow.pl.gene_trends`.
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
    n_steps = check_steps(n_steps)
    n_save = positive_int(n_save, "n_save")
    if n_steps % n_save:
        raise ValueError(f"n_save must divide n_steps ({n_steps}), got {n_save}")
    random_state = seed(random_state)
    check_result_key(key_added, key)
    clip = resolve_clip(adata, clip)
    tl = rec.timeline
    k0, t0 = tl.start(start_time, "start_time", timepoint=True)
    t1 = tl.times[-1] if end_time is None else tl.model_time(end_time, "end_time")
    if t0 == t1:
        raise ValueError("end_time must differ from start_time")
    check_solver(rec, "euler", stochastic, t0, t1)
    mask = start_cells(adata, rec, k0, start_time, "start_time")
    labels = (pd.Series("all", index=adata.obs_names[mask]) if groupby is None
              else adata.obs[groupby][mask])
    keep = labels.notna().to_numpy()
    if not keep.any():
        raise ValueError(f"no cell of the start time has a {groupby!r} label")
    gidx = adata.var_names.get_indexer(genes)
    warn_uncarried(genes, carried_genes(pcs[gidx]), "its trend")
    mean = pca_mean(adata)[gidx]
    n_cells = int(keep.sum())
    check_memory((n_save + 1) * n_cells * (20.0 * rec.n_dims + 17.0 * len(genes)),
                 f"gene trends of {n_cells} cells x {len(genes)} genes at {n_save + 1} times",
                 "pass fewer genes, a smaller n_save or fewer starting cells")
    model = load_model(adata, key, device=device())
    path = push(model, rec, rep_of(adata, rec, mask)[mask][keep], t0, t1, n_steps=n_steps,
                stochastic=bool(stochastic), random_state=random_state, n_save=n_save)
    expr, negative = to_genes(path, mean, pcs[gidx], clip)  # (n_save + 1, n_cells, n_genes)
    grid = np.linspace(t0, t1, n_save + 1)
    df = _long(expr, negative, genes, labels[keep].astype(str).to_numpy(), grid,
               tl.to_obs(grid))
    df["clipped"] = clip
    groups = set(df["group"].astype(str))
    df.attrs.update(groupby="" if groupby is None else groupby,
                    colors={} if groupby is None else {
                        g: c for g, c in category_colors(adata, groupby).items() if g in groups},
                    time_key=rec.time_key,
                    timepoints=tl.values.tolist() if tl.monotone else [],
                    timepoint_labels=display_labels(tl.values, tl.labels, tl.numeric, adata))
    adata.uns[key][key_added] = h5ad_safe({**{c: df[c].to_numpy() for c in df.columns},
                                           "groupby": df.attrs["groupby"]})
    log_added((f"{key}/{key_added}", f"{len(genes)} genes along trajectories", "adata.uns"))
    return df


def _long(expr: np.ndarray, negative: np.ndarray, genes: list[str], groups: np.ndarray,
          model_t: np.ndarray, obs_t: np.ndarray) -> pd.DataFrame:
    rows = []
    for grp in pd.unique(groups):
        sub = expr[:, groups == grp]
        m, s = sub.mean(1), sub.std(1)
        neg = negative[:, groups == grp].mean(1)
        for j, gene in enumerate(genes):
            rows.append(pd.DataFrame({"gene": gene, "time": obs_t, "model_time": model_t,
                                      "group": grp, "mean": m[:, j], "std": s[:, j],
                                      "n_cells": sub.shape[1], "frac_negative": neg[:, j]}))
    return pd.concat(rows, ignore_index=True)
