"""``tl.transition_matrix``: a cell-to-cell Markov chain from the flow, for CellRank."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .._adata.access import check_adata, get_times
from .._adata.fit import check_steps, device, push, rep_of, steps_for
from .._adata.store import FitRecord, check_key, h5ad_safe, load_model, log_added, read_fit
from .._checks import positive_int

__all__ = ["transition_matrix", "LAST_MODES"]

#: how the cells of the last timepoint move: among their neighbours there, or not at all
LAST_MODES = ("neighbors", "absorbing")


def transition_matrix(adata: AnnData, *, key: str = "scflow", n_neighbors: int = 30,
                      n_steps: int = 100, last: str = "neighbors", key_added: str | None = None,
                      copy: bool = False) -> AnnData | None:
    """Cell-to-cell transition matrix from the flow, row-stochastic and sparse.

    Each cell of a timepoint (but the last) is pushed along the learned field (one ODE
    push) to the next timepoint, and there connected to its ``n_neighbors`` nearest real
    cells, in the fit's scaled coordinates, with Gaussian weights
    ``exp(-d^2 / (2 h^2))``, each row normalised to sum to 1. The bandwidth ``h`` is one
    for all cells: the median, over the pushed cells, of the distance from a pushed cell to
    its ``n_neighbors``-th neighbour. The flow ends at the last timepoint; there
    (``last="neighbors"``, the default) each cell moves among its ``n_neighbors`` nearest
    cells of the same timepoint (itself included), with Gaussian weights of that
    timepoint's own bandwidth, made symmetric (``(W + W.T) / 2``) before rows are
    normalised, as CellRank's real-time kernel moves cells within a timepoint. So CellRank
    can take any *subset* of the last timepoint's cells as terminal states (e.g. the
    annotated types, not the ``"unknown"`` cells): every other last-timepoint cell is
    transient and reaches them. With ``last="absorbing"`` every last-timepoint cell is a
    self-loop of weight 1, so absorption probabilities exist only when *all* of them are
    terminal (CellRank then raises ``LinAlgError: singular matrix`` for a subset).
    "Next" and "last" are among the timepoints of the fit that have cells in ``adata``
    (all of them unless ``adata`` was subset), a held-out timepoint included. The matrix
    has ``n_neighbors`` stored entries in each row of a pushed cell (a far neighbour's
    weight may underflow to an explicit 0; last-timepoint rows up to twice as many, after
    symmetrising) and never densifies cells × cells. It is what CellRank's precomputed
    kernel reads::

        cellrank.kernels.PrecomputedKernel(adata, obsp_key="scflow_transitions")

    Terminal states must then reach every part of the last timepoint: when its neighbour
    graph falls into several connected components, a ``UserWarning`` says how many (each
    needs a terminal cell), and ``components`` records it.

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
    last
        ``"neighbors"`` (default): last-timepoint cells move among their neighbours there;
        ``"absorbing"``: each stays put (a self-loop).
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
        ``key``, ``n_neighbors``, ``n_steps``, ``bandwidth`` (``h``, scaled units),
        ``terminal`` (label of the last timepoint), ``last``, ``last_bandwidth`` (the last
        timepoint's own ``h``; 0 with ``last="absorbing"``) and ``components`` (connected
        components of the last timepoint's neighbour graph; its cells with
        ``last="absorbing"``).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    n_neighbors = positive_int(n_neighbors, "n_neighbors")
    n_steps = check_steps(n_steps)
    if last not in LAST_MODES:
        raise ValueError(f"last must be one of {LAST_MODES}, got {last!r}")
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
    last_cells = np.flatnonzero(idx == present[-1])
    if last == "neighbors":
        block, h_last = _within(rec.to_model(x[last_cells]), n_neighbors)
        mat = _replace_rows(mat, last_cells, block)
        n_comp = int(connected_components(block, directed=False)[0])
        if n_comp > 1:
            warnings.warn(f"tl.transition_matrix: the cells of the last timepoint "
                          f"({tl.labels[present[-1]]!r}) fall into {n_comp} groups that no "
                          f"neighbour joins (n_neighbors={n_neighbors}): CellRank's terminal "
                          "states must include a cell of each, or pass a larger n_neighbors",
                          UserWarning, stacklevel=2)
    else:
        h_last, n_comp = 0.0, len(last_cells)
    if copy:
        adata = adata.copy()
    adata.obsp[name] = mat
    adata.uns[name + "_params"] = h5ad_safe({
        "key": key, "n_neighbors": n_neighbors, "n_steps": n_steps, "bandwidth": h,
        "terminal": str(tl.labels[present[-1]]), "last": last, "last_bandwidth": h_last,
        "components": n_comp})
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
    w = _gaussian(d, h)
    last = np.flatnonzero(idx == present[-1])
    rows.append(last)
    cols.append(last)
    data = np.concatenate([w.ravel(), np.ones(len(last))])
    mat = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    mat.sort_indices()
    return mat, h


def _gaussian(d: np.ndarray, h: float) -> np.ndarray:
    """Row weights ``exp(-d^2 / 2h^2)``, the nearest neighbour's factored out (so a row never
    underflows to all zeros), normalised to sum to 1."""
    d2 = d ** 2 - (d[:, :1] ** 2)
    w = np.exp(-d2 / (2.0 * h ** 2)) if h > 0 else (d2 == 0).astype(np.float64)
    return w / w.sum(1, keepdims=True)


def _within(x: np.ndarray, n_neighbors: int) -> tuple[sp.csr_matrix, float]:
    """The last timepoint's own chain: each cell to its ``n_neighbors`` nearest cells there
    (itself included), Gaussian weights with that timepoint's bandwidth, symmetrised, rows
    normalised. Returns the ``(m, m)`` block and the bandwidth."""
    m = len(x)
    k = min(n_neighbors, m)
    d, j = cKDTree(x).query(x, k=k)
    d = np.asarray(d, dtype=np.float64).reshape(m, k)
    j = np.asarray(j).reshape(m, k)
    h = float(np.median(d[:, -1]))
    w = np.exp(-(d ** 2) / (2.0 * h ** 2)) if h > 0 else (d == 0).astype(np.float64)
    a = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(m), k), j.ravel())), shape=(m, m))
    a = ((a + a.T) * 0.5).tocsr()
    rows = np.asarray(a.sum(1)).ravel()
    a = sp.diags(1.0 / rows) @ a
    return sp.csr_matrix(a), h


def _replace_rows(mat: sp.csr_matrix, cells: np.ndarray, block: sp.csr_matrix) -> sp.csr_matrix:
    """``mat`` with the rows of ``cells`` replaced by ``block`` (columns ``cells``)."""
    n = mat.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[cells] = False
    coo = mat.tocoo()
    sel = keep[coo.row]
    b = block.tocoo()
    rows = np.concatenate([coo.row[sel], cells[b.row]])
    cols = np.concatenate([coo.col[sel], cells[b.col]])
    data = np.concatenate([coo.data[sel], b.data])
    out = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    out.sort_indices()
    return out
