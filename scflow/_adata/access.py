"""Reading the embedding and the times out of an AnnData, with checks before any write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from anndata import AnnData

from .._checks import integer
from ..flow.timecourse import TimeCourse

#: rows of a backed or sparse ``X`` densified at a time
CHUNK_ROWS = 10_000


def check_adata(adata: AnnData, *, writing: bool = True, backed_ok: bool = False) -> None:
    if not isinstance(adata, AnnData):
        raise TypeError(f"adata must be an AnnData, got {type(adata).__name__}")
    if writing and adata.is_view:
        raise ValueError("adata is a view; pass adata.copy() so scflow can write to it")
    if adata.isbacked and not backed_ok:
        raise ValueError("adata is backed (opened with backed='r'); load it into memory with "
                         "adata.to_memory() first")


def get_rep(adata: AnnData, use_rep: str, n_dims: int | None = None) -> np.ndarray:
    """The representation ``obsm[use_rep]`` (or ``X``), dense, its first ``n_dims`` columns.

    A sparse or backed (on-disk) ``X`` is read ``CHUNK_ROWS`` rows at a time and only the
    columns asked for are made dense, so memory is O(cells x n_dims), not O(cells x genes).
    An ``obsm`` entry stored as a pandas DataFrame is read as its values (numeric columns).
    """
    if use_rep == "X":
        x = adata.X
    elif use_rep in adata.obsm:
        x = adata.obsm[use_rep]
    else:
        raise KeyError(f"use_rep={use_rep!r} is not in adata.obsm (keys: "
                       f"{list(adata.obsm.keys())}); pass 'X' or an obsm key"
                       + ("; run sc.pp.pca(adata) first" if use_rep == "X_pca" else ""))
    if isinstance(x, pd.DataFrame):
        bad = [str(c) for c, dt in x.dtypes.items()
               if not pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)]
        if bad:
            raise ValueError(f"use_rep={use_rep!r} is a DataFrame with non-numeric columns "
                             f"{bad[:5]}; store a numeric array in adata.obsm[{use_rep!r}]")
        x = x.to_numpy(dtype=np.float64)
    if x is None or len(getattr(x, "shape", ())) != 2:
        raise ValueError(f"use_rep={use_rep!r} must be 2-D (cells, dims), got "
                         f"{getattr(x, 'shape', None)}")
    if n_dims is not None and not 1 <= n_dims <= x.shape[1]:
        raise ValueError(f"n_dims must be between 1 and {x.shape[1]} (the representation's "
                         f"dims), got {n_dims!r}")
    cols = x.shape[1] if n_dims is None else int(n_dims)
    if sp.issparse(x) or not isinstance(x, np.ndarray):  # sparse, backed, or array-like
        parts = []
        for start in range(0, x.shape[0], CHUNK_ROWS):
            part = x[start:start + CHUNK_ROWS]
            part = part[:, :cols]
            parts.append(part.toarray() if sp.issparse(part) else np.asarray(part))
        x = np.concatenate(parts) if parts else np.zeros((0, cols))
    else:
        x = x[:, :cols]
    return np.asarray(x)


def get_times(adata: AnnData, time_key: str):
    if time_key not in adata.obs:
        raise KeyError(f"time_key={time_key!r} is not a column of adata.obs (columns: "
                       f"{list(adata.obs.columns)})")
    return adata.obs[time_key]


def time_course(adata: AnnData, time_key: str, use_rep: str, *, n_dims: int | None,
                whiten: bool, time_scale: str, device="cpu") -> TimeCourse:
    """Build the tensors of the engine; raises on bad input before anything is written."""
    if n_dims is not None:
        integer(n_dims, "n_dims", lower=1, expected="a positive integer or None")
    x = get_rep(adata, use_rep, n_dims)
    times = get_times(adata, time_key)
    try:
        with np.errstate(over="ignore"):  # an overflow is reported by check_float32
            tc = TimeCourse.from_arrays(x, times, n_dims=n_dims, whiten=whiten,
                                        time_scale=time_scale, device=device)
    except ValueError as err:  # name the argument at fault
        msg = str(err)
        if "representation" in msg:
            raise ValueError(f"use_rep={use_rep!r}: {msg}") from None
        if "time label" in msg or "timepoint" in msg:
            raise ValueError(f"time_key={time_key!r}: {msg}") from None
        raise
    check_float32(tc, use_rep, whiten)
    return tc


def check_float32(tc: TimeCourse, use_rep: str, whiten: bool) -> None:
    """Refuse data finite in float64 that overflow when scaled or cast to float32.

    The model computes in float32 (largest value about ``3.4e38``): a finite ``use_rep``
    whose values overflow there would otherwise fail later, e.g. as a non-finite OT plan.
    """
    scaler_ok = np.isfinite(tc.mean).all() and np.isfinite(tc.scale).all()
    if scaler_ok and all(bool(torch.isfinite(x).all()) for x in tc.xs):
        return
    hint = ("rescale the representation (e.g. divide it by a constant)" if whiten else
            "pass whiten=True (standardise each dimension) or rescale the representation")
    raise ValueError(f"use_rep={use_rep!r}: its values overflow float32 (the model's "
                     f"precision, largest about {float(np.finfo(np.float32).max):.3g})"
                     f"{'' if scaler_ok else ' or their spread overflows float64'}; {hint}")
