"""Argument checks shared by the engine and the AnnData front end.

Each check returns the value in its plain Python type or raises a ``ValueError`` that
names the argument and what was expected, before the caller writes anything. The budget of
one call is checked here too: memory estimated before it is allocated (a call whose estimate
is above :attr:`scflow.settings.max_memory_gb` is refused with the estimate and the way out;
above :data:`WARN_BYTES` it is announced) and the integration steps of one push.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._settings import settings


def _describe(lower: int | None, upper: int | None) -> str:
    if upper is not None:
        return f"an integer in {lower}..{upper}" if lower is not None else \
            f"an integer of at most {upper}"
    if lower is None:
        return "an integer"
    if lower == 1:
        return "a positive integer"
    if lower == 0:
        return "a non-negative integer"
    return f"an integer of at least {lower}"


def integer(value: Any, name: str, *, lower: int | None = None, upper: int | None = None,
            expected: str | None = None) -> int:
    """``value`` as an ``int``, if it is an integer (not a bool) in ``lower..upper``.

    Parameters
    ----------
    value
        What the caller passed.
    name
        The argument's name, for the message.
    lower, upper
        Inclusive bounds; ``None``: unbounded.
    expected
        What the message says was expected; default from the bounds (e.g. "a positive
        integer" for ``lower=1``).

    Raises
    ------
    ValueError
        ``"{name} must be {expected}, got {value!r}"``.
    """
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    ok = ok and (lower is None or value >= lower) and (upper is None or value <= upper)
    if not ok:
        raise ValueError(f"{name} must be {expected or _describe(lower, upper)}, "
                         f"got {value!r}")
    return int(value)


def positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` >= 1 (see :func:`integer`)."""
    return integer(value, name, lower=1)


def seed(value: Any, name: str = "random_state") -> int:
    """A random seed: any integer (see :func:`integer`)."""
    return integer(value, name)


def is_number(value: Any, *, lower: float | None = None, strict: bool = False) -> bool:
    """Whether ``value`` is one finite real number (Python or NumPy; not a bool) above
    ``lower`` (``> lower`` when ``strict``, else ``>=``): :func:`number` without the message,
    for callers that word their own (e.g. a list of masses)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(value)
    return ok and (lower is None or (value > lower if strict else value >= lower))


def number(value: Any, name: str, *, lower: float | None = None, strict: bool = False) -> float:
    """``value`` as a ``float``, if it is a finite real number (not a bool) above ``lower``.

    ``strict``: ``value > lower`` rather than ``>=``. The message says, e.g., "sigma must be
    a finite number > 0, got -1".
    """
    if not is_number(value, lower=lower, strict=strict):
        bound = "" if lower is None else f" {'>' if strict else '>='} {lower:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


# ----- what one call may take: memory estimated before it is allocated, and integration steps -----
# A call whose estimate is above :attr:`scflow.settings.max_memory_gb` is refused with a
# ``ValueError`` that gives the estimate and the way out, before anything is allocated or
# written; an estimate above :data:`WARN_BYTES` is announced with a warning.

#: the most Euler steps of one push (each step evaluates the field on every cell pushed)
MAX_PUSH_STEPS = 1_000_000
#: estimates above this are announced (a warning with the estimate)
WARN_BYTES = 2e9


def check_memory(n_bytes: float, what: str, hint: str) -> None:
    """Refuse ``what`` (a ``ValueError``) when it would take more than
    ``settings.max_memory_gb``; warn above :data:`WARN_BYTES`."""
    limit = settings.max_memory_gb * 1e9
    if n_bytes > limit:
        raise ValueError(f"{what} would take about {n_bytes / 1e9:.3g} GB of memory, more than "
                         f"scflow.settings.max_memory_gb = {settings.max_memory_gb:g}; {hint} "
                         "(or raise scflow.settings.max_memory_gb if the machine has it)")
    if n_bytes > WARN_BYTES:
        warnings.warn(f"{what} will take about {n_bytes / 1e9:.3g} GB of memory; {hint}",
                      UserWarning, stacklevel=3)


def fit_bytes(n_cells: int, n_dims: int, hidden: Sequence[int], *, nets: int = 1) -> float:
    """Peak bytes of a fit, estimated from its sizes: the cells in float64 twice (read,
    scaled) and float32 once, and the weights of ``nets`` MLPs five times (weights,
    gradients, Adam's two moments, the weight average), in float32."""
    widths = [n_dims + 1, *hidden, n_dims]
    params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return n_cells * n_dims * (8 + 8 + 4) + nets * params * 4 * 5
