"""``tl.velocity``: the learned field at every cell, in the representation's units."""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData

from ..integrate import integrate
from ..model import FlowModel
from ..train import resolve_device
from ._anndata import check_adata, get_rep, get_times
from ._store import FitRecord, load_model, log_added, read_fit

__all__ = ["velocity", "rep_of", "velocities", "push", "gene_loadings"]

_CHUNK = 65536


def rep_of(adata: AnnData, rec: FitRecord) -> np.ndarray:
    """The fitted representation of every cell (first ``n_dims`` dims), dense float64."""
    x = get_rep(adata, rec.use_rep)
    if x.shape[1] < rec.n_dims:
        raise ValueError(f"use_rep {rec.use_rep!r} has {x.shape[1]} dims but the model was "
                         f"fitted on {rec.n_dims}")
    return np.asarray(x[:, : rec.n_dims], dtype=np.float64)


def velocities(model: FlowModel, rec: FitRecord, x_rep: np.ndarray,
               t_model: np.ndarray) -> np.ndarray:
    """``v(t, x)`` in representation units (``v_rep = v_model * scale``)."""
    xm = torch.as_tensor(rec.to_model(x_rep), dtype=torch.float32, device=model.device)
    tm = torch.as_tensor(np.broadcast_to(t_model, (len(xm),)).copy(), dtype=torch.float32,
                         device=model.device)
    with torch.no_grad():
        v = torch.cat([model.velocity(tm[i: i + _CHUNK], xm[i: i + _CHUNK])
                       for i in range(0, len(xm), _CHUNK)]) if len(xm) else xm
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
    return rec.to_rep(out.cpu().numpy())


def steps_for(span: float, n_steps: int) -> int:
    """Euler steps of one push over ``span`` units of model time: ``n_steps`` per unit (at
    least ``n_steps``, at least 1)."""
    return max(1, int(round(n_steps * max(span, 1.0))))


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


def velocity(adata: AnnData, *, key: str = "scflow", genes: bool = False, time=None,
             copy: bool = False) -> AnnData | None:
    """Velocity of every cell under the learned field, in the representation's units.

    Each cell is evaluated at its own time (the model time of its timepoint in
    ``obs[time_key]``), or at ``time`` for all cells. The result is in the units of the
    fitted representation (whitening undone: ``v_rep = v_model * scale``), so it can be
    used where RNA velocity is, e.g. by CellRank::

        cellrank.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca",
                                        vkey="velocity_scflow")

    (``xkey`` the fitted ``use_rep``, first ``n_dims`` dimensions).

    Parameters
    ----------
    adata
        Annotated data with a fit from :func:`scflow.tl.fit` under ``uns[key]``.
    key
        The fit's ``key_added``; results are written under ``"velocity_" + key``.
    genes
        Also map the velocities to genes through the PCA loadings:
        ``v_genes = v_rep @ varm["PCs"][:, :n_dims].T`` (fit on ``"X_pca"`` only).
    time
        Evaluate every cell at this time (units of ``obs[time_key]``) instead of its own.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obsm["velocity_" + key]``
        ``(n_obs, n_dims)`` velocities in representation units per unit of model time.
    ``adata.layers["velocity_" + key]``
        ``(n_obs, n_vars)`` gene-space velocities, with ``genes=True`` only.
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    x = rep_of(adata, rec)
    if time is None:
        t_model = rec.timeline.times[rec.timeline.cell_index(get_times(adata, rec.time_key))]
    else:
        t_model = np.full(len(x), rec.timeline.model_time(time, "time"))
    pcs = gene_loadings(adata, rec) if genes else None
    model = load_model(adata, key, device=device())
    v = velocities(model, rec, x, t_model)
    if copy:
        adata = adata.copy()
    name = "velocity_" + key
    adata.obsm[name] = v.astype(np.float32)
    added = [(name, f"velocities in {rec.use_rep} units", "adata.obsm")]
    if pcs is not None:
        adata.layers[name] = (v @ pcs.T).astype(np.float32)
        added.append((name, "gene-space velocities through varm['PCs']", "adata.layers"))
    log_added(*added)
    return adata if copy else None
