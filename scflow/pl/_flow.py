"""Plots of the learned flow: stored trajectories and the velocity field as streamlines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from ..tl._store import load_model
from ..tl._velocity import rep_of, velocities
from ._common import (
    axis_labels,
    basis_coords,
    cell_index,
    check_dims,
    fit_record,
    knn_project,
    resolve_basis,
    result,
)
from ._utils import finish, new_axes

__all__ = ["trajectories", "velocity_stream"]


def trajectories(adata: AnnData, *, key: str = "scflow", basis: str | None = None,
                 dims: Sequence[int] = (0, 1), color_by_time: bool = True,
                 max_paths: int = 200, n_neighbors: int = 10, cmap: str = "viridis",
                 ax: Axes | None = None, show: bool | None = None, return_fig: bool = False,
                 save: str | None = None, title: str | None = None):
    """Paths of :func:`scflow.tl.trajectories` over the real cells (grey).

    Parameters
    ----------
    adata
        Annotated data with ``uns[key]["trajectories"]``.
    key
        The fit's ``key_added``.
    basis
        Where to draw: default the fitted representation (``dims`` of ``use_rep``, exact);
        or another ``obsm`` embedding (``"umap"`` / ``"X_umap"``), where each path point is
        placed at the inverse-distance mean of its ``n_neighbors`` nearest real cells
        (for display only).
    dims
        Two dimensions of the basis (0-based).
    color_by_time
        Colour the paths by time (``obs`` units); otherwise one colour.
    max_paths
        Draw at most this many paths (an even subsample).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it to this file.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    rec = fit_record(adata, key)
    traj = result(adata, key, "trajectories", "trajectories")
    paths = np.asarray(traj["paths"], dtype=np.float64)
    times = np.asarray(traj["times"], dtype=np.float64)
    if max_paths < paths.shape[1]:
        paths = paths[:, np.linspace(0, paths.shape[1] - 1, int(max_paths)).astype(int)]
    basis = resolve_basis(adata, basis, rec.use_rep)
    if basis == rec.use_rep:
        dims = check_dims(dims, rec.n_dims)
        bg = rep_of(adata, rec)[:, dims]
        pts = paths[..., dims]
    else:
        coords = basis_coords(adata, basis)
        dims = check_dims(dims, coords.shape[1])
        bg = coords[:, dims]
        flat = knn_project(paths.reshape(-1, rec.n_dims), rep_of(adata, rec), bg, n_neighbors)
        pts = flat.reshape(*paths.shape[:2], 2)
    fig, ax = new_axes(ax, (4.8, 4.0))
    ax.scatter(bg[:, 0], bg[:, 1], s=3, c="lightgrey", lw=0, rasterized=True)
    segs = np.stack([pts[:-1], pts[1:]], axis=2).transpose(1, 0, 2, 3).reshape(-1, 2, 2)
    mid = np.tile((times[:-1] + times[1:]) / 2, pts.shape[1])
    lines = LineCollection(segs, linewidths=0.8, alpha=0.8,
                           **({"cmap": cmap, "array": mid} if color_by_time
                              else {"colors": "tab:blue"}))
    ax.add_collection(lines)
    if color_by_time:
        lines.set_clim(times.min(), times.max())
    ax.scatter(pts[0, :, 0], pts[0, :, 1], s=6, c="k", lw=0, label="start")
    ax.scatter(pts[-1, :, 0], pts[-1, :, 1], s=10, c="tab:red", lw=0, label="end")
    if color_by_time:
        fig.colorbar(lines, ax=ax, label=rec.time_key)
    ax.legend(fontsize="small", frameon=False, loc="best")
    axis_labels(ax, basis, dims)
    ax.set_title(title or f"scflow trajectories ({pts.shape[1]} cells)")
    return finish(fig, ax, show, return_fig, save)


def velocity_stream(adata: AnnData, *, key: str = "scflow", basis: str | None = None,
                    dims: Sequence[int] = (0, 1), time=None, density: float = 1.0,
                    grid_size: int = 40, smooth: float = 0.5, color_by_time: bool = True,
                    cmap: str = "viridis", ax: Axes | None = None, show: bool | None = None,
                    return_fig: bool = False, save: str | None = None,
                    title: str | None = None):
    """Streamlines of the learned field over two dimensions of the representation.

    The model (read from ``adata.uns[key]`` with :func:`scflow.load_model`) gives the
    velocity of every cell, at its own time or at ``time``; the two chosen components are
    averaged onto a grid with a Gaussian kernel (as scVelo does) and drawn with
    :meth:`~matplotlib.axes.Axes.streamplot`. Grid points far from any cell are left empty.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    basis
        The fitted representation (``None`` or ``use_rep``): velocities live there.
    dims
        Two dimensions of the representation (0-based).
    time
        Evaluate every cell's velocity at this time (``obs[time_key]`` units).
    density, grid_size, smooth
        Streamline density, grid points per side, kernel width in grid steps.
    color_by_time
        Colour the cells by time (else grey).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it to this file.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    rec = fit_record(adata, key)
    if resolve_basis(adata, basis, rec.use_rep) != rec.use_rep:
        raise ValueError(f"basis={basis!r}: the velocities live in the fitted representation "
                         f"{rec.use_rep!r}; pass basis=None and choose dims")
    dims = check_dims(dims, rec.n_dims)
    x = rep_of(adata, rec)
    idx = cell_index(adata, rec)
    own = rec.timeline.values[idx]
    t_model = (rec.timeline.times[idx] if time is None
               else np.full(len(x), rec.timeline.model_time(time, "time")))
    v = velocities(load_model(adata, key), rec, x, t_model)[:, dims]
    xy = x[:, dims]
    gx, gy, u, w = _grid(xy, v, int(grid_size), float(smooth))
    fig, ax = new_axes(ax, (4.8, 4.0))
    sc = ax.scatter(xy[:, 0], xy[:, 1], s=4, lw=0, rasterized=True,
                    **({"c": own, "cmap": cmap} if color_by_time else {"c": "lightgrey"}))
    if color_by_time:
        fig.colorbar(sc, ax=ax, label=rec.time_key)
    ax.streamplot(gx, gy, u, w, density=density, color="k", linewidth=0.8, arrowsize=0.8)
    axis_labels(ax, rec.use_rep, dims)
    when = "each cell at its own time" if time is None else f"{rec.time_key} = {time}"
    ax.set_title(title or f"scflow velocity ({when})")
    return finish(fig, ax, show, return_fig, save)


def _grid(xy: np.ndarray, v: np.ndarray, n: int, smooth: float):
    """Gaussian-kernel average of the cells' velocities on an ``n x n`` grid.

    Coordinates are measured in grid steps; the kernel width is ``smooth`` steps, widened
    to the median distance of a cell to its 10th neighbour where cells are sparse. Grid
    points farther than that width from every cell, or with little kernel mass, are left
    empty (NaN).
    """
    lo, hi = xy.min(0), xy.max(0)
    pad = 0.05 * (hi - lo + 1e-12)
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
    gxx, gyy = np.meshgrid(gx, gy)
    step = np.array([gx[1] - gx[0], gy[1] - gy[0]])
    cells = torch.as_tensor(xy / step)
    grid = torch.as_tensor(np.stack([gxx.ravel(), gyy.ravel()], 1) / step)
    k = min(10, len(xy) - 1)
    knn = torch.cdist(cells, cells).topk(k + 1, largest=False).values[:, -1] if k > 0 else None
    width = max(smooth, float(knn.median()) if knn is not None else smooth)
    dist = torch.cdist(grid, cells)
    w = torch.exp(-dist**2 / (2 * width**2)).numpy()
    mass = w.sum(1)
    vg = (w @ v) / np.maximum(mass, 1e-12)[:, None]
    far = dist.min(1).values.numpy() > width
    vg[far | (mass < 0.05 * np.percentile(mass, 99))] = np.nan
    return gx, gy, vg[:, 0].reshape(n, n), vg[:, 1].reshape(n, n)
