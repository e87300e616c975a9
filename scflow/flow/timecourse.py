"""A time course as tensors: one cloud of cells per timepoint, their times, and a scaler.

This is the boundary between the AnnData front end and the engine: ``tl`` builds a
:class:`TimeCourse` from ``obs[time_key]`` and an embedding; everything downstream works
on its tensors.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .._checks import integer

__all__ = ["TimeCourse", "order_time_labels", "real_time_scale", "TIME_SCALES"]

TIME_SCALES = ("index", "real")
# a sign only where it is not glued to a word ("day-1" is day 1, "day -1" and "-1" are -1)
_NUMBER = re.compile(r"(?:(?<!\w)[-+])?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def order_time_labels(labels: Sequence | np.ndarray | pd.Series, *, time_scale: str = "index"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Order the distinct time labels of the cells.

    Numbers sort numerically; an ordered categorical keeps its order; strings sort by the
    number they hold (``"day 2"``, ``"D3.5"``, ``"8h"``). Returns the ordered distinct
    labels and, for each, a numeric value (the number itself, or the parsed one).

    A string's number is read with its sign only where the sign is not glued to a word: a
    ``-`` or ``+`` directly after a letter, digit or ``_`` is a separator, so ``"day-1"``
    and ``"t-2"`` hold 1 and 2, while ``"-1"`` and ``"day -1.5"`` hold -1 and -1.5 (an
    exponent, as in ``"1e-3"``, is part of the number).

    Parameters
    ----------
    labels
        The time label of each cell.
    time_scale
        ``"index"`` or ``"real"``. The categories of an ordered categorical that do not each
        hold one number get the values ``0, 1, 2, ...`` under ``"index"``; under ``"real"``
        each must hold one number, and the numbers must increase along the categories.

    Raises
    ------
    ValueError
        If labels mix numbers and strings, or strings do not each hold one number; under
        ``time_scale="real"``, if a category of an ordered categorical holds no single
        number, or its numbers do not increase along the categories.
    """
    if time_scale not in TIME_SCALES:
        raise ValueError(f"time_scale must be one of {TIME_SCALES}, got {time_scale!r}")
    s = pd.Series(labels) if not isinstance(labels, pd.Series) else labels
    if s.isna().any():
        raise ValueError("time labels contain missing values")
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.remove_unused_categories().cat.categories
        if s.cat.ordered:
            values = _parse_numbers(cats, strict=False)
            if time_scale == "real":
                _check_real(cats, values)
            elif np.isnan(values).any():
                values = np.arange(len(values), dtype=np.float64)
            return np.asarray(cats), values
        s = s.astype(cats.dtype)
    if pd.api.types.is_bool_dtype(s.dtype):
        raise ValueError("time labels must be numbers or strings holding numbers, got booleans")
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = np.unique(s.to_numpy(dtype=np.float64))
        if not np.isfinite(values).all():
            raise ValueError("time labels must be finite numbers")
        _check_distinct(values)
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


def real_time_scale(values: np.ndarray) -> tuple[float, float]:
    """``(origin, unit)`` of real model time: the first value and the mean gap between
    consecutive (increasing, finite) values, in float64.

    Raises a ``ValueError`` when the gap is too small to be told from rounding at the size
    of the values (relative to them below ``1e-12``, e.g. ``1`` and ``1 + 1e-13``), or when
    the values' span overflows float64.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        span = values[-1] - values[0]
    if not np.isfinite(span):
        raise ValueError(f"time labels span from {values[0]:g} to {values[-1]:g}: too wide for "
                         "real time in float64; rescale the times")
    _check_distinct(values)
    return float(values[0]), float(span / (len(values) - 1))


#: two timepoints whose values differ by less than this fraction of their size cannot be told
#: from the rounding of one time (a few thousand float64 steps): refused as the same time
_MIN_REL_GAP = 1e-12


def _check_distinct(values: np.ndarray) -> None:
    """A ``ValueError`` when two consecutive (sorted) time values are equal up to rounding."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return
    gaps = np.diff(values)
    size = np.maximum(np.abs(values[:-1]), np.abs(values[1:]))
    close = np.flatnonzero(gaps <= _MIN_REL_GAP * size)
    if len(close):
        a, b = float(values[close[0]]), float(values[close[0] + 1])
        raise ValueError(f"time labels {a!r} and {b!r} differ by {b - a:.3g}, a relative "
                         f"{(b - a) / max(abs(a), abs(b)):.1g}: too close to be told from "
                         "rounding, so they would share a label; if they are one time, round "
                         "the column (e.g. .round(9)); if not, measure time from a later "
                         "origin or in a smaller unit")


def _check_real(cats: pd.Index, values: np.ndarray) -> None:
    """The numbers of an ordered categorical's categories can serve as real time."""
    shown = [c.item() if isinstance(c, np.generic) else c for c in cats]
    missing = [c for c, v in zip(shown, values, strict=True) if np.isnan(v)]
    if missing:
        raise ValueError(f"time_scale='real' needs a number in every time label, but "
                         f"{missing[0]!r} (of the ordered categories {shown}) does not hold "
                         "exactly one number; use time_scale='index' or relabel it")
    if not np.all(np.diff(values) > 0):
        raise ValueError(f"time_scale='real': the order of the time label categories {shown} "
                         f"and the numbers they hold {[float(v) for v in values]} disagree "
                         "(the numbers must increase along the categories); reorder the "
                         "categories or use time_scale='index'")


def _parse_numbers(labels, strict: bool) -> np.ndarray:
    """The number each label holds; NaN for a label without exactly one (if not ``strict``)."""
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
    return np.asarray(out, dtype=np.float64)


def is_numeric_times(dtype) -> bool:
    """Whether a time column of this dtype holds numbers (numeric and not categorical: the
    categories of a categorical are labels, whatever their type)."""
    return pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)


#: unwhitened data keep their units, but not an offset at which float32 (the model's
#: precision) resolves less than this fraction of a dimension's spread
_FLOAT32_RESOLUTION = 1e-4


def float32_offset(x: np.ndarray) -> np.ndarray:
    """The offset removed from unwhitened data (``whiten=False``): each dimension's mean where
    float32's spacing at it is coarser than :data:`_FLOAT32_RESOLUTION` of the dimension's
    spread (values around ``1e9`` with a spread of 1: float32 steps of 64), else 0. A shift
    changes no distance, plan or velocity; it keeps the cells' differences in float32."""
    centre, spread = x.mean(0), x.std(0)
    coarse = np.spacing(np.abs(centre).astype(np.float32)).astype(np.float64)
    return np.where(coarse > _FLOAT32_RESOLUTION * spread, centre, 0.0)


def _scaler(x: np.ndarray, whiten: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` of each column of ``x`` (float64); without ``whiten``, scale 1 and
    only the offset float32 needs (:func:`float32_offset`)."""
    if not whiten:
        return float32_offset(x), np.ones(x.shape[1])
    scale = x.std(0)
    return x.mean(0), np.where(scale > 0, scale, 1.0)


def to_model(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` on the first ``len(mean)`` columns of ``x`` (float64)."""
    return (np.asarray(x, dtype=np.float64)[:, : len(mean)] - mean) / scale


def to_rep(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_model`: ``x * scale + mean`` (float64)."""
    return np.asarray(x, dtype=np.float64) * scale + mean


def _codes(labels: pd.Series, ordered: np.ndarray) -> np.ndarray:
    """Index of each cell's timepoint in ``ordered``."""
    if is_numeric_times(labels.dtype):
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
    time_origin, time_unit
        ``time_scale="real"`` only (else ``None``): model time ``(value - time_origin) /
        time_unit``, the first timepoint's value and the mean gap between timepoints, so
        model time runs ``0 .. n_timepoints - 1`` on average as index time does, in any unit
        of time (seconds or years train and integrate alike).
    whiten
        Whether the scaler was fitted on the cells (each dimension standardised). A protocol
        that holds a timepoint out refits it on the kept cells only
        (:meth:`refit_scaler`); ``False``: a fixed scaler, never refitted.
    raw
        The cells of each timepoint in the representation's units (float64), kept when
        ``whiten`` so that :meth:`refit_scaler` is exact; ``None``: rebuilt from ``xs``.
    """

    xs: list[Tensor]
    times: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    time_origin: float | None = None
    time_unit: float | None = None
    whiten: bool = False
    raw: list[np.ndarray] | None = None

    @classmethod
    def from_arrays(cls, x: np.ndarray, time_labels: Sequence | np.ndarray | pd.Series, *,
                    n_dims: int | None = None, whiten: bool = True,
                    time_scale: str = "index", min_cells: int = 2,
                    device: str | torch.device = "cpu") -> TimeCourse:
        """Split cells by timepoint, optionally standardise each dimension on all cells.

        ``whiten``: the scaler is fitted on every cell given. Where a timepoint is held out,
        the protocols and ``tl.fit(holdout=)`` refit it on the kept cells only
        (:meth:`refit_scaler`); the cells in the representation's units are kept for that
        (:attr:`raw`).

        ``time_scale="index"`` gives timepoint ``k`` model time ``k``; ``"real"`` uses the
        numeric labels, shifted to start at 0 and divided by the mean gap between
        timepoints (``time_origin``, ``time_unit``), so that the model sees the same range
        of times in any unit (see :func:`order_time_labels` for the labels it refuses).
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
        # pd.Series, not np.asarray: an array would turn [1, "2"] into ["1", "2"] and an
        # ordered categorical into plain objects
        labels = (time_labels.reset_index(drop=True) if isinstance(time_labels, pd.Series)
                  else pd.Series(time_labels))
        if len(labels) != len(x):
            raise ValueError(f"got {len(labels)} time labels for {len(x)} cells")
        ordered, values = order_time_labels(labels, time_scale=time_scale)
        if len(ordered) < 2:
            raise ValueError(f"need at least two timepoints, got {len(ordered)}")
        codes = _codes(labels, ordered)
        raw = []
        for k, lab in enumerate(ordered):
            sel = codes == k
            if sel.sum() < min_cells:
                shown = lab.item() if isinstance(lab, np.generic) else lab
                raise ValueError(f"timepoint {shown!r} has {int(sel.sum())} cells; at least "
                                 f"{min_cells} are needed")
            raw.append(x[sel])
        mean, scale = _scaler(x, whiten)
        xs = [torch.as_tensor((r - mean) / scale, dtype=torch.float32, device=device)
              for r in raw]
        if time_scale == "index":
            return cls(xs, np.arange(len(ordered), dtype=np.float64), np.asarray(ordered),
                       values, mean, scale, whiten=bool(whiten), raw=raw if whiten else None)
        origin, unit = real_time_scale(values)
        return cls(xs, (values - origin) / unit, np.asarray(ordered), values, mean, scale,
                   origin, unit, whiten=bool(whiten), raw=raw if whiten else None)

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
        return replace(self, xs=[x.to(device) for x in self.xs])

    def time_meta(self) -> dict[str, float]:
        """What a model keeps of the real-time scale (``{}`` under index time):
        ``time_origin`` and ``time_unit``, model time ``(value - time_origin) / time_unit``."""
        if self.time_unit is None:
            return {}
        return {"time_origin": float(self.time_origin), "time_unit": float(self.time_unit)}

    def subset(self, keep: Sequence[int]) -> TimeCourse:
        """The timepoints ``keep`` (indices, in order), with the same scaler and time scale."""
        keep = [int(r) for r in keep]
        return replace(self, xs=[self.xs[r] for r in keep], times=self.times[keep],
                       labels=self.labels[keep], values=self.values[keep],
                       raw=None if self.raw is None else [self.raw[r] for r in keep])

    def refit_scaler(self, holdout: int | None = None) -> TimeCourse:
        """The same timepoints, standardised on the cells of every timepoint but ``holdout``.

        The scaler (mean and standard deviation of each dimension, as
        :meth:`from_arrays` fits it) is refitted on the kept cells only, so that nothing
        trained or solved on the result reads the held-out cells; those are given in the
        new units too (for scoring, map predictions back with :meth:`from_course`). With
        ``holdout=None``, fitted on every timepoint of this time course (e.g. a truncated
        one). A time course whose scaler was not fitted on its cells (``whiten=False``) is
        returned as it is.
        """
        if not self.whiten:
            return self
        if holdout is not None:
            holdout = integer(holdout, "holdout", lower=0, upper=self.n_timepoints - 1,
                              expected=f"a timepoint index (0..{self.n_timepoints - 1})")
        raw = self.raw if self.raw is not None else [
            to_rep(x.detach().cpu().double().numpy(), self.mean, self.scale) for x in self.xs]
        kept = np.concatenate([r for k, r in enumerate(raw) if k != holdout])
        mean, scale = _scaler(kept, True)
        xs = [torch.as_tensor((r - mean) / scale, dtype=x.dtype, device=x.device)
              for r, x in zip(raw, self.xs, strict=True)]
        return replace(self, xs=xs, mean=mean, scale=scale, raw=raw)

    def from_course(self, x: Tensor, other: TimeCourse) -> Tensor:
        """Cells given in ``other``'s model units, in this time course's (same dtype).

        The identity (``x`` itself) when both scalers are the same.
        """
        if np.array_equal(self.mean, other.mean) and np.array_equal(self.scale, other.scale):
            return x
        a = torch.as_tensor(other.scale / self.scale, dtype=torch.float64, device=x.device)
        b = torch.as_tensor((other.mean - self.mean) / self.scale, dtype=torch.float64,
                            device=x.device)
        return (x.double() * a + b).to(x.dtype)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Cells of the embedding in model units (:func:`to_model`)."""
        return to_model(x, self.mean, self.scale)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Model units back to the embedding's (:func:`to_rep`)."""
        return to_rep(x, self.mean, self.scale)
