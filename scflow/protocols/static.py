"""The static (non-neural) methods inside the protocols: one call for every reference.

Each static method is a :class:`~scflow.methods.StaticMethod` in a module of its own
(``predict(tc, t, *, start, holdout, random_state, mass, spline, window, plan_cache)`` ->
``(points, weights)``, ``weights`` ``None`` for uniform); the interpolants they use are in
:mod:`scflow.references`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from .._checks import is_number
from ..couplings import PlanCache
from ..flow.timecourse import TimeCourse
from ..methods import get, names

__all__ = ["static_predict", "static_pair_predict", "check_mass", "spline_options"]


def static_pair_predict(method: str, tc: TimeCourse, k: int,
                        mass: Sequence[float] | None = None, *, spline: str = "natural",
                        window: int | None = None) -> tuple[Tensor, Tensor]:
    """A static pair method's prediction of timepoint ``k`` from its neighbours.

    ``mass``: the relative population size at every timepoint (the methods that take it;
    default the numbers of cells); ``spline``, ``window``: a mean spline's. Returns the
    weighted points, as the interpolants do.
    """
    return static_predict(method, tc, float(tc.times[k]), start=k - 1, holdout=k, mass=mass,
                          spline=spline, window=window)


def static_predict(method: str, tc: TimeCourse, t: float, *, start: int,
                   holdout: int | None, random_state: int = 0,
                   mass: Sequence[float] | None = None, spline: str = "natural",
                   window: int | None = None, plan_cache: PlanCache | None = None
                   ) -> tuple[Tensor, Tensor | None]:
    """The registered static ``method``'s prediction at model time ``t``."""
    entry = get(method)
    if entry.neural:
        raise ValueError(f"method must be one of {names('static')}, got {method!r}")
    return entry.predict(tc, t, start=start, holdout=holdout, random_state=random_state,
                         mass=mass, spline=spline, window=window, plan_cache=plan_cache)


def spline_options(train_kwargs: dict) -> dict:
    """The ``spline`` and ``window`` among training options, for the spline references."""
    return {key: train_kwargs[key] for key in ("spline", "window") if key in train_kwargs}


def check_mass(mass: Sequence[float] | None, n_timepoints: int) -> None:
    """Raise unless ``mass`` is ``None`` or one finite number > 0 per timepoint."""
    if mass is None:
        return
    values = list(mass)
    if len(values) != n_timepoints or not all(is_number(v, lower=0, strict=True) for v in values):
        raise ValueError(f"mass must hold one finite number > 0 per timepoint "
                         f"({n_timepoints}), got {mass!r}")
