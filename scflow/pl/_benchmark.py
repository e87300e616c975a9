"""Plot of the leave-one-timepoint-out table."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ._utils import finish, new_axes


def leave_one_out(df: pd.DataFrame, *, metric: str = "w1", kind: str = "points",
                  labels: Mapping | None = None, ax: Axes | None = None,
                  show: bool | None = None, return_fig: bool = False,
                  save: bool | str | None = None, title: str | None = None):
    """A score per method and held-out timepoint, mean ± std over seeds.

    Parameters
    ----------
    df
        The long table of :func:`scflow.tl.leave_one_out` (columns ``method``,
        ``holdout``, ``seed`` and the score); a dashed line marks each held-out
        timepoint's split-half W1 (W1 between two halves of its cells, the noise level of a
        score; not a floor: a full-size prediction can score below it) when the table has
        a ``floor`` column.
    metric
        Column to plot: ``"w1"``, ``"w2"`` or ``"mmd"``.
    kind
        ``"points"`` (default): a marker per method with its spread over seeds, the y axis
        fitted to the values so differences of a few hundredths show; ``"bar"``: bars from
        0. Error bars are drawn only where there are several seeds (the legend says when
        a value is one seed's).
    labels
        Tick labels of the held-out timepoints, e.g. ``{1/3: "8h", 1.0: "1d"}`` (default:
        the ``holdout`` values, numbers to 3 significant digits).
    ax, show, return_fig, save
        Axes to draw on; show the figure; return it; write it (scanpy's ``save=``, as
        ``leave_one_out<save>`` under ``sc.settings.figdir``).
    title
        Axes title.

    Returns
    -------
    The figure with ``return_fig=True``, else the axes (or ``None`` when shown).
    """
    return _scores(df, metric=metric, kind=kind, labels=labels, ax=ax, show=show,
                   return_fig=return_fig, save=save, title=title, name="leave_one_out")


def _tick(h, labels: Mapping | None) -> str:
    if labels is not None:
        for k, v in labels.items():
            if k == h or (isinstance(h, (int, float, np.number)) and isinstance(
                    k, (int, float, np.number)) and np.isclose(float(k), float(h))):
                return str(v)
    return f"{h:.3g}" if isinstance(h, (int, float, np.number)) else str(h)


def _scores(df: pd.DataFrame, *, metric: str, kind: str, labels: Mapping | None, ax, show,
            return_fig: bool, save, title: str | None, name: str):
    for col in ("method", "holdout", metric):
        if col not in df.columns:
            raise KeyError(f"df has no column {col!r}; expected the table of "
                           "scflow.tl.leave_one_out")
    if kind not in ("points", "bar"):
        raise ValueError(f"kind must be 'points' or 'bar', got {kind!r}")
    fig, ax = new_axes(ax, (2.6 + 1.2 * df["holdout"].nunique(), 3.2))
    methods = list(dict.fromkeys(df["method"]))
    holdouts = list(dict.fromkeys(df["holdout"]))
    width = 0.8 / len(methods)
    x = np.arange(len(holdouts))
    single = False
    for m, method in enumerate(methods):
        sub = df[df["method"] == method].groupby("holdout", sort=False)[metric]
        mean = np.asarray([sub.mean().get(h, np.nan) for h in holdouts])
        count = np.asarray([sub.count().get(h, 0) for h in holdouts])
        std = np.asarray([sub.std().get(h, np.nan) for h in holdouts])
        single |= bool((count == 1).any())
        err = np.where(count > 1, std, np.nan)
        pos = x + (m - (len(methods) - 1) / 2) * width
        if kind == "bar":
            ax.bar(pos, mean, width, label=method, color=f"C{m % 10}")
            if np.isfinite(err).any():
                ax.errorbar(pos, mean, yerr=err, fmt="none", ecolor="k", capsize=2, lw=0.8)
        else:
            ax.errorbar(pos, mean, yerr=err if np.isfinite(err).any() else None, fmt="o",
                        color=f"C{m % 10}", capsize=3, ms=5, lw=1, label=method)
    if "floor" in df.columns and metric == "w1":
        floor = df.groupby("holdout", sort=False)["floor"].mean()
        for i, h in enumerate(holdouts):
            ax.hlines(floor[h], i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                      label="split-half W1" if i == 0 else None)
    ax.set_xticks(x, [_tick(h, labels) for h in holdouts])
    ax.set_xlim(-0.5, len(holdouts) - 0.5)
    ax.set_xlabel("held-out timepoint")
    ax.set_ylabel(metric.upper())
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False, loc="center left", bbox_to_anchor=(1.02, 0.5),
              title="one seed (no spread)" if single and kind == "points" else None)
    return finish(fig, ax, show, return_fig, save, name=name)


#: the columns of :func:`scflow.tl.error_budget` drawn as bars, and their legend labels
BUDGET_BARS = {"static_ot": "static OT", "timing_oracle": "timing oracle",
               "centre_oracle": "centre oracle"}


def error_budget(df: pd.DataFrame, *, ax: Axes | None = None, show: bool | None = None,
                 return_fig: bool = False, save: bool | str | None = None,
                 title: str | None = None):
    """Static OT beside the two oracles of :func:`scflow.tl.error_budget`, per held-out time.

    Bars give the held-out W1 of static OT at the protocol's fraction, of the timing oracle
    (static OT at the best fraction between the neighbours) and of the centre oracle (static
    OT moved onto the held-out mean); a dashed line marks the split-half W1 (the W1 between
    two halves of the held-out cells, see :func:`scflow.metrics.sampling_floor`). The gap from a
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
    return _scores(long, metric="w1", kind="bar", labels=None, ax=ax, show=show,
                   return_fig=return_fig, save=save, title=title, name="error_budget")
