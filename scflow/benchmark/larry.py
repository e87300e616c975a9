"""The LARRY fate benchmark (Weinreb et al. 2020, Fig. 5): fates from snapshots, scored
against lineage tracing.

For each of the 20,157 day-2 cells of the neutrophil / monocyte trajectory, a method
predicts the neutrophil fate bias ``P(Neutrophil) / (P(Neutrophil) + P(Monocyte))`` from
the snapshots alone (no barcodes); the score is the Pearson r with the bias measured from
the cells' held-out clones, over the 10,087 held-out cells, with a bootstrap interval over
those cells. The published methods' shipped predictions are scored the same way.

Labelling rule for the late cells: the only annotation of the 130,887 cells is the CoSpar
subset's (781 cells, of which 258 are day-6 trajectory cells: 64 neutrophils, 104
monocytes, 88 undiff, 2 Neu_Mon); ``tl.fate`` reads each end point's fate among its
``n_neighbors`` nearest annotated day-6 neutrophils and monocytes, ``n_neighbors`` chosen
from the annotation alone (:data:`FATE_RULE`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..fate.core import DEFAULT_NEIGHBORS
from ..training.config import TrainConfig

__all__ = ["LABEL_RULE", "FATE_RULE", "FATE_METHODS", "DEFAULT_FATE_ROWS", "larry_fate",
           "pearson_ci", "summarize_fate", "fate_markdown", "neutrophil_bias", "label_rule"]

#: benchmark rows: name -> (``tl.fit`` method, ``tl.fate`` mode); ``default`` is both tools'
#: defaults, ``transport`` needs no network (the fit only gives the scaling); ``growth`` is
#: growth on (``uotcfm``, a velocity and a growth field from unbalanced plans, masses from
#: the cell counts) with ``tl.fit``'s defaults otherwise, beside ``default`` = growth off
#: (balanced ``otcfm``, the same defaults; on LARRY both resolve ``coupling="auto"`` to
#: minibatch plans). A fate is where one cell's ODE push ends: the growth field's weights
#: scale a cell's mass along the way, never its end point, so they change no single cell's
#: fate; only the velocity field, trained on the unbalanced pairs, does
FATE_METHODS: dict[str, tuple[str, str]] = {
    "default": ("otcfm", "auto"),
    "sbcfm": ("sbcfm", "sde"),
    "transport": ("otcfm", "transport"),
    "growth": ("uotcfm", "auto"),
    # ablations of ``growth`` (not run by default): what its gain over ``default`` is due to
    "sbcfm_ode": ("sbcfm", "ode"),
    "growth_shape": ("uotcfm", "auto"),
}
#: the rows run when none are named (``scflow benchmark --dataset larry``)
DEFAULT_FATE_ROWS: tuple[str, ...] = ("default", "sbcfm", "transport", "growth")
#: ``tl.fit`` options per row beyond its defaults: SB-CFM's diffusion for fates, chosen on
#: simulations (``benchmarks/fate_simulation.py``: sigma 0.25 beat 0.5 and 1.0), not here;
#: the ablations: ``sbcfm_ode`` is the ``sbcfm`` row's fit pushed along its ODE (balanced
#: entropic pairs, blur 2 sigma^2 = 0.125 beside ``uotcfm``'s 0.1, no growth), so it
#: separates entropic pairing from growth; ``growth_shape`` gives both populations the same
#: mass (growth from the shapes alone, not from the cell counts); it must equal ``growth``
#: seed for seed, since masses only scale the semi-relaxed plan (``tests/test_growth.py``)
FIT_OPTIONS: dict[str, dict] = {"sbcfm": {"sigma": 0.25},
                                "sbcfm_ode": {"sigma": 0.25},
                                "growth_shape": {"mass": "none"}}
NEUTROPHIL, MONOCYTE = "Neutrophil", "Monocyte"
#: the labelling rule of every ``tl.fate`` call (``fate_kwargs`` adds to / overrides it):
#: fates read among the annotated neutrophils and monocytes only (``undiff`` and the other
#: labels are states, not fates), ``n_neighbors`` chosen from the annotation alone. Chosen
#: on simulations with LARRY-like labels (``python benchmarks/fate_simulation.py labels``:
#: mean r over its LARRY-like labellings and both modes 0.921, against 0.919 for 15
#: neighbours among the same labels, 0.918 for 15 among all labels (the former rule) and
#: 0.905 for ``"auto"`` among all labels), never on the clonal truth
FATE_RULE: dict = {"fates": [NEUTROPHIL, MONOCYTE], "n_neighbors": "auto"}


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


def larry_fate(methods: Sequence[str] = DEFAULT_FATE_ROWS, seeds: Sequence[int] = (0, 1, 2),
               *, n_steps: int = 3000, fate_kwargs: dict | None = None,
               device: str = "auto", n_boot: int = 1000,
               cache_dir: str | Path | None = None,
               config: TrainConfig | None = None) -> pd.DataFrame:
    """Run the benchmark; one row per method and seed, plus one per published method.

    Parameters
    ----------
    methods
        Names of :data:`FATE_METHODS` (default :data:`DEFAULT_FATE_ROWS`).
    seeds
        Seeds of the fit and of the fate draws.
    n_steps
        Training steps of each ``tl.fit``.
    config
        The other training options of every ``tl.fit`` (:class:`scflow.TrainConfig`;
        default ``tl.fit``'s defaults; its ``n_steps`` is replaced by ``n_steps``). A row's
        own options (:data:`FIT_OPTIONS`, e.g. the ``sbcfm`` row's ``sigma``) are part of
        its definition: a ``config`` that changes one of them is refused.
    fate_kwargs
        Options for every ``tl.fate`` call beyond :data:`FATE_RULE` (which they override,
        e.g. ``n_neighbors=15``; ``fates=None`` reads every label).
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
    bootstrap interval), ``n_cells``, ``fit_method``, ``fate_mode``, ``seconds``,
    ``n_neighbors`` (the value ``tl.fate`` used) and ``label_rule`` (in words).
    """
    from .. import datasets, tl

    unknown = [m for m in methods if m not in FATE_METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be names of {list(FATE_METHODS)}, got {list(methods)}")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    config = replace(config or TrainConfig(), n_steps=n_steps)
    for name in methods:
        clash = sorted(set(config.changed()) & set(FIT_OPTIONS.get(name, {})))
        if clash:
            raise ValueError(f"the {name!r} row sets {clash} itself "
                             f"({FIT_OPTIONS[name]}); leave {clash} at their defaults or "
                             f"leave out that row")
    adata = datasets.larry()
    truth = datasets.larry_truth()
    held = truth["heldout"].to_numpy()
    fate_kwargs = {**FATE_RULE, **(fate_kwargs or {})}
    rule = label_rule(fate_kwargs)
    rows = []
    fits: dict[tuple[str, int], tuple] = {}
    for seed in seeds:
        for name in methods:
            fit_method, mode = FATE_METHODS[name]
            start = time.perf_counter()
            options = FIT_OPTIONS.get(name, {})
            cache = (fit_method, tuple(sorted(options.items())), seed)
            if cache not in fits:
                fits[cache] = _fit(adata, fit_method, options, int(seed), config, device,
                                   cache_dir)
            fitted, fit_seconds = fits[cache]
            start = time.perf_counter()
            out = tl.fate(fitted, "state_info", from_time=2, to_time=6, mode=mode,
                          random_state=int(seed), key_added="larry_fate", copy=True,
                          **fate_kwargs)
            prob = out.obsm["larry_fate_probabilities"].loc[truth.index]
            bias = neutrophil_bias(prob)
            r, lo, hi = pearson_ci(bias[held], truth["truth"].to_numpy()[held], n_boot=n_boot,
                                   random_state=int(seed))
            rows.append(dict(method=name, seed=int(seed), r=r, r_low=lo, r_high=hi,
                             n_cells=int(held.sum()), fit_method=fit_method,
                             fate_mode=out.uns["larry_fate"]["params"]["mode"],
                             n_neighbors=int(out.uns["larry_fate"]["params"]["n_neighbors"]),
                             label_rule=rule,
                             seconds=fit_seconds + time.perf_counter() - start))
    null, k_null = _no_motion(adata, truth.index,
                              n_neighbors=fate_kwargs.get("n_neighbors"),
                              fates=fate_kwargs.get("fates"), return_k=True)
    r, lo, hi = pearson_ci(null[held], truth["truth"].to_numpy()[held], n_boot=n_boot)
    rows.append(dict(method="null: no motion", seed=-1, r=r, r_low=lo, r_high=hi,
                     n_cells=int(held.sum()), fit_method="", fate_mode="no motion",
                     seconds=np.nan, n_neighbors=k_null, label_rule=rule))
    for name in datasets.PUBLISHED_FATE_METHODS:
        r, lo, hi = pearson_ci(truth[name].to_numpy()[held], truth["truth"].to_numpy()[held],
                               n_boot=n_boot)
        rows.append(dict(method=f"published {name}", seed=-1, r=r, r_low=lo, r_high=hi,
                         n_cells=int(held.sum()), fit_method="", fate_mode="", seconds=np.nan))
    return pd.DataFrame(rows)


def _fit(adata, method: str, options: dict, seed: int, config: TrainConfig, device: str,
         cache_dir: str | Path | None) -> tuple:
    """``tl.fit`` of the benchmark (or its cached copy): the fitted AnnData and the seconds
    the fit took. ``options``: the row's own (training options, and ``mass``)."""
    import anndata as ad

    from .. import tl

    train = {k: v for k, v in options.items() if k in TrainConfig.names()}
    rest = {k: v for k, v in options.items() if k not in train}
    cfg = replace(config, **train)
    if cache_dir is not None:
        changed = {**cfg.changed(), **rest}
        changed.pop("n_steps", None)
        tag = "_".join([method, *(f"{k}{_tag(v)}" for k, v in sorted(changed.items())),
                        f"seed{seed}", f"steps{cfg.n_steps}"])
        path = Path(cache_dir) / f"larry_fit_{tag}.h5ad"
        if path.is_file() and path.with_suffix(".json").is_file():
            return ad.read_h5ad(path), json.loads(path.with_suffix(".json").read_text())[
                "seconds"]
    start = time.perf_counter()
    fitted = adata.copy()
    tl.fit(fitted, "day", use_rep="X_emb", method=method, random_state=seed, device=device,
           config=cfg, **rest)
    seconds = time.perf_counter() - start
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fitted.write_h5ad(path)
        path.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
    return fitted, seconds


def _tag(value) -> str:
    """An option's value in a cache file name (``hidden=(32, 32)``: ``32-32``)."""
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return str(value)


def _no_motion(adata, cells: pd.Index, n_neighbors: int | str | None,
               fates: Sequence[str] | None = None, return_k: bool = False):
    """The null: each cell's fate read where it is now, among the labelled day-6 cells (the
    same labelling rule as ``tl.fate``: ``fates``, ``n_neighbors`` or ``"auto"``, at most a
    quarter of the labelled cells; no transport)."""
    import torch

    from ..fate.core import select_neighbors, soft_labels
    labels = adata.obs["state_info"]
    day6 = (adata.obs["day"] == 6).to_numpy() & labels.notna().to_numpy()
    if fates is not None:
        day6 &= labels.astype(str).isin([str(f) for f in fates]).to_numpy()
    cats = pd.Categorical(labels[day6].astype(str),
                          categories=None if fates is None else [str(f) for f in fates])
    codes = torch.as_tensor(cats.codes.astype(np.int64))
    x = np.asarray(adata.obsm["X_emb"], dtype=np.float64)
    mean, scale = x.mean(0), x.std(0)
    z = torch.as_tensor((x - mean) / scale)
    cap = max(1, int(day6.sum()) // 4)
    k = n_neighbors or DEFAULT_NEIGHBORS
    if k == "auto":
        k, _ = select_neighbors(z[day6], codes, len(cats.categories), max_k=cap)
    rows = adata.obs_names.get_indexer(cells)
    k = min(k, cap)
    p = soft_labels(z[rows], z[day6], codes, len(cats.categories), k)
    bias = neutrophil_bias(pd.DataFrame(p.numpy(), columns=list(cats.categories)))
    return (bias, int(k)) if return_k else bias


def neutrophil_bias(prob: pd.DataFrame) -> np.ndarray:
    """``P(Neutrophil) / (P(Neutrophil) + P(Monocyte))`` of a ``tl.fate`` probability table
    (:func:`scflow.fate.fate_bias`; a fate absent from the table has probability 0)."""
    import torch

    from ..fate.core import fate_bias

    cols = [prob[c].to_numpy(dtype=np.float64) if c in prob else np.zeros(len(prob))
            for c in (NEUTROPHIL, MONOCYTE)]
    return fate_bias(torch.as_tensor(np.stack(cols, 1)), 0, 1).numpy()


def label_rule(fate_kwargs: dict | None = None) -> str:
    """The labelling rule of the late cells under ``tl.fate`` options ``fate_kwargs``, in
    words (for the table)."""
    kw = fate_kwargs or {}
    k = kw.get("n_neighbors") or DEFAULT_NEIGHBORS
    fates = kw.get("fates")
    cells = ("annotated day-6 cells" if fates is None else
             f"annotated day-6 cells labelled {' or '.join(map(str, fates))} (other labels, "
             "e.g. undiff, not read)")
    if k == "auto":
        how = (f"its n_neighbors nearest {cells}, n_neighbors chosen from the annotation "
               "alone (n_neighbors='auto': the k whose soft label best predicts each "
               "annotated day-6 cell's own label from the others, leave-one-out Brier score; "
               "the k used per seed is in the last column)")
    else:
        how = f"its {k} nearest {cells}"
    return ("late cells: the CoSpar subset's annotation (obs['state_info'], 258 annotated "
            f"day-6 trajectory cells); an end point's fate is the share of each label among "
            f"{how}")


#: the labelling rule of the benchmark, in words
LABEL_RULE = label_rule(FATE_RULE)


def summarize_fate(df: pd.DataFrame) -> pd.DataFrame:
    """Mean r over seeds, the seeds' spread and the mean bootstrap interval per method."""
    g = df.groupby("method", sort=False)
    return pd.DataFrame({"r_mean": g["r"].mean(), "r_std": g["r"].std(),
                         "r_low": g["r_low"].mean(), "r_high": g["r_high"].mean(),
                         "n_seeds": g["seed"].nunique(), "fate_mode": g["fate_mode"].first(),
                         "seconds": g["seconds"].mean(),
                         "n_neighbors": g["n_neighbors"].agg(_ks) if "n_neighbors" in df
                         else "–"}).reset_index()


def _ks(values: pd.Series) -> str:
    ks = [str(int(v)) for v in values if pd.notna(v)]
    return "/".join(ks) if ks else "–"


def fate_markdown(df: pd.DataFrame, rule: str | None = None) -> str:
    """The table: Pearson r (mean over seeds ± sd), the 95% bootstrap interval and the
    ``n_neighbors`` used per seed; ``rule``: the labelling rule in words (default: the
    rows' ``label_rule``, else :data:`LABEL_RULE`)."""
    if rule is None and "label_rule" in df and df["label_rule"].notna().any():
        rule = str(df["label_rule"].dropna().iloc[0])
    s = summarize_fate(df).sort_values("r_mean", ascending=False)
    lines = ["| method | fate estimate | Pearson r | 95% interval (cells) | seeds "
             "| seconds (fit + fate) | n_neighbors (per seed) |",
             "|---|---|---|---|---|---|---|"]
    for r in s.itertuples():
        seeds = 0 if r.method.startswith(("published", "null")) else r.n_seeds
        spread = "" if pd.isna(r.r_std) else f" ± {r.r_std:.3f}"
        secs = "–" if pd.isna(r.seconds) else f"{r.seconds:.0f}"
        name = r.method if seeds == 0 else f"scflow {r.method}"
        lines.append(f"| {name} | {r.fate_mode or 'shipped predictions'} | {r.r_mean:.3f}"
                     f"{spread} | [{r.r_low:.3f}, {r.r_high:.3f}] | {seeds or '–'} | {secs} "
                     f"| {r.n_neighbors} |")
    lines.append("")
    lines.append(f"Labelling rule: {rule or LABEL_RULE}. Scored on the 10,087 held-out day-2 "
                 "cells.")
    return "\n".join(lines)
