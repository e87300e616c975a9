"""Reading plot inputs out of AnnData, with errors that say which tool to run first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from anndata import AnnData

from .._adata.access import get_rep, get_times
from .._adata.store import FitRecord, read_fit
from .._adata.time_labels import display_labels


def fit_record(adata: AnnData, key: str) -> FitRecord:
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")
    return read_fit(adata, key)


def result(adata: AnnData, key: str, field: str, tool: str) -> Mapping:
    """``adata.uns[key][field]``, or a ``KeyError`` telling which ``tl`` function writes it."""
    fit_record(adata, key)
    value = adata.uns[key].get(field)
    if value is None:
        raise KeyError(f"adata.uns[{key!r}][{field!r}] is missing; run "
                       f"scflow.tl.{tool}(adata, key={key!r}) first")
    return value


def resolve_basis(adata: AnnData, basis: str | None, use_rep: str) -> str:
    """An obsm key from ``basis`` (``"umap"`` or ``"X_umap"``); default the fit's ``use_rep``."""
    if basis is None or basis == use_rep:
        return use_rep
    return find_basis(adata, basis)


def default_basis(adata: AnnData, basis: str | None, fit_key: str | None) -> str:
    """The ``obsm`` key to draw cells on: ``basis`` (``"umap"`` or ``"X_umap"``) when given;
    else ``"X_umap"`` when ``adata`` has one, else the representation of the fit under
    ``uns[fit_key]`` (its ``use_rep``). A ``KeyError`` naming the keys when neither exists."""
    if basis is not None:
        return find_basis(adata, basis)
    if "X_umap" in adata.obsm:
        return "X_umap"
    rec = adata.uns.get(fit_key) if isinstance(fit_key, str) else None
    if isinstance(rec, Mapping) and "params" in rec:
        use_rep = str(rec["params"].get("use_rep", ""))
        if use_rep == "X" or use_rep in adata.obsm:
            return use_rep
    raise KeyError(f"no basis to draw on: adata.obsm has no 'X_umap' and no fit under "
                   f"adata.uns[{fit_key!r}] names one; pass basis= (obsm keys: "
                   f"{list(adata.obsm.keys())})")


def find_basis(adata: AnnData, basis: str) -> str:
    """The obsm key ``basis`` or ``"X_" + basis``; a ``KeyError`` listing the keys otherwise."""
    for name in (basis, f"X_{basis}"):
        if name in adata.obsm:
            return name
    raise KeyError(f"basis={basis!r} is not in adata.obsm (keys: {list(adata.obsm.keys())})")


def check_dims(dims: Sequence[int], n: int) -> tuple[int, int]:
    try:
        a, b = (int(d) for d in dims)
    except (TypeError, ValueError) as err:
        raise ValueError(f"dims must be two dimension indices, got {dims!r}") from err
    if a == b or not (0 <= a < n and 0 <= b < n):
        raise ValueError(f"dims must be two different indices in [0, {n}), got {dims!r}")
    return a, b


def cell_index(adata: AnnData, rec: FitRecord) -> np.ndarray:
    """Timepoint index of every cell."""
    return rec.timeline.cell_index(get_times(adata, rec.time_key))


def basis_coords(adata: AnnData, basis: str) -> np.ndarray:
    return np.asarray(get_rep(adata, basis), dtype=np.float64)


def knn_project(points: np.ndarray, ref: np.ndarray, ref_basis: np.ndarray, k: int = 10,
                chunk: int = 4096) -> np.ndarray:
    """Place points in another embedding: inverse-distance mean of their ``k`` nearest
    reference cells' coordinates there (an approximation for display only)."""
    p = torch.as_tensor(points, dtype=torch.float32)
    r = torch.as_tensor(ref, dtype=torch.float32)
    rb = torch.as_tensor(ref_basis, dtype=torch.float32)
    k = min(int(k), len(r))
    out = []
    for i in range(0, len(p), chunk):
        dist, nn = torch.cdist(p[i: i + chunk], r).topk(k, dim=1, largest=False)
        w = 1.0 / (dist + 1e-6)
        out.append((w[..., None] * rb[nn]).sum(1) / w.sum(1, keepdim=True))
    return torch.cat(out).numpy().astype(np.float64)


#: scanpy's names of the components of an embedding (``sc.pl.embedding``)
COMPONENT_NAMES = {"pca": "PC", "umap": "UMAP", "tsne": "tSNE", "diffmap": "DC", "phate": "PHATE",
                   "spring": "SPRING"}


def component_name(basis: str) -> str:
    """``"X_pca"`` -> ``"PC"`` (axes ``PC1``, ``PC2``), ``"X_umap"`` -> ``"UMAP"``..."""
    name = basis.removeprefix("X_") if basis != "X" else "X"
    if name.startswith("draw_graph_"):
        return name.removeprefix("draw_graph_").upper()
    return COMPONENT_NAMES.get(name, name + " ")


def axis_labels(ax, basis: str, dims: tuple[int, int]) -> None:
    name = component_name(basis)
    ax.set_xlabel(f"{name}{dims[0] + 1}")
    ax.set_ylabel(f"{name}{dims[1] + 1}")
    ax.set_xticks([])
    ax.set_yticks([])


def time_ticks(cbar, rec: FitRecord, adata: AnnData | None = None) -> None:
    """Ticks of a time colour bar at the timepoints, labelled as :func:`time_labels`."""
    tl = rec.timeline
    at = tl.values if tl.monotone else tl.times  # where tl.to_obs puts them
    cbar.set_ticks(list(at), labels=time_labels(rec, adata))


def time_labels(rec: FitRecord, adata: AnnData | None = None) -> list[str]:
    """The timepoints as text: the data set's own labels (``"8h"``, ``"1d"``) when
    ``adata.uns["scflow_dataset"]`` names every timepoint, else numbers to 3 significant
    digits (``0.333``), or the labels of a categorical time key
    (:func:`scflow._adata.time_labels.display_labels`)."""
    tl = rec.timeline
    return display_labels(tl.values, tl.labels, tl.numeric, adata)
