"""``tl.leave_one_out`` and ``tl.error_budget``: the benchmark protocol on an AnnData."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
from anndata import AnnData

from .._adata.access import check_adata, get_times, time_course
from .._adata.times import Timeline
from ..flow.timecourse import TimeCourse
from ..methods import check as methods_check
from ..methods import default_methods
from ..protocols import error_budget_tc, leave_one_out_tc
from ..protocols.intervals import check_n_boot
from ..protocols.selection import ALL_CANDIDATES, candidate_label, nested_leave_one_out


def leave_one_out(adata: AnnData, time_key: str = "day", *, use_rep: str = "X_pca",
                  methods: Sequence[str] = default_methods("leave_one_out"),
                  seeds: Sequence[int] = (0, 1, 2), n_dims: int | None = None,
                  whiten: bool = True, time_scale: str = "index",
                  holdouts: Sequence | None = None, n_euler: int = 100,
                  device: str = "auto", progress: bool | None = None,
                  select: bool | Sequence | None = None, select_seeds: Sequence[int] = (0,),
                  n_boot: int = 0, **train_kwargs) -> pd.DataFrame:
    """Leave-one-timepoint-out benchmark (TorchCFM's protocol).

    Use the timepoint index as time; for each interior timepoint ``k`` and seed, train
    without ``k`` (bridging ``k - 1 -> k + 1``), push every cell of ``k - 1`` to ``k`` with
    ``n_euler`` Euler steps and score against the real cells of ``k``.

    ``whiten``: the first ``n_dims`` dimensions of ``use_rep`` are standardised. For each
    held-out ``k`` the scaler that training and the static references see is fitted on the
    kept cells only (never on ``k``'s); predictions are scored in the units of a scaler
    fitted on all cells (the published protocol's units, the same for every held-out time
    and method), by mapping them back. The nested selection (``select``) refits it on the
    kept cells of each outer and inner hold-out alike.

    Parameters
    ----------
    adata
        Annotated data; not modified. May be backed (``backed="r"``): only the columns
        used are read.
    time_key
        Column of ``obs`` with each cell's time.
    use_rep
        Key of ``obsm`` (or ``"X"``).
    methods
        Registered names (:mod:`scflow.methods`): ``"icfm"``, ``"otcfm"``, ``"sbcfm"``,
        ``"mmfm"``, ``"uotcfm"`` (growth-aware, scored as a weighted cloud),
        ``"static_ot"``, ``"static_spline"``, ``"static_partial"``, ``"static_mean_spline"``,
        ``"static_mix"`` (the count-mix null).
    seeds
        Random states, one fit each.
    holdouts
        Time labels (in the units of ``obs[time_key]``) to hold out; default every
        interior timepoint.
    select
        Also run the nested protocol (:func:`scflow.protocols.selection.nested_leave_one_out`): for
        each held-out ``k``, choose a candidate by leave-one-out on the other timepoints
        only, then score it at ``k`` (rows with ``method`` ``"auto"``). ``True``: among
        :data:`scflow.protocols.selection.ALL_CANDIDATES`; or a list of candidates (method names or
        ``{"method": ..., setting: value}`` dicts).
    select_seeds
        Seeds of the inner fits of ``select``.
    n_boot
        Bootstrap replicates of every W1 over cells (``w1_lo``, ``w1_hi``: the 95%
        interval centred on the score, :func:`scflow.protocols.intervals.bootstrap_w1`); 0: none.
    **train_kwargs
        The training options (:class:`scflow.TrainConfig`, as ``config=`` or its fields by
        name): ``n_steps``, ``batch_size``, ``lr``, ``sigma``, ``hidden``, ``coupling``; ``spline``
        and ``window`` for ``mmfm``, ``static_spline`` and ``static_mean_spline``; ``reg``,
        ``reg_m``, ``growth_weight`` for ``uotcfm``; ``mass`` for the methods that take
        population sizes (``static_partial``, ``static_mix``, ``uotcfm``: the relative
        population size at each timepoint, in time order; default the numbers of cells).

    Returns
    -------
    A long DataFrame: ``method``, ``holdout``, ``holdout_index``, ``seed``, ``w1``, ``w2``,
    ``mmd``, ``floor`` (sampling floor of the held-out time), ``seconds``, ``w1_lo``,
    ``w1_hi``. With ``select``, also ``chosen`` (the candidate chosen for that held-out
    time) and ``fallback``, and ``df.attrs["selection"]`` holds the inner rows every choice
    was made by (with ``outer_holdout_index``).
    """
    check_adata(adata, writing=False, backed_ok=True)
    methods = nonempty(methods, "methods", "method")
    seeds = nonempty(seeds, "seeds", "seed")
    methods_check(methods)
    candidates = _candidates(select)
    n_boot = check_n_boot(n_boot)
    tc, idx = _course(adata, time_key, use_rep, n_dims, whiten, time_scale, holdouts)
    df = leave_one_out_tc(tc, methods, seeds, holdouts=idx, n_euler=n_euler, device=device,
                          progress=progress, n_boot=n_boot, **train_kwargs)
    if candidates is None:
        return df
    auto, inner = nested_leave_one_out(tc, candidates, seeds, holdouts=idx,
                                       select_seeds=nonempty(select_seeds, "select_seeds",
                                                             "seed"),
                                       n_euler=n_euler, device=device, progress=progress,
                                       n_boot=n_boot, **train_kwargs)
    out = pd.concat([df, auto], ignore_index=True)
    out.attrs["selection"] = inner
    return out


def _candidates(select) -> list | None:
    """The candidates of ``select`` (``None``: no selection), checked before any work."""
    if select is None or select is False:
        return None
    if select is True:
        return list(ALL_CANDIDATES)
    if isinstance(select, Mapping):
        select = [select]
    values = nonempty(select, "select", "candidate (or True for the default list)")
    for c in values:
        candidate_label(c)  # raises a ValueError naming the bad candidate
    return values


def error_budget(adata: AnnData, time_key: str = "day", *, use_rep: str = "X_pca",
                 n_dims: int | None = None, whiten: bool = True, time_scale: str = "index",
                 holdouts: Sequence | None = None, n_fractions: int = 21) -> pd.DataFrame:
    """Where the leave-one-out error of each held-out timepoint comes from.

    For every interior timepoint ``k``, on the data as :func:`leave_one_out` scales them:
    the sampling floor; the W1 of the static-OT reference (McCann interpolant of the exact
    plan ``k - 1 -> k + 1`` at ``k``'s time); the W1 left when that interpolant is taken at
    the fraction that fits ``k``'s cells best (a timing oracle) or moved onto ``k``'s mean
    (a centre oracle). The oracles read the held-out cells: they bound what better timing or
    a better centre could gain, and are not methods.

    Parameters
    ----------
    adata
        Annotated data; not modified. May be backed (``backed="r"``).
    time_key
        Column of ``obs`` with each cell's time.
    use_rep
        Key of ``obsm`` (or ``"X"``).
    n_dims, whiten, time_scale
        As in :func:`leave_one_out`.
    holdouts
        Time labels (in the units of ``obs[time_key]``); default every interior timepoint.
    n_fractions
        Number of evenly spaced fractions in ``[0, 1]`` the timing oracle searches (the
        protocol's own fraction is searched too).

    Returns
    -------
    One row per held-out timepoint: ``holdout``, ``holdout_index``, ``floor``, ``w1_prev``
    and ``w1_next`` (W1 to each neighbour), ``fraction`` (where the protocol places ``k``),
    ``static_ot``, ``best_fraction``, ``timing_oracle``, ``centre_oracle``.
    """
    check_adata(adata, writing=False, backed_ok=True)
    tc, idx = _course(adata, time_key, use_rep, n_dims, whiten, time_scale, holdouts)
    return error_budget_tc(tc, idx, n_fractions=n_fractions)


def nonempty(values, name: str, what: str) -> list:
    """``values`` as a list; a ``ValueError`` naming ``name`` when it is empty."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"{name} must list at least one {what}, got an empty list")
    return values


def _course(adata: AnnData, time_key: str, use_rep: str, n_dims: int | None, whiten: bool,
            time_scale: str, holdouts: Sequence | None) -> tuple[TimeCourse, list[int] | None]:
    """The scaled time course, and the indices of the held-out time labels (or ``None``)."""
    if holdouts is not None:
        holdouts = nonempty(holdouts, "holdouts", "time label (or None for every interior "
                                                  "timepoint)")
    tc = time_course(adata, time_key, use_rep, n_dims=n_dims, whiten=whiten,
                     time_scale=time_scale)
    if holdouts is None:
        return tc, None
    timeline = Timeline.from_column(tc, get_times(adata, time_key))
    return tc, [timeline.require_index(h, "holdouts") for h in holdouts]
