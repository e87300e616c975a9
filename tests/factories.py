"""Small time courses the tests build, in one place (the same draws as before they moved
here: a seeded generator, blob by blob)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scflow.flow.timecourse import TimeCourse


def blobs(centres: Sequence, sizes: int | Sequence[int] = 40, *, scale: float = 0.5,
          seed: int = 0, whiten: bool = False) -> TimeCourse:
    """One Gaussian blob per timepoint (labels ``0, 1, ...``): ``sizes[k]`` cells around
    ``centres[k]`` with standard deviation ``scale``, drawn in order from one generator."""
    rng = np.random.default_rng(seed)
    sizes = [int(sizes)] * len(centres) if np.ndim(sizes) == 0 else [int(n) for n in sizes]
    x = np.concatenate([rng.normal(c, scale, size=(n, np.size(c)))
                        for c, n in zip(centres, sizes, strict=True)])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(len(centres)), sizes), whiten=whiten)


def translated(base: np.ndarray, offsets: Sequence, *, whiten: bool = False) -> TimeCourse:
    """One cloud ``base`` moved by each of ``offsets`` (a timepoint each), cell for cell."""
    x = np.concatenate([base + np.asarray(o) for o in offsets])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(len(offsets)), len(base)),
                                  whiten=whiten)
