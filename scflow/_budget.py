"""What one call may take: memory estimated before it is allocated, and integration steps.

A call whose estimate is above :attr:`scflow.settings.max_memory_gb` is refused with a
``ValueError`` that gives the estimate and the way out, before anything is allocated or
written; an estimate above :data:`WARN_BYTES` is announced with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from ._settings import settings

__all__ = ["check_memory", "fit_bytes", "MAX_PUSH_STEPS", "WARN_BYTES"]

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
