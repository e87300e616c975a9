"""``tl.growth``: per-cell growth rates and expected descendants of a growth-aware fit."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from anndata import AnnData

from .._adata.access import check_adata, get_times
from .._adata.fit import check_finite, check_steps, device, per_obs_time, rep_of
from .._adata.store import FitRecord, check_key, h5ad_safe, load_model, log_added, read_fit
from .._checks import MAX_PUSH_STEPS
from ..flow.integrate import integrate
from ..flow.model import FlowModel
from ..methods import get, names

__all__ = ["growth", "push_weighted", "is_growth_fit", "GROWTH_UNITS"]

_CHUNK = 65_536
#: units of the rates ``tl.growth`` writes (``"auto"`` resolves to one of the other two)
GROWTH_UNITS = ("auto", "time", "model")


def resolve_units(rec: FitRecord, units: str) -> str:
    """``"time"`` or ``"model"``: ``"auto"`` is per unit of ``obs[time_key]`` when its times
    are numbers in order (as ``tl.growth_prior``'s per-day rates), else per model time."""
    if units not in GROWTH_UNITS:
        raise ValueError(f"units must be one of {GROWTH_UNITS}, got {units!r}")
    if units == "auto":
        return "time" if rec.timeline.numeric and rec.timeline.monotone else "model"
    return units


def is_growth_fit(rec: FitRecord) -> bool:
    """Whether the fit under ``rec`` has a growth field: its method ``learns_growth``."""
    method = str(rec.params.get("method"))
    return method in names() and get(method).neural and get(method).learns_growth


def push_weighted(model: FlowModel, rec: FitRecord, x_rep: np.ndarray, t0: float, t1: float,
                  *, n_steps: int, solver: str = "euler", n_save: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scflow._adata.fit.push` for growth-aware fits: also each cell's log-weight.

    Returns the states (representation units) and ``log w`` (``(n,)``, or ``(n_save + 1,
    n)`` with ``n_save``), ``log w = 0`` at ``t0``.
    """
    xm = torch.as_tensor(rec.to_model(x_rep), dtype=torch.float32, device=model.device)
    out, log_w = integrate(model, xm, float(t0), float(t1), n_steps=n_steps, solver=solver,
                           return_path=n_save is not None, n_save=n_save, batch_size=_CHUNK,
                           log_weights=True)
    check_finite(out, f"the push from model time {t0:g} to {t1:g}", rec.key)
    check_finite(log_w, f"the log-weight of the push from model time {t0:g} to {t1:g}",
                 rec.key)
    return rec.to_rep(out.cpu().numpy()), log_w.cpu().numpy().astype(np.float64)


def _push_steps(n_steps: int, span: float) -> int:
    """Euler steps of a weighted push over ``span`` model-time units (``n_steps`` per unit),
    bounded by :data:`scflow._checks.MAX_PUSH_STEPS` (a ``ValueError`` naming ``n_steps``)."""
    steps = max(1, int(round(n_steps * span)))
    if steps > MAX_PUSH_STEPS:
        raise ValueError(f"n_steps={n_steps} per unit of model time over {span:g} units is "
                         f"{steps:,} steps for one push, more than {MAX_PUSH_STEPS:,}; pass a "
                         "smaller n_steps or a nearer to_time")
    return steps


def growth(adata: AnnData, *, key: str = "scflow", to_time=None, n_steps: int = 100,
           units: str = "auto", key_added: str | None = None,
           copy: bool = False) -> AnnData | None:
    """Per-cell growth rate of a growth-aware fit, and expected descendants at a later time.

    The growth field ``g(t, x)`` of a ``method="uotcfm"`` fit is read at every cell's own
    time and state: ``d log(mass) / dt``. The model learns it per unit of model time (one
    timepoint with ``time_scale="index"``: two days on LARRY); by default it is written per
    unit of ``obs[time_key]`` (per day), the units of :func:`scflow.tl.growth_prior`'s
    rates, through the slope of the timeline at each cell's time, as
    :func:`scflow.tl.velocity` does with ``units="time"``. With ``to_time``, every cell of a
    timepoint before it is carried
    along the field to ``to_time`` with its log-weight (``d log w / dt = g``), and ``exp(log
    w)`` is its expected number of descendants there (1: as many as it is; 2: it doubled).

    Parameters
    ----------
    adata
        Annotated data with a ``uotcfm`` fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    to_time
        A time in the units of ``obs[time_key]``, at most the observed span past the last
        timepoint; default: no descendants computed. Descendants that overflow float64 are
        stored as ``inf``, with a warning.
    n_steps
        Euler steps per unit of model time for the push to ``to_time``.
    units
        ``"time"``: rates per unit of ``obs[time_key]`` (e.g. per day; numeric times in
        order only); ``"model"``: per unit of model time; ``"auto"`` (default): ``"time"``
        where the times are numeric, else ``"model"``. Descendants have no unit.
    key_added
        Prefix of the ``obs`` columns (default ``key + "_growth"``).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obs[key_added + "_rate"]``
        The growth rate of every cell at its own time (per day with ``units="time"`` and
        days in ``obs[time_key]``; ``log(2) / rate`` is a doubling time).
    ``adata.obs[key_added + "_descendants"]``
        With ``to_time``: the expected number of descendants at ``to_time`` of every cell
        of an earlier timepoint (NaN for the other cells).
    ``adata.uns[key_added + "_params"]``
        ``key`` (the fit), ``units`` (``"time"`` or ``"model"``, resolved), ``per`` (what
        a rate is per: ``"<time_key>"`` or ``"model time"``), ``to_time`` (``""`` for
        none).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    if not is_growth_fit(rec):
        raise ValueError(f"tl.growth needs a growth-aware fit (method among "
                         f"{names('neural', learns_growth=True)}); "
                         f"adata.uns[{key!r}] holds method {rec.params.get('method')!r}")
    prefix = check_key(f"{key}_growth" if key_added is None else key_added, "key_added")
    n_steps = check_steps(n_steps)
    if f"{prefix}_params" == key:
        raise ValueError(f"key_added={prefix!r} would overwrite the fit in adata.uns[{key!r}]; "
                         "choose another name")
    units = resolve_units(rec, units)
    if units == "time" and not (rec.timeline.numeric and rec.timeline.monotone):
        per_obs_time(rec, rec.timeline.times)  # raises: units='time' needs numeric times
    tl = rec.timeline
    t_end = None if to_time is None else tl.model_time(to_time, "to_time")
    if t_end is not None:  # the longest push, checked before any: from the first timepoint
        _push_steps(n_steps, t_end - float(tl.times[0]))
    index = tl.cell_index(get_times(adata, rec.time_key))
    x = rep_of(adata, rec)
    model = load_model(adata, key, device=device())
    t_cell = np.asarray(tl.times, dtype=np.float64)[index]
    xm = torch.as_tensor(rec.to_model(x), dtype=torch.float32, device=model.device)
    tm = torch.as_tensor(t_cell, dtype=torch.float32, device=model.device)
    with torch.no_grad():
        rate = torch.cat([model.growth(t, c) for t, c in zip(torch.split(tm, _CHUNK),
                                                              torch.split(xm, _CHUNK),
                                                              strict=True)])
    check_finite(rate, "the growth rate", rec.key)
    rate = rate.cpu().numpy().astype(np.float64)
    if units == "time":  # d log m / d(obs time) = d log m / d(model time) * d(model) / d(obs)
        rate = rate * per_obs_time(rec, t_cell)
    descendants = None
    if t_end is not None:
        descendants = np.full(adata.n_obs, np.nan)
        for k in range(tl.n):
            t0 = float(tl.times[k])
            if t0 >= t_end:
                continue
            mask = index == k
            _, log_w = push_weighted(model, rec, x[mask], t0, t_end,
                                     n_steps=_push_steps(n_steps, t_end - t0))
            with np.errstate(over="ignore"):
                descendants[mask] = np.exp(log_w)
        huge = int(np.isinf(descendants).sum())
        if huge:
            warnings.warn(f"{huge} cells' expected descendants at to_time={to_time!r} overflow "
                          "float64 (stored as inf): the growth field compounds beyond 1e308 "
                          "there; read a nearer to_time", UserWarning, stacklevel=2)
    if copy:
        adata = adata.copy()
    per = rec.time_key if units == "time" else "model time"
    adata.obs[f"{prefix}_rate"] = rate
    adata.uns[f"{prefix}_params"] = h5ad_safe({
        "key": key, "units": units, "per": per,
        "to_time": "" if to_time is None else str(to_time)})
    added = [(f"{prefix}_rate", f"growth rate per cell at its own time, per {per}",
              "adata.obs"), (f"{prefix}_params", "its units and fit", "adata.uns")]
    if descendants is not None:
        adata.obs[f"{prefix}_descendants"] = descendants
        added.append((f"{prefix}_descendants", f"expected descendants at {to_time!r}",
                      "adata.obs"))
    log_added(*added)
    return adata if copy else None
