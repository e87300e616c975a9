"""``tl.velocity``: the learned field at every cell, in the representation's units."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from .._adata.access import check_adata, get_times
from .._adata.fit import (
    device,
    gene_loadings,
    per_obs_time,
    rep_of,
    rep_width,
    velocities,
)
from .._adata.store import check_key, load_model, log_added, read_fit
from ._guards import carried_genes, warn_uncarried

__all__ = ["velocity", "UNITS"]


UNITS = ("model", "time")


def velocity(adata: AnnData, *, key: str = "scflow", genes: bool = False, time=None,
             units: str = "model", key_added: str | None = None,
             copy: bool = False) -> AnnData | None:
    """Velocity of every cell under the learned field, in the representation's units.

    Each cell is evaluated at its own time (the model time of its timepoint in
    ``obs[time_key]``), or at ``time`` for all cells. The result is in the units of the
    fitted representation (whitening undone: ``v_rep = v_model * scale``) and as wide as the
    whole representation, so it can be used where RNA velocity is, e.g. by CellRank, as
    written::

        cellrank.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca",
                                        vkey="velocity_scflow")

    Dimensions of ``use_rep`` past the fitted ``n_dims`` (e.g. PCs 11 to 30 of a fit on
    ``n_dims=10``) are not modelled: their velocity is written as 0.

    Parameters
    ----------
    adata
        Annotated data with a fit from :func:`scflow.tl.fit` under ``uns[key]``.
    key
        The fit's ``key_added``.
    genes
        Also map the velocities to genes through the PCA loadings:
        ``v_genes = v_rep @ varm["PCs"][:, :n_dims].T`` (fit on ``"X_pca"`` only). Genes
        with zero loadings (left out of the PCA, e.g. not highly variable) get 0, with a
        warning, and are flagged in ``var``.
    time
        Evaluate every cell at this time (units of ``obs[time_key]``) instead of its own.
    units
        ``"model"`` (default): per unit of model time (with ``time_scale="index"``, per
        interval between timepoints); ``"time"``: per unit of ``obs[time_key]`` (e.g. per
        day; numeric times only), through the slope of the timeline at each cell's time
        (central difference at a timepoint).
    key_added
        Name of the written fields (default ``"velocity_" + key``), so two velocities
        (e.g. per model time and per day, or of two fits) stay side by side.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes (``name = key_added``)

    ``adata.obsm[name]``
        ``(n_obs, width of use_rep)`` velocities in representation units per unit of model
        time (or of ``obs[time_key]``); columns ``n_dims`` and above are 0.
    ``adata.uns[name]``
        ``key``, ``use_rep``, ``n_dims``, ``units``, ``time`` (``""`` for each cell's own).
    ``adata.layers[name]``
        ``(n_obs, n_vars)`` gene-space velocities, with ``genes=True`` only.
    ``adata.var[name + "_genes"]``
        With ``genes=True``: whether each gene has a non-zero loading (is modelled).
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    name = "velocity_" + key if key_added is None else key_added
    check_key(name, "key_added")
    if name in adata.uns and "model" in adata.uns[name]:
        raise ValueError(f"key_added={name!r} would overwrite the fit in adata.uns[{name!r}]; "
                         "choose another name")
    x = rep_of(adata, rec)
    width = rep_width(adata, rec.use_rep)
    if time is None:
        t_model = rec.timeline.times[rec.timeline.cell_index(get_times(adata, rec.time_key))]
    else:
        t_model = np.full(len(x), rec.timeline.model_time(time, "time"))
    rate = per_obs_time(rec, t_model) if units == "time" else None
    pcs = gene_loadings(adata, rec) if genes else None
    carried = carried_genes(pcs) if pcs is not None else None
    if carried is not None:
        warn_uncarried(adata.var_names, carried, "the gene-space velocity (0)")
    model = load_model(adata, key, device=device())
    v = velocities(model, rec, x, t_model)
    if rate is not None:
        v = v * rate[:, None]
    full = np.zeros((len(v), width), dtype=np.float32)
    full[:, : rec.n_dims] = v
    if copy:
        adata = adata.copy()
    adata.obsm[name] = full
    adata.uns[name] = {"key": key, "use_rep": rec.use_rep, "n_dims": int(rec.n_dims),
                       "units": units, "time": "" if time is None else str(time)}
    per = f"per unit of {rec.time_key}" if units == "time" else "per unit of model time"
    added = [(name, f"velocities in {rec.use_rep} units {per} (dims past {rec.n_dims} are 0)",
              "adata.obsm"), (name, "parameters", "adata.uns")]
    if pcs is not None:
        adata.layers[name] = (v @ pcs.T).astype(np.float32)
        adata.var[name + "_genes"] = carried
        added += [(name, "gene-space velocities through varm['PCs']", "adata.layers"),
                  (name + "_genes", "genes with non-zero loadings", "adata.var")]
    log_added(*added)
    return adata if copy else None
