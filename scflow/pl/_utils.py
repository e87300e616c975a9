"""Shared figure handling for the plots."""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() in {"", "agg"}:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def finish(fig: Figure, ax: Axes, show: bool | None, return_fig: bool,
           save: str | None = None):
    """scanpy's convention: return the figure, or the axes when not shown, else None."""
    if save:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    if return_fig:
        return fig
    if show:
        plt.show()
        return None
    if show is None and matplotlib.get_backend().lower() != "agg":
        plt.show()
        return None
    return ax
