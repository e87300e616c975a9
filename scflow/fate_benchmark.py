"""The LARRY fate benchmark (Weinreb et al. 2020, Fig. 5): fates from snapshots, scored
against lineage tracing.

For each of the 20,157 day-2 cells of the neutrophil / monocyte trajectory, a method
predicts the neutrophil fate bias ``P(Neutrophil) / (P(Neutrophil) + P(Monocyte))`` from
the snapshots alone (no barcodes); the score is the Pearson r with the bias measured from
the cells' held-out clones, over the 10,087 held-out cells, with a bootstrap interval over
those cells. The published methods' shipped predictions are scored the same way.

Labelling rule for the late cells: the only annotation of the 130,887 cells is the CoSpar
subset's (781 cells, of which 258 are day-6 trajectory cells: 106 neutrophils, 201
monocytes over days 4 and 6); ``tl.fate`` reads each end point's fate among its
``n_neighbors`` nearest annotated day-6 cells.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LABEL_RULE", "FATE_METHODS", "larry_fate", "pearson_ci", "summarize_fate",
           "fate_markdown", "neutrophil_bias"]

LABEL_RULE = ("late cells: the CoSpar subset's annotation (obs['state_info'], 258 annotated "
              "day-6 trajectory cells); an end point's fate is the share of each label among "
              "its n_neighbors nearest annotated day-6 cells")
#: benchmark rows: name -> (``tl.fit`` method, ``tl.fate`` mode); ``default`` is both tools'
#: defaults, ``transport`` needs no network (the fit only gives the scaling)
FATE_METHODS: dict[str, tuple[str, str]] = {
    "default": ("otcfm", "auto"),
    "sbcfm": ("sbcfm", "sde"),
    "transport": ("otcfm", "transport"),
}
#: ``tl.fit`` options per row beyond its defaults: SB-CFM's diffusion for fates, chosen on
#: simulations (``benchmarks/fate_simulation.py``: sigma 0.25 beat 0.5 and 1.0), not here
FIT_OPTIONS: dict[str, dict] = {"sbcfm": {"sigma": 0.25}}
NEUTROPHIL, MONOCYTE = "Neutrophil", "Monocyte"


def pearson_ci(pred: np.ndarray, truth: np.ndarray, *, n_boot: int = 1000,
               random_state: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Pearson r and its percentile bootstrap interval over cells (resampled with
    replacement, ``numpy.random.default_rng(random_state)``)."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    r = float(np.corrcoef(pred, truth)[0, 1])
    rng = np.random.default_rng(random_state)
    rs = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, len(pred), len(pred))
        rs[b] = np.corrcoef(pred[i], truth[i])[0, 1]
    lo, hi = np.quantile(rs, [(1 - level) / 2, (1 + level) / 2])
    return r, float(lo), float(hi)


def larry_fate(methods: Sequence[str] = tuple(FATE_METHODS), seeds: Sequence[int] = (0, 1, 2),
               *, n_steps: int = 3000, fate_kwargs: dict | None = None,
               device: str = "auto", n_boot: int = 1000,
               cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Run the benchmark; one row per method and seed, plus one per published method.

    Parameters
    ----------
    methods
        Names of :data:`FATE_METHODS`.
    seeds
        Seeds of the fit and of the fate draws.
    n_steps
        Training steps of each ``tl.fit`` (its other options are its defaults).
    fate_kwargs
        Extra options for every ``tl.fate`` call (e.g. ``n_neighbors``).
    device
        Training device.
    n_boot
        Bootstrap resamples of the held-out cells.
    cache_dir
        Folder where each fit is kept (``.h5ad``, with its training seconds beside it in a
        ``.json``) and read back by a later call with the same fit method, options, seed
        and ``n_steps``: fates under other rules then reuse the fits. ``None``: no cache.

    Returns
    -------
    DataFrame with columns ``method``, ``seed``, ``r``, ``r_low``, ``r_high`` (95%
    bootstrap interval), ``n_cells``, ``fit_method``, ``fate_mode``, ``seconds``.
    """
    from . import datasets, tl

    unknown = [m for m in methods if m not in FATE_METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be names of {list(FATE_METHODS)}, got {list(methods)}")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    adata = datasets.larry()
    truth = datasets.larry_truth()
    held = truth["heldout"].to_numpy()
    rows = []
    fits: dict[tuple[str, int], tuple] = {}
    for seed in seeds:
        for name in methods:
            fit_method, mode = FATE_METHODS[name]
            start = time.perf_counter()
            options = FIT_OPTIONS.get(name, {})
            cache = (fit_method, tuple(sorted(options.items())), seed)
            if cache not in fits:
                fits[cache] = _fit(adata, fit_method, options, int(seed), n_steps, device,
                                   cache_dir)
            fitted, fit_seconds = fits[cache]
            start = time.perf_counter()
            out = tl.fate(fitted, "state_info", from_time=2, to_time=6, mode=mode,
                          random_state=int(seed), key_added="larry_fate", copy=True,
                          **(fate_kwargs or {}))
            prob = out.obsm["larry_fate_probabilities"].loc[truth.index]
            bias = neutrophil_bias(prob)
            r, lo, hi = pearson_ci(bias[held], truth["truth"].to_numpy()[held], n_boot=n_boot,
                                   random_state=int(seed))
            rows.append(dict(method=name, seed=int(seed), r=r, r_low=lo, r_high=hi,
                             n_cells=int(held.sum()), fit_method=fit_method,
                             fate_mode=out.uns["larry_fate"]["params"]["mode"],
                             seconds=fit_seconds + time.perf_counter() - start))
    null = _no_motion(adata, truth.index, n_neighbors=(fate_kwargs or {}).get("n_neighbors"))
    r, lo, hi = pearson_ci(null[held], truth["truth"].to_numpy()[held], n_boot=n_boot)
    rows.append(dict(method="null: no motion", seed=-1, r=r, r_low=lo, r_high=hi,
                     n_cells=int(held.sum()), fit_method="", fate_mode="no motion",
                     seconds=np.nan))
    for name in datasets.PUBLISHED_FATE_METHODS:
        r, lo, hi = pearson_ci(truth[name].to_numpy()[held], truth["truth"].to_numpy()[held],
                               n_boot=n_boot)
        rows.append(dict(method=f"published {name}", seed=-1, r=r, r_low=lo, r_high=hi,
                         n_cells=int(held.sum()), fit_method="", fate_mode="", seconds=np.nan))
    return pd.DataFrame(rows)


def _fit(adata, method: str, options: dict, seed: int, n_steps: int, device: str,
         cache_dir: str | Path | None) -> tuple:
    """``tl.fit`` of the benchmark (or its cached copy): the fitted AnnData and the seconds
    the fit took."""
    import anndata as ad

    from . import tl

    if cache_dir is not None:
        tag = "_".join([method, *(f"{k}{v}" for k, v in sorted(options.items())),
                        f"seed{seed}", f"steps{n_steps}"])
        path = Path(cache_dir) / f"larry_fit_{tag}.h5ad"
        if path.is_file() and path.with_suffix(".json").is_file():
            return ad.read_h5ad(path), json.loads(path.with_suffix(".json").read_text())[
                "seconds"]
    start = time.perf_counter()
    fitted = adata.copy()
    tl.fit(fitted, "day", use_rep="X_emb", method=method, n_steps=n_steps, random_state=seed,
           device=device, **options)
    seconds = time.perf_counter() - start
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fitted.write_h5ad(path)
        path.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
    return fitted, seconds


def _no_motion(adata, cells: pd.Index, n_neighbors: int | None) -> np.ndarray:
    """The null: each cell's fate read where it is now, among the labelled day-6 cells (the
    same labelling rule, no transport)."""
    import torch

    from .fate import soft_labels
    from .tl._fate import DEFAULT_NEIGHBORS

    day6 = (adata.obs["day"] == 6).to_numpy() & adata.obs["state_info"].notna().to_numpy()
    cats = pd.Categorical(adata.obs["state_info"][day6].astype(str))
    x = np.asarray(adata.obsm["X_emb"], dtype=np.float64)
    mean, scale = x.mean(0), x.std(0)
    z = torch.as_tensor((x - mean) / scale)
    rows = adata.obs_names.get_indexer(cells)
    p = soft_labels(z[rows], z[day6], torch.as_tensor(cats.codes.astype(np.int64)),
                    len(cats.categories), n_neighbors or DEFAULT_NEIGHBORS)
    return neutrophil_bias(pd.DataFrame(p.numpy(), columns=list(cats.categories)))


def neutrophil_bias(prob: pd.DataFrame) -> np.ndarray:
    """``P(Neutrophil) / (P(Neutrophil) + P(Monocyte))`` of a ``tl.fate`` probability table
    (:func:`scflow.fate.fate_bias`; a fate absent from the table has probability 0)."""
    import torch

    from .fate import fate_bias

    cols = [prob[c].to_numpy(dtype=np.float64) if c in prob else np.zeros(len(prob))
            for c in (NEUTROPHIL, MONOCYTE)]
    return fate_bias(torch.as_tensor(np.stack(cols, 1)), 0, 1).numpy()


def summarize_fate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean r over seeds, the seeds' spread and the mean bootstrap interval per method."""
    g = df.groupby("method", sort=False)
    return pd.DataFrame({"r_mean": g["r"].mean(), "r_std": g["r"].std(),
                         "r_low": g["r_low"].mean(), "r_high": g["r_high"].mean(),
                         "n_seeds": g["seed"].nunique(), "fate_mode": g["fate_mode"].first(),
                         "seconds": g["seconds"].mean()}).reset_index()


def fate_markdown(df: pd.DataFrame) -> str:
    """The table: Pearson r (mean over seeds ± sd) and the 95% bootstrap interval."""
    s = summarize_fate(df).sort_values("r_mean", ascending=False)
    lines = ["| method | fate estimate | Pearson r | 95% interval (cells) | seeds "
             "| seconds (fit + fate) |",
             "|---|---|---|---|---|---|"]
    for r in s.itertuples():
        seeds = 0 if r.method.startswith(("published", "null")) else r.n_seeds
        spread = "" if pd.isna(r.r_std) else f" ± {r.r_std:.3f}"
        secs = "–" if pd.isna(r.seconds) else f"{r.seconds:.0f}"
        name = r.method if seeds == 0 else f"scflow {r.method}"
        lines.append(f"| {name} | {r.fate_mode or 'shipped predictions'} | {r.r_mean:.3f}"
                     f"{spread} | [{r.r_low:.3f}, {r.r_high:.3f}] | {seeds or '–'} | {secs} |")
    lines.append("")
    lines.append(f"Labelling rule: {LABEL_RULE}. Scored on the 10,087 held-out day-2 cells.")
    return "\n".join(lines)
