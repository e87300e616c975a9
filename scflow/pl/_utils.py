"""Shared figure handling for the plots: axes, scanpy's ``save=`` and ``show=``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

if matplotlib.get_backend().lower() in {"", "agg"}:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .._settings import logger, settings  # noqa: E402

EXTENSIONS = (".svg", ".pdf", ".png")


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _figure_settings() -> tuple[Path, str, str]:
    """``figdir``, file format and suffix: scanpy's settings when scanpy is in use, else
    :attr:`scflow.settings.figdir` and ``"png"``."""
    sc = sys.modules.get("scanpy")
    sc_settings = getattr(sc, "settings", None)
    if sc_settings is not None and hasattr(sc_settings, "figdir"):
        return (Path(sc_settings.figdir), str(getattr(sc_settings, "file_format_figs", "png")),
                str(getattr(sc_settings, "plot_suffix", "")))
    return Path(settings.figdir), "png", ""


def save_path(save: bool | str | os.PathLike, name: str) -> Path:
    """Where ``save=`` writes, as in scanpy.

    ``save=True``: ``figdir / f"{name}.{format}"``; a string: appended to the plot's name,
    its extension (``.png``, ``.pdf``, ``.svg``) setting the format, e.g. ``save="_emt.png"``
    writes ``figdir / "trajectories_emt.png"``. ``figdir`` is ``scanpy.settings.figdir``
    when scanpy is imported, else ``scflow.settings.figdir``. A path with a folder (or a
    :class:`pathlib.Path`) is written as given.
    """
    if save is True:
        suffix = ""
    elif isinstance(save, os.PathLike) or (isinstance(save, str) and os.path.dirname(save)):
        return Path(save)
    elif isinstance(save, str) and save:
        suffix = save
    else:
        raise ValueError(f"save must be True, a file name suffix or a path, got {save!r}")
    figdir, ext, plot_suffix = _figure_settings()
    for try_ext in EXTENSIONS:
        if suffix.endswith(try_ext):
            ext, suffix = try_ext[1:], suffix[: -len(try_ext)]
            break
    return figdir / f"{name}{suffix}{plot_suffix}.{ext}"


def finish(fig: Figure, ax: Axes, show: bool | None, return_fig: bool,
           save: bool | str | os.PathLike | None = None, name: str = "scflow"):
    """scanpy's convention: return the figure, or the axes when not shown, else None."""
    if save is not None and save is not False:
        path = save_path(save, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
        logger.warning(f"saving figure to file {path}")
    if return_fig:
        return fig
    if show:
        plt.show()
        return None
    if show is None and matplotlib.get_backend().lower() != "agg":
        plt.show()
        return None
    return ax
