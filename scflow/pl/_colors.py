"""Colouring cells by an ``obs`` column or a gene, as scanpy's ``color=`` does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from .._adata.palette import category_colors, palette

__all__ = ["cell_values", "palette", "scatter_cells", "legend_right", "category_colors",
           "default_size", "BACKGROUND", "PROBABILITY_CMAP"]

#: colour of the cells a plot does not colour (scanpy's ``na_color``)
BACKGROUND = "lightgrey"
#: diverging map of probabilities and rates: its midpoint (light yellow) stands apart from the
#: grey background cells, where ``coolwarm``'s and ``RdBu``'s near-white midpoints do not
PROBABILITY_CMAP = "RdYlBu_r"


def default_size(n_cells: int) -> float:
    """scanpy's marker size for ``n_cells`` cells (``120000 / n_cells``, as in
    ``scanpy.pl.embedding``): 250 cells get large dots, 100,000 small ones."""
    return 120000.0 / max(int(n_cells), 1)


def ordered_colors(n: int, cmap: str = "viridis") -> list[str]:
    """``n`` colours along a sequential map, for ordered categories (timepoints)."""
    cm = colormaps[cmap]
    return [to_hex(cm(i / max(n - 1, 1))) for i in range(n)]


def cell_values(adata: AnnData, color: str) -> tuple[np.ndarray, list[str] | None]:
    """Values of ``color`` (an ``obs`` column or a gene in ``var_names``) for every cell, and
    the categories when they are discrete (categorical, strings or booleans), else ``None``.
    """
    if color in adata.obs:
        col = adata.obs[color]
        if isinstance(col.dtype, pd.CategoricalDtype):
            return col.astype(object).to_numpy(), [str(c) for c in col.cat.categories]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(
                col.dtype):
            return col.to_numpy(dtype=np.float64), None
        values = col.astype(str).to_numpy()
        return values, sorted(pd.unique(values))
    if color in adata.var_names:
        j = int(adata.var_names.get_loc(color))
        x = adata.X[:, j]
        x = x.toarray() if sp.issparse(x) else np.asarray(x)
        return x.ravel().astype(np.float64), None
    raise KeyError(f"color={color!r} is neither a column of adata.obs nor a gene in "
                   f"adata.var_names (obs columns: {list(adata.obs.columns)})")


def markerscale(size: float) -> float:
    """Legend marker scale for cells drawn at ``size``: markers of about 6 points across."""
    return float(np.clip(np.sqrt(36.0 / max(float(size), 1e-3)), 0.25, 3.0))


def legend_right(ax: Axes, title: str | None = None, size: float = 2.0) -> None:
    """The legend in the right margin, off the data (scanpy's ``legend_loc="right margin"``);
    ``size``: the cells' marker size, so legend markers stay readable."""
    ax.legend(title=title, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False,
              fontsize="small", markerscale=markerscale(size))


def scatter_cells(fig: Figure, ax: Axes, xy: np.ndarray, values: np.ndarray,
                  categories: list[str] | None, *, title: str, colors: list[str] | None = None,
                  cmap: str = "viridis", size: float = 4.0, alpha: float = 1.0) -> bool:
    """Cells at ``xy`` coloured by ``values``: one legend entry per category (in the right
    margin) or a colour bar. Returns whether a legend was drawn."""
    if categories is None:
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=size, c=values, cmap=cmap, lw=0, alpha=alpha,
                        rasterized=True, plotnonfinite=True)
        fig.colorbar(sc, ax=ax, label=title, fraction=0.05, pad=0.02)
        return False
    if colors is None or len(colors) != len(categories):
        colors = palette(len(categories))
    values = np.asarray(values).astype(str)
    for cat, c in zip(categories, colors, strict=True):
        sel = values == cat
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, c=str(c), lw=0, alpha=alpha,
                       rasterized=True, label=cat)
    legend_right(ax, title, size)
    return True
