"""From the fitted PCA back to genes: ``x_genes = mean + x_pca @ PCs.T``, checked."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

__all__ = ["pca_mean", "nonnegative_x", "to_genes"]


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


def nonnegative_x(adata: AnnData) -> bool:
    """Whether ``X`` holds no negative value (counts, normalised or log expression)."""
    x = adata.X
    if x is None:
        return False
    if sp.issparse(x):
        return bool(x.nnz == 0 or x.data.min() >= 0)
    return bool(np.min(x) >= 0) if x.size else True


def resolve_clip(adata: AnnData, clip) -> bool:
    """``clip=None``: clip at 0 when ``X`` is non-negative (expression, not scaled data)."""
    if clip is None:
        return nonnegative_x(adata)
    if not isinstance(clip, (bool, np.bool_)):
        raise ValueError(f"clip must be True, False or None, got {clip!r}")
    return bool(clip)


def to_genes(x_pca: np.ndarray, mean: np.ndarray, pcs: np.ndarray,
             clip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Expression of states ``x_pca`` (``(..., n_dims)``) in the genes of ``pcs``
    (``(n_genes, n_dims)``), and where the reconstruction was below 0 (before clipping)."""
    expr = mean + x_pca @ pcs.T
    negative = expr < 0
    if clip:
        expr = np.maximum(expr, 0.0)
    return expr, negative
