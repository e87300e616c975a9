"""Times in the user's units (``obs[time_key]``) and the model's time, both ways.

The split with :class:`~scflow.flow.timecourse.TimeCourse`: a ``TimeCourse`` (tensor core, no
AnnData) orders the labels and holds the cells, values and model times of one run; a
:class:`Timeline` is the AnnData-facing view of the same timepoints *after* a fit, rebuilt
from what ``adata.uns[key]["timepoints"]`` stores (labels as strings, whether the column was
numeric, the held-out index) without the cells: it answers the questions of the tools that
run later (which timepoint is ``"day 4"``, what model time is day 3.5, which cells are at a
timepoint). It is built from a ``TimeCourse`` once (:meth:`Timeline.from_column`) and read
back from the record afterwards, never re-derived from the cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

from ..flow.timecourse import TimeCourse, is_numeric_times

#: a number matches a timepoint's value up to this fraction of the value, plus ``_ATOL``
#: (a float32 round trip of a stored time) ...
_RTOL = 1e-5
_ATOL = 1e-12
#: ... and never more than this fraction of the smallest gap between two timepoints, so
#: close timepoints (hourly Unix timestamps, 100000 / 100001) are never mistaken for each other
_GAP_FRACTION = 1e-3


def _is_number(t) -> bool:
    return (isinstance(t, (int, float, np.integer, np.floating))
            and not isinstance(t, (bool, np.bool_)))


def match_values(v: float | np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index in ``values`` of the value each number of ``v`` stands for, ``-1`` where none.

    ``v`` matches ``values[k]`` when ``|v - values[k]|`` is at most ``1e-5 * |values[k]| +
    1e-12`` and at most ``1e-3 * gap``, ``gap`` being the smallest gap between two distinct
    finite ``values``: a float32 round trip of a stored time still matches, a neighbouring
    timepoint never does (hourly Unix timestamps, ``100000`` and ``100001``).

    Parameters
    ----------
    v
        Numbers (a scalar or an array).
    values
        The timepoints' values.

    Returns
    -------
    ``int64`` array, one index per number of ``v``.
    """
    v = np.atleast_1d(np.asarray(v, dtype=np.float64))
    values = np.asarray(values, dtype=np.float64)
    finite = np.unique(values[np.isfinite(values)])
    gap = float(np.diff(finite).min()) if len(finite) > 1 else np.inf
    tol = np.minimum(_RTOL * np.abs(values) + _ATOL, _GAP_FRACTION * gap)
    dist = np.abs(v[:, None] - values[None, :])
    close = dist <= tol[None, :]
    nearest = np.where(close, dist, np.inf).argmin(1) if len(values) else np.zeros(len(v), int)
    return np.where(close.any(1), nearest, -1).astype(np.int64)


def _as_number(s: str) -> float | None:
    """The finite number a string spells exactly (``"0.5"``, ``"1e3"``), else ``None``."""
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def label_str(label) -> str:
    """How a timepoint label is stored: the string itself, or a number written with ``%g``."""
    if _is_number(label):
        return f"{float(label):.12g}"
    return str(label)


def _decimals(t) -> int:
    """Decimals a number is written with (trailing zeros dropped): ``"0.333"`` and ``0.333``
    have 3, ``8``, ``8.0`` and ``"1e3"`` none; a float is read as its shortest repr."""
    text = t.strip() if isinstance(t, str) else repr(float(t))
    try:
        exponent = Decimal(text).normalize().as_tuple().exponent
    except InvalidOperation:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


#: how far past the observed timepoints a time may lie, as a fraction of their span: the
#: field is only learned between them, and a push far outside runs unbounded numbers of
#: steps to values of no meaning
MAX_EXTRAPOLATION = 1.0


@dataclass(frozen=True)
class Timeline:
    """The fitted timepoints: labels, their numeric values and model times.

    Times given by the user are matched to a timepoint (a label, or a number equal to a
    timepoint's value); any other number is placed on the model's time axis by linear
    interpolation in the values (linear extrapolation past either end).
    """

    labels: np.ndarray
    values: np.ndarray
    times: np.ndarray
    numeric: bool
    holdout_index: int = -1
    #: ``alias(timeline, text)``: the timepoint another ``obs`` column's label stands for
    #: (set by :func:`scflow.tl._store.read_fit`), ``None`` if none
    alias: Callable[[Timeline, str], int | None] | None = field(default=None, compare=False,
                                                                 repr=False)

    @classmethod
    def from_column(cls, tc: TimeCourse, col: pd.Series) -> Timeline:
        """The timeline of a time course built from the ``obs`` column ``col``."""
        return cls.from_tc(tc, is_numeric_times(col.dtype))

    @classmethod
    def from_tc(cls, tc: TimeCourse, numeric: bool, holdout_index: int = -1) -> Timeline:
        labels = [label_str(v) for v in tc.labels]
        if len(set(labels)) < len(labels):  # close numbers: as many digits as they need
            labels = [repr(float(v)) if _is_number(v) else str(v) for v in tc.labels]
        return cls(np.asarray(labels, dtype=object),
                   np.asarray(tc.values, dtype=np.float64),
                   np.asarray(tc.times, dtype=np.float64), bool(numeric), int(holdout_index))

    @property
    def n(self) -> int:
        return len(self.labels)

    @property
    def monotone(self) -> bool:
        return bool(np.all(np.diff(self.values) > 0) and np.isfinite(self.values).all())

    # ----- user time -> timepoint / model time -----
    def index_of(self, t, *, loose: bool = False) -> int | None:
        """The timepoint ``t`` names (a label or, for numbers, a value), else ``None``.

        ``loose``: also a number written to fewer decimals than the value (``0.333`` for
        ``1/3``: the one timepoint whose value rounds to it), and a label of another ``obs``
        column whose cells all lie at one timepoint (``"8h"``); a ``ValueError`` when that
        is ambiguous.
        """
        if isinstance(t, str):
            hits = np.flatnonzero(self.labels == t)
            if len(hits):
                return int(hits[0])
            number = _as_number(t) if self.numeric else None
            if number is None:
                if loose and self.alias is not None:
                    return self.alias(self, t)
                return None
            k = int(match_values(number, self.values)[0])
            return k if k >= 0 else (self._near(number, t) if loose else None)
        if _is_number(t) and math.isfinite(float(t)):
            if not self.numeric:
                hits = np.flatnonzero(self.labels == label_str(t))
                if len(hits):
                    return int(hits[0])
            k = int(match_values(float(t), self.values)[0])
            return k if k >= 0 else (self._near(float(t), t) if loose else None)
        return None

    def _near(self, v: float, written) -> int | None:
        """The one timepoint whose value rounds to ``v`` at the decimals ``v`` is written
        with (at least one); ``ValueError`` when several do."""
        d = _decimals(written)
        if d < 1 or not self.monotone:
            return None
        half = 0.5 * 10.0 ** -d
        hits = np.flatnonzero(np.abs(self.values - v) <= half * (1 + 1e-9))
        if len(hits) > 1:
            raise ValueError(f"{written!r} is ambiguous: the timepoints "
                             f"{[float(self.values[k]) for k in hits]} all round to it at "
                             f"{d} decimals; give more digits")
        return int(hits[0]) if len(hits) else None

    def require_index(self, t, name: str) -> int:
        """:meth:`index_of` (``loose``), but a ``ValueError`` naming ``name`` when ``t`` is
        not a timepoint or is ambiguous."""
        try:
            k = self.index_of(t, loose=True)
        except ValueError as err:
            raise ValueError(f"{name}={t!r}: {err}") from None
        if k is None:
            raise ValueError(f"{name}={t!r} is not an observed timepoint; expected one of "
                             f"{self.describe()}")
        return k

    def require_interior(self, t, name: str) -> int:
        """:meth:`require_index` of an interior timepoint (not the first or the last)."""
        k = self.require_index(t, name)
        if not 0 < k < self.n - 1:
            raise ValueError(f"{name}={t!r} must be an interior timepoint (not the first "
                             f"or last of {self.describe()})")
        return k

    def model_time(self, t, name: str) -> float:
        """Model time of a user time: a timepoint's, or interpolated/extrapolated (at most
        :data:`MAX_EXTRAPOLATION` times the observed span past either end)."""
        try:  # strings may be another column's label; numbers are taken as given
            k = self.index_of(t, loose=isinstance(t, str))
        except ValueError as err:
            raise ValueError(f"{name}={t!r}: {err}") from None
        if k is not None:
            return float(self.times[k])
        if not _is_number(t) or not math.isfinite(float(t)):
            raise ValueError(f"{name}={t!r} is neither a timepoint ({self.describe()}) nor a "
                             "finite number on that time axis")
        if not self.monotone:
            raise ValueError(f"{name}={t!r}: the time labels hold no increasing numbers, so only "
                             f"the timepoints themselves can be used: {self.describe()}")
        lo, hi = float(self.values[0]), float(self.values[-1])
        reach = MAX_EXTRAPOLATION * (hi - lo)
        if not lo - reach <= float(t) <= hi + reach:
            raise ValueError(f"{name}={t!r} is too far outside the observed timepoints ({lo:g} "
                             f"to {hi:g}): the field is learned between them, and is "
                             f"extrapolated at most their span ({hi - lo:g}) past either end, "
                             f"to times between {lo - reach:g} and {hi + reach:g}")
        return float(_interp(float(t), self.values, self.times))

    def start(self, t, name: str, *, timepoint: bool) -> tuple[int | None, float]:
        """A start time: its timepoint (``None`` if not one; default the first) and model
        time. ``timepoint``: its cells are pushed, so a near value or another column's label
        names the timepoint (:meth:`index_of` ``loose``); else any time is taken as given."""
        if t is None:
            return 0, float(self.times[0])
        if timepoint:
            try:
                k = self.index_of(t, loose=True)
            except ValueError as err:
                raise ValueError(f"{name}={t!r}: {err}") from None
            if k is not None:
                return k, float(self.times[k])
        return self.index_of(t), self.model_time(t, name)

    def is_extrapolation(self, model_t: float) -> bool:
        return bool(model_t > self.times[-1] + 1e-12 or model_t < self.times[0] - 1e-12)

    def to_obs(self, model_t) -> np.ndarray:
        """Numeric value (``obs`` units) of model times."""
        model_t = np.asarray(model_t, dtype=np.float64)
        if not self.monotone:
            return model_t
        return np.vectorize(lambda s: _interp(s, self.times, self.values))(model_t)

    def describe(self) -> list:
        return [float(v) for v in self.values] if self.numeric else list(self.labels)

    def value_at(self, k: int):
        """Timepoint ``k`` as stored in an ``obs`` column: its value, or its label."""
        return float(self.values[k]) if self.numeric else str(self.labels[k])

    def value_of(self, t):
        """``t`` as stored in an ``obs`` column: a float for numeric time, else the label."""
        k = self.index_of(t, loose=isinstance(t, str))
        if self.numeric:
            return float(self.values[k]) if k is not None else float(t)
        return str(self.labels[k]) if k is not None else label_str(t)

    # ----- cells -> timepoints -----
    def cell_index(self, col: pd.Series, name: str = "time_key") -> np.ndarray:
        """Timepoint index of each cell from its ``obs[time_key]``; ``ValueError`` if unknown."""
        if is_numeric_times(col.dtype):
            idx = match_values(col.to_numpy(dtype=np.float64), self.values)
        else:
            # a numeric time column later held as strings or categories ('0.3333333333333333'
            # against the stored '0.333333333333'): match by label, then by value
            uniq = pd.unique(col.astype(object))
            found = {v: self.index_of(v if isinstance(v, str) else float(v))
                     if _is_number(v) or isinstance(v, str) else None for v in uniq}
            idx = np.asarray([-1 if found[v] is None else found[v] for v in col.astype(object)],
                             dtype=np.int64)
        if (idx < 0).any():
            bad = pd.unique(col[idx < 0].astype(str))[:5]
            raise ValueError(f"{name}: cells have times {list(bad)} that are not timepoints of "
                             f"the fitted model ({self.describe()})")
        return idx.astype(np.int64)


def _interp(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """Piecewise-linear, extended linearly past both ends."""
    if x < xp[0]:
        return float(fp[0] + (x - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]))
    if x > xp[-1]:
        return float(fp[-1] + (x - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]))
    return float(np.interp(x, xp, fp))
