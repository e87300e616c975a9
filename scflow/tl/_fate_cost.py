"""What ``tl.fate`` is about to compute, announced when it is large (it never runs away in
memory: pushes and neighbour searches go by chunks, transport plans are bounded by
``max_cells``; its time grows with the cells, draws and steps asked for)."""

from __future__ import annotations

import numpy as np

from .._adata.times import Timeline
from .._settings import logger

__all__ = ["announce_cost", "LARGE_CELL_STEPS", "LARGE_PLAN_ENTRIES"]

#: field evaluations (cells x draws x steps, x2 for an SDE's drift) announced from here on:
#: about 10 minutes of a 64x3 MLP on one CPU core
LARGE_CELL_STEPS = 1e8
#: entries of the transport plans (each solved with up to 2000 Sinkhorn iterations)
#: announced from here on (a plan of 3000 x 3000 cells)
LARGE_PLAN_ENTRIES = 9e6


def announce_cost(tl: Timeline, idx: np.ndarray, src: np.ndarray, k1: int, *, mode: str,
                  n_draws: int, n_steps: int, max_cells: int) -> None:
    """Log a warning with the size of the work when it is large, and how to shrink it."""
    starts, counts = np.unique(idx[src], return_counts=True)
    if mode == "transport":
        sizes = {int(m): min(int((idx == m).sum()), max_cells) for m in range(k1 + 1)}
        entries = sum(min(sizes[int(k)], sizes[int(k) + 1]) * sizes[int(k) + 1]
                      + sum(sizes[m] * sizes[m + 1] for m in range(int(k) + 1, k1))
                      for k in starts)
        if entries > LARGE_PLAN_ENTRIES:
            logger.warning(f"tl.fate (transport): {len(starts)} chains of entropic plans, "
                           f"{entries:,.0f} cell pairs in all, each plan up to 2000 Sinkhorn "
                           "iterations: this takes long on a CPU; pass a smaller max_cells "
                           "(later timepoints are subsampled to it) or one from_time")
        return
    if mode == "pull":  # each later timepoint's (subsampled) cells pulled back one interval
        first = int(starts.min())
        counts = np.asarray([min(int((idx == m).sum()), max_cells)
                             for m in range(first + 1, k1 + 1)])
        spans = np.asarray([max(float(tl.times[m] - tl.times[m - 1]), 1.0)
                            for m in range(first + 1, k1 + 1)])
    else:
        spans = np.asarray([max(float(tl.times[k1] - tl.times[k]), 1.0) for k in starts])
    work = float(np.sum(counts * np.round(n_steps * spans))) * n_draws
    work *= 2 if mode == "sde" else 1  # the drift evaluates the velocity and the score
    if work > LARGE_CELL_STEPS:
        logger.warning(f"tl.fate ({mode}): {int(counts.sum()):,} cells x {n_draws} draws x up "
                       f"to {int(np.round(n_steps * spans.max()))} steps, {work:.2g} "
                       "evaluations of the field: this takes long on a CPU (a GPU helps); "
                       "pass fewer n_draws, a smaller n_steps or one from_time to shorten it")
