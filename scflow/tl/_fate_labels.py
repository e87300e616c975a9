"""The labelled cells that ``tl.fate`` reads fates among, and how many of them (``k``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .._settings import logger
from ..fate.neighbors import AUTO_PRIOR, NEIGHBOR_GRID, select_neighbors

__all__ = ["reference"]


def reference(groups: pd.Series, at_time: np.ndarray, x: torch.Tensor, *, groupby: str, label,
              fates: Sequence[str] | None, n_neighbors: int | str
              ) -> tuple[np.ndarray, torch.Tensor, list[str], int, dict | None]:
    """The reference cells of ``tl.fate``: labelled cells of ``to_time`` (with a label in
    ``fates``, when given), their fate codes, the fate names, the ``k`` read around each end
    point (at most a quarter of them; ``"auto"``: :func:`scflow.fate.select_neighbors` on
    ``x``) and the scores ``"auto"`` chose by (``None`` for a given ``k``).

    Parameters
    ----------
    groups
        ``obs[groupby]``.
    at_time
        Boolean mask of the cells of ``to_time``.
    x
        All cells in model coordinates.
    groupby, label
        Names for the messages (the column and ``to_time``).
    fates, n_neighbors
        As in ``tl.fate`` (``n_neighbors`` already checked: a positive integer or
        ``"auto"``).
    """
    ref = at_time & labelled(groups, at_time, groupby)
    if not ref.any():
        raise ValueError(f"groupby={groupby!r}: no cell at to_time={label!r} has a "
                         "label (all NaN there); fates are read among labelled cells of "
                         "to_time")
    if fates is not None:
        fates = _check_fates(groups, ref, fates, groupby, label)
        ref &= groups.astype(str).isin(fates).to_numpy()
    n_labelled = int(ref.sum())
    cap = max(1, n_labelled // 4)  # reading most labelled cells: one answer for all
    cats = pd.Categorical(groups[ref].astype(str), categories=fates)
    names = [str(c) for c in cats.categories]
    _check_fate_count(cats, names, groupby, label, given=fates is not None)
    codes = torch.as_tensor(np.asarray(cats.codes, dtype=np.int64))
    if n_neighbors != "auto":
        if n_neighbors > cap:
            logger.warning(f"n_neighbors={n_neighbors} reads more than a quarter of the "
                           f"{n_labelled} labelled cells at to_time; using n_neighbors={cap}")
        return ref, codes, names, min(int(n_neighbors), cap), None
    if min(NEIGHBOR_GRID) > cap:
        raise ValueError(f"n_neighbors='auto' needs at least {4 * min(NEIGHBOR_GRID)} "
                         f"labelled cells at to_time, got {n_labelled}; give an integer")
    k, selection = select_neighbors(x[ref], codes, len(names), max_k=cap, prior=AUTO_PRIOR)
    selection["chosen"] = k
    logger.info(f"n_neighbors='auto': {k} (leave-one-out Brier score of the {n_labelled} "
                f"labelled cells' own labels, Dirichlet pseudo-count {AUTO_PRIOR})")
    return ref, codes, names, k, selection


#: labels that stand for "no label" once a column has been cast to strings (pandas writes a
#: missing value as ``"nan"``; empty strings are unfilled annotations): never read as fates
MISSING_LABELS = frozenset({"", "nan", "none", "null", "na", "<na>", "n/a"})


def labelled(groups: pd.Series, at_time: np.ndarray, groupby: str) -> np.ndarray:
    """Cells with a label: not NaN, and not a string that stands for a missing one
    (:data:`MISSING_LABELS`, case and surrounding spaces ignored; logged when some are
    found among the cells of ``to_time``)."""
    ok = groups.notna().to_numpy()
    text = groups.astype(str).str.strip().str.lower()
    blank = ok & text.isin(MISSING_LABELS).to_numpy()
    if (blank & at_time).any():
        shown = sorted(set(groups[blank & at_time].astype(str)))
        logger.warning(f"groupby={groupby!r}: {int((blank & at_time).sum())} cells of to_time "
                       f"are labelled {shown}, read as unlabelled (a missing label written "
                       "as a string)")
    return ok & ~blank


#: a label column is read as a per-cell identifier (refused as fates) from this many labels
#: on, when most of them label one cell
MIN_IDENTIFIER_LABELS = 10


def _check_fate_count(cats: pd.Categorical, names: list[str], groupby: str, label, *,
                      given: bool) -> None:
    """At least two fates, and fates that are groups of cells, not one label per cell."""
    if len(names) < 2:
        what = (f"fates={names} names one fate" if given else
                f"groupby={groupby!r}: one label, {names}, among the labelled cells of "
                f"to_time={label!r}")
        raise ValueError(f"{what}: every cell would get probability 1; fate probabilities "
                         "need at least two fates (fates=[...] naming two labels or more)")
    counts = np.bincount(cats.codes[cats.codes >= 0], minlength=len(names))
    # many labels, most of them on a single cell: an identifier, not a fate (a handful of
    # labels on a handful of cells is a small data set, warned about elsewhere)
    if len(names) >= MIN_IDENTIFIER_LABELS and np.median(counts) < 2:
        raise ValueError(f"groupby={groupby!r} has {len(names)} labels among {int(counts.sum())} "
                         f"labelled cells of to_time={label!r} (most label one cell): it looks "
                         "like a per-cell identifier (e.g. a barcode), not a fate; pass a "
                         "column of cell types or states, or fates=[...] naming a few labels")


def _check_fates(groups: pd.Series, ref: np.ndarray, fates, groupby: str, label) -> list[str]:
    """``fates`` as a list of names; every fate must label a cell of ``to_time``."""
    if isinstance(fates, (np.ndarray, pd.Index)):
        fates = list(fates)
    if isinstance(fates, str) or not isinstance(fates, Sequence) or not len(fates):
        raise ValueError(f"fates must be a non-empty list of labels of obs[{groupby!r}], "
                         f"got {fates!r}")
    names = [str(f) for f in fates]
    if len(set(names)) != len(names):
        raise ValueError(f"fates must not repeat a label, got {list(fates)}")
    present = set(groups[ref].astype(str))
    missing = [f for f in names if f not in present]
    if missing:
        raise ValueError(f"fates={list(fates)}: {missing} label no cell of to_time={label!r} "
                         f"in obs[{groupby!r}] (labels there: {sorted(present)})")
    return names
