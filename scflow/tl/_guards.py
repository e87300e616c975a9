"""Warnings for results that would read as right but are not (gene space, predictions),
and the memory a fit would take, estimated before it reads anything."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._budget import check_memory, fit_bytes
from ..methods import get, names

__all__ = ["MAX_GENE_DIMS", "carried_genes", "check_fit_memory", "warn_gene_space",
           "warn_uncarried"]

#: above this many dimensions of ``X`` (genes), ``tl.fit`` warns: flows are fitted on an
#: embedding (PCA), not on raw genes (a guard rail, not a tuned value)
MAX_GENE_DIMS = 100


def warn_gene_space(use_rep: str, n_dims: int) -> None:
    """Warn when a flow is about to be fitted on many raw genes."""
    if use_rep == "X" and n_dims > MAX_GENE_DIMS:
        warnings.warn(f"use_rep='X' fits the flow on {n_dims} genes: flow matching in that many "
                      "raw dimensions trains slowly and poorly; fit on an embedding instead, "
                      "e.g. sc.pp.pca(adata) then use_rep='X_pca' (n_dims=10 to 50), and map "
                      "back to genes with tl.velocity(genes=True), tl.gene_trends or "
                      "tl.predict(genes=True)", UserWarning, stacklevel=3)


def carried_genes(pcs: np.ndarray) -> np.ndarray:
    """Genes with a non-zero loading on at least one of the fitted components."""
    return np.any(pcs != 0, axis=1)


def warn_uncarried(names: Sequence[str], carried: np.ndarray, what: str) -> None:
    """Warn that genes with zero loadings get a constant (not a modelled) value."""
    missing = [str(g) for g, ok in zip(names, carried, strict=True) if not ok]
    if missing:
        warnings.warn(f"{len(missing)} of {len(carried)} genes have zero loadings on the fitted "
                      f"PCs (e.g. {missing[:5]}: genes left out of sc.pp.pca, e.g. not highly "
                      f"variable, or constant over these cells), so {what} is constant for them, "
                      "not modelled; restrict to the genes the PCA carries (e.g. "
                      "adata.var['highly_variable']) or rerun sc.pp.pca on the genes you want",
                      UserWarning, stacklevel=3)


def check_fit_memory(adata: AnnData, use_rep: str, n_dims: int | None,
                     hidden: Sequence[int], method: str) -> None:
    """The fit's memory, estimated from the sizes alone before the representation is read
    (:func:`scflow._budget.fit_bytes`): refused above ``settings.max_memory_gb``, announced
    above 2 GB (a representation of a million dimensions)."""
    if use_rep != "X" and use_rep not in adata.obsm:
        return  # time_course names the missing key
    width = int(adata.n_vars if use_rep == "X" else adata.obsm[use_rep].shape[1])
    dims = width if not isinstance(n_dims, (int, np.integer)) else min(int(n_dims), width)
    nets = 1 if method in names("neural") and not (get(method).diffusion
                                                   or get(method).weighted) else 2
    check_memory(fit_bytes(adata.n_obs, dims, hidden, nets=nets),
                 f"fitting {adata.n_obs} cells x {dims} dims of use_rep={use_rep!r} (MLP "
                 f"{list(hidden)})",
                 "fit on an embedding of a few dimensions (e.g. PCA, n_dims=10 to 50)")
