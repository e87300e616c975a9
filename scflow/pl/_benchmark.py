"""Plot of the leave-one-timepoint-out table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ._utils import finish, new_axes


def leave_one_out(df: pd.DataFrame, *, metric: str = "w1", ax: Axes | None = None,
                  show: bool | None = None, return_fig: bool = False,
                  save: str | None = None, title: str | None = None):
    """Bars of a score per method and held-out timepoint, mean ± std over seeds.

    Parameters
    ----------
    df
        The long table of :func:`scflow.tl.leave_one_out` (columns ``method``,
        ``holdout``, ``seed`` and the score); a dashed line marks each held-out
        timepoint's sampling floor when the table has a ``floor`` column.
    metric
        Column to plot: ``"w1"``, ``"w2"`` or ``"mmd"``.
    """
    for col in ("method", "holdout", metric):
        if col not in df.columns:
            raise KeyError(f"df has no column {col!r}; expected the table of "
                           "scflow.tl.leave_one_out")
    fig, ax = new_axes(ax, (1.6 + 1.4 * df["holdout"].nunique(), 3.2))
    methods = list(dict.fromkeys(df["method"]))
    holdouts = list(dict.fromkeys(df["holdout"]))
    width = 0.8 / len(methods)
    x = np.arange(len(holdouts))
    for m, method in enumerate(methods):
        sub = df[df["method"] == method].groupby("holdout", sort=False)[metric]
        mean = [sub.mean().get(h, np.nan) for h in holdouts]
        std = [np.nan_to_num(sub.std().get(h, np.nan)) for h in holdouts]
        ax.bar(x + (m - (len(methods) - 1) / 2) * width, mean, width, yerr=std,
               label=method, capsize=2)
    if "floor" in df.columns and metric == "w1":
        floor = df.groupby("holdout", sort=False)["floor"].mean()
        for i, h in enumerate(holdouts):
            ax.hlines(floor[h], i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                      label="sampling floor" if i == 0 else None)
    ax.set_xticks(x, [f"{h:.4g}" if isinstance(h, (int, float, np.number)) else str(h)
                      for h in holdouts])
    ax.set_xlabel("held-out timepoint")
    ax.set_ylabel(metric.upper())
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    return finish(fig, ax, show, return_fig, save)


#: the columns of :func:`scflow.tl.error_budget` drawn as bars, and their legend labels
BUDGET_BARS = {"static_ot": "static OT", "timing_oracle": "timing oracle",
               "centre_oracle": "centre oracle"}


def error_budget(df: pd.DataFrame, *, ax: Axes | None = None, show: bool | None = None,
                 return_fig: bool = False, save: str | None = None,
                 title: str | None = None):
    """Static OT beside the two oracles of :func:`scflow.tl.error_budget`, per held-out time.

    Bars give the held-out W1 of static OT at the protocol's fraction, of the timing oracle
    (static OT at the best fraction between the neighbours) and of the centre oracle (static
    OT moved onto the held-out mean); a dashed line marks the sampling floor. The gap from a
    bar to the next says how much of static OT's error better timing or a better centre
    could remove.

    Parameters
    ----------
    df
        The table of :func:`scflow.tl.error_budget` (columns ``holdout``, ``floor``,
        ``static_ot``, ``timing_oracle``, ``centre_oracle``).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it to this file.
    title
        Axes title.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    for col in ("holdout", "floor", *BUDGET_BARS):
        if col not in df.columns:
            raise KeyError(f"df has no column {col!r}; expected the table of "
                           "scflow.tl.error_budget")
    long = df.melt(id_vars=["holdout", "floor"], value_vars=list(BUDGET_BARS),
                   var_name="method", value_name="w1")
    long["method"] = long["method"].map(BUDGET_BARS)
    return leave_one_out(long, metric="w1", ax=ax, show=show, return_fig=return_fig,
                         save=save, title=title)
