"""Plots of the learned flow: stored trajectories and the velocity field as streamlines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from .._adata.fit import rep_of, velocities
from .._adata.store import load_model
from ._colors import (
    BACKGROUND,
    category_colors,
    cell_values,
    default_size,
    ordered_colors,
    scatter_cells,
)
from ._common import (
    axis_labels,
    basis_coords,
    cell_index,
    check_dims,
    fit_record,
    knn_project,
    resolve_basis,
    time_labels,
    time_ticks,
)
from ._common import result as result_of
from ._utils import finish, new_axes

__all__ = ["trajectories", "velocity_stream"]


def _background(fig, ax, adata: AnnData, rec, bg: np.ndarray, color: str | None, cmap: str,
                size: float) -> bool:
    """Real cells: grey, or coloured by ``color`` (the time key as ordered categories).
    Returns whether a legend was drawn."""
    if color is None:
        ax.scatter(bg[:, 0], bg[:, 1], s=size, c=BACKGROUND, lw=0, rasterized=True)
        return False
    if color == rec.time_key:
        labels = time_labels(rec, adata)
        values = np.asarray(labels, dtype=object)[cell_index(adata, rec)]
        return scatter_cells(fig, ax, bg, values, labels, title=rec.time_key,
                             colors=ordered_colors(len(labels), cmap), size=size)
    values, cats = cell_values(adata, color)
    lookup = category_colors(adata, color) if cats is not None else {}
    colors = [lookup[c] for c in cats] if cats is not None and all(
        c in lookup for c in cats) else None
    return scatter_cells(fig, ax, bg, values, cats, title=color, colors=colors,
                         cmap="viridis" if cats is None else cmap, size=size)


def trajectories(adata: AnnData, *, key: str = "scflow", result: str = "trajectories",
                 basis: str | None = None, dims: Sequence[int] = (0, 1),
                 color: str | None = None, color_by_time: bool = True, max_paths: int = 200,
                 n_neighbors: int = 10, cmap: str = "viridis", size: float | None = None,
                 ax: Axes | None = None, show: bool | None = None, return_fig: bool = False,
                 save: bool | str | None = None, title: str | None = None):
    """Paths of :func:`scflow.tl.trajectories` over the real cells.

    Parameters
    ----------
    adata
        Annotated data with ``uns[key][result]``.
    key
        The fit's ``key_added``.
    result
        The ``key_added`` of :func:`scflow.tl.trajectories` (default ``"trajectories"``).
    basis
        Where to draw: default the fitted representation (``dims`` of ``use_rep``, exact);
        or another ``obsm`` embedding (``"umap"`` / ``"X_umap"``), where each path point is
        placed at the inverse-distance mean of its ``n_neighbors`` nearest real cells
        (for display only).
    dims
        Two dimensions of the basis (0-based).
    color
        Colour the real cells by an ``obs`` column or a gene, as scanpy's ``color=``:
        categories in ``uns[color + "_colors"]`` (else scanpy's palette) with a legend in
        the right margin, numbers on a colour bar; the time key is drawn as ordered
        categories (one colour per timepoint). Default: light grey.
    color_by_time
        Colour the paths by time (``obs`` units, ticks at the timepoints, labelled with the
        data set's own time labels when ``uns["scflow_dataset"]`` has them, e.g. ``8h``);
        else one colour.
    max_paths
        Draw at most this many paths (an even subsample); the title says how many of the
        computed paths are drawn.
    cmap, size
        Colour map of time; marker size of the cells (default scanpy's ``120000 /
        n_obs``).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it (``True``, a file name
        suffix or a path, as in scanpy: under ``sc.settings.figdir`` as
        ``trajectories<save>``).
    title
        Axes title.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    rec = fit_record(adata, key)
    traj = result_of(adata, key, result, "trajectories")
    paths = np.asarray(traj["paths"], dtype=np.float64)
    times = np.asarray(traj["times"], dtype=np.float64)
    n_total = paths.shape[1]
    if int(max_paths) < 1:
        raise ValueError(f"max_paths must be a positive integer, got {max_paths!r}")
    if max_paths < n_total:
        paths = paths[:, np.linspace(0, n_total - 1, int(max_paths)).astype(int)]
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
    fig, ax = new_axes(ax, (5.6 if color is not None else 4.8, 4.0))
    size = default_size(adata.n_obs) if size is None else float(size)
    legend = _background(fig, ax, adata, rec, bg, color, cmap, size)
    segs = np.stack([pts[:-1], pts[1:]], axis=2).transpose(1, 0, 2, 3).reshape(-1, 2, 2)
    mid = np.tile((times[:-1] + times[1:]) / 2, pts.shape[1])
    lines = LineCollection(segs, linewidths=0.8, alpha=0.8,
                           **({"cmap": cmap, "array": mid} if color_by_time
                              else {"colors": "k" if color is not None else "tab:blue"}))
    ax.add_collection(lines)
    ax.scatter(pts[0, :, 0], pts[0, :, 1], s=6, c="k", lw=0)
    ax.scatter(pts[-1, :, 0], pts[-1, :, 1], s=12, facecolors="white", edgecolors="k", lw=0.6)
    if color_by_time:
        lines.set_clim(times.min(), times.max())
        cbar = fig.colorbar(lines, ax=ax, label=f"{rec.time_key} along the paths",
                            **({"location": "bottom", "fraction": 0.05, "pad": 0.1}
                               if legend else {"fraction": 0.05, "pad": 0.02}))
        time_ticks(cbar, rec, adata)
    axis_labels(ax, basis, dims)
    drawn = pts.shape[1]
    count = f"{n_total} cells" if drawn == n_total else f"{drawn} of {n_total} cells drawn"
    ax.set_title(title or f"scflow trajectories ({count}; start ●, end ○)",
                 fontsize="medium")
    return finish(fig, ax, show, return_fig, save, name="trajectories")


def velocity_stream(adata: AnnData, *, key: str = "scflow", basis: str | None = None,
                    dims: Sequence[int] = (0, 1), time=None, color: str | None = None,
                    density: float = 1.0, grid_size: int = 40, smooth: float = 0.5,
                    color_by_time: bool = True, n_neighbors: int = 30, cmap: str = "viridis",
                    size: float | None = None, ax: Axes | None = None, show: bool | None = None,
                    return_fig: bool = False, save: bool | str | None = None,
                    title: str | None = None):
    """Streamlines of the learned field over two dimensions of an embedding.

    The model (read from ``adata.uns[key]`` with :func:`scflow.load_model`) gives the
    velocity of every cell, at its own time or at ``time``; the two chosen components are
    averaged onto a grid with a Gaussian kernel (as scVelo does) and drawn with
    :meth:`~matplotlib.axes.Axes.streamplot`. Grid points far from any cell are left empty.

    On the fitted representation the components are exact. On another embedding
    (``basis="umap"``), each cell's velocity is projected as scVelo does: towards its
    ``n_neighbors`` nearest cells (in the fitted representation) in proportion to how well
    each displacement aligns with the velocity (cosine, softmax), minus the uniform mean;
    directions only, for display.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    basis
        ``None`` (the fitted representation) or an ``obsm`` embedding (``"umap"``).
    dims
        Two dimensions of the basis (0-based).
    time
        Evaluate every cell's velocity at this time (``obs[time_key]`` units).
    color
        Colour the cells by an ``obs`` column or a gene (scanpy's ``color=``). Default: by
        timepoint, one colour per timepoint (a legend, not a colour bar).
    density, grid_size, smooth
        Streamline density, grid points per side, kernel width in grid steps.
    color_by_time
        With ``color=None``: colour the cells by timepoint (else grey).
    n_neighbors
        Neighbours of the projection onto another basis.
    cmap, size
        Colour map of the timepoints; marker size (default scanpy's ``120000 / n_obs``).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it (scanpy's ``save=``, as
        ``velocity_stream<save>`` under ``sc.settings.figdir``).
    title
        Axes title.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    rec = fit_record(adata, key)
    name = resolve_basis(adata, basis, rec.use_rep)
    x = rep_of(adata, rec)
    if name == rec.use_rep:
        dims = check_dims(dims, rec.n_dims)
        xy = x[:, dims]
    else:
        coords = basis_coords(adata, name)
        dims = check_dims(dims, coords.shape[1])
        xy = coords[:, dims]
    idx = cell_index(adata, rec)
    t_model = (rec.timeline.times[idx] if time is None
               else np.full(len(x), rec.timeline.model_time(time, "time")))
    v = velocities(load_model(adata, key), rec, x, t_model)
    v = v[:, dims] if name == rec.use_rep else project_velocity(x, v, xy, int(n_neighbors))
    gx, gy, u, w = _grid(xy, v, int(grid_size), float(smooth))
    fig, ax = new_axes(ax, (5.6, 4.0))
    if color is None and color_by_time:
        color = rec.time_key
    size = default_size(adata.n_obs) if size is None else float(size)
    _background(fig, ax, adata, rec, xy, color, cmap, size)
    ax.streamplot(gx, gy, u, w, density=density, color="k", linewidth=0.8, arrowsize=0.8)
    axis_labels(ax, name, dims)
    when = "each cell at its own time" if time is None else f"{rec.time_key} = {time}"
    ax.set_title(title or f"scflow velocity ({when})", fontsize="medium")
    return finish(fig, ax, show, return_fig, save, name="velocity_stream")


def project_velocity(x: np.ndarray, v: np.ndarray, emb: np.ndarray, k: int) -> np.ndarray:
    """scVelo's projection of velocities onto an embedding: each cell moves towards its
    ``k`` nearest cells by ``softmax(cos / 0.05)`` weights (cosine of the velocity and the
    displacement), minus the uniform weights, along unit displacements in the embedding."""
    xt, vt, et = (torch.as_tensor(a, dtype=torch.float32) for a in (x, v, emb))
    k = max(1, min(int(k), len(xt) - 1))
    out = []
    for i in range(0, len(xt), 4096):
        nn = torch.cdist(xt[i: i + 4096], xt).topk(k + 1, largest=False).indices[:, 1:]
        dx = xt[nn] - xt[i: i + 4096, None]
        cos = torch.nn.functional.cosine_similarity(dx, vt[i: i + 4096, None], dim=-1)
        p = torch.softmax(cos / 0.05, dim=1) - 1.0 / k
        de = et[nn] - et[i: i + 4096, None]
        de = de / de.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        out.append((p[..., None] * de).sum(1))
    return torch.cat(out).numpy().astype(np.float64)


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
