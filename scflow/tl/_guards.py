"""Warnings for results that would read as right but are not (gene space, predictions),
and the memory a fit would take, estimated before it reads anything."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .._checks import check_memory, fit_bytes
from ..methods import get, names

__all__ = ["MAX_GENE_DIMS", "MIN_CELLS", "DESIGN_RATIO", "carried_genes", "check_fit_memory",
           "counts_look_designed", "warn_counts_design", "warn_few_cells", "warn_gene_space",
           "warn_uncarried"]

#: above this many dimensions of ``X`` (genes), ``tl.fit`` warns: flows are fitted on an
#: embedding (PCA), not on raw genes (a guard rail, not a tuned value)
MAX_GENE_DIMS = 100


#: below this many cells at a timepoint, ``tl.fit`` and ``tl.fate`` warn (a guard rail, not a
#: tuned value): a population is then a handful of points, the field is fitted to those
#: cells, and ``tl.fate`` reads fates among fewer cells than its default 15 neighbours
#: spread over 2 fates. A fit needs at least 2 cells per timepoint (an error below).
MIN_CELLS = 30


def warn_few_cells(counts: dict, what: str) -> None:
    """Warn when a timepoint (``{label: cells}``) holds fewer than :data:`MIN_CELLS` cells."""
    few = {str(k): int(v) for k, v in counts.items() if int(v) < MIN_CELLS}
    if few:
        warnings.warn(f"{what}: timepoint(s) {few} hold fewer than {MIN_CELLS} cells; a "
                      "population of so few cells is a handful of samples, so the field is "
                      "fitted to (and fates are read among) those cells, not to a "
                      f"distribution. Results below {MIN_CELLS} cells per timepoint are "
                      "anecdotes: pool timepoints or collect more cells", UserWarning,
                      stacklevel=3)


#: the rule of :func:`counts_look_designed`: consecutive counts within this ratio are "equal"
DESIGN_RATIO = 1.1


def counts_look_designed(counts: Sequence[int]) -> str | None:
    """Why the cell counts of a time course look like a sampling design rather than
    population sizes, or ``None``.

    The rule (a guard rail, stated, not tuned): the counts look designed when (a) every
    timepoint holds the same number of cells to within 10% (``max / min <=``
    :data:`DESIGN_RATIO`: a balanced design, e.g. the same number of cells sequenced per
    sample), or (b) they rise by more than 10% at one step and fall by more than 10% at
    another (a population that shrinks and regrows between snapshots is rarer than a sample
    size that varies). Monotone growth or decline by more than 10% is read as population
    size.
    """
    n = np.asarray(counts, dtype=np.float64)
    if len(n) < 2 or (n <= 0).any():
        return None
    shown = n.astype(int).tolist()
    if n.max() / n.min() <= DESIGN_RATIO:
        return f"every timepoint holds the same number of cells to within 10% ({shown})"
    ratio = n[1:] / n[:-1]
    if (ratio > DESIGN_RATIO).any() and (ratio < 1 / DESIGN_RATIO).any():
        return f"the counts rise and fall between timepoints ({shown}), as sample sizes do"
    return None


def warn_counts_design(counts: Sequence[int], method: str) -> None:
    """``mass="counts"`` on counts that look like a sampling design: a warning that says so."""
    why = counts_look_designed(counts)
    if why is not None:
        warnings.warn(f"method={method!r} with mass='counts' reads the numbers of cells as "
                      f"population sizes, but {why}: they look like a sampling design, and the "
                      "growth learned from them would be the design's. Pass mass=None (growth "
                      "from the shapes alone) or measured population sizes (mass=[...], one "
                      "per timepoint)", UserWarning, stacklevel=3)


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
    (:func:`scflow._checks.fit_bytes`): refused above ``settings.max_memory_gb``, announced
    above 2 GB (a representation of a million dimensions)."""
    if use_rep != "X" and use_rep not in adata.obsm:
        return  # time_course names the missing key
    width = int(adata.n_vars if use_rep == "X" else adata.obsm[use_rep].shape[1])
    dims = width if not isinstance(n_dims, (int, np.integer)) else min(int(n_dims), width)
    entry = get(method) if method in names("neural") else None
    nets = 1 + (entry is None or entry.has_score or entry.learns_growth)
    check_memory(fit_bytes(adata.n_obs, dims, hidden, nets=nets),
                 f"fitting {adata.n_obs} cells x {dims} dims of use_rep={use_rep!r} (MLP "
                 f"{list(hidden)})",
                 "fit on an embedding of a few dimensions (e.g. PCA, n_dims=10 to 50)")
