"""A time course as tensors: one cloud of cells per timepoint, their times, and a scaler.

This is the boundary between the AnnData front end and the engine: ``tl`` builds a
:class:`TimeCourse` from ``obs[time_key]`` and an embedding; everything downstream works
on its tensors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ._checks import integer

__all__ = ["TimeCourse", "order_time_labels", "TIME_SCALES"]

TIME_SCALES = ("index", "real")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def order_time_labels(labels: Sequence | np.ndarray | pd.Series
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Order the distinct time labels of the cells.

    Numbers sort numerically; an ordered categorical keeps its order; strings sort by the
    number they hold (``"day 2"``, ``"D3.5"``, ``"8h"``). Returns the ordered distinct
    labels and, for each, a numeric value (the number itself, or the parsed one).

    Raises
    ------
    ValueError
        If labels mix numbers and strings, or strings do not each hold one number.
    """
    s = pd.Series(labels) if not isinstance(labels, pd.Series) else labels
    if s.isna().any():
        raise ValueError("time labels contain missing values")
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.remove_unused_categories().cat.categories
        if s.cat.ordered:
            values = _parse_numbers(cats, strict=False)
            return np.asarray(cats), values
        s = s.astype(cats.dtype)
    if pd.api.types.is_bool_dtype(s.dtype):
        raise ValueError("time labels must be numbers or strings holding numbers, got booleans")
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = np.unique(s.to_numpy(dtype=np.float64))
        if not np.isfinite(values).all():
            raise ValueError("time labels must be finite numbers")
        return values, values
    kinds = {isinstance(v, (int, float, np.integer, np.floating)) for v in s}
    if len(kinds) > 1:
        raise ValueError("time labels mix numbers and strings; use one kind")
    uniq = np.unique(s.astype(str).to_numpy())
    values = _parse_numbers(uniq, strict=True)
    order = np.argsort(values, kind="stable")
    if len(np.unique(values)) != len(values):
        raise ValueError(f"time labels {list(uniq)} cannot be ordered: two labels hold the same "
                         "number; pass an ordered categorical")
    return uniq[order], values[order]


def _parse_numbers(labels, strict: bool) -> np.ndarray:
    out = []
    for lab in labels:
        if isinstance(lab, (int, float, np.integer, np.floating)):
            out.append(float(lab))
            continue
        found = _NUMBER.findall(str(lab))
        if len(found) != 1:
            if strict:
                raise ValueError(f"time label {lab!r} cannot be ordered: expected a number or a "
                                 "string holding one number (e.g. 'day 2'), or pass an ordered "
                                 "categorical")
            out.append(np.nan)
            continue
        out.append(float(found[0]))
    values = np.asarray(out, dtype=np.float64)
    if not strict and np.isnan(values).any():
        return np.arange(len(values), dtype=np.float64)
    return values


def _codes(labels: pd.Series, ordered: np.ndarray) -> np.ndarray:
    """Index of each cell's timepoint in ``ordered``."""
    if pd.api.types.is_numeric_dtype(labels.dtype) and not isinstance(
            labels.dtype, pd.CategoricalDtype):
        return np.searchsorted(ordered.astype(np.float64), labels.to_numpy(dtype=np.float64))
    lookup = {str(lab): k for k, lab in enumerate(ordered)}
    return labels.astype(str).map(lookup).to_numpy(dtype=np.int64)


@dataclass
class TimeCourse:
    """Cells per timepoint in model coordinates.

    Attributes
    ----------
    xs
        One ``(n_k, d)`` float32 tensor per timepoint, scaled.
    times
        Model time of each timepoint (``float64`` numpy array).
    labels
        The user's time label of each timepoint, in order.
    values
        Numeric value of each label (real time).
    mean, scale
        The scaler: ``x_model = (x - mean) / scale``.
    """

    xs: list[Tensor]
    times: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_arrays(cls, x: np.ndarray, time_labels: Sequence | np.ndarray | pd.Series, *,
                    n_dims: int | None = None, whiten: bool = True,
                    time_scale: str = "index", min_cells: int = 2,
                    device: str | torch.device = "cpu") -> TimeCourse:
        """Split cells by timepoint, optionally standardise each dimension on all cells.

        ``time_scale="index"`` gives timepoint ``k`` model time ``k``; ``"real"`` uses the
        numeric labels shifted to start at 0.
        """
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"the representation must be 2-D (cells, dims), got {x.shape}")
        if time_scale not in TIME_SCALES:
            raise ValueError(f"time_scale must be one of {TIME_SCALES}, got {time_scale!r}")
        if n_dims is not None:
            if not 1 <= int(n_dims) <= x.shape[1]:
                raise ValueError(f"n_dims must be between 1 and {x.shape[1]} (the "
                                 f"representation's dims), got {n_dims!r}")
            x = x[:, : int(n_dims)]
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise ValueError("the representation holds NaN or infinite values")
        labels = (time_labels.reset_index(drop=True) if isinstance(time_labels, pd.Series)
                  else pd.Series(np.asarray(time_labels)))
        if len(labels) != len(x):
            raise ValueError(f"got {len(labels)} time labels for {len(x)} cells")
        ordered, values = order_time_labels(labels)
        if len(ordered) < 2:
            raise ValueError(f"need at least two timepoints, got {len(ordered)}")
        codes = _codes(labels, ordered)
        mean = x.mean(0) if whiten else np.zeros(x.shape[1])
        scale = x.std(0) if whiten else np.ones(x.shape[1])
        scale = np.where(scale > 0, scale, 1.0)
        xs_np = (x - mean) / scale
        xs = []
        for k, lab in enumerate(ordered):
            sel = codes == k
            if sel.sum() < min_cells:
                shown = lab.item() if isinstance(lab, np.generic) else lab
                raise ValueError(f"timepoint {shown!r} has {int(sel.sum())} cells; at least "
                                 f"{min_cells} are needed")
            xs.append(torch.as_tensor(xs_np[sel], dtype=torch.float32, device=device))
        if time_scale == "index":
            times = np.arange(len(ordered), dtype=np.float64)
        else:
            if np.isnan(values).any():
                raise ValueError("time_scale='real' needs numeric time labels")
            times = values - values[0]
        return cls(xs, times, np.asarray(ordered), values, mean, scale)

    @property
    def n_timepoints(self) -> int:
        return len(self.xs)

    def interior_index(self, k: Any, name: str = "k") -> int:
        """``k`` as an ``int``, if it indexes an interior timepoint (``1..n_timepoints - 2``).

        Raises a ``ValueError`` naming ``name`` otherwise (a float, a bool, an end point).
        """
        last = self.n_timepoints - 2
        return integer(k, name, lower=1, upper=last,
                       expected=f"an interior timepoint index (1..{last})")

    @property
    def dim(self) -> int:
        return int(self.xs[0].shape[1])

    def to(self, device: str | torch.device) -> TimeCourse:
        return TimeCourse([x.to(device) for x in self.xs], self.times, self.labels,
                          self.values, self.mean, self.scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64)[:, : len(self.mean)] - self.mean) / self.scale

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale + self.mean
