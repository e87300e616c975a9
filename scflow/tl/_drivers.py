"""``tl.fate_drivers``: genes correlated with fate probabilities (CellRank's lineage drivers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from scipy import stats

from .._adata.access import check_adata
from .._adata.store import check_key, log_added
from ._trajectories import select_cells

__all__ = ["fate_drivers"]

#: genes of a dense matrix made float64 and centred at a time
_GENE_CHUNK = 2048


def fate_drivers(adata: AnnData, *, key: str = "fate", fates: str | Sequence[str] | None = None,
                 layer: str | None = None, use_raw: bool = False, cells: Any = None,
                 copy: bool = False) -> pd.DataFrame | AnnData:
    """Driver genes of each fate: correlation of expression with the fate probability.

    The equivalent of CellRank's ``compute_lineage_drivers`` for :func:`scflow.tl.fate`:
    for each fate (column of ``obsm[key + "_probabilities"]``), the Pearson correlation,
    over the pushed cells (rows without NaN), between each gene's expression and the
    probability of that fate. Its two-sided p-value is the t test of a zero correlation
    (``t = r sqrt((n - 2) / (1 - r^2))`` on ``n - 2`` degrees of freedom, the test of
    :func:`scipy.stats.pearsonr`), and its q-value the Benjamini–Hochberg adjustment
    (:func:`scipy.stats.false_discovery_control`) over the genes with a correlation.
    A sparse matrix is never made dense: means, variances and covariances are computed
    from its non-zero entries. Genes constant over the cells get NaN (correlation,
    p-value and q-value).

    Parameters
    ----------
    adata
        Annotated data with fate probabilities from :func:`scflow.tl.fate`.
    key
        The ``key_added`` of :func:`scflow.tl.fate`: probabilities are read from
        ``obsm[key + "_probabilities"]`` and the table written under ``key + "_drivers"``.
    fates
        A fate or a list of fates (column names of the probabilities); default all.
    layer
        Read expression from ``adata.layers[layer]`` instead of ``adata.X``.
    use_raw
        Read expression from ``adata.raw`` (its genes); not with ``layer``.
    cells
        Restrict to these cells (among the pushed ones): a boolean mask over ``obs``,
        ``obs_names`` or positions (as ``tl.trajectories``); default all pushed cells.
    copy
        Write to a copy of ``adata`` and return it instead of the table.

    Returns
    -------
    The table (or, with ``copy=True``, the modified copy holding it): a DataFrame indexed by
    gene names, with columns ``{fate}_corr``, ``{fate}_pval``, ``{fate}_qval`` for each
    fate, sorted by the first fate's correlation, descending (NaN last). Writes

    ``adata.varm[key + "_drivers"]``
        The same DataFrame in the order of ``var_names`` (without ``use_raw``).
    ``adata.raw.varm[key + "_drivers"]``
        The same, in the order of ``raw.var_names`` (with ``use_raw``: the genes of
        ``raw`` are not those of ``var``).

    Raises
    ------
    KeyError
        When ``obsm[key + "_probabilities"]`` is missing (run :func:`scflow.tl.fate`
        first), or a fate, the layer, ``raw`` or a cell name is unknown.
    ValueError
        When fewer than 3 cells are left, or a fate's probability is constant over them.
    """
    check_adata(adata, writing=not copy)
    check_key(key, "key")
    name = key + "_probabilities"
    if name not in adata.obsm:
        raise KeyError(f"adata.obsm[{name!r}] is missing: run scflow.tl.fate(adata, groupby, "
                       f"key_added={key!r}) first")
    probs = _probabilities(adata.obsm[name], name)
    chosen = _fates(fates, probs.columns)
    if not isinstance(use_raw, (bool, np.bool_)):
        raise ValueError(f"use_raw must be True or False, got {use_raw!r}")
    x, genes = _expression(adata, layer, bool(use_raw))
    p = probs[chosen].to_numpy(dtype=np.float64)
    mask = np.isfinite(p).all(1) & (
        np.ones(adata.n_obs, dtype=bool) if cells is None else select_cells(adata, cells))
    n = int(mask.sum())
    if n < 3:
        raise ValueError(f"only {n} pushed cell(s) with fate probabilities"
                         f"{'' if cells is None else ' among cells'}; correlations need at "
                         "least 3")
    p = p[mask]
    flat = [f for f, col in zip(chosen, p.T, strict=True) if col.max() == col.min()]
    if flat:
        raise ValueError(f"the probability of fate(s) {flat} is constant over the {n} cells; "
                         "no correlation with it can be computed")
    table = _drivers(x, mask, p, [str(f) for f in chosen], genes)
    if copy:
        adata = adata.copy()
    out = key + "_drivers"
    if use_raw:
        adata.raw.varm[out] = table
        where = "adata.raw.varm"
    else:
        adata.varm[out] = table
        where = "adata.varm"
    log_added((out, "fate drivers: correlation, p-value, q-value per fate", where))
    if copy:
        return adata
    first = table.columns[0]
    return table.sort_values(first, ascending=False, na_position="last", kind="stable")


def _probabilities(value: Any, name: str) -> pd.DataFrame:
    if not isinstance(value, pd.DataFrame):
        raise ValueError(f"adata.obsm[{name!r}] must be a DataFrame (cells x fates) as "
                         "scflow.tl.fate writes it; rerun scflow.tl.fate")
    if value.shape[1] == 0:
        raise ValueError(f"adata.obsm[{name!r}] has no fate columns")
    return value


def _fates(fates: Any, columns: pd.Index) -> list:
    if fates is None:
        return list(columns)
    if isinstance(fates, str):
        fates = [fates]
    elif isinstance(fates, (np.ndarray, pd.Index)):
        fates = list(fates)
    if not isinstance(fates, Sequence) or not len(fates):
        raise ValueError(f"fates must be a fate, a non-empty list of fates or None, "
                         f"got {fates!r}")
    unknown = [f for f in fates if f not in columns]
    if unknown:
        raise KeyError(f"unknown fate(s) {unknown}; the fates are {list(columns)}")
    if len(set(fates)) != len(fates):
        raise ValueError(f"fates has duplicates: {list(fates)}")
    return list(fates)


def _expression(adata: AnnData, layer: str | None, use_raw: bool) -> tuple[Any, pd.Index]:
    """The expression matrix (cells x genes, dense or sparse) and its gene names."""
    if use_raw:
        if layer is not None:
            raise ValueError("pass either layer or use_raw=True, not both")
        if adata.raw is None:
            raise KeyError("use_raw=True but adata.raw is None")
        x, genes = adata.raw.X, adata.raw.var_names
    elif layer is not None:
        if not isinstance(layer, str) or layer not in adata.layers:
            raise KeyError(f"layer={layer!r} is not in adata.layers (keys: "
                           f"{list(adata.layers.keys())})")
        x, genes = adata.layers[layer], adata.var_names
    else:
        x, genes = adata.X, adata.var_names
    if x is None:
        raise ValueError("adata.X is None; pass a layer")
    if not sp.issparse(x):
        x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] != adata.n_obs:
        raise ValueError(f"the expression matrix has shape {x.shape}; expected "
                         f"({adata.n_obs}, n_genes)")
    if not (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.bool_)):
        raise ValueError(f"the expression matrix must be numeric, got dtype {x.dtype}")
    return x, genes


def _drivers(x: Any, mask: np.ndarray, p: np.ndarray, fates: list[str],
             genes: pd.Index) -> pd.DataFrame:
    """Correlation, p-value and q-value of each gene with each fate (genes in ``x``'s order)."""
    n = len(p)
    pc = p - p.mean(0)
    p_sd = np.sqrt((pc ** 2).sum(0))
    cov, x_sd, const = (_sparse_moments if sp.issparse(x) else _dense_moments)(x, mask, pc)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / (x_sd[:, None] * p_sd[None, :])
    r = np.clip(r, -1.0, 1.0)
    r[const] = np.nan
    df = n - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    pval = 2.0 * stats.t.sf(np.abs(t), df)
    pval[np.isnan(r)] = np.nan
    qval = np.full_like(pval, np.nan)
    for j in range(len(fates)):
        ok = np.isfinite(pval[:, j])
        if ok.any():
            qval[ok, j] = stats.false_discovery_control(pval[ok, j], method="bh")
    cols: dict[str, np.ndarray] = {}
    for j, f in enumerate(fates):
        cols[f"{f}_corr"] = r[:, j]
        cols[f"{f}_pval"] = pval[:, j]
        cols[f"{f}_qval"] = qval[:, j]
    return pd.DataFrame(cols, index=pd.Index(np.asarray(genes, dtype=str)))


def _dense_moments(x: np.ndarray, mask: np.ndarray,
                   pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per gene: the co-moment with each centred fate, the root sum of squares, constancy."""
    rows = np.flatnonzero(mask)
    g = x.shape[1]
    cov = np.empty((g, pc.shape[1]))
    sd = np.empty(g)
    const = np.empty(g, dtype=bool)
    for start in range(0, g, _GENE_CHUNK):
        part = np.asarray(x[rows, start:start + _GENE_CHUNK], dtype=np.float64)
        sl = slice(start, start + part.shape[1])
        const[sl] = part.max(0) == part.min(0)
        part -= part.mean(0)
        cov[sl] = part.T @ pc
        sd[sl] = np.sqrt((part ** 2).sum(0))
    return cov, sd, const


def _sparse_moments(x: Any, mask: np.ndarray,
                    pc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_dense_moments` from the non-zero entries only (no dense cells x genes).

    ``sum_i (x_i - m) pc_i = sum_i x_i pc_i`` (``pc`` sums to 0), and
    ``sum_i (x_i - m)^2 = sum_nz (x_i - m)^2 + (n - nnz) m^2``.
    """
    n = int(mask.sum())
    sub = sp.csr_matrix(x)[np.flatnonzero(mask)].astype(np.float64).tocsc()
    sub.sum_duplicates()
    g = sub.shape[1]
    nnz = np.diff(sub.indptr)
    mean = np.asarray(sub.sum(0)).ravel() / n
    col = np.repeat(np.arange(g), nnz)
    ss = np.bincount(col, weights=(sub.data - mean[col]) ** 2, minlength=g)
    ss += (n - nnz) * mean ** 2
    cov = np.asarray(sub.T @ pc)
    hi = np.asarray(sub.max(0).todense()).ravel()
    lo = np.asarray(sub.min(0).todense()).ravel()
    return cov, np.sqrt(ss), hi == lo
