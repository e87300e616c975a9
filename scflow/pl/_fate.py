"""``pl.fate``: fate probabilities of :func:`scflow.tl.fate` on an embedding."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from ._common import axis_labels, basis_coords, check_dims, find_basis
from ._utils import finish, new_axes

__all__ = ["fate"]


def fate(adata: AnnData, fate: str | None = None, *, key: str = "fate", basis: str = "X_emb",
         dims: Sequence[int] = (0, 1), cmap: str = "coolwarm", size: float = 3.0,
         ax: Axes | None = None, show: bool | None = None, return_fig: bool = False,
         save: bool | str | None = None, title: str | None = None):
    """The cells pushed by :func:`scflow.tl.fate`, coloured by their fate, over the others.

    Parameters
    ----------
    adata
        Annotated data with ``obsm[key + "_probabilities"]`` (run ``scflow.tl.fate``).
    fate
        A fate (a column of the probabilities): colour by its probability, 0 to 1. Default:
        the most probable fate of each cell (``obs[key]``), in ``uns[key + "_colors"]``
        when ``tl.fate`` found the labels' colours.
    key
        The ``key_added`` of ``tl.fate``.
    basis
        ``obsm`` key of the embedding to draw on (``"umap"`` or ``"X_umap"`` work too).
    dims
        Two dimensions of the basis (0-based).
    cmap, size
        Colour map of probabilities; marker size.
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
    basis = find_basis(adata, basis)
    xy = basis_coords(adata, basis)
    a, b = check_dims(dims, xy.shape[1])
    pushed = prob.notna().all(1).to_numpy()
    fig, ax = new_axes(ax, (5.5, 4.5))
    ax.scatter(xy[~pushed, a], xy[~pushed, b], s=size / 2, c="lightgrey", linewidths=0,
               rasterized=True)
    if fate is not None:
        im = ax.scatter(xy[pushed, a], xy[pushed, b], s=size, c=prob[fate].to_numpy()[pushed],
                        cmap=cmap, vmin=0, vmax=1, linewidths=0, rasterized=True)
        fig.colorbar(im, ax=ax, label=f"P({fate})")
    else:
        fates = list(prob.columns)
        colors = adata.uns.get(key + "_colors")
        if colors is None or len(colors) != len(fates):
            colors = [f"C{i % 10}" for i in range(len(fates))]
        best = prob.to_numpy()[pushed].argmax(1)
        for i, (f, c) in enumerate(zip(fates, colors, strict=True)):
            sel = best == i
            if sel.any():
                ax.scatter(xy[pushed][sel, a], xy[pushed][sel, b], s=size, c=str(c), label=f,
                           linewidths=0, rasterized=True)
        ax.legend(title="most probable fate", loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False, markerscale=3)
    axis_labels(ax, basis, (a, b))
    ax.set_title(title if title is not None else
                 f"fates of {int(pushed.sum())} cells" + (f": P({fate})" if fate else ""))
    return finish(fig, ax, show, return_fig, save, name="fate")
