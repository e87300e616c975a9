"""The timepoints as a person reads them: the data set's own labels, else short numbers.

Stored labels keep full precision (``"0.333333333333"``) so that times given back match;
what is shown (log lines, colour bars, tables) reads ``"8h"`` where the data set names its
timepoints (``uns["scflow_dataset"]``: ``time_values`` and ``time_labels``, as
:mod:`scflow.datasets` writes them), else ``"0.333"`` (3 significant digits), or the labels of
a categorical time key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["dataset_time_labels", "display_labels"]


def dataset_time_labels(adata: Any) -> dict[float, str]:
    """``{time value: label}`` from ``adata.uns["scflow_dataset"]`` (``{}`` without one)."""
    uns = getattr(adata, "uns", None)
    info = uns.get("scflow_dataset") if isinstance(uns, Mapping) else None
    if not isinstance(info, Mapping) or "time_values" not in info or "time_labels" not in info:
        return {}
    try:
        values = np.asarray(info["time_values"], dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return {}
    labels = [str(v) for v in np.asarray(info["time_labels"]).ravel()]
    if len(values) != len(labels):
        return {}
    return dict(zip(values.tolist(), labels, strict=True))


def display_labels(values: Sequence[float], labels: Sequence, numeric: bool,
                   adata: Any = None) -> list[str]:
    """How to show each timepoint: the data set's label when it names every one of
    ``values``, else ``f"{value:.3g}"`` for numeric times, else the label itself."""
    if not numeric:
        return [str(lab) for lab in labels]
    named = dataset_time_labels(adata)
    out = []
    for v in values:
        hit = [lab for t, lab in named.items() if np.isclose(t, float(v), rtol=1e-6, atol=1e-9)]
        out.append(hit[0] if hit else None)
    if named and all(lab is not None for lab in out):
        return out
    return [f"{float(v):.3g}" for v in values]
