"""``pl.growth``: per-cell growth rates of :func:`scflow.tl.growth` on an embedding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from ._common import axis_labels, basis_coords, check_dims, find_basis
from ._utils import finish, new_axes

__all__ = ["growth"]


def growth(adata: AnnData, *, key: str = "scflow_growth", what: str = "rate",
           basis: str = "X_emb", dims: Sequence[int] = (0, 1), cmap: str = "RdBu_r",
           size: float = 3.0, ax: Axes | None = None, show: bool | None = None,
           return_fig: bool = False, save: str | None = None, title: str | None = None):
    """Cells on an embedding, coloured by their growth rate or expected descendants.

    Parameters
    ----------
    adata
        Annotated data with ``obs[key + "_" + what]`` (run ``scflow.tl.growth``).
    key
        The ``key_added`` of ``tl.growth`` (default ``"scflow_growth"``).
    what
        ``"rate"`` (growth rate, centred on 0: red grows, blue shrinks) or
        ``"descendants"`` (expected number of descendants, log scale centred on 1; cells
        without one are grey).
    basis
        ``obsm`` key of the embedding to draw on (``"emb"`` works for ``"X_emb"``).
    dims
        Two dimensions of the basis (0-based).
    cmap, size
        Colour map; marker size.
    ax, show, return_fig, save, title
        Axes to draw on; show the figure; return it; write it to this file; title.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")
    if what not in ("rate", "descendants"):
        raise ValueError(f"what must be 'rate' or 'descendants', got {what!r}")
    col = f"{key}_{what}"
    if col not in adata.obs:
        raise KeyError(f"adata.obs[{col!r}] is missing; run scflow.tl.growth(adata"
                       + (", to_time=...)" if what == "descendants" else ")") + " first")
    basis = find_basis(adata, basis)
    xy = basis_coords(adata, basis)
    a, b = check_dims(dims, xy.shape[1])
    values = adata.obs[col].to_numpy(dtype=np.float64)
    label = "growth rate (per unit of model time)"
    if what == "descendants":
        values = np.log2(values)
        label = "log2 expected descendants"
    has = np.isfinite(values)
    if not has.any():
        raise ValueError(f"adata.obs[{col!r}] holds no finite value to draw")
    fig, ax = new_axes(ax, (5.5, 4.5))
    ax.scatter(xy[~has, a], xy[~has, b], s=size / 2, c="lightgrey", linewidths=0,
               rasterized=True)
    top = float(np.abs(values[has]).max()) or 1.0
    im = ax.scatter(xy[has, a], xy[has, b], s=size, c=values[has], cmap=cmap,
                    norm=TwoSlopeNorm(0.0, -top, top), linewidths=0, rasterized=True)
    fig.colorbar(im, ax=ax, label=label)
    axis_labels(ax, basis, (a, b))
    ax.set_title(title if title is not None else f"{what} of {int(has.sum())} cells")
    return finish(fig, ax, show, return_fig, save)
