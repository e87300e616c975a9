"""``pl.growth``: per-cell growth rates of :func:`scflow.tl.growth` on an embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from ._colors import BACKGROUND, PROBABILITY_CMAP, default_size
from ._common import axis_labels, basis_coords, check_dims, default_basis
from ._utils import finish, new_axes

__all__ = ["growth"]


def growth(adata: AnnData, *, key: str = "scflow_growth", what: str = "rate",
           basis: str | None = None, dims: Sequence[int] = (0, 1),
           cmap: str = PROBABILITY_CMAP, size: float | None = None, ax: Axes | None = None,
           show: bool | None = None, return_fig: bool = False, save: str | None = None,
           title: str | None = None):
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
        Default: ``"X_umap"`` when ``adata`` has one, else the representation the fit was
        trained on.
    dims
        Two dimensions of the basis (0-based).
    cmap
        Colour map, diverging (default ``"RdYlBu_r"``: its midpoint, no growth, is light
        yellow, apart from the grey of cells without a value).
    size
        Marker size; default scanpy's ``120000 / n_obs``.
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
    info = adata.uns.get(f"{key}_params")
    info = info if isinstance(info, Mapping) else {}
    fit_key = info.get("key", key.removesuffix("_growth"))
    basis = default_basis(adata, basis, fit_key)
    xy = basis_coords(adata, basis)
    a, b = check_dims(dims, xy.shape[1])
    size = default_size(adata.n_obs) if size is None else float(size)
    values = adata.obs[col].to_numpy(dtype=np.float64)
    label = f"growth rate (per {info.get('per', 'unit of model time')})"
    if what == "descendants":
        values = np.log2(values)
        label = "log2 expected descendants"
    has = np.isfinite(values)
    if not has.any():
        raise ValueError(f"adata.obs[{col!r}] holds no finite value to draw")
    fig, ax = new_axes(ax, (5.5, 4.5))
    ax.scatter(xy[~has, a], xy[~has, b], s=size / 2, c=BACKGROUND, linewidths=0,
               rasterized=True)
    top = float(np.abs(values[has]).max()) or 1.0
    im = ax.scatter(xy[has, a], xy[has, b], s=size, c=values[has], cmap=cmap,
                    norm=TwoSlopeNorm(0.0, -top, top), linewidths=0, rasterized=True)
    fig.colorbar(im, ax=ax, label=label)
    axis_labels(ax, basis, (a, b))
    ax.set_title(title if title is not None else f"{what} of {int(has.sum())} cells")
    return finish(fig, ax, show, return_fig, save)
