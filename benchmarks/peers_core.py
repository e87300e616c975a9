"""The parts of ``benchmarks/peers.py`` that need no peer installed: the held-out time course
(scaler fitted on the kept cells only), the prediction caches, the paired scoring of every
prediction of one held-out timepoint and the choice of moscot's ``epsilon`` from inner
scores. Tested in CI (``tests/benchmark/test_peers.py``) without the peers' venv.

A cache is one ``.npz`` per data set and held-out timepoint (``benchmarks/results/peers/
loo_<set>_k<k>.npz``): every prediction cloud under ``"<row>|s<seed>"`` (float32) and its
weights under ``"<row>|s<seed>|w"`` when it has any, beside a ``.json`` with what made each
row (seconds, convergence, epsilon and why, versions) and a digest of the real held-out
cells, so the report re-scores from the caches and checks that it scores the same cells.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import platform
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from scflow import TimeCourse
from scflow.protocols.intervals import paired_bootstrap_w1
from scflow.protocols.selection import first_best

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = RESULTS / "peers"
PACKAGES = ("moscot", "ott-jax", "jax", "jaxlib", "cellrank", "scvelo", "pygpcca", "torchcfm",
            "torch", "numpy", "scipy", "pandas", "anndata", "scanpy", "pot", "scflow")
#: moscot's default ``epsilon`` (``TemporalProblem.solve``) first, then the alternatives the
#: inner leave-one-out chooses among (ties go to the earlier value, so to the default)
EPSILONS = (1e-3, 1e-2, 5e-2, 1e-1)


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Python and the installed version of every package of ``packages``."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def commit() -> str | None:
    """The checkout's commit, ``+dirty`` when scflow or benchmarks/ has uncommitted edits."""
    try:
        head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--",
                                "../scflow", "."], check=True, capture_output=True,
                               text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def scflow_default() -> str:
    """``tl.fit``'s default ``method``, read from its signature (not written here)."""
    import scflow

    return str(inspect.signature(scflow.tl.fit).parameters["method"].default)


def holdout_course(x: np.ndarray, labels: Sequence, k: int) -> TimeCourse:
    """Every timepoint, whitened by a scaler fitted on the cells of all timepoints but ``k``.

    Index time (timepoint ``i`` at model time ``i``), so ``k`` is bridged from ``k - 1`` to
    ``k + 1``. The held-out cells are scaled with the kept cells' mean and scale; nothing is
    fitted on them.
    """
    raw = TimeCourse.from_arrays(np.asarray(x, dtype=np.float64), labels, whiten=False)
    k = raw.interior_index(k, "k")
    kept = torch.cat([raw.xs[i] for i in range(raw.n_timepoints) if i != k]).double()
    mean, scale = kept.mean(0), kept.std(0, unbiased=False)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    xs = [((c.double() - mean) / scale).float() for c in raw.xs]
    return TimeCourse(xs, raw.times, raw.labels, raw.values, mean.numpy(), scale.numpy())


def digest(x: np.ndarray | torch.Tensor) -> str:
    """sha256 of float32 cells (to check a report scores the cells the caches were made for)."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return hashlib.sha256(np.ascontiguousarray(arr, dtype=np.float32).tobytes()).hexdigest()


# --- caches ---------------------------------------------------------------------------------

def cache_paths(name: str, k: int, folder: Path = CACHE) -> tuple[Path, Path]:
    """The ``.npz`` of the clouds and the ``.json`` of their facts for one held-out time."""
    stem = folder / f"loo_{name}_k{int(k)}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def load_cache(name: str, k: int, folder: Path = CACHE) -> tuple[dict, dict]:
    """``({row: {seed: (points, weights or None)}}, facts)``; empty when nothing is cached."""
    npz, js = cache_paths(name, k, folder)
    clouds: dict[str, dict[int, tuple]] = {}
    if npz.is_file():
        with np.load(npz) as z:
            arrays = {key: z[key] for key in z.files}
        for key, pts in arrays.items():
            parts = key.split("|")
            if len(parts) != 2:
                continue
            row, seed = parts[0], int(parts[1].removeprefix("s"))
            clouds.setdefault(row, {})[seed] = (pts, arrays.get(f"{key}|w"))
    facts = json.loads(js.read_text()) if js.is_file() else {"rows": {}}
    return clouds, facts


def save_rows(name: str, k: int, rows: Mapping[str, Mapping[int, tuple]],
              facts: Mapping[str, dict], *, real_digest: str, folder: Path = CACHE) -> None:
    """Add (or replace) the clouds of ``rows`` and their ``facts`` in the cache of
    ``(name, k)``; the other rows stay. Raises ``ValueError`` before writing when the cache
    was made for other held-out cells (``real_digest``)."""
    clouds, old = load_cache(name, k, folder)
    if old.get("real_digest") not in (None, real_digest):
        raise ValueError(f"real_digest: the cache of {name} k={k} was made for other held-out "
                         "cells (another scaler or data); delete it to start again")
    for row, seeds in rows.items():
        if "|" in row:
            raise ValueError(f"rows: a row name must not hold '|', got {row!r}")
        clouds[row] = {int(s): v for s, v in seeds.items()}
    arrays = {}
    for row, seeds in clouds.items():
        for seed, (pts, w) in seeds.items():
            arrays[f"{row}|s{seed}"] = np.asarray(pts, dtype=np.float32)
            if w is not None:
                arrays[f"{row}|s{seed}|w"] = np.asarray(w, dtype=np.float64)
    npz, js = cache_paths(name, k, folder)
    npz.parent.mkdir(parents=True, exist_ok=True)
    merged = {**old.get("rows", {}), **{r: dict(f) for r, f in facts.items()}}
    tmp = npz.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(npz)
    js.write_text(json.dumps({"dataset": name, "holdout_index": int(k),
                              "real_digest": real_digest, "rows": merged}, indent=1,
                             default=str) + "\n")


# --- scoring ----------------------------------------------------------------------------------

def _centred(value: float, reps: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of ``reps`` moved by their mean excess over ``value``
    (:mod:`scflow.protocols.intervals`' ``"centred"`` interval)."""
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    shift = float(reps.mean() - value)
    return float(lo - shift), float(hi - shift)


def score_rows(clouds: Mapping[str, Mapping[int, tuple]], real, *, n_boot: int = 100,
               level: float = 0.95, random_state: int = 0,
               pairs: Sequence[tuple[str, str]] = ()) -> dict:
    """Exact W1 of every cloud of one held-out timepoint, on shared bootstrap draws.

    All clouds go through one :func:`scflow.protocols.intervals.paired_bootstrap_w1` call, so every
    replicate resamples the same real cells for every row and seed. A row's W1 is the mean
    over its seeds, and its interval is read off the replicates averaged over seeds (the
    interval over cells of that mean; centred as the W1 intervals are). ``pairs``: ``(a, b)``
    rows whose difference ``W1(a) - W1(b)`` is wanted, with the interval of the paired
    replicates (below 0: ``a`` better).

    Returns
    -------
    ``{"rows": {row: {w1, lo, hi, seeds, w1_seeds}}, "diffs": {"a - b": {diff, lo, hi,
    separated}}}``.
    """
    preds, names = {}, {}
    for row, seeds in clouds.items():
        for seed, (pts, w) in sorted(seeds.items()):
            key = f"{row}|s{seed}"
            preds[key] = (np.asarray(pts), None if w is None else np.asarray(w))
            names.setdefault(row, []).append(key)
    if not preds:
        raise ValueError("clouds must hold at least one prediction, got none")
    paired = paired_bootstrap_w1(preds, real, reference=next(iter(preds)), n_boot=n_boot,
                                 level=level, random_state=random_state)
    rows, reps = {}, {}
    for row, keys in names.items():
        w1s = [paired.intervals[key].w1 for key in keys]
        reps[row] = np.mean([paired.intervals[key].replicates for key in keys], axis=0)
        w1 = float(np.mean(w1s))
        lo, hi = _centred(w1, reps[row], level)
        rows[row] = {"w1": w1, "lo": max(lo, 0.0), "hi": max(hi, 0.0), "seeds": len(keys),
                     "w1_seeds": [float(v) for v in w1s]}
    diffs = {}
    for a, b in pairs:
        if a not in rows or b not in rows:
            continue
        d = rows[a]["w1"] - rows[b]["w1"]
        lo, hi = _centred(d, reps[a] - reps[b], level)
        diffs[f"{a} - {b}"] = {"diff": d, "lo": lo, "hi": hi, "separated": lo > 0 or hi < 0}
    return {"rows": rows, "diffs": diffs, "n_boot": n_boot, "level": level}


def verdict(diff: Mapping) -> str:
    """``"a better"`` / ``"b better"`` / ``"tie (interval holds 0)"`` for ``a - b``."""
    if diff["hi"] < 0:
        return "first better"
    if diff["lo"] > 0:
        return "second better"
    return "no difference (interval holds 0)"


# --- moscot's epsilon, chosen on kept timepoints only ------------------------------------------

def inner_holdouts(n_timepoints: int, k: int) -> list[tuple[int, int, int]]:
    """``(a, j, b)`` for every interior timepoint ``j`` of the course without ``k``, with its
    kept neighbours ``a`` and ``b`` (full-course indices). Empty with fewer than three kept
    timepoints."""
    keep = [i for i in range(n_timepoints) if i != k]
    return [(keep[i - 1], keep[i], keep[i + 1]) for i in range(1, len(keep) - 1)]


def choose_epsilon(scores: Mapping[float, Sequence[float]],
                   grid: Sequence[float] = EPSILONS) -> float:
    """The ``epsilon`` of ``grid`` with the lowest mean inner W1 (``scores[eps]``: one W1 per
    inner hold-out); equal means (up to :data:`scflow.protocols.selection.TIE`) go to the earlier
    value of ``grid``, moscot's default first. Raises ``ValueError`` when a value of
    ``grid`` has no score."""
    missing = [e for e in grid if not scores.get(e)]
    if missing:
        raise ValueError(f"scores must hold inner W1s for every epsilon of the grid, missing "
                         f"{missing}")
    means = np.array([float(np.mean(scores[e])) for e in grid])
    return float(grid[first_best(means)])
