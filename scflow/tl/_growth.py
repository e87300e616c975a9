"""``tl.growth``: per-cell growth rates and expected descendants of a growth-aware fit."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData

from .._checks import positive_int
from ..growth_train import GROWTH_METHOD
from ..integrate import integrate
from ..model import FlowModel
from ._anndata import check_adata, get_times
from ._store import FitRecord, check_key, load_model, log_added, read_fit
from ._velocity import device, rep_of

__all__ = ["growth", "push_weighted", "is_growth_fit"]

_CHUNK = 65_536


def is_growth_fit(rec: FitRecord) -> bool:
    """Whether the fit under ``rec`` has a growth field: its method is registered
    ``weighted`` (``method="uotcfm"``)."""
    from ..methods import get, names

    method = str(rec.params.get("method"))
    return method in names() and get(method).weighted


def push_weighted(model: FlowModel, rec: FitRecord, x_rep: np.ndarray, t0: float, t1: float,
                  *, n_steps: int, solver: str = "euler", n_save: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scflow.tl._velocity.push` for growth-aware fits: also each cell's log-weight.

    Returns the states (representation units) and ``log w`` (``(n,)``, or ``(n_save + 1,
    n)`` with ``n_save``), ``log w = 0`` at ``t0``.
    """
    xm = torch.as_tensor(rec.to_model(x_rep), dtype=torch.float32, device=model.device)
    out, log_w = integrate(model, xm, float(t0), float(t1), n_steps=n_steps, solver=solver,
                           return_path=n_save is not None, n_save=n_save, batch_size=_CHUNK,
                           log_weights=True)
    return rec.to_rep(out.cpu().numpy()), log_w.cpu().numpy().astype(np.float64)


def growth(adata: AnnData, *, key: str = "scflow", to_time=None, n_steps: int = 100,
           key_added: str | None = None, copy: bool = False) -> AnnData | None:
    """Per-cell growth rate of a growth-aware fit, and expected descendants at a later time.

    The growth field ``g(t, x)`` of a ``method="uotcfm"`` fit is read at every cell's own
    time and state: ``d log(mass) / dt``, per unit of model time (one timepoint with
    ``time_scale="index"``). With ``to_time``, every cell of a timepoint before it is carried
    along the field to ``to_time`` with its log-weight (``d log w / dt = g``), and ``exp(log
    w)`` is its expected number of descendants there (1: as many as it is; 2: it doubled).

    Parameters
    ----------
    adata
        Annotated data with a ``uotcfm`` fit under ``uns[key]``.
    key
        The fit's ``key_added``.
    to_time
        A time in the units of ``obs[time_key]``; default: no descendants computed.
    n_steps
        Euler steps per unit of model time for the push to ``to_time``.
    key_added
        Prefix of the ``obs`` columns (default ``key + "_growth"``).
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obs[key_added + "_rate"]``
        The growth rate of every cell at its own time (per unit of model time).
    ``adata.obs[key_added + "_rate_per_time"]``
        When the times are numbers (e.g. days): the same rate per unit of
        ``obs[time_key]`` (per day), the units of :func:`scflow.tl.growth_prior`'s rates, to
        read beside them: the model time per unit of time over the interval that starts at
        the cell's timepoint (the one before it, at the last timepoint).
    ``adata.obs[key_added + "_descendants"]``
        With ``to_time``: the expected number of descendants at ``to_time`` of every cell
        of an earlier timepoint (NaN for the other cells).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    if not is_growth_fit(rec):
        raise ValueError(f"tl.growth needs a growth-aware fit (method={GROWTH_METHOD!r}); "
                         f"adata.uns[{key!r}] holds method {rec.params.get('method')!r}")
    prefix = check_key(f"{key}_growth" if key_added is None else key_added, "key_added")
    n_steps = positive_int(n_steps, "n_steps")
    tl = rec.timeline
    t_end = None if to_time is None else tl.model_time(to_time, "to_time")
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
    rate = rate.cpu().numpy().astype(np.float64)
    descendants = None
    if t_end is not None:
        descendants = np.full(adata.n_obs, np.nan)
        for k in range(tl.n):
            t0 = float(tl.times[k])
            if t0 >= t_end:
                continue
            mask = index == k
            steps = max(1, int(round(n_steps * (t_end - t0))))
            _, log_w = push_weighted(model, rec, x[mask], t0, t_end, n_steps=steps)
            descendants[mask] = np.exp(log_w)
    per_time = rate * _model_per_time(tl)[index] if tl.numeric and tl.monotone else None
    if copy:
        adata = adata.copy()
    adata.obs[f"{prefix}_rate"] = rate
    added = [(f"{prefix}_rate", "growth rate per cell at its own time", "adata.obs")]
    if per_time is not None:
        adata.obs[f"{prefix}_rate_per_time"] = per_time
        added.append((f"{prefix}_rate_per_time", f"the same per unit of obs[{rec.time_key!r}]",
                      "adata.obs"))
    if descendants is not None:
        adata.obs[f"{prefix}_descendants"] = descendants
        added.append((f"{prefix}_descendants", f"expected descendants at {to_time!r}",
                      "adata.obs"))
    log_added(*added)
    return adata if copy else None


def _model_per_time(tl) -> np.ndarray:
    """Model time per unit of the user's time at every timepoint: over the interval that
    starts there (the one that ends there, at the last timepoint)."""
    slope = np.diff(np.asarray(tl.times, dtype=np.float64)) / np.diff(
        np.asarray(tl.values, dtype=np.float64))
    return np.append(slope, slope[-1]) if len(slope) else np.ones(tl.n)
