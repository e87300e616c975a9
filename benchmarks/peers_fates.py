"""Per-cell fate predictions on LARRY, saved and paired (no peer needed; tested in CI).

A prediction file is an ``.npz`` in the format of scflow's LARRY table
(``larry_fate_predictions.npz``): ``cells`` (the day-2 trajectory cells, in the order of
``datasets.larry_truth()``), ``heldout`` (bool, the 10,087 scored cells), ``truth`` (the
clonal neutrophil bias), ``names`` and ``predictions`` (``(len(names), len(cells))`` float32
neutrophil bias, row ``i`` of prediction ``names[i]``). moscot's and CellRank's rows of
``peers.py larry`` are written in it (:func:`save_predictions`), so any two files pair
(:func:`pair_files`): the same resamples of the held-out cells score both predictions, so
the difference of their Pearson r has its own interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ("cells", "heldout", "truth", "names", "predictions")


def save_predictions(path: str | Path, cells: Sequence, heldout: np.ndarray,
                     truth: np.ndarray, predictions: Mapping[str, np.ndarray]) -> Path:
    """Write ``predictions`` (name -> per-cell bias, one per cell of ``cells``) with the
    cells, the held-out mask and the truth to ``path``. Raises ``ValueError`` before
    writing when a prediction, ``heldout`` or ``truth`` has not one value per cell."""
    cells = np.asarray(cells)
    n = len(cells)
    if not predictions:
        raise ValueError("predictions must hold at least one prediction, got none")
    for name, arr in {"heldout": heldout, "truth": truth, **predictions}.items():
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} must have one value per cell ({n}), got shape "
                             f"{np.shape(arr)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    # cell names as fixed-width strings: an object array cannot be loaded without pickle
    np.savez_compressed(tmp, cells=np.asarray(cells, dtype=str),
                        heldout=np.asarray(heldout, dtype=bool),
                        truth=np.asarray(truth, dtype=np.float64),
                        names=np.asarray(list(predictions)),
                        predictions=np.stack([np.asarray(v, dtype=np.float32)
                                              for v in predictions.values()]))
    tmp.replace(path)
    return path


def load_predictions(path: str | Path) -> dict:
    """``{"cells": Index, "heldout", "truth", "predictions": {name: array}}`` of a file
    written by :func:`save_predictions` or by scflow's LARRY table. Raises ``KeyError``
    naming a missing key."""
    with np.load(path) as z:
        missing = [k for k in KEYS if k not in z.files]
        if missing:
            raise KeyError(f"{path} lacks {missing} (a per-cell prediction file holds {KEYS})")
        return {"cells": pd.Index(z["cells"]), "heldout": z["heldout"].astype(bool),
                "truth": z["truth"].astype(np.float64),
                "predictions": dict(zip(z["names"].tolist(), z["predictions"], strict=True))}


def _pearson_rows(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``pred`` ``(k, n)`` with ``truth`` ``(n,)``."""
    p = pred - pred.mean(1, keepdims=True)
    t = truth - truth.mean()
    return (p @ t) / np.sqrt((p * p).sum(1) * (t @ t))


def paired_r(a: Sequence[np.ndarray], b: Sequence[np.ndarray], truth: np.ndarray, *,
             n_boot: int = 1000, level: float = 0.95, random_state: int = 0) -> dict:
    """Pearson r of ``a`` (the mean over its predictions, e.g. one per seed) and of ``b``
    with ``truth``, and ``r(a) - r(b)`` with a percentile interval over cells: every
    resample (cells with replacement, ``numpy.random.default_rng(random_state)``) scores
    every prediction, so the difference is paired.

    Returns
    -------
    ``{r_a, r_a_lo, r_a_hi, r_b, r_b_lo, r_b_hi, diff, lo, hi, separated, n_cells,
    n_boot}``.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    truth = np.asarray(truth, dtype=np.float64)
    if a.shape[1] != len(truth) or b.shape[1] != len(truth):
        raise ValueError(f"a and b must hold one value per cell of truth ({len(truth)}), got "
                         f"{a.shape[1]} and {b.shape[1]}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    rng = np.random.default_rng(random_state)
    ra, rb = _pearson_rows(a, truth).mean(), _pearson_rows(b, truth).mean()
    reps = np.empty((n_boot, 2))
    for i in range(n_boot):
        idx = rng.integers(0, len(truth), len(truth))
        reps[i] = (_pearson_rows(a[:, idx], truth[idx]).mean(),
                   _pearson_rows(b[:, idx], truth[idx]).mean())
    q = [(1 - level) / 2, (1 + level) / 2]
    (alo, ahi), (blo, bhi) = np.quantile(reps, q, axis=0).T
    lo, hi = np.quantile(reps[:, 0] - reps[:, 1], q)
    return {"r_a": float(ra), "r_a_lo": float(alo), "r_a_hi": float(ahi), "r_b": float(rb),
            "r_b_lo": float(blo), "r_b_hi": float(bhi), "diff": float(ra - rb),
            "lo": float(lo), "hi": float(hi), "separated": bool(lo > 0 or hi < 0),
            "n_cells": int(len(truth)), "n_boot": int(n_boot)}


def pair_files(file_a: str | Path, names_a: str | Sequence[str], file_b: str | Path,
               names_b: str | Sequence[str], **kwargs) -> dict:
    """:func:`paired_r` of predictions ``names_a`` of ``file_a`` against ``names_b`` of
    ``file_b`` on the held-out cells (a list of names: their mean r, e.g. over seeds).

    The files must hold the same cells (``file_b``'s are put in ``file_a``'s order), the
    same held-out cells and the same truth; otherwise ``ValueError``. ``kwargs`` go to
    :func:`paired_r`.
    """
    fa, fb = load_predictions(file_a), load_predictions(file_b)
    if not fa["cells"].sort_values().equals(fb["cells"].sort_values()):
        raise ValueError(f"file_b must hold the cells of file_a ({len(fa['cells'])}), got "
                         f"{len(fb['cells'])} cells, not the same set")
    order = fb["cells"].get_indexer(fa["cells"])
    if not (np.array_equal(fa["heldout"], fb["heldout"][order])
            and np.allclose(fa["truth"], fb["truth"][order], equal_nan=True)):
        raise ValueError("file_b must have the held-out cells and the truth of file_a")

    def pick(f: dict, names, which: str, idx=None) -> list:
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in f["predictions"]]
        if unknown or not names:
            raise KeyError(f"{which}: no prediction named {unknown or names}; have "
                           f"{list(f['predictions'])}")
        return [f["predictions"][n] if idx is None else f["predictions"][n][idx]
                for n in names]

    held = fa["heldout"]
    a = [p[held] for p in pick(fa, names_a, "names_a")]
    b = [p[held] for p in pick(fb, names_b, "names_b", order)]
    return paired_r(a, b, fa["truth"][held], **kwargs)


def prediction_groups(rows: Sequence[Mapping]) -> dict[str, list[str]]:
    """The prediction names of scflow's LARRY rows (``larry_fate.json``'s ``rows``, with a
    ``prediction`` key), grouped by method (and readout, when the rows have one): one
    entry per table row, its names one per seed."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row.get("prediction") is None or int(row.get("seed", -1)) < 0:
            continue
        label = str(row["method"]) + (f" ({row['readout']})" if row.get("readout") else "")
        groups.setdefault(label, []).append(str(row["prediction"]))
    return groups
