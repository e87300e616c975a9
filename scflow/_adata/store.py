"""What ``tl.fit`` keeps in ``adata.uns``: writing it h5ad-safe, reading it back, logging.

``adata.uns[key]`` holds only dicts, strings, Python scalars, numpy arrays (strings as
``object`` arrays) and pandas DataFrames (string index and columns), the types
``anndata.read_h5ad`` gives back, so the record is the same before and after
``write_h5ad``. ``None`` is never stored: an absent ``holdout`` is
``""`` (label) and ``-1`` (index), and is restored to ``None`` on reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from .._settings import logger
from ..flow.model import FlowModel
from ..flow.timecourse import to_model, to_rep
from .times import Timeline

__all__ = ["FitRecord", "h5ad_safe", "load_model", "read_fit", "log_added", "obs_alias"]


def h5ad_safe(obj: Any) -> Any:
    """The same content in the types ``read_h5ad`` returns (dicts, scalars, arrays,
    DataFrames with string index and columns)."""
    if isinstance(obj, pd.DataFrame):
        out = obj.copy()
        out.index = out.index.astype(str)
        out.columns = out.columns.astype(str)
        for col in out.columns:
            if out[col].dtype.kind in "USO":
                out[col] = out[col].astype(str).astype(object)
        return out
    if isinstance(obj, Mapping):
        return {str(k): h5ad_safe(v) for k, v in obj.items()}
    if obj is None:
        raise TypeError("None cannot be stored in adata.uns (h5ad); use a sentinel")
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, (list, tuple)):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        if obj.ndim == 0:
            return h5ad_safe(obj.item())
        if obj.dtype.kind in "USO":
            return np.asarray([str(v) for v in obj.ravel()], dtype=object).reshape(obj.shape)
        return obj.copy()
    raise TypeError(f"cannot store {type(obj).__name__} in adata.uns")


def check_key(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError(f"{name} must be a non-empty string without '/', got {value!r}")
    return value


def log_added(*items: tuple[str, str, str]) -> None:
    """Scanpy's log line: ``added 'name', what (where)`` for each field written."""
    lines = ["    added"] + [f"    {name!r}, {what} ({where})" for name, what, where in items]
    logger.info("\n".join(lines))


@dataclass(frozen=True)
class FitRecord:
    """The fit stored under ``adata.uns[key]``, decoded."""

    key: str
    params: dict
    timeline: Timeline
    mean: np.ndarray
    scale: np.ndarray

    @property
    def use_rep(self) -> str:
        return str(self.params["use_rep"])

    @property
    def time_key(self) -> str:
        return str(self.params["time_key"])

    @property
    def n_dims(self) -> int:
        return int(self.params["n_dims"])

    def to_model(self, x: np.ndarray) -> np.ndarray:
        return to_model(x, self.mean, self.scale)

    def to_rep(self, x: np.ndarray) -> np.ndarray:
        return to_rep(x, self.mean, self.scale)


def _missing(key: str) -> KeyError:
    return KeyError(f"adata.uns[{key!r}] holds no scflow model; run "
                    f"scflow.tl.fit(adata, key_added={key!r}) first")


def read_fit(adata: AnnData, key: str) -> FitRecord:
    """Decode ``adata.uns[key]``; ``KeyError`` when no fit is stored there."""
    if not isinstance(key, str):
        raise ValueError(f"key must be a string, got {key!r}")
    rec = adata.uns.get(key)
    if not isinstance(rec, Mapping) or "model" not in rec:
        raise _missing(key)
    try:
        params = dict(rec["params"])
        tp = rec["timepoints"]
        holdout_index = int(params.get("holdout_index", -1))
        params["holdout"] = None if holdout_index < 0 else params.get("holdout")
        timeline = Timeline(np.asarray(tp["labels"], dtype=object),
                            np.asarray(tp["values"], dtype=np.float64),
                            np.asarray(tp["times"], dtype=np.float64),
                            bool(tp["numeric"]), holdout_index)
        mean = np.asarray(rec["scaler"]["mean"], dtype=np.float64)
        scale = np.asarray(rec["scaler"]["scale"], dtype=np.float64)
    except (KeyError, TypeError) as err:
        raise ValueError(f"adata.uns[{key!r}] is not a scflow fit record (missing {err}); "
                         "refit with scflow.tl.fit") from err
    _check_record(key, params, timeline, mean, scale)
    timeline = replace(timeline, alias=obs_alias(adata, str(params.get("time_key"))))
    return FitRecord(key, params, timeline, mean, scale)


def obs_alias(adata: AnnData, time_key: str):
    """``alias(timeline, text)`` for :class:`Timeline`: the timepoint named by ``text`` in
    another column of ``obs`` that relabels time one to one (each of its labels lies at one
    timepoint, each timepoint has one of its labels, e.g. EMT's ``time_label`` ``"8h"``
    beside ``day`` 1/3), else ``None``; a ``ValueError`` if two such columns disagree."""
    def alias(timeline: Timeline, text: str) -> int | None:
        if time_key not in adata.obs:
            return None
        try:
            at = timeline.cell_index(adata.obs[time_key])
        except ValueError:
            return None
        found = {}
        for name, col in adata.obs.items():
            if name == time_key or not (isinstance(col.dtype, pd.CategoricalDtype)
                                        or pd.api.types.is_object_dtype(col.dtype)
                                        or pd.api.types.is_string_dtype(col.dtype)):
                continue
            labels = col.astype(str).to_numpy()
            hit = labels == text
            if not hit.any() or col.isna().any():
                continue
            pairs = pd.DataFrame({"label": labels, "k": at}).drop_duplicates()
            if pairs["label"].is_unique and pairs["k"].is_unique:  # one to one
                found[str(name)] = int(at[hit][0])
        if len(set(found.values())) > 1:
            raise ValueError(f"the label {text!r} names different timepoints in adata.obs "
                             f"columns {found}; give the timepoint itself "
                             f"({timeline.describe()})")
        if found:
            name, k = next(iter(found.items()))
            logger.info(f"    {text!r} read as timepoint {timeline.describe()[k]!r} "
                        f"(adata.obs[{name!r}])")
            return k
        return None

    return alias


def _check_record(key: str, params: dict, timeline: Timeline, mean: np.ndarray,
                  scale: np.ndarray) -> None:
    """A ``ValueError`` naming the ``uns`` entry when the stored fit is inconsistent."""
    def bad(where: str, what: str) -> ValueError:
        return ValueError(f"adata.uns[{key!r}]{where} {what}; the fit record is inconsistent "
                          "(edited by hand?), refit with scflow.tl.fit")

    n_dims = params.get("n_dims")
    if (isinstance(n_dims, (bool, np.bool_)) or not isinstance(n_dims, (int, np.integer))
            or n_dims < 1):
        raise bad("['params']['n_dims']", f"must be a positive integer, got {n_dims!r}")
    for name, arr in (("mean", mean), ("scale", scale)):
        where = f"['scaler'][{name!r}]"
        if arr.shape != (int(n_dims),):
            raise bad(where, f"has shape {arr.shape}; expected ({int(n_dims)},), one entry "
                             f"per dimension (n_dims={int(n_dims)})")
        if not np.isfinite(arr).all():
            raise bad(where, "holds NaN or infinite values")
    if (scale <= 0).any():
        raise bad("['scaler']['scale']", "must be positive")
    n = len(timeline.labels)
    if timeline.labels.ndim != 1 or n < 2:
        raise bad("['timepoints']['labels']", f"must list at least two timepoints, got {n}")
    for name in ("values", "times"):
        arr = getattr(timeline, name)
        if arr.shape != (n,):
            raise bad(f"['timepoints'][{name!r}]", f"has shape {arr.shape}; expected ({n},), "
                                                   "one entry per label")
    if not np.isfinite(timeline.times).all() or not (np.diff(timeline.times) > 0).all():
        raise bad("['timepoints']['times']", "must be finite and increasing")
    if not -1 <= timeline.holdout_index < n:
        raise bad("['params']['holdout_index']",
                  f"must be -1 or a timepoint index below {n}, got {timeline.holdout_index}")


def load_model(adata: AnnData, key: str = "scflow", *,
               device: str | torch.device = "cpu") -> FlowModel:
    """The :class:`~scflow.FlowModel` stored by :func:`scflow.tl.fit` in ``adata.uns[key]``.

    Parameters
    ----------
    adata
        Annotated data holding a fit (also after ``write_h5ad`` / ``read_h5ad``).
    key
        The ``key_added`` of :func:`scflow.tl.fit`.
    device
        Where to put the model.

    Returns
    -------
    The model, in evaluation mode, with ``meta["loss"]`` the training loss and
    ``meta["times"]``, ``meta["scaler_mean"]``, ``meta["scaler_scale"]`` (the record's
    ``timepoints`` and ``scaler``, stored there once).

    Raises
    ------
    KeyError
        If ``adata.uns[key]`` holds no model.
    ValueError
        If the stored model has another format or version.
    """
    if not isinstance(key, str):
        raise ValueError(f"key must be a string, got {key!r}")
    rec = adata.uns.get(key)
    if not isinstance(rec, Mapping) or "model" not in rec:
        raise _missing(key)
    model = FlowModel.from_dict(rec["model"], device=device)
    # the record keeps these once (loss, timepoints, scaler); the model's meta has them again
    if "loss" in rec:
        model.meta["loss"] = np.asarray(rec["loss"], dtype=np.float64)
    for name, where in (("times", ("timepoints", "times")), ("scaler_mean", ("scaler", "mean")),
                        ("scaler_scale", ("scaler", "scale"))):
        group = rec.get(where[0])
        if name not in model.meta and isinstance(group, Mapping) and where[1] in group:
            model.meta[name] = np.asarray(group[where[1]], dtype=np.float64)
    return model.eval()

