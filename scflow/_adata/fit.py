"""A fit read from AnnData and run on its cells: the representation it was fitted on, the
field's velocities and pushes in the representation's units, integration steps, the PCA
loadings to genes, time units. Shared by the tools (``scflow.tl``) and the plots
(``scflow.pl``)."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData

from .._checks import MAX_PUSH_STEPS, integer
from ..flow.integrate import integrate
from ..flow.model import FlowModel
from ..flow.timecourse import float32_offset
from ..training.loop import resolve_device
from .access import get_rep
from .store import FitRecord

__all__ = ["rep_of", "rep_width", "stored_dtype", "check_finite", "velocities", "push",
           "check_steps", "steps_for", "device", "gene_loadings", "per_obs_time"]

_CHUNK = 65536

def rep_of(adata: AnnData, rec: FitRecord, rows: np.ndarray | None = None) -> np.ndarray:
    """The fitted representation of every cell (first ``n_dims`` dims), dense float64.

    ``rows``: a boolean mask of the cells the caller uses (default all); a ``ValueError``
    naming ``use_rep`` is raised when any of them holds NaN or infinite values, so no tool
    turns them into plausible-looking numbers.
    """
    x = get_rep(adata, rec.use_rep)
    if x.shape[1] < rec.n_dims:
        raise ValueError(f"use_rep {rec.use_rep!r} has {x.shape[1]} dims but the model was "
                         f"fitted on {rec.n_dims}")
    x = np.asarray(x[:, : rec.n_dims], dtype=np.float64)
    bad = ~np.isfinite(x).all(1)
    if rows is not None:
        bad &= np.asarray(rows, dtype=bool)
    if bad.any():
        names = [str(n) for n in adata.obs_names[bad][:3]]
        raise ValueError(f"use_rep={rec.use_rep!r}: {int(bad.sum())} of the cells used hold NaN "
                         f"or infinite values in the fitted dims (e.g. {names}); the field is "
                         "defined on finite states only: fix those cells or leave them out "
                         "(adata[mask].copy())")
    return x

def stored_dtype(x: np.ndarray) -> type:
    """``float32`` for positions (representation units) written to AnnData, unless float32
    would blur them (an offset far above their spread, e.g. values around 1e9: float32 steps
    of 64): then ``float64`` (:func:`scflow.flow.timecourse.float32_offset`'s rule)."""
    flat = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1]) if x.size else None
    return np.float64 if flat is not None and (float32_offset(flat) != 0).any() else np.float32

def check_finite(out: np.ndarray | torch.Tensor, what: str, key: str) -> None:
    """A ``ValueError`` when a result of the field (``out``) is not finite: the stored model
    (``uns[key]``) gives no number there, so none is returned."""
    finite = (torch.isfinite(out) if isinstance(out, torch.Tensor) else np.isfinite(out))
    if not bool(finite.all()):
        raise ValueError(f"{what} is not finite (NaN or inf) for some cells: the field stored in "
                         f"adata.uns[{key!r}] diverges there (damaged weights, or a time far "
                         "from the data); refit, or stay closer to the observed timepoints")

def velocities(model: FlowModel, rec: FitRecord, x_rep: np.ndarray,
               t_model: np.ndarray) -> np.ndarray:
    """``v(t, x)`` in representation units (``v_rep = v_model * scale``)."""
    xm = torch.as_tensor(rec.to_model(x_rep), dtype=torch.float32, device=model.device)
    tm = torch.as_tensor(np.broadcast_to(t_model, (len(xm),)).copy(), dtype=torch.float32,
                         device=model.device)
    with torch.no_grad():
        v = torch.cat([model.velocity(tm[i: i + _CHUNK], xm[i: i + _CHUNK])
                       for i in range(0, len(xm), _CHUNK)]) if len(xm) else xm
    check_finite(v, "the velocity", rec.key)
    return v.cpu().numpy().astype(np.float64) * rec.scale

def push(model: FlowModel, rec: FitRecord, x_rep: np.ndarray, t0: float, t1: float, *,
         n_steps: int, solver: str = "euler", stochastic: bool = False,
         random_state: int = 0, n_save: int | None = None) -> np.ndarray:
    """Carry cells (representation units) from model time ``t0`` to ``t1``.

    Returns the end states ``(n, d)``, or the path ``(n_save + 1, n, d)`` when ``n_save``.
    """
    xm = torch.as_tensor(rec.to_model(x_rep), dtype=torch.float32, device=model.device)
    g = torch.Generator(device=model.device).manual_seed(int(random_state))
    out = integrate(model, xm, float(t0), float(t1), n_steps=n_steps, solver=solver,
                    stochastic=stochastic, return_path=n_save is not None, n_save=n_save,
                    batch_size=_CHUNK, generator=g)
    check_finite(out, f"the push from model time {t0:g} to {t1:g}", rec.key)
    return rec.to_rep(out.cpu().numpy())

def check_steps(n_steps, name: str = "n_steps") -> int:
    """``n_steps`` of a push: a positive integer, at most :data:`scflow._checks.MAX_PUSH_STEPS`
    (a larger count would allocate its time grid and run for hours before any result)."""
    return integer(n_steps, name, lower=1, upper=MAX_PUSH_STEPS,
                   expected=f"a positive integer of at most {MAX_PUSH_STEPS:,}")

def steps_for(span: float, n_steps: int, name: str = "n_steps") -> int:
    """Euler steps of one push over ``span`` units of model time: ``n_steps`` per unit (at
    least ``n_steps``, at least 1); a ``ValueError`` naming ``name`` above
    :data:`scflow._checks.MAX_PUSH_STEPS`."""
    steps = max(1, int(round(n_steps * max(abs(span), 1.0))))
    if steps > MAX_PUSH_STEPS:
        raise ValueError(f"{name}={n_steps} per unit of model time over {abs(span):g} units is "
                         f"{steps:,} steps for one push, more than {MAX_PUSH_STEPS:,}; pass a "
                         "smaller n_steps or a time closer to the data")
    return steps

def device() -> torch.device:
    return resolve_device("auto")

def gene_loadings(adata: AnnData, rec: FitRecord) -> np.ndarray:
    """``varm["PCs"][:, :n_dims]``; ``KeyError`` unless the fit is on ``X_pca`` with PCs."""
    if rec.use_rep != "X_pca":
        raise KeyError(f"mapping to genes needs a model fitted on use_rep='X_pca' (with "
                       f"adata.varm['PCs']); this one is on {rec.use_rep!r}")
    if "PCs" not in adata.varm:
        raise KeyError("adata.varm['PCs'] is missing: mapping to genes goes through the PCA "
                       "loadings (run sc.pp.pca first)")
    pcs = np.asarray(adata.varm["PCs"], dtype=np.float64)
    if pcs.shape[1] < rec.n_dims:
        raise ValueError(f"adata.varm['PCs'] has {pcs.shape[1]} components, the model uses "
                         f"{rec.n_dims}")
    return pcs[:, : rec.n_dims]

def rep_width(adata: AnnData, use_rep: str) -> int:
    """Number of columns of ``obsm[use_rep]`` (or of ``X``), without reading it."""
    return int(adata.n_vars if use_rep == "X" else adata.obsm[use_rep].shape[1])

def per_obs_time(rec: FitRecord, t_model: np.ndarray) -> np.ndarray:
    """``d(model time) / d(obs time)`` at each model time (to turn per-model-time into per-day
    velocities): the slope of the timeline, central at a timepoint, one-sided at the ends."""
    tl = rec.timeline
    if not tl.numeric or not tl.monotone:
        raise ValueError(f"units='time' needs numeric, increasing times in obs[{rec.time_key!r}] "
                         f"(the timepoints are {tl.describe()}); use units='model'")
    t, v = tl.times, tl.values
    uniq, inverse = np.unique(np.asarray(t_model, dtype=np.float64), return_inverse=True)
    out = np.empty(len(uniq))
    for i, s in enumerate(uniq):  # one per distinct time (a timepoint, or the time given)
        k = int(np.clip(np.searchsorted(t, s), 0, len(t) - 1))
        if np.isclose(t[k], s):  # at a timepoint: central difference
            lo, hi = max(k - 1, 0), min(k + 1, len(t) - 1)
        else:  # inside (or past) a segment
            lo = int(np.clip(k - 1, 0, len(t) - 2))
            hi = lo + 1
        out[i] = (t[hi] - t[lo]) / (v[hi] - v[lo])
    return out[inverse.ravel()]
