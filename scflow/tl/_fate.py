"""``tl.fate``: where cells go, labelled by the real cells they land among."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from tqdm.auto import tqdm

from .._checks import positive_int
from .._settings import settings
from ._anndata import check_adata, get_times
from ._store import check_key, h5ad_safe, load_model, log_added, read_fit
from ._velocity import device, push, rep_of

__all__ = ["fate", "knn_vote"]


def knn_vote(query: np.ndarray, ref: np.ndarray, codes: np.ndarray, n_classes: int,
             k: int, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Majority label of the ``k`` nearest reference points; returns codes and vote shares."""
    q = torch.as_tensor(query, dtype=torch.float32)
    r = torch.as_tensor(ref, dtype=torch.float32)
    c = torch.as_tensor(np.array(codes, dtype=np.int64))
    best, share = [], []
    for i in range(0, len(q), chunk):
        nn = torch.cdist(q[i: i + chunk], r).topk(k, dim=1, largest=False).indices
        votes = torch.nn.functional.one_hot(c[nn], n_classes).sum(1)
        top = votes.max(1)
        best.append(top.indices)
        share.append(top.values.to(torch.float64) / k)
    return torch.cat(best).numpy(), torch.cat(share).numpy()


def fate(adata: AnnData, groupby: str, *, key: str = "scflow", from_time=None, to_time=None,
         n_neighbors: int = 15, key_added: str = "fate", n_steps: int = 100,
         copy: bool = False) -> AnnData | None:
    """Predict each cell's fate: push it to a later timepoint and label it there.

    Cells are carried along the field (Euler, ``n_steps`` per push) to ``to_time``; each
    is given the majority ``obs[groupby]`` label of its ``n_neighbors`` nearest real cells
    of ``to_time`` (Euclidean, in the representation's units).

    Parameters
    ----------
    adata
        Annotated data with a fit under ``uns[key]``.
    groupby
        Column of ``obs`` with the labels of the cells at ``to_time`` (e.g. cell types).
    key
        The fit's ``key_added``.
    from_time
        Timepoint whose cells are pushed (units of ``obs[time_key]``); default every cell
        before ``to_time``, each from its own timepoint.
    to_time
        Timepoint where fates are read (default the last).
    n_neighbors
        Real cells voting for each pushed cell.
    key_added
        Name of the ``obs`` columns and of the ``uns`` entry written.
    n_steps
        Euler steps per push.
    copy
        Return a modified copy instead of writing to ``adata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``adata.obs[key_added]``
        Categorical fate of each pushed cell (NaN for cells not pushed).
    ``adata.obs[key_added + "_prob"]``
        Share of the neighbours voting for that fate (NaN for cells not pushed).
    ``adata.uns[key_added]``
        ``transitions``: a source-group × fate table stored as ``index`` (source
        ``groupby`` labels), ``columns`` (fates), ``values`` (row fractions) and ``counts``;
        ``params``: ``key``, ``groupby``, ``from_time`` (``""`` for all), ``to_time``,
        ``n_neighbors``, ``n_steps``. Rebuild the table with
        ``pd.DataFrame(t["values"], index=t["index"], columns=t["columns"])``.
    """
    check_adata(adata, writing=not copy)
    rec = read_fit(adata, key)
    check_key(key_added, "key_added")
    if key_added == key:
        raise ValueError(f"key_added={key_added!r} would overwrite the fit in adata.uns[{key!r}]; "
                         "choose another name")
    if not isinstance(groupby, str) or groupby not in adata.obs:
        raise KeyError(f"groupby={groupby!r} is not a column of adata.obs")
    n_neighbors = positive_int(n_neighbors, "n_neighbors")
    n_steps = positive_int(n_steps, "n_steps")
    tl = rec.timeline
    idx = tl.cell_index(get_times(adata, rec.time_key))
    k1 = tl.n - 1 if to_time is None else tl.require_index(to_time, "to_time")
    if from_time is None:
        src = idx < k1
    else:
        k0 = tl.require_index(from_time, "from_time")
        if k0 >= k1:
            raise ValueError(f"from_time={from_time!r} must come before to_time "
                             f"({tl.labels[k1]!r})")
        src = idx == k0
    if not src.any():
        raise ValueError(f"no cells to push before to_time={tl.labels[k1]!r}")
    groups = adata.obs[groupby]
    ref = (idx == k1) & groups.notna().to_numpy()
    if not ref.any():
        raise ValueError(f"no cell at to_time={tl.labels[k1]!r} has a {groupby!r} label")
    ref_groups = pd.Categorical(groups[ref].astype(str))
    x = rep_of(adata, rec)
    model = load_model(adata, key, device=device())
    pushed = np.empty((int(src.sum()), rec.n_dims))
    src_idx = idx[src]
    for k in tqdm(np.unique(src_idx), desc="scflow fate", leave=False,
                  disable=settings.verbosity < 1):
        sel = src_idx == k
        pushed[sel] = push(model, rec, x[src][sel], tl.times[k], tl.times[k1], n_steps=n_steps)
    cats = list(ref_groups.categories)
    best, share = knn_vote(pushed, x[ref], ref_groups.codes, len(cats),
                           min(n_neighbors, int(ref.sum())))
    table = _transitions(groups[src], best, cats)
    if copy:
        adata = adata.copy()
    codes = np.full(adata.n_obs, -1)
    codes[src] = best
    prob = np.full(adata.n_obs, np.nan)
    prob[src] = share
    adata.obs[key_added] = pd.Categorical.from_codes(codes, categories=cats)
    adata.obs[key_added + "_prob"] = prob
    adata.uns[key_added] = h5ad_safe({"transitions": table, "params": {
        "key": key, "groupby": groupby, "from_time": "" if from_time is None
        else str(tl.labels[k0]), "to_time": str(tl.labels[k1]), "n_neighbors": n_neighbors,
        "n_steps": n_steps}})
    log_added((key_added, "predicted fate", "adata.obs"),
              (key_added + "_prob", "vote share of the fate", "adata.obs"),
              (key_added, "source-group x fate transitions", "adata.uns"))
    return adata if copy else None


def _transitions(source: pd.Series, best: np.ndarray, cats: list[str]) -> dict:
    ok = source.notna().to_numpy()
    src = pd.Categorical(source[ok].astype(str))
    counts = np.zeros((len(src.categories), len(cats)), dtype=np.int64)
    np.add.at(counts, (src.codes, best[ok]), 1)
    rows = counts.sum(1, keepdims=True)
    values = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    return {"index": np.asarray(src.categories, dtype=object),
            "columns": np.asarray(cats, dtype=object), "values": values, "counts": counts}
