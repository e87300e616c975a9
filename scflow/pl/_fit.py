"""Plots of a fit: the training loss, and a prediction against the real cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from .._adata.access import get_rep
from .._adata.store import read_fit
from .._adata.times import match_values
from ._colors import BACKGROUND, default_size, legend_right
from ._common import axis_labels, check_dims
from ._utils import finish, new_axes

__all__ = ["loss", "holdout"]


def loss(adata: AnnData, *, key: str = "scflow", smooth: int = 50, log: bool = True,
         ax: Axes | None = None, show: bool | None = None, return_fig: bool = False,
         save: bool | str | None = None, title: str | None = None):
    """Training loss of :func:`scflow.tl.fit`, per step and as a running mean.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    smooth
        Window of the running mean (steps).
    log
        Logarithmic y axis.
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it to this file.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    rec = read_fit(adata, key)
    values = np.asarray(adata.uns[key].get("loss", []), dtype=np.float64)
    if values.size == 0:
        raise KeyError(f"adata.uns[{key!r}] has no loss; run scflow.tl.fit(adata, "
                       f"key_added={key!r}) first")
    fig, ax = new_axes(ax, (4.5, 3.0))
    steps = np.arange(1, len(values) + 1)
    ax.plot(steps, values, color="tab:blue", alpha=0.3, lw=0.6, label="per step")
    w = max(1, min(int(smooth), len(values)))
    run = np.convolve(values, np.ones(w) / w, mode="valid")
    ax.plot(steps[w - 1:], run, color="tab:blue", lw=1.5, label=f"mean of {w}")
    if log and (values > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("flow matching loss")
    ax.legend(fontsize="small", frameon=False)
    ax.set_title(title or f"{rec.params.get('method', '')} training loss")
    return finish(fig, ax, show, return_fig, save, name="loss")


def holdout(adata_pred: AnnData, adata: AnnData, *, time, key: str = "scflow",
            dims: Sequence[int] = (0, 1), background: bool = True, size: float | None = None,
            ax: Axes | None = None,
            show: bool | None = None, return_fig: bool = False, save: bool | str | None = None,
            title: str | None = None):
    """Predicted cells against the real cells of the same (e.g. held-out) time.

    Parameters
    ----------
    adata_pred
        Output of :func:`scflow.tl.predict` (``uns["scflow_predict"]`` names the
        representation and the time column).
    adata
        The real data.
    time
        The time to compare at, in ``obs[time_key]`` units; ``adata`` must have cells there.
    key
        The fit's ``key_added`` in ``adata`` (to match ``time`` to its timepoint).
    dims
        Two dimensions of the representation (0-based).
    background
        Draw every other real cell in light grey.
    size
        Marker size (default scanpy's ``120000 / n``, ``n`` the real and predicted cells).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it to this file.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    info = adata_pred.uns.get("scflow_predict") if isinstance(adata_pred, AnnData) else None
    if not isinstance(info, Mapping):
        raise KeyError("adata_pred has no uns['scflow_predict']; pass the AnnData returned by "
                       "scflow.tl.predict")
    use_rep, time_key = str(info["use_rep"]), str(info["time_key"])
    pred = get_rep(adata_pred, use_rep)
    real_all = get_rep(adata, use_rep)[:, : pred.shape[1]]
    at = _cells_at(adata, key, time_key, time)
    dims = check_dims(dims, pred.shape[1])
    fig, ax = new_axes(ax, (5.6, 4.0))
    size = default_size(len(real_all) + len(pred)) if size is None else float(size)
    if background:
        ax.scatter(*real_all[~at][:, dims].T, s=size * 0.6, c=BACKGROUND, lw=0,
                   rasterized=True, label="other cells")
    ax.scatter(*real_all[at][:, dims].T, s=size, c="tab:blue", lw=0, alpha=0.6,
               label=f"real ({int(at.sum())})")
    ax.scatter(*pred[:, dims].T, s=size, c="tab:orange", lw=0, alpha=0.6,
               label=f"predicted ({len(pred)})")
    axis_labels(ax, use_rep, dims)
    legend_right(ax, size=size)
    ax.set_title(title or f"{time_key} = {time}: predicted vs real")
    return finish(fig, ax, show, return_fig, save, name="holdout")


def _cells_at(adata: AnnData, key: str, time_key: str, time) -> np.ndarray:
    if time_key not in adata.obs:
        raise KeyError(f"adata.obs has no column {time_key!r} (the time_key of the fit)")
    col = adata.obs[time_key]
    if isinstance(adata.uns.get(key), Mapping) and "model" in adata.uns[key]:
        rec = read_fit(adata, key)
        at = rec.timeline.cell_index(col) == rec.timeline.require_index(time, "time")
    elif pd.api.types.is_numeric_dtype(col.dtype) and not isinstance(col.dtype,
                                                                     pd.CategoricalDtype):
        v = col.to_numpy(dtype=np.float64)
        seen = np.unique(v)
        k = int(match_values(float(time), seen)[0])
        at = v == seen[k] if k >= 0 else np.zeros(len(v), dtype=bool)
    else:
        at = (col.astype(str) == str(time)).to_numpy()
    if not at.any():
        raise ValueError(f"time={time!r}: adata has no cells at that time")
    return at
