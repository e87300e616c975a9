"""``pl.gene_trends``: expression along the predicted trajectories, one panel per gene."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from .._adata.time_labels import display_labels
from ._colors import category_colors, palette
from ._common import fit_record
from ._common import result as result_of
from ._utils import finish

__all__ = ["gene_trends"]

COLUMNS = ("gene", "time", "group", "mean", "std", "n_cells")


def _table(data: AnnData | pd.DataFrame, key: str,
           result: str) -> tuple[pd.DataFrame, str, tuple[list, list[str]], dict]:
    """The long table, the x-axis label, the timepoints (positions, labels) and the groups'
    colours (scanpy's colours of ``obs[groupby]``, ``{}`` when unknown)."""
    if isinstance(data, pd.DataFrame):
        df = data
        xlabel = str(data.attrs.get("time_key", "time"))
        ticks = (list(data.attrs.get("timepoints", [])),
                 list(data.attrs.get("timepoint_labels", [])))
        known = dict(data.attrs.get("colors", {}) or {})
    elif isinstance(data, AnnData):
        rec = fit_record(data, key)
        stored = dict(result_of(data, key, result, "gene_trends"))
        groupby = str(stored.pop("groupby", ""))
        known = category_colors(data, groupby) if groupby else {}
        df = pd.DataFrame({c: np.asarray(v) for c, v in stored.items()})
        tl = rec.timeline
        xlabel = rec.time_key
        ticks = (list(tl.values) if tl.monotone else [],
                 display_labels(tl.values, tl.labels, tl.numeric, data))
    else:
        raise TypeError(f"data must be an AnnData or the DataFrame of scflow.tl.gene_trends, "
                        f"got {type(data).__name__}")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"the gene trends have no column {missing[0]!r}; expected the table of "
                       "scflow.tl.gene_trends")
    return df, xlabel, ticks, known


def gene_trends(data: AnnData | pd.DataFrame, genes: str | Sequence[str] | None = None, *,
                key: str = "scflow", result: str = "gene_trends",
                groups: Sequence[str] | None = None, colors: Mapping | None = None,
                ncols: int = 4, band: bool = True, ylabel: str = "expression",
                ax: Axes | Sequence[Axes] | None = None, show: bool | None = None,
                return_fig: bool = False, save: bool | str | None = None,
                title: str | None = None):
    """Mean expression of genes along the predicted trajectories, per group, ± one std.

    Parameters
    ----------
    data
        The DataFrame of :func:`scflow.tl.gene_trends`, or the AnnData it wrote to
        (``uns[key][result]``; then the timepoints are marked on the time axis).
    genes
        Genes to draw, one panel each (default: every gene of the table, in its order).
    key, result
        The fit's ``key_added`` and the ``key_added`` of ``tl.gene_trends`` (AnnData only).
    groups
        Groups to draw (default all), e.g. the fates of ``tl.fate``.
    colors
        Colour of each group. Default: the colour scanpy gives the group's label in
        ``obs[groupby]`` (``uns[groupby + "_colors"]``, else scanpy's palette over its
        categories; read from the AnnData, or kept in the DataFrame's ``attrs`` by
        ``tl.gene_trends``), so a fate has the colour it has in ``sc.pl.umap`` and
        ``pl.fate``; scanpy's palette in the order of the groups when there is no
        ``groupby``.
    ncols
        Panels per row.
    band
        Shade ± one standard deviation over the cells of a group (not below 0 where
        ``tl.gene_trends`` clipped the values at 0).
    ylabel
        Label of the y axis (e.g. ``"log expression"``).
    ax
        One axes per gene (a single axes for one gene).
    show, return_fig, save
        Show the figure; return it; write it (scanpy's ``save=``, as
        ``gene_trends<save>`` under ``sc.settings.figdir``).
    title
        Figure title.

    Returns
    -------
    The figure with ``return_fig=True``, else the list of axes (or ``None`` when shown).
    """
    df, xlabel, (tick_at, tick_labels), known = _table(data, key, result)
    clipped = bool(df["clipped"].all()) if "clipped" in df.columns else False
    if genes is None:
        genes = list(dict.fromkeys(df["gene"].astype(str)))
    genes = [genes] if isinstance(genes, str) else list(genes)
    unknown = [g for g in genes if g not in set(df["gene"].astype(str))]
    if not genes or unknown:
        raise KeyError(f"genes {unknown or genes} are not in the gene trends (genes there: "
                       f"{list(dict.fromkeys(df['gene'].astype(str)))[:10]}); run "
                       "scflow.tl.gene_trends with them")
    all_groups = list(dict.fromkeys(df["group"].astype(str)))
    groups = all_groups if groups is None else [str(g) for g in groups]
    if [g for g in groups if g not in all_groups]:
        raise KeyError(f"groups {[g for g in groups if g not in all_groups]} are not in the "
                       f"gene trends (groups: {all_groups})")
    colors = (dict(zip(all_groups, palette(len(all_groups)), strict=True))
              | {g: c for g, c in known.items() if g in all_groups} | dict(colors or {}))
    axes = _axes(ax, len(genes), int(ncols))
    fig = axes[0].figure
    for a, gene in zip(axes, genes, strict=True):
        sub = df[df["gene"].astype(str) == gene]
        for grp in groups:
            g = sub[sub["group"].astype(str) == grp].sort_values("time")
            t, m, s = (g[c].to_numpy(dtype=np.float64) for c in ("time", "mean", "std"))
            n = int(g["n_cells"].iloc[0]) if len(g) else 0
            a.plot(t, m, color=colors[grp], lw=1.5, label=f"{grp} ({n} cells)")
            if band:  # values clipped at 0 have no spread below it
                lo = np.maximum(m - s, 0.0) if clipped else m - s
                a.fill_between(t, lo, m + s, color=colors[grp], alpha=0.2, lw=0)
        if tick_at and len(tick_at) == len(tick_labels):
            a.set_xticks(tick_at, tick_labels)
        a.set_title(gene, fontsize="medium")
        a.set_xlabel(xlabel)
    for a in axes[:: max(1, min(int(ncols), len(genes)))]:
        a.set_ylabel(ylabel)
    axes[min(len(genes), int(ncols)) - 1].legend(fontsize="small", frameon=False,
                                                 loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title)
    out = finish(fig, axes[0], show, return_fig, save, name="gene_trends")
    return axes if out is axes[0] else out


def _axes(ax, n: int, ncols: int) -> list[Axes]:
    if ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    if ax is not None:
        axes = [ax] if isinstance(ax, Axes) else list(np.ravel(ax))
        if len(axes) != n:
            raise ValueError(f"ax: give one axes per gene ({n}), got {len(axes)}")
        return axes
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1.2, 2.6 * nrows),
                             squeeze=False, layout="constrained")
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.set_visible(False)
    return flat[:n]
