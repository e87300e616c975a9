"""``pl.fate``: fate probabilities of :func:`scflow.tl.fate` on an embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from ._colors import (
    BACKGROUND,
    PROBABILITY_CMAP,
    category_colors,
    default_size,
    markerscale,
    palette,
)
from ._common import axis_labels, basis_coords, check_dims, default_basis
from ._utils import finish, new_axes

__all__ = ["fate"]


def fate(adata: AnnData, fate: str | None = None, *, key: str = "fate", basis: str | None = None,
         dims: Sequence[int] = (0, 1), cmap: str = PROBABILITY_CMAP, size: float | None = None,
         ax: Axes | None = None, show: bool | None = None, return_fig: bool = False,
         save: bool | str | None = None, title: str | None = None):
    """The cells pushed by :func:`scflow.tl.fate`, coloured by their fate, over the others.

    Parameters
    ----------
    adata
        Annotated data with ``obsm[key + "_probabilities"]`` (run ``scflow.tl.fate``).
    fate
        A fate (a column of the probabilities): colour by its probability, 0 to 1. Default:
        the most probable fate of each cell (``obs[key]``), each fate in the colour scanpy
        gives its label: ``uns[groupby + "_colors"]`` (``groupby`` of ``tl.fate``) when it
        holds one colour per category, else scanpy's palette over ``obs[groupby]``'s
        categories, so a label has the same colour here as in ``sc.pl.umap``.
    key
        The ``key_added`` of ``tl.fate``.
    basis
        ``obsm`` key of the embedding to draw on (``"umap"`` or ``"X_umap"`` work too).
        Default: ``"X_umap"`` when ``adata`` has one, else the representation the fit was
        trained on (its ``use_rep``).
    dims
        Two dimensions of the basis (0-based).
    cmap
        Colour map of probabilities; the default (``"RdYlBu_r"``, diverging) has a light
        yellow midpoint, unlike the grey of the cells that were not pushed.
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
    name = key + "_probabilities"
    if name not in adata.obsm:
        raise KeyError(f"adata.obsm[{name!r}] is missing; run scflow.tl.fate(adata, groupby, "
                       f"key_added={key!r}) first")
    prob = adata.obsm[name]
    if not isinstance(prob, pd.DataFrame):
        raise KeyError(f"adata.obsm[{name!r}] is not the fates table of scflow.tl.fate")
    if fate is not None and fate not in prob.columns:
        raise KeyError(f"fate={fate!r} is not a fate of adata.obsm[{name!r}]; expected one of "
                       f"{list(prob.columns)}")
    entry = adata.uns.get(key)
    params = entry.get("params", {}) if isinstance(entry, Mapping) else {}
    basis = default_basis(adata, basis, params.get("key"))
    xy = basis_coords(adata, basis)
    a, b = check_dims(dims, xy.shape[1])
    size = default_size(adata.n_obs) if size is None else float(size)
    pushed = prob.notna().all(1).to_numpy()
    fig, ax = new_axes(ax, (5.5, 4.5))
    ax.scatter(xy[~pushed, a], xy[~pushed, b], s=size / 2, c=BACKGROUND, linewidths=0,
               rasterized=True)
    if fate is not None:
        im = ax.scatter(xy[pushed, a], xy[pushed, b], s=size, c=prob[fate].to_numpy()[pushed],
                        cmap=cmap, vmin=0, vmax=1, linewidths=0, rasterized=True)
        fig.colorbar(im, ax=ax, label=f"P({fate})")
    else:
        fates = [str(f) for f in prob.columns]
        colors = _fate_colors(adata, key, params.get("groupby"), fates)
        best = prob.to_numpy()[pushed].argmax(1)
        for i, (f, c) in enumerate(zip(fates, colors, strict=True)):
            sel = best == i
            if sel.any():
                ax.scatter(xy[pushed][sel, a], xy[pushed][sel, b], s=size, c=str(c), label=f,
                           linewidths=0, rasterized=True)
        ax.legend(title="most probable fate", loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False, markerscale=markerscale(size))
    axis_labels(ax, basis, (a, b))
    ax.set_title(title if title is not None else
                 f"fates of {int(pushed.sum())} cells" + (f": P({fate})" if fate else ""))
    return finish(fig, ax, show, return_fig, save, name="fate")


def _fate_colors(adata: AnnData, key: str, groupby, fates: list[str]) -> list[str]:
    """Each fate's colour: its label's colour in ``obs[groupby]`` (scanpy's), else
    ``uns[key + "_colors"]``, else scanpy's palette over the fates."""
    by_label = category_colors(adata, groupby) if isinstance(groupby, str) else {}
    if all(f in by_label for f in fates):
        return [by_label[f] for f in fates]
    stored = adata.uns.get(key + "_colors")
    if stored is not None and len(stored) == len(fates):
        return [str(c) for c in stored]
    return palette(len(fates))
