"""``tl.transition_matrix``: a cell-to-cell Markov chain from the flow, for CellRank."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from scipy.spatial import cKDTree

from .._checks import positive_int
from ._anndata import check_adata, get_times
from ._store import FitRecord, check_key, h5ad_safe, load_model, log_added, read_fit
from ._velocity import check_steps, device, push, rep_of, steps_for

__all__ = ["transition_matrix"]


def transition_matrix(adata: AnnData, *, key: str = "scflow", n_neighbors: int = 30,
                      n_steps: int = 100, key_added: str | None = None,
                      copy: bool = False) -> AnnData | None:
    """Cell-to-cell transition matrix from the flow, row-stochastic and sparse.

    Each cell of a timepoint (but the last) is pushed along the learned field (one ODE
    push) to the next timepoint, and there connected to its ``n_neighbors`` nearest real
    cells, in the fit's scaled coordinates, with Gaussian weights
    ``exp(-d^2 / (2 h^2))``, each row normalised to sum to 1. The bandwidth ``h`` is one
    for all cells: the median, over the pushed cells, of the distance from a pushed cell to
    its ``n_neighbors``-th neighbour. Cells of the last timepoint are absorbing (a self-loop
    of weight 1), so every row sums to 1. "Next" and "last" are among the timepoints of the
    fit that have cells in ``adata`` (all of them unless ``adata`` was subset), a held-out
    timepoint included. The matrix has ``n_neighbors`` stored entries in each row of a
    pushed cell (a far neighbour's weight may underflow to an explicit 0) and never
    densifies cells × cells. It is what CellRank's precomputed kernel reads::

        cellrank.kernels.PrecomputedKernel(adata, obsp_key="scflow_transitions")

    Parameters
    ----------
    adata
        Annotated data with a fit from :func:`scflow.tl.fit` under ``uns[key]``.
    key
        The fit's ``key_added``.
    n_neighbors
        Cells of the next timepoint each pushed cell is connected to; at most the number
        of cells of every next timepoint.
    n_steps
        Euler steps per push (per unit of model time between the timepoints, as
        :func:`scflow.tl.fate`).
    key_added
        Name of the ``obsp`` entry; default ``key + "_transitions"``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obsp[key_added]``
        ``scipy.sparse.csr_matrix`` (cells × cells, float64), row ``i`` the probabilities
        of moving from cell ``i`` to each cell.
    ``adata.uns[key_added + "_params"]``
        ``key``, ``n_neighbors``, ``n_steps``, ``bandwidth`` (``h``, scaled units) and
        ``terminal`` (label of the absorbing timepoint).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    n_neighbors = positive_int(n_neighbors, "n_neighbors")
    n_steps = check_steps(n_steps)
    name = key + "_transitions" if key_added is None else check_key(key_added, "key_added")
    if name + "_params" == key:
        raise ValueError(f"key_added={name!r} would overwrite the fit in "
                         f"adata.uns[{key!r}]; choose another name")
    tl = rec.timeline
    idx = tl.cell_index(get_times(adata, rec.time_key))
    present = np.unique(idx)
    if len(present) < 2:
        raise ValueError("adata has cells at one timepoint of the fit only; a transition "
                         "matrix needs at least two")
    sizes = {int(k): int((idx == k).sum()) for k in present[1:]}
    small = {str(tl.labels[k]): s for k, s in sizes.items() if s < n_neighbors}
    if small:
        raise ValueError(f"n_neighbors={n_neighbors} is more than the cells of timepoint(s) "
                         f"{small}; pass n_neighbors <= {min(sizes.values())}")
    for k0, k1 in zip(present[:-1], present[1:], strict=True):  # every push, before any
        steps_for(float(tl.times[k1] - tl.times[k0]), n_steps)
    x = rep_of(adata, rec)
    model = load_model(adata, key, device=device())
    mat, h = _transitions(model, rec, x, idx, present, n_neighbors=n_neighbors,
                          n_steps=n_steps)
    if copy:
        adata = adata.copy()
    adata.obsp[name] = mat
    adata.uns[name + "_params"] = h5ad_safe({
        "key": key, "n_neighbors": n_neighbors, "n_steps": n_steps, "bandwidth": h,
        "terminal": str(tl.labels[present[-1]])})
    log_added((name, "row-stochastic transition matrix (cells x cells)", "adata.obsp"),
              (name + "_params", "its parameters", "adata.uns"))
    return adata if copy else None


def _transitions(model, rec: FitRecord, x: np.ndarray, idx: np.ndarray, present: np.ndarray,
                 *, n_neighbors: int, n_steps: int) -> tuple[sp.csr_matrix, float]:
    """The CSR matrix and the bandwidth ``h`` (scaled units)."""
    tl = rec.timeline
    n = len(x)
    rows, cols, dists = [], [], []
    for k0, k1 in zip(present[:-1], present[1:], strict=True):
        src = np.flatnonzero(idx == k0)
        dst = np.flatnonzero(idx == k1)
        span = float(tl.times[k1] - tl.times[k0])
        steps = steps_for(span, n_steps)
        end = rec.to_model(push(model, rec, x[src], float(tl.times[k0]), float(tl.times[k1]),
                                n_steps=steps))
        d, j = cKDTree(rec.to_model(x[dst])).query(end, k=n_neighbors)
        d = np.asarray(d, dtype=np.float64).reshape(len(src), n_neighbors)
        j = np.asarray(j).reshape(len(src), n_neighbors)
        rows.append(np.repeat(src, n_neighbors))
        cols.append(dst[j].ravel())
        dists.append(d)
    d = np.concatenate(dists)
    h = float(np.median(d[:, -1]))
    # the nearest neighbour's weight is factored out (it cancels in the normalisation), so
    # a row never underflows to all zeros, whatever h
    d2 = d ** 2 - (d[:, :1] ** 2)
    w = np.exp(-d2 / (2.0 * h ** 2)) if h > 0 else (d2 == 0).astype(np.float64)
    w /= w.sum(1, keepdims=True)
    last = np.flatnonzero(idx == present[-1])
    rows.append(last)
    cols.append(last)
    data = np.concatenate([w.ravel(), np.ones(len(last))])
    mat = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    mat.sort_indices()
    return mat, h
