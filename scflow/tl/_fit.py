"""``tl.fit``: learn the velocity field of a time course stored in an AnnData."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from anndata import AnnData

from .._adata.access import check_adata, get_times, time_course
from .._adata.store import check_key, h5ad_safe, log_added, obs_alias
from .._adata.time_labels import display_labels
from .._adata.times import Timeline
from .._checks import seed
from .._settings import logger
from ..flow.timecourse import TimeCourse
from ..methods import default_fit_method, get, names
from ..training.config import TrainConfig
from ..training.loop import fit_flow, resolve_device
from ._guards import check_fit_memory, warn_counts_design, warn_few_cells, warn_gene_space
from ._select import check_fit_candidates, choose_for_fit, selection_record

__all__ = ["fit"]

_D = TrainConfig()  # the defaults of the keyword options


def fit(adata: AnnData, time_key: str = "day", *, use_rep: str = "X_pca",
        n_dims: int | None = None, method: str = default_fit_method(),
        time_scale: str = "index",
        holdout=None, key_added: str = "scflow", device: str = "auto", random_state: int = 0,
        copy: bool = False, n_steps: int = _D.n_steps, batch_size: int = _D.batch_size,
        lr: float = _D.lr, sigma: float | None = _D.sigma, hidden: Sequence[int] = _D.hidden,
        coupling: str = _D.coupling, whiten: bool = True, lr_schedule: str = _D.lr_schedule,
        ema: float | None = _D.ema, checkpoint: str | None = None,
        checkpoint_every: int = 500, spline: str = _D.spline,
        window: int | None = _D.window, reg: float | None = _D.reg,
        reg_m: float | None = _D.reg_m, growth_weight: float | None = _D.growth_weight,
        mass="counts", growth_prior: str | None = None, config: TrainConfig | None = None,
        progress: bool | None = None, candidates: Sequence | None = None) -> AnnData | None:
    """Learn one time-dependent velocity field that carries each timepoint onto the next.

    Cells are grouped by ``obs[time_key]``, the first ``n_dims`` dimensions of ``use_rep``
    are standardised on the cells trained on (``whiten``: all cells, or all but those of
    ``holdout``), and a conditional flow matching model is trained across every consecutive
    interval (:func:`scflow.fit_flow`).

    Parameters
    ----------
    adata
        Annotated data, one row per cell. It may be backed (``read_h5ad(...,
        backed="r")``): only ``obs[time_key]`` and the first ``n_dims`` columns of
        ``use_rep`` are read into memory (a backed or sparse ``X`` row-chunk by
        row-chunk), and the fit is written to ``adata.uns`` in memory.
    time_key
        Column of ``obs`` with each cell's time: numbers (e.g. days), or strings /
        categories that order (``"day 2"``, ``"8h"``, or an ordered categorical).
    use_rep
        Key of ``obsm`` (e.g. ``"X_pca"``), or ``"X"`` (dense or sparse).
    n_dims
        Use the first ``n_dims`` dimensions of ``use_rep`` (default: all).
    method
        ``"otcfm"`` (exact OT pairs, linear paths), ``"sbcfm"`` (entropic OT, Brownian
        bridges, with a score network for stochastic trajectories), ``"icfm"``, or
        ``"mmfm"`` (multi-marginal: whole trajectories drawn by chaining the exact OT plans
        of every interval, splines through them).
    time_scale
        ``"index"``: timepoint ``k`` is at model time ``k``; ``"real"``: the numeric time
        values, shifted to start at 0 and divided by the mean gap between timepoints
        (``params["time_origin"]``, ``params["time_unit"]``), so that seconds, days or years
        train and integrate alike, on the range of index time, while the timepoints keep
        their real spacing (the categories of an ordered categorical must then each hold
        one number, increasing along the categories). Times given to the tools are always
        in the units of ``obs[time_key]``.
    holdout
        A timepoint to leave out, in the units of ``obs[time_key]`` (its value or label);
        must be interior. Its neighbours are bridged as one interval. Its cells are never
        read: neither the scaler (``whiten``) nor ``method="auto"``'s choice sees them.
    key_added
        Key of ``adata.uns`` to write the fit to.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``... On the CPU, torch trains
        on one intra-op thread unless you chose a count (``OMP_NUM_THREADS``,
        ``torch.set_num_threads``, ``scflow.settings.n_threads``); yours is restored after.
    random_state
        Seed of the weights and of every draw. The draws pick cells by their position among
        the cells of their timepoint, in row order: the same rows in the same order give
        the same model, while reordering the rows gives another sample of pairs (and so
        another model) from the same data.
    copy
        Return a modified copy instead of writing to ``adata``.
    n_steps, batch_size, lr
        Adam steps, pairs drawn from each interval per step, learning rate.
    sigma
        Path noise (OT-/I-CFM, default 0.1) or Brownian diffusion (SB-CFM, default 0.5).
    hidden
        Widths of the hidden layers of the MLP.
    coupling
        ``"auto"`` (default: global plans while every interval holds at most
        :data:`scflow.training.loop.AUTO_GLOBAL_MAX_ENTRIES` cell pairs, 5000 x 5000 cells,
        and they fit in memory; minibatch above), ``"global"`` (one plan per interval, solved
        once; refused up front when it will not fit in memory) or ``"minibatch"``
        (TorchCFM). ``params`` records what was asked and what was used.
    whiten
        Standardise each dimension (mean 0, std 1) before training, with a scaler fitted
        on the kept cells (all but ``holdout``'s); stored under ``scaler``. ``False`` keeps
        the representation's units (``sigma`` is then in them), less an offset large enough
        to cost float32 precision (values around 1e9 with a spread of 1; stored as the
        scaler's mean, it moves no cell relative to another); a spread beyond 1e8, or a
        ``sigma`` more than 10 times the spread, is refused (a ``sigma`` above the spread
        warns).
    lr_schedule, ema
        ``"constant"`` or ``"cosine"`` learning rate; decay of the weight average that is
        kept (``None``: the last weights). See :func:`scflow.fit_flow`.
    checkpoint, checkpoint_every
        A file to save the training state to every ``checkpoint_every`` steps; when it
        exists, training resumes from it (see :func:`scflow.fit_flow`).
    spline, window
        ``method="mmfm"`` only: ``"natural"`` cubic or ``"pchip"`` spline, and the number
        of knots on each side of a segment that it is fitted through (``None``: all).
    reg, reg_m, growth_weight
        ``method="uotcfm"`` only: the unbalanced plan's entropic blur and early-marginal
        penalty (the latter in units of each interval's mean squared distance), and the
        weight of the growth loss (``None``: the defaults of :mod:`scflow.methods.uotcfm`).
    mass
        Methods that take population sizes (``method="uotcfm"``): ``"counts"`` (default:
        the numbers of cells), ``None`` (equal sizes: growth learned from the shapes
        alone), or one number > 0 per timepoint in time order (measured sizes). They set
        the mean growth of each interval, not which cells grow more than others.
    growth_prior
        ``method="uotcfm"`` only: an ``obs`` column of prior growth rates (e.g. from
        :func:`scflow.tl.growth_prior`, per day), per unit of ``obs[time_key]`` when it is
        numeric, else per timepoint. Each interval's plan pulls its early cells' masses
        towards ``exp(rate * length)`` (``reg_m`` sets how strongly) instead of equal
        shares; ``None`` (default): no prior.
    config
        All training options as one :class:`scflow.TrainConfig` (then leave the keywords
        ``n_steps`` ... ``growth_weight`` at their defaults).
    progress
        Show training progress: a bar in a terminal or notebook, a line every 10% of the
        steps in a log; ``None`` (default) shows it at ``scflow.settings.verbosity >= 1``.
        With ``method="auto"`` also a bar over the inner fits, then the choice and every
        candidate's inner W1, with the held-out timepoints as the data's time labels.
    candidates
        ``method="auto"`` only: neural methods, or dicts ``{"method": ..., setting: value}``
        (default :func:`scflow.methods.fit_candidates`, what each neural method's class
        offers: ``otcfm``, ``mmfm``, ``mmfm`` with ``window=1``, ``sbcfm``). Each is trained
        once per interior kept timepoint held out
        (seed ``random_state``, the training options above; its own settings override
        them); the lowest mean held-out W1 is fitted. With fewer than three kept timepoints
        nothing can be scored: the first candidate is fitted and the record says so.

    Raises
    ------
    scflow.TrainingDivergedError
        When training diverges (a loss not finite or exploding); ``adata`` is left as it
        was. Try a smaller ``lr``, ``whiten=True`` or check the data's scale.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes ``adata.uns[key_added]``,
    a dict of plain values and arrays that ``write_h5ad`` keeps:

    ``params``
        ``time_key``, ``use_rep``, ``n_dims`` (resolved), ``method``, ``time_scale``,
        ``holdout`` (label as a string, ``""`` for none), ``holdout_index`` (``-1`` for
        none), ``whiten``, ``n_steps``, ``batch_size``, ``lr``, ``sigma`` (resolved),
        ``hidden``, ``coupling`` (the coupling used, ``"global"`` or ``"minibatch"``),
        ``coupling_requested`` (as passed, e.g. ``"auto"``), ``random_state``, ``device``,
        ``scflow_version`` (and
        ``spline``, ``window`` for ``mmfm``, ``window`` ``-1`` for all knots; the keys the
        method registers as ``params``: ``masses``, ``growth_from``, ``reg``, ``reg_m``,
        ``growth_weight`` for ``uotcfm``; ``time_origin`` and ``time_unit`` for
        ``time_scale="real"``: model time is ``(value - time_origin) / time_unit``; also in
        ``model["meta"]``, absent from earlier fits, whose model time was
        ``value - first value``, as their stored ``timepoints["times"]`` say).
    ``timepoints``
        ``labels`` (strings), ``values`` (numeric), ``times`` (model times), ``n_cells``,
        ``numeric`` (whether ``obs[time_key]`` is numeric).
    ``scaler``
        ``mean`` and ``scale``: ``x_model = (x - mean) / scale`` (fitted on the kept cells;
        ``0`` and ``1`` without ``whiten``).
    ``loss``
        Training loss of every step.
    ``model``
        :meth:`scflow.FlowModel.to_dict` output, less what is stored above once (``loss``,
        ``times``, the scaler); :func:`scflow.load_model` rebuilds the model with them.
    ``selection``
        ``method="auto"`` only: the candidate chosen and the inner scores it was chosen by,
        ``summary`` (mean inner W1 per candidate) and ``scores`` (every inner fit) as
        DataFrames (see :func:`scflow.tl._select.selection_record`).
    """
    check_adata(adata, writing=not copy, backed_ok=True)
    if copy and adata.isbacked:
        raise ValueError("copy=True needs an in-memory AnnData; adata is backed (opened with "
                         "backed='r'): fit it in place (only adata.uns is written) or call "
                         "adata.to_memory() first")
    check_key(key_added, "key_added")
    cfg = TrainConfig.merge(config, {k: v for k, v in locals().items()
                                     if k in TrainConfig.names()})
    auto = method == "auto"
    if auto:
        candidates = check_fit_candidates(candidates)
    elif method not in names("neural"):
        raise ValueError(f"method must be one of {names('neural')} or 'auto', got {method!r}")
    elif candidates is not None:
        raise ValueError(f"candidates are chosen among with method='auto' only, got "
                         f"method={method!r}")
    if not isinstance(whiten, (bool, np.bool_)):
        raise ValueError(f"whiten must be True or False, got {whiten!r}")
    if ((auto or not get(method).takes_mass)
            and not (isinstance(mass, str) and mass == "counts")):
        raise ValueError(f"mass is read by methods that take population sizes "
                         f"({[m for m in names('neural') if get(m).takes_mass]}) only, got "
                         f"method={method!r}")
    if growth_prior is not None and (auto or not get(method).takes_mass):
        raise ValueError(f"growth_prior is read by growth-aware methods "
                         f"({[m for m in names('neural') if get(m).takes_mass]}) only, got "
                         f"method={method!r}")
    cfg = cfg.checked()  # every option, before anything runs (method='auto' trains first)
    random_state = seed(random_state)
    dev = resolve_device(device)
    check_fit_memory(adata, use_rep, n_dims, cfg.hidden, method)
    tc = time_course(adata, time_key, use_rep, n_dims=n_dims, whiten=bool(whiten),
                     time_scale=time_scale)
    timeline = replace(Timeline.from_column(tc, get_times(adata, time_key)),
                       alias=obs_alias(adata, time_key))  # holdout="8h" from another column
    prior = None if growth_prior is None else _prior_rates(adata, growth_prior, time_key,
                                                           tc, timeline)
    warn_gene_space(use_rep, tc.dim)
    warn_few_cells({lab: len(x) for lab, x in zip(timeline.labels, tc.xs, strict=True)},
                   "tl.fit")
    if not auto and get(method).takes_mass and isinstance(mass, str) and mass == "counts":
        warn_counts_design([len(x) for x in tc.xs], method)
    k = None if holdout is None else timeline.require_interior(holdout, "holdout")
    if k is not None:
        tc = tc.refit_scaler(k)  # the held-out cells never reach the scaler
    selection = None
    if auto:
        selection = choose_for_fit(tc, candidates, holdout=k, random_state=random_state,
                                   device=dev, config=cfg, progress=progress,
                                   shown=display_labels(timeline.values, timeline.labels,
                                                        timeline.numeric, adata))
        method, cfg = selection.method, replace(cfg, **selection.settings)
    logger.info(f"fitting {method} on {use_rep!r} ({tc.dim} dims, {tc.n_timepoints} "
                f"timepoints, {cfg.n_steps} steps)")
    takes_mass = get(method).takes_mass
    model = fit_flow(tc, method, holdout=k, config=cfg, device=dev, random_state=random_state,
                     checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                     progress=progress,
                     mass=("none" if mass is None else mass) if takes_mass else None,
                     growth_prior=None if prior is None else prior[0],
                     prior_times=None if prior is None else prior[1])
    if copy:
        adata = adata.copy()
    _write_fit(adata, model, tc, timeline, key_added, holdout_index=k, time_key=time_key,
               use_rep=use_rep, whiten=bool(whiten), time_scale=time_scale, device=str(device),
               coupling_requested=cfg.coupling)
    if selection is not None:
        adata.uns[key_added]["selection"] = h5ad_safe(
            selection_record(selection, timeline.labels))
    log_added((key_added, f"fitted {method} model, loss, scaler, timepoints"
               + (", selection" if selection is not None else ""), "adata.uns"))
    return adata if copy else None


def _prior_rates(adata: AnnData, key: str, time_key: str, tc: TimeCourse,
                 timeline: Timeline) -> tuple[list[np.ndarray], np.ndarray]:
    """``obs[key]``'s rates split by timepoint as ``tc`` holds the cells, and the time axis
    they are per unit of (``obs[time_key]``'s values when numeric, else the timepoints)."""
    import pandas as pd

    if not isinstance(key, str) or key not in adata.obs:
        raise ValueError(f"growth_prior must name a column of adata.obs (e.g. from "
                         f"scflow.tl.growth_prior), got {key!r}")
    col = adata.obs[key]
    if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        raise ValueError(f"growth_prior={key!r}: adata.obs[{key!r}] must hold numbers, got "
                         f"dtype {col.dtype}")
    rates = col.to_numpy(dtype=np.float64)
    if not np.isfinite(rates).all():
        raise ValueError(f"growth_prior={key!r}: adata.obs[{key!r}] holds NaN or infinite "
                         "values")
    codes = timeline.cell_index(get_times(adata, time_key))
    per_tp = [rates[codes == k] for k in range(tc.n_timepoints)]
    axis = timeline.values if timeline.numeric else np.arange(tc.n_timepoints, dtype=float)
    return per_tp, np.asarray(axis, dtype=np.float64)


def _write_fit(adata: AnnData, model, tc: TimeCourse, timeline: Timeline, key_added: str, *,
               holdout_index: int | None, time_key: str, use_rep: str, whiten: bool,
               time_scale: str, device: str, coupling_requested: str) -> None:
    meta = model.meta
    model_dict = model.to_dict()
    loss = np.asarray(model_dict["meta"].pop("loss"), dtype=np.float64)
    model_dict["meta"].pop("growth_loss", None)  # the loss above holds it
    for name in ("times", "scaler_mean", "scaler_scale"):  # stored once, below
        model_dict["meta"].pop(name, None)
    try:
        ver = version("scflow")
    except PackageNotFoundError:  # pragma: no cover
        ver = "unknown"
    k = -1 if holdout_index is None else int(holdout_index)
    params = {
        "time_key": time_key, "use_rep": use_rep, "n_dims": tc.dim,
        "method": meta["method"], "time_scale": time_scale,
        "holdout": "" if k < 0 else str(timeline.labels[k]), "holdout_index": k,
        "whiten": whiten, "n_steps": meta["n_steps"], "batch_size": meta["batch_size"],
        "lr": meta["lr"], "sigma": meta["sigma"], "hidden": np.asarray(model.hidden),
        "coupling": meta["coupling"], "coupling_requested": coupling_requested,
        "random_state": meta["random_state"],
        "lr_schedule": meta["lr_schedule"], "ema": meta["ema"],
        "device": device, "scflow_version": ver,
    }
    params.update({name: meta[name] for name in get(meta["method"]).params})
    params.update(tc.time_meta())  # real time: model time (value - origin) / unit
    adata.uns[key_added] = h5ad_safe({
        "params": params,
        "timepoints": {"labels": timeline.labels, "values": timeline.values,
                       "times": timeline.times,
                       "n_cells": np.asarray([len(x) for x in tc.xs], dtype=np.int64),
                       "numeric": timeline.numeric},
        "scaler": {"mean": tc.mean, "scale": tc.scale},
        "loss": loss,
        "model": model_dict,
    })
