"""``tl.fate``: fate probabilities, read among the labelled cells where the cells end up."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._adata.palette import category_colors, palette
from .._adata.store import check_key, h5ad_safe, log_added
from .._checks import check_memory, integer
from ..fate.core import DEFAULT_NEIGHBORS
from ..fate.pull import DEFAULT_SHARE
from ._fate_compute import DEFAULT_DRAWS, FATE_MODES, prepare, probabilities
from ._fate_cost import announce_cost
from ._fate_labels import reference

__all__ = ["fate", "FATE_MODES", "DEFAULT_DRAWS"]

#: entropic regularisation of ``mode="transport"`` (whitened units) by default
DEFAULT_REG = 0.05


def fate(adata: AnnData, groupby: str, *, key: str = "scflow", from_time=None, to_time=None,
         mode: str = "auto", n_neighbors: int | str = DEFAULT_NEIGHBORS,
         fates: Sequence[str] | None = None, n_draws: int | None = None,
         reg: float = DEFAULT_REG, max_cells: int = 5000, key_added: str = "fate",
         n_steps: int = 100, random_state: int = 0, copy: bool = False,
         share: float = DEFAULT_SHARE) -> AnnData | None:
    """Fate probabilities: where each cell's descendants end up, among the labelled cells of
    ``to_time``.

    Each cell before ``to_time`` is carried to ``to_time``; there, its probability of each
    fate is the share of that fate among the ``n_neighbors`` nearest *labelled* cells of
    ``to_time`` (cells whose ``obs[groupby]`` is not NaN, nor a string standing for a
    missing label, ``""``, ``"nan"``, ``"None"``...: labels may cover only a few cells, e.g.
    an annotated subset). There must be two fates or more, and fates are groups of cells: a
    column with one label per cell (a barcode) is refused. How cells are carried
    (``mode``):

    - ``"transport"`` (the default, ``"auto"``): entropic OT plans between the consecutive
      timepoints of the fit (its cells, its scaling), chained backward from ``to_time`` (as
      Waddington-OT), with later timepoints subsampled to ``max_cells``; it reads the
      snapshots, not the network;
    - ``"pull"``: every cell of ``to_time`` gets that share (its soft label) and is carried
      *backward* along the field to the timepoint before; each real cell there reads the
      mean soft label of the ``share`` of pulled-back cells nearest to it, and so on back
      through every timepoint (as Waddington-OT and moscot pull label mass, along the
      learned field instead of a plan; :func:`scflow.fate.pull.pull_fate`). Later
      timepoints are subsampled to ``max_cells`` before they are pulled;
    - ``"sde"``: ``n_draws`` stochastic trajectories per cell pushed forward (Euler–Maruyama
      with the fit's diffusion, SB-CFM), probabilities averaged over the draws; the fit's
      ``sigma`` matters most (on simulations, ``tl.fit(method="sbcfm", sigma=0.25)`` gave
      better fates than 0.5: ``benchmarks/results/fate_simulation.md``);
    - ``"ode"``: one deterministic push forward along the field: each cell gets one end
      point, so its probabilities are those of one neighbourhood, near 0 or 1 with a small
      ``n_neighbors``; for a growth-aware fit (``method="uotcfm"``) the growth field would
      only weigh the end point, never move it.

    The default was chosen on simulations with a known fate per cell, never on a real data
    set's fate truth (``benchmarks/fate_dynamics.py``,
    ``benchmarks/results/fate_dynamics.md``: the highest mean r over the LARRY-like cases,
    0.941, against 0.928 for SDE draws, 0.904 for the best pull, 0.888 for reading each cell
    where it is and 0.774 for one ODE push); how it fares against lineage tracing (LARRY)
    and against a null that does not move the cells at all is in
    ``benchmarks/results/larry_fate.md``.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    groupby
        Column of ``obs`` with the fate labels of (some) cells at ``to_time``.
    key
        The fit's ``key_added``.
    from_time
        Timepoint whose cells are pushed (units of ``obs[time_key]``); default every cell
        before ``to_time``, each from its own timepoint.
    to_time
        Timepoint where fates are read (default the last).
    mode
        ``"auto"`` (``"transport"``), ``"transport"``, ``"pull"``, ``"sde"`` or ``"ode"``
        (above).
    n_neighbors
        Labelled cells read around each end point (at most a quarter of the labelled cells
        of ``to_time``; a larger value is lowered, with a warning, and the value used is
        stored), or ``"auto"``: chosen from the labels alone, as the ``k`` (of
        :data:`scflow.fate.neighbors.NEIGHBOR_GRID`, up to that quarter) whose soft label best
        predicts each labelled cell's own label from the other labelled cells of
        ``to_time`` (leave-one-out Brier score, :func:`scflow.fate.neighbors.select_neighbors`);
        the scores it chose by are stored. No fate truth is read. Use it with ``fates``:
        on simulations with labels as imperfect as LARRY's (a third ``undiff``, a tenth on
        the wrong branch), ``"auto"`` among the terminal labels read fates best (mean r
        0.921 against 0.919 for 15), but among all labels it was the worst rule (0.905:
        an ``undiff`` label is easy to predict from close neighbours, so it picks a small
        k); on clean labels every k scores the same
        (``benchmarks/results/fate_simulation_labels.md``).
    fates
        Labels that count as fates (e.g. the terminal cell types); labelled cells of
        ``to_time`` with any other label (e.g. ``"undiff"``) are not read, so every end
        point gets the share of each fate among its nearest *fate-labelled* cells. Default:
        every label is a fate.
    n_draws
        SDE draws per cell (default 30; ``mode="sde"`` only). On simulations 100 draws
        gain a little over 30 at three times the cost, 10 lose more.
    reg
        ``mode="transport"``: entropic regularisation (squared distance in the fit's
        scaled units).
    max_cells
        ``mode="transport"`` and ``"pull"``: the subsample size of each later timepoint
        (every cell still gets its fate).
    key_added
        Name of the ``obs`` columns, ``obsm`` table and ``uns`` entry written; it must not
        name ``groupby``, the time key or the fit.
    n_steps
        Integration steps per push (per unit of model time between timepoints); a push of
        more than 1,000,000 steps is refused before any.
    random_state
        Seed of the SDE noise and of the subsampling.
    copy
        Return a modified copy instead of writing to ``adata``.
    share
        ``mode="pull"``: the share of the pulled-back cells (``k = ceil(share * m)`` of the
        ``m`` pulled back, at most ``max_cells``) whose mean soft label each cell reads, in
        ``(0, 1]`` (default :data:`scflow.fate.pull.DEFAULT_SHARE`, chosen on simulations).

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obsm[key_added + "_probabilities"]``
        DataFrame, cells × fates (columns: the fate names): the probability of each fate,
        rows summing to 1; NaN rows for cells not pushed.
    ``adata.obs[key_added]``
        The most probable fate of each pushed cell (categorical; NaN for cells not pushed).
    ``adata.obs[key_added + "_prob"]``
        Its probability.
    ``adata.uns[key_added]``
        ``transitions``: a DataFrame, source group (``obs[groupby]`` of the pushed cells
        that have one) × fate, the mean fate probabilities (rows sum to 1), kept as a
        DataFrame by ``write_h5ad``; ``source_counts``: a DataFrame, the cells of each
        source group (column ``n_cells``); ``params``: ``key``,
        ``groupby``, ``mode`` (resolved), ``from_time`` (``""`` for all), ``to_time``,
        ``n_neighbors`` (the value used), ``n_neighbors_rule`` (``"auto"`` or
        ``"fixed"``), ``fates`` (``""`` for all labels), ``n_labelled``, ``n_draws``,
        ``n_steps``, ``reg``, ``max_cells``, ``share``, ``random_state``; with
        ``n_neighbors="auto"`` also ``n_neighbors_selection``: ``candidates``, ``brier``
        (the leave-one-out Brier score of each) and ``chosen``.
    ``adata.uns[key_added + "_colors"]``
        The fates' colours: each label's colour in ``obs[groupby]`` as scanpy draws it
        (``uns[groupby + "_colors"]``, else scanpy's palette over its categories), so
        ``obs[key_added]`` has the same colours in ``sc.pl.umap`` and every scflow plot.
    """
    check_key(key_added, "key_added")
    auto = isinstance(n_neighbors, str) and n_neighbors == "auto"
    if not auto:
        n_neighbors = integer(n_neighbors, "n_neighbors", lower=1,
                              expected="a positive integer or 'auto'")
    s = prepare(adata, groupby, key=key, from_time=from_time, to_time=to_time, mode=mode,
                n_draws=n_draws, reg=reg, max_cells=max_cells, n_steps=n_steps,
                random_state=random_state, share=share, writing=not copy)
    _check_not_input(key_added, key, groupby, s.rec.time_key)
    tl, k0, k1, src, groups = s.rec.timeline, s.k0, s.k1, s.src, s.groups
    ref, codes, fate_names, n_neighbors, selection = reference(
        groups, s.idx == k1, s.x, groupby=groupby, label=tl.labels[k1], fates=fates,
        n_neighbors=n_neighbors)
    fates_given, fates = fates is not None, fate_names
    n_labelled = int(ref.sum())
    check_memory(8.0 * 3 * adata.n_obs * len(fates),
                 f"fate probabilities of {adata.n_obs} cells x {len(fates)} fates",
                 "pass fates=[...] naming the few labels that are fates")
    announce_cost(tl, s.idx, src, k1, mode=s.mode, n_draws=s.n_draws, n_steps=s.n_steps,
                  max_cells=s.max_cells)
    prob = probabilities(s, s.x[ref], codes, len(fates), [n_neighbors])[0]
    mode, n_draws, reg, max_cells = s.mode, s.n_draws, s.reg, s.max_cells
    n_steps, random_state, share = s.n_steps, s.random_state, s.share
    table, sizes = _transitions(groups[src], prob, fates)
    if copy:
        adata = adata.copy()
    full = np.full((adata.n_obs, len(fates)), np.nan)
    full[src] = prob
    best = np.full(adata.n_obs, -1)
    best[src] = prob.argmax(1)
    top = np.full(adata.n_obs, np.nan)
    top[src] = prob.max(1)
    adata.obsm[key_added + "_probabilities"] = pd.DataFrame(full, index=adata.obs_names,
                                                             columns=fates)
    adata.obs[key_added] = pd.Categorical.from_codes(best, categories=fates)
    adata.obs[key_added + "_prob"] = top
    entry = {"transitions": table, "source_counts": sizes, "params": {
        "key": key, "groupby": groupby, "mode": mode,
        "from_time": "" if k0 is None else str(tl.labels[k0]), "to_time": str(tl.labels[k1]),
        "n_neighbors": n_neighbors, "n_neighbors_rule": "auto" if auto else "fixed",
        "fates": fates if fates_given else "", "n_labelled": n_labelled, "n_draws": n_draws,
        "n_steps": n_steps, "reg": reg, "max_cells": max_cells, "share": share,
        "random_state": random_state}}
    if selection is not None:
        entry["n_neighbors_selection"] = selection
    adata.uns[key_added] = h5ad_safe(entry)
    adata.uns[key_added + "_colors"] = _fate_colors(adata, groupby, fates)
    log_added((key_added + "_probabilities", "fate probabilities (cells x fates)", "adata.obsm"),
              (key_added, "most probable fate", "adata.obs"),
              (key_added + "_prob", "its probability", "adata.obs"),
              (key_added, "source-group x fate transitions", "adata.uns"),
              (key_added + "_colors", "the fates' colours", "adata.uns"))
    return adata if copy else None


def _check_not_input(key_added: str, key: str, groupby: str, time_key: str) -> None:
    """``key_added`` must not overwrite the fit, the labels or the time column."""
    if key_added == key:
        raise ValueError(f"key_added={key_added!r} would overwrite the fit in adata.uns[{key!r}]; "
                         "choose another name")
    for col, what in ((groupby, "groupby"), (time_key, "the fit's time_key")):
        if col in (key_added, key_added + "_prob"):
            raise ValueError(f"key_added={key_added!r} would overwrite adata.obs[{col!r}] "
                             f"({what}), an input of tl.fate; choose another name, e.g. "
                             f"key_added={col + '_fate'!r}")


def _transitions(source: pd.Series, prob: np.ndarray,
                 fates: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Source group x fate mean probabilities, and the cells of each source group."""
    ok = source.notna().to_numpy()
    src = pd.Categorical(source[ok].astype(str))
    n_groups = len(src.categories)
    sums = np.zeros((n_groups, len(fates)))
    np.add.at(sums, src.codes, prob[ok])
    counts = np.bincount(src.codes, minlength=n_groups).astype(np.int64)
    values = np.divide(sums, counts[:, None], out=np.zeros(sums.shape),
                       where=counts[:, None] > 0)
    index = pd.Index([str(c) for c in src.categories], name="source")
    table = pd.DataFrame(values, index=index, columns=list(fates))
    return table, pd.DataFrame({"n_cells": counts}, index=index.copy())


def _fate_colors(adata: AnnData, groupby: str, fates: list[str]) -> np.ndarray:
    """Each fate's colour as scanpy gives its label in ``obs[groupby]``: ``uns[groupby +
    "_colors"]`` when it has one per category, else scanpy's palette over the categories."""
    lookup = category_colors(adata, groupby)
    fallback = dict(zip(fates, palette(len(fates)), strict=True))
    return np.asarray([str(lookup.get(f, fallback[f])) for f in fates], dtype=object)
