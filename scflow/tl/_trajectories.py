"""``tl.trajectories`` and ``tl.predict``: carry cells along the learned field."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .._adata.access import check_adata, get_times
from .._adata.fit import check_steps, device, gene_loadings, push, rep_of, stored_dtype
from .._adata.store import FitRecord, check_key, h5ad_safe, load_model, log_added, read_fit
from .._checks import check_memory, positive_int, seed
from .._settings import logger
from ..flow.integrate import SOLVERS
from ..methods import get, names
from ._genes import pca_mean, resolve_clip, to_genes
from ._growth import is_growth_fit, push_weighted
from ._guards import carried_genes

__all__ = ["trajectories", "predict"]


#: the parts of a fit in ``uns[key]`` that a result must not overwrite
FIT_PARTS = ("params", "timepoints", "scaler", "loss", "model")


def check_result_key(key_added: str, key: str) -> None:
    """A name under ``uns[key]`` for a result: a string that is not a part of the fit."""
    check_key(key_added, "key_added")
    if key_added in FIT_PARTS:
        raise ValueError(f"key_added={key_added!r} would overwrite a part of the fit in "
                         f"adata.uns[{key!r}]; choose another name")


def check_solver(rec: FitRecord, solver: str, stochastic: bool, t0: float, t1: float) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if not isinstance(stochastic, (bool, np.bool_)):
        raise ValueError(f"stochastic must be True or False, got {stochastic!r}")
    method = str(rec.params.get("method"))
    if stochastic and not (method in names("neural") and get(method).has_score):
        raise ValueError(f"stochastic=True needs a model fitted with a method that has a "
                         f"score network ({names('neural', has_score=True)}); this one is "
                         f"{method!r}")
    if stochastic and t1 < t0:
        raise ValueError("stochastic=True integrates forward in time only: the end time must "
                         "come after the start time")


def select_cells(adata: AnnData, cells) -> np.ndarray:
    """Boolean mask from obs_names, integer positions or a boolean mask."""
    if isinstance(cells, str):
        cells = [cells]
    arr = np.asarray(cells.to_numpy() if isinstance(cells, pd.Series | pd.Index) else cells)
    if arr.dtype == bool:
        if arr.shape != (adata.n_obs,):
            raise ValueError(f"cells: a boolean mask must have length n_obs={adata.n_obs}, got "
                             f"shape {arr.shape}")
        return arr
    mask = np.zeros(adata.n_obs, dtype=bool)
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < -adata.n_obs or arr.max() >= adata.n_obs):
            raise ValueError(f"cells: positions must be in [0, {adata.n_obs}), got {arr}")
        mask[arr] = True
        return mask
    names = adata.obs_names
    if not names.is_unique:  # a name would stand for several cells
        dup = names[names.duplicated()].unique()
        raise ValueError(f"cells: adata.obs_names are not unique ({len(dup)} names repeat, e.g. "
                         f"{str(dup[0])!r}), so cells cannot be given by name; call "
                         "adata.obs_names_make_unique() first, or pass positions or a boolean "
                         "mask")
    pos = names.get_indexer(arr.astype(str))
    if (pos < 0).any():
        raise KeyError(f"cells: {list(arr[pos < 0][:5])} are not in adata.obs_names")
    mask[pos] = True
    return mask


def start_cells(adata: AnnData, rec: FitRecord, k: int | None, time, name: str) -> np.ndarray:
    if k is None:
        raise ValueError(f"{name}={time!r} is not an observed timepoint, so it has no cells; "
                         f"pass cells= or one of {rec.timeline.describe()}")
    return rec.timeline.cell_index(get_times(adata, rec.time_key)) == k


def trajectories(adata: AnnData, *, key: str = "scflow", start_time=None, end_time=None,
                 n_steps: int = 100, solver: str = "euler", stochastic: bool = False,
                 cells: Sequence | np.ndarray | None = None, n_save: int | None = None,
                 random_state: int = 0, key_added: str = "trajectories",
                 copy: bool = False) -> AnnData | None:
    """Integrate cells along the learned field and store their paths.

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    start_time, end_time
        Times in the units of ``obs[time_key]`` (default: first and last timepoints); any
        time on that axis is allowed, ``end_time`` before ``start_time`` runs backwards.
    n_steps
        Fixed integration steps over ``[start_time, end_time]``.
    solver
        ``"euler"``, ``"midpoint"``, ``"rk4"`` or ``"dopri5"``.
    stochastic
        Euler–Maruyama on the SDE of an SB-CFM model (``method="sbcfm"`` only).
    cells
        Cells to start (obs_names, positions or a boolean mask), all placed at
        ``start_time``; default: every cell of ``start_time``, which must then be a timepoint.
    n_save
        Keep ``n_save + 1`` evenly spaced states (must divide ``n_steps``; default every step).
    random_state
        Seed of the SDE noise.
    key_added
        Name under ``adata.uns[key]`` (e.g. ``"trajectories_sde"`` beside the ODE's
        ``"trajectories"``); :func:`scflow.pl.trajectories` reads it with ``result=``.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes
    ``adata.uns[key][key_added]``, a dict with

    ``paths``
        ``(n_save + 1, n_cells, n_dims)`` states in the representation's units.
    ``times``, ``model_times``
        The saved times in ``obs`` units (numeric value) and in model time.
    ``cells``
        obs_names of the starting cells.
    ``solver``, ``stochastic``, ``n_steps``, ``random_state``
        How they were computed.
    ``log_weights``
        Growth-aware fits (``method="uotcfm"``) only: ``(n_save + 1, n_cells)``, the log
        of each path's mass along it (0 at the start; ``exp`` is the expected number of
        descendants).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    tl = rec.timeline
    n_steps = check_steps(n_steps)
    n_save = n_steps if n_save is None else positive_int(n_save, "n_save")
    if n_steps % n_save:
        raise ValueError(f"n_save must divide n_steps ({n_steps}), got {n_save}")
    random_state = seed(random_state)
    check_result_key(key_added, key)
    k0, t0 = tl.start(start_time, "start_time", timepoint=cells is None)
    t1 = tl.times[-1] if end_time is None else tl.model_time(end_time, "end_time")
    if t0 == t1:
        raise ValueError(f"end_time must differ from start_time (both at model time {t0:g})")
    check_solver(rec, solver, stochastic, t0, t1)
    if cells is None:
        mask = start_cells(adata, rec, k0, start_time, "start_time")
    else:
        mask = select_cells(adata, cells)
    if not mask.any():
        raise ValueError("cells: no cells selected to integrate")
    check_memory((n_save + 1) * int(mask.sum()) * rec.n_dims * 20.0,
                 f"{int(mask.sum())} paths of {n_save + 1} states in {rec.n_dims} dims",
                 "pass a smaller n_save (states kept), or fewer cells=")
    x = rep_of(adata, rec, mask)[mask]
    model = load_model(adata, key, device=device())
    extra = {}
    if is_growth_fit(rec):  # growth hook: the log-mass of every path, log w = 0 at the start
        path, log_w = push_weighted(model, rec, x, t0, t1, n_steps=n_steps, solver=solver,
                                    n_save=n_save)
        extra["log_weights"] = log_w.astype(np.float32)
    else:
        path = push(model, rec, x, t0, t1, n_steps=n_steps, solver=solver,
                    stochastic=bool(stochastic), random_state=random_state, n_save=n_save)
    grid = np.linspace(t0, t1, n_save + 1)
    if copy:
        adata = adata.copy()
    adata.uns[key][key_added] = h5ad_safe({
        "paths": path.astype(stored_dtype(path)), "times": tl.to_obs(grid),
        "model_times": grid,
        "cells": np.asarray(adata.obs_names[mask], dtype=object), "solver": solver,
        "stochastic": bool(stochastic), "n_steps": n_steps, "random_state": random_state,
        **extra})
    log_added((f"{key}/{key_added}", f"{int(mask.sum())} paths of {n_save + 1} states",
               "adata.uns"))
    return adata if copy else None


def predict(adata: AnnData, time, *, key: str = "scflow", from_time=None, n_steps: int = 100,
            solver: str = "euler", stochastic: bool = False,
            random_state: int = 0, genes: bool = False, clip: bool | None = None) -> AnnData:
    """The predicted population at any time, observed or not.

    Every cell of ``from_time`` is carried along the field to ``time``. Times between
    timepoints are placed on the model's time axis by linear interpolation; times past the
    last timepoint are extrapolated (with a warning), up to the observed span past either
    end (farther is refused).

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``; not modified.
    time
        Target time, in the units of ``obs[time_key]`` (a timepoint's value or label, or any
        number on that axis).
    key
        The fit's ``key_added``.
    from_time
        Timepoint whose cells are pushed: its value or label, a number written to fewer
        digits (``0.333`` for day 1/3: the one timepoint that rounds to it, else an error),
        or a label of another ``obs`` column that relabels the timepoints one to one
        (``"8h"``); default the latest trained timepoint at or before
        ``time`` (a held-out timepoint is skipped). At a trained timepoint that is the
        timepoint itself, whose cells are returned unchanged (with a warning: they are the
        real cells, not a prediction): pass an earlier ``from_time`` to see what the model
        predicts there.
    n_steps, solver
        Integration steps over ``[from_time, time]`` and the ODE solver.
    stochastic
        Sample the SDE of an SB-CFM model instead of the ODE.
    random_state
        Seed of the SDE noise.
    genes
        Put the prediction in gene space in ``.X``: ``mean + x_pca @ varm["PCs"].T`` (fit on
        ``"X_pca"`` with ``varm["PCs"]``), over the genes with a non-zero loading on the
        fitted PCs (the others are not modelled and are left out), so predicted cells can be
        plotted by marker gene.
    clip
        With ``genes=True``: clip the expression at 0 (default ``None``: when ``adata.X``
        holds no negative value).

    Returns
    -------
    A new AnnData, one row per pushed cell, with the prediction in ``.X`` (in gene space
    with ``genes=True``, else the representation) and
    ``.obsm[use_rep]`` (first ``n_dims`` dims, representation units),
    ``obs["source_cell"]`` (obs_name of the source cell), ``obs[time_key]`` (= ``time``),
    ``uns["scflow_predict"]`` (the parameters, model times, ``extrapolated``,
    ``genes``, ``clip``, ``observed``: whether the cells are the real ones of a trained
    timepoint) and, for a growth-aware fit (``method="uotcfm"``), ``obs["weight"]``: each
    predicted cell's mass, its source cell's expected number of descendants at ``time``
    (score the prediction as a weighted cloud, e.g.
    ``scflow.metrics.wasserstein(..., a=obs["weight"])``).
    """
    check_adata(adata, writing=False)
    rec = read_fit(adata, key)
    tl = rec.timeline
    n_steps = check_steps(n_steps)
    random_state = seed(random_state)
    t1 = tl.model_time(time, "time")
    if from_time is None:
        ks = [k for k in range(tl.n) if k != tl.holdout_index and tl.times[k] <= t1 + 1e-12]
        if not ks:
            raise ValueError(f"time={time!r} is before the first timepoint; pass from_time to "
                             "integrate backwards")
        k0 = ks[-1]
    else:
        k0 = tl.require_index(from_time, "from_time")
    t0 = float(tl.times[k0])
    check_solver(rec, solver, stochastic, t0, t1)
    if not isinstance(genes, (bool, np.bool_)):
        raise ValueError(f"genes must be True or False, got {genes!r}")
    pcs = gene_loadings(adata, rec) if genes else None
    clip = resolve_clip(adata, clip) if genes else False
    mask = start_cells(adata, rec, k0, from_time, "from_time")
    x = rep_of(adata, rec, mask)[mask]
    if t1 == t0:
        warnings.warn(f"time={time!r} is the trained timepoint {tl.describe()[k0]!r}: the "
                      "returned cells are its real cells, not a prediction; pass an earlier "
                      "from_time to see what the model predicts there", UserWarning,
                      stacklevel=2)
    if tl.is_extrapolation(t1):
        logger.warning(f"time={time!r} is outside the observed timepoints "
                       f"({tl.describe()[0]!r} to {tl.describe()[-1]!r}): extrapolating")
    log_w = np.zeros(len(x)) if is_growth_fit(rec) else None  # growth hook
    if t1 == t0:
        pred = x.copy()
    elif log_w is not None:
        model = load_model(adata, key, device=device())
        pred, log_w = push_weighted(model, rec, x, t0, t1, n_steps=n_steps, solver=solver)
    else:
        model = load_model(adata, key, device=device())
        pred = push(model, rec, x, t0, t1, n_steps=n_steps, solver=solver,
                    stochastic=bool(stochastic), random_state=random_state)
    out = _prediction(adata, rec, pred, mask, time, t1, k0, t0, pcs, n_steps=n_steps,
                      solver=solver, stochastic=bool(stochastic), random_state=random_state,
                      genes=bool(genes), clip=clip, observed=bool(t1 == t0))
    if log_w is not None:  # each predicted cell's expected number of descendants
        out.obs["weight"] = np.exp(log_w)
    return out


def _prediction(adata: AnnData, rec: FitRecord, pred: np.ndarray, mask: np.ndarray, time,
                t1: float, k0: int, t0: float, pcs: np.ndarray | None, **opts) -> AnnData:
    tl = rec.timeline
    src = np.asarray(adata.obs_names[mask])
    x_out = pred
    if pcs is not None:
        keep = carried_genes(pcs)
        var = adata.var_names[keep].astype(str)
        x_out, _ = to_genes(pred, pca_mean(adata)[keep], pcs[keep], opts["clip"])
        if not keep.all():
            logger.info(f"    {int((~keep).sum())} genes with zero loadings on the fitted PCs "
                        "are left out of the gene-space prediction")
    elif rec.use_rep == "X":
        var = adata.var_names[: rec.n_dims].astype(str)
    else:
        var = [f"{rec.use_rep.removeprefix('X_')}{j + 1}" for j in range(rec.n_dims)]
    value = tl.value_of(time)
    obs = pd.DataFrame({"source_cell": src.astype(str)},
                       index=pd.Index([f"{s}-pred" for s in src]))
    obs[rec.time_key] = (np.full(len(src), value) if tl.numeric
                         else pd.Categorical([value] * len(src)))
    out = AnnData(X=x_out.astype(stored_dtype(x_out)), obs=obs,
                  var=pd.DataFrame(index=pd.Index(var)))
    out.obsm[rec.use_rep] = pred.astype(stored_dtype(pred))
    out.uns["scflow_predict"] = h5ad_safe({
        "key": rec.key, "use_rep": rec.use_rep, "time_key": rec.time_key, "time": value,
        "model_time": t1, "from_time": tl.value_at(k0),
        "from_model_time": t0,
        "extrapolated": tl.is_extrapolation(t1), **opts})
    logger.info(f"    predicted {len(src)} cells at {rec.time_key}={value!r} from the cells "
                f"of {tl.describe()[k0]!r}")
    return out
