"""Reading the embedding and the times out of an AnnData, with checks before any write."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from ..timecourse import TimeCourse


def check_adata(adata: AnnData, *, writing: bool = True) -> None:
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")
    if writing and adata.is_view:
        raise ValueError("adata is a view; pass adata.copy() so scflow can write to it")
    if adata.isbacked:
        raise ValueError("adata is backed (opened with backed='r'); load it into memory with "
                         "adata.to_memory() first")


def get_rep(adata: AnnData, use_rep: str) -> np.ndarray:
    """The representation ``obsm[use_rep]`` (or ``X``), dense."""
    if use_rep == "X":
        x = adata.X
    elif use_rep in adata.obsm:
        x = adata.obsm[use_rep]
    else:
        raise KeyError(f"use_rep={use_rep!r} is not in adata.obsm (keys: "
                       f"{list(adata.obsm.keys())}); pass 'X' or an obsm key")
    if sp.issparse(x):
        x = x.toarray()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"use_rep={use_rep!r} must be 2-D (cells, dims), got {x.shape}")
    return x


def get_times(adata: AnnData, time_key: str):
    if time_key not in adata.obs:
        raise KeyError(f"time_key={time_key!r} is not a column of adata.obs (columns: "
                       f"{list(adata.obs.columns)})")
    return adata.obs[time_key]


def time_course(adata: AnnData, time_key: str, use_rep: str, *, n_dims: int | None,
                whiten: bool, time_scale: str, device="cpu") -> TimeCourse:
    """Build the tensors of the engine; raises on bad input before anything is written."""
    x = get_rep(adata, use_rep)
    times = get_times(adata, time_key)
    try:
        return TimeCourse.from_arrays(x, times, n_dims=n_dims, whiten=whiten,
                                      time_scale=time_scale, device=device)
    except ValueError as err:  # name the argument at fault
        msg = str(err)
        if "representation" in msg:
            raise ValueError(f"use_rep={use_rep!r}: {msg}") from None
        if "time label" in msg or "timepoint" in msg:
            raise ValueError(f"time_key={time_key!r}: {msg}") from None
        raise
