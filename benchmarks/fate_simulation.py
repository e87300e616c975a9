"""Which ``tl.fate`` settings recover the true fate probabilities, on a simulation.

Selection is done here, on :func:`scflow.datasets.simulate` (a bifurcating Langevin process
whose true fate probability of every cell is known: :func:`scflow.datasets.true_fate`),
never on LARRY's held-out clonal truth. For each seed: simulate, label a sparse random
subset (``LABEL_FRAC``) of the last timepoint's cells with their branch (NaN elsewhere),
fit OT-CFM and SB-CFM (``sigma`` grid), run ``tl.fate`` over a small grid per mode and
score ``P(upper)`` of every cell before the last timepoint against ``true_fate``:

- ``r``: Pearson correlation with the true probability (all earlier cells pooled);
- ``auroc``: AUROC of ``P(upper)`` for the Bayes call ``true_fate > 0.5``;
- ``r_t0``: Pearson r on the first timepoint alone (the least decided cells).

The grid is one-factor-at-a-time where a full product would not fit in ~15 minutes on
2 cores (see ``_jobs``): SDE n_draws x sigma at n_neighbors 15, and n_neighbors at sigma
0.5 / 30 draws; transport reg at n_neighbors 15, and n_neighbors at reg 0.1. Run::

    OMP_NUM_THREADS=1 python benchmarks/fate_simulation.py

Writes ``benchmarks/results/fate_simulation.json`` and ``benchmarks/results/
fate_simulation.md`` (``python benchmarks/report.py`` gathers the sections into
``BENCHMARKS.md``).

The labelling rule (``n_neighbors``, ``n_neighbors="auto"``, ``fates``) is studied apart,
on labels made as imperfect as LARRY's (a few hundred annotated late cells, a third of them
still undifferentiated, some mislabelled)::

    OMP_NUM_THREADS=1 python benchmarks/fate_simulation.py labels

which writes ``benchmarks/results/fate_simulation_labels.{json,md}`` (:func:`labels_main`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, rankdata

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
N_CELLS, N_TIMEPOINTS, DIFFUSION = 2000, 4, 0.5  # fates undecided early, decided late
N_DIMS = 2  # of X_pca
LABEL_FRAC = 0.15  # labelled share of the last timepoint's cells (~75 of 500)
FIT_STEPS = 2000
TRUTH_DRAWS = 500
NEIGHBORS = (5, 15, 30, 60)
DRAWS = (10, 30, 100)
REGS = (0.01, 0.03, 0.1, 0.3)
SIGMAS = (0.25, 0.5, 1.0)
SDE_NN = 15  # n_neighbors of the n_draws x sigma grid
SDE_DRAWS = 30  # n_draws of the n_neighbors grid (sigma 0.5 only)
TR_NN = 15  # n_neighbors of the transport reg grid
TR_REG = 0.1  # reg of the transport n_neighbors grid (small reg is slow: ~1 min a call)
WORKERS = 2


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count one half)."""
    positive = np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def data(seed: int):
    """The simulation of one seed, its sparse labels and the true fate probabilities."""
    import scflow

    adata = scflow.datasets.simulate(N_CELLS, N_TIMEPOINTS, diffusion=DIFFUSION,
                                     random_state=seed)
    t_idx = adata.obs["t_idx"].to_numpy()
    rng = np.random.default_rng(1000 + seed)
    keep = (t_idx == N_TIMEPOINTS - 1) & (rng.random(adata.n_obs) < LABEL_FRAC)
    adata.obs["label"] = pd.Categorical(
        adata.obs["branch"].astype(str).where(keep), categories=["lower", "upper"])
    return adata


def _score(q: np.ndarray, truth: np.ndarray, t_idx: np.ndarray) -> dict:
    early = t_idx < N_TIMEPOINTS - 1
    first = t_idx == 0
    constant = np.ptp(q[early]) == 0
    r = float("nan") if constant else float(pearsonr(q[early], truth[early])[0])
    r0 = float("nan") if np.ptp(q[first]) == 0 else float(pearsonr(q[first], truth[first])[0])
    keep = early & (truth != 0.5)
    return {"r": r, "auroc": auroc(q[keep], truth[keep] > 0.5), "r_t0": r0,
            "constant": bool(constant)}


def _jobs() -> list[tuple[int, str, float | None, list[dict]]]:
    """(seed, method, sigma, settings), heaviest first."""
    out = []
    for seed in SEEDS:
        for sigma in SIGMAS:
            runs = [{"mode": "sde", "n_neighbors": SDE_NN, "n_draws": nd} for nd in DRAWS]
            if sigma == 0.5:
                runs += [{"mode": "sde", "n_neighbors": nn, "n_draws": SDE_DRAWS}
                         for nn in NEIGHBORS if nn != SDE_NN]
            out.append((seed, "sbcfm", sigma, runs))
        runs = [{"mode": "ode", "n_neighbors": nn} for nn in NEIGHBORS]
        runs += [{"mode": "transport", "n_neighbors": TR_NN, "reg": reg} for reg in REGS]
        runs += [{"mode": "transport", "n_neighbors": nn, "reg": TR_REG}
                 for nn in NEIGHBORS if nn != TR_NN]
        out.append((seed, "otcfm", None, runs))
    cost = {(True, 0.5): 0, (True, 0.25): 1, (True, 1.0): 1}
    return sorted(out, key=lambda j: cost.get((j[1] == "sbcfm", j[2]), 2))


def run_job(job, truth: np.ndarray) -> list[dict]:
    import torch

    import scflow

    torch.set_num_threads(1)
    scflow.settings.verbosity = 0
    seed, method, sigma, runs = job
    adata = data(seed)
    t_idx = adata.obs["t_idx"].to_numpy()
    start = time.perf_counter()
    scflow.tl.fit(adata, use_rep="X_pca", n_dims=N_DIMS, method=method, sigma=sigma,
                  n_steps=FIT_STEPS, random_state=seed)
    fit_s = time.perf_counter() - start
    rows = []
    for run in runs:
        start = time.perf_counter()
        error = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scflow.tl.fate(adata, "label", key_added="pred", random_state=seed, **run)
            q = adata.obsm["pred_probabilities"]["upper"].to_numpy()
            pushed = t_idx < N_TIMEPOINTS - 1
            assert np.isfinite(q[pushed]).all() and np.isnan(q[~pushed]).all()
            score = _score(np.nan_to_num(q), truth, t_idx)
        except Exception as exc:  # a setting that fails is a result (e.g. Sinkhorn at reg)
            error = f"{type(exc).__name__}: {exc}"
            score = {"r": float("nan"), "auroc": float("nan"), "r_t0": float("nan"),
                     "constant": False}
        rows.append({"seed": seed, "method": method, "sigma": sigma, "mode": run["mode"],
                     "n_neighbors": run["n_neighbors"], "n_draws": run.get("n_draws"),
                     "reg": run.get("reg"), **score, "fit_seconds": fit_s,
                     "seconds": time.perf_counter() - start, "error": error})
        print(f"seed {seed} {method} sigma={sigma} {run}: r={score['r']:.3f} "
              f"auroc={score['auroc']:.3f} ({rows[-1]['seconds']:.1f}s)"
              + (f" {error}" if error else ""), flush=True)
    return rows


def _setting(row: pd.Series) -> str:
    if row["mode"] == "sde":
        return (f"sigma={row['sigma']:g}, n_draws={int(row['n_draws'])}, "
                f"n_neighbors={int(row['n_neighbors'])}")
    if row["mode"] == "transport":
        return f"reg={row['reg']:g}, n_neighbors={int(row['n_neighbors'])}"
    return f"n_neighbors={int(row['n_neighbors'])}"


def summarise(rows: list[dict]) -> tuple[pd.DataFrame, dict, list[str]]:
    df = pd.DataFrame(rows)
    df["setting"] = df.apply(_setting, axis=1)
    g = df.groupby(["mode", "setting"], sort=False)
    table = g.agg(r_mean=("r", "mean"), r_sd=("r", "std"), auroc_mean=("auroc", "mean"),
                  auroc_sd=("auroc", "std"), r_t0_mean=("r_t0", "mean"),
                  r_t0_sd=("r_t0", "std"), seconds=("seconds", "mean"),
                  n_ok=("r", "count"), constant=("constant", "any")).reset_index()
    best = {}
    for mode, sub in table.groupby("mode", sort=False):
        top = sub.sort_values(["r_mean", "auroc_mean"], ascending=False).iloc[0]
        best[mode] = {"setting": top["setting"], "r": float(top["r_mean"]),
                      "r_sd": float(top["r_sd"]), "auroc": float(top["auroc_mean"]),
                      "auroc_sd": float(top["auroc_sd"])}
    # how much each factor moves the mean r, the others held at the mode's best
    effects = []
    m = df.groupby(["mode", "sigma", "n_neighbors", "n_draws", "reg"], dropna=False)[
        ["r", "auroc"]].mean().reset_index()

    def sweep(mode: str, factor: str, fixed: dict) -> None:
        sub = m[m["mode"] == mode]
        for k, v in fixed.items():
            sub = sub[sub[k] == v] if v is not None else sub
        if len(sub) < 2:
            return
        sub = sub.sort_values(factor)
        vals = ", ".join(f"{x:g}: {r:.3f}" for x, r in zip(sub[factor], sub["r"], strict=True))
        effects.append(f"- `{mode}`, {factor} ({', '.join(f'{k}={v:g}' for k, v in fixed.items())}"
                       f"): r {vals} (range {np.nanmax(sub['r']) - np.nanmin(sub['r']):.3f}; "
                       f"AUROC range {np.nanmax(sub['auroc']) - np.nanmin(sub['auroc']):.3f})")

    sweep("ode", "n_neighbors", {})
    sweep("transport", "reg", {"n_neighbors": TR_NN})
    sweep("transport", "n_neighbors", {"reg": TR_REG})
    sd = df[(df["mode"] == "sde") & (df["n_neighbors"] == SDE_NN)].groupby(
        ["sigma", "n_draws"])["r"].mean().idxmax()
    sweep("sde", "sigma", {"n_draws": sd[1], "n_neighbors": SDE_NN})
    sweep("sde", "n_draws", {"sigma": sd[0], "n_neighbors": SDE_NN})
    sweep("sde", "n_neighbors", {"sigma": 0.5, "n_draws": SDE_DRAWS})
    return table, best, effects


def markdown(table: pd.DataFrame, best: dict, effects: list[str], truth_note: str,
             minutes: float) -> str:
    def pm(mean: float, sd: float) -> str:
        return "n/a" if not np.isfinite(mean) else f"{mean:.3f} ± {sd:.3f}"

    n_label = int(round(LABEL_FRAC * N_CELLS / N_TIMEPOINTS))
    lines = [
        "## Fate probabilities against the truth, on a simulation (`tl.fate` settings)",
        "",
        f"`simulate({N_CELLS}, {N_TIMEPOINTS}, diffusion={DIFFUSION})`, seeds "
        f"{', '.join(map(str, SEEDS))}; fits on X_pca ({N_DIMS} dims), {FIT_STEPS} steps; "
        f"labels on a random {LABEL_FRAC:.0%} of the last timepoint's cells (~{n_label} "
        f"cells), NaN elsewhere. Scored on every earlier cell against "
        f"`datasets.true_fate` ({TRUTH_DRAWS} runs of the true process per cell): Pearson r, "
        "AUROC for the Bayes call `true_fate > 0.5`, r on the first timepoint alone. "
        f"Mean ± sd over seeds. {truth_note} Run time {minutes:.1f} min on {WORKERS} "
        "processes, one thread each (`benchmarks/fate_simulation.py`).",
        "",
        "| mode | setting | r | AUROC | r (first timepoint) | s per call |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        mark = best.get(row["mode"], {}).get("setting") == row["setting"]
        setting = f"**{row['setting']}**" if mark else row["setting"]
        note = " (constant)" if row["constant"] else ""
        lines.append(f"| {row['mode']} | {setting}{note} | {pm(row['r_mean'], row['r_sd'])} | "
                     f"{pm(row['auroc_mean'], row['auroc_sd'])} | "
                     f"{pm(row['r_t0_mean'], row['r_t0_sd'])} | {row['seconds']:.1f} |")
    lines += ["", "Best setting per mode (highest mean r):", ""]
    lines += [f"- `{mode}`: {b['setting']}: r {b['r']:.3f} ± {b['r_sd']:.3f}, AUROC "
              f"{b['auroc']:.3f} ± {b['auroc_sd']:.3f}" for mode, b in best.items()]
    lines += ["", "How much each setting moves the score (mean over seeds, others fixed):", ""]
    lines += effects
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import scflow

    begin = time.perf_counter()
    truths, ceiling = {}, []
    for seed in SEEDS:
        adata = data(seed)
        p = scflow.datasets.true_fate(adata, TRUTH_DRAWS, random_state=seed).to_numpy()
        truths[seed] = p
        # Monte-Carlo noise of the truth itself: a second, independent estimate
        p2 = scflow.datasets.true_fate(adata, TRUTH_DRAWS, random_state=seed + 100).to_numpy()
        early = adata.obs["t_idx"].to_numpy() < N_TIMEPOINTS - 1
        ceiling.append(pearsonr(p[early], p2[early])[0])
    truth_note = (f"Two independent `true_fate` estimates agree to r = "
                  f"{np.mean(ceiling):.3f} (the ceiling).")
    print(truth_note, flush=True)
    jobs = _jobs()
    rows: list[dict] = []
    with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_job, job, truths[job[0]]) for job in jobs]
        for f in futures:
            rows += f.result()
    minutes = (time.perf_counter() - begin) / 60
    table, best, effects = summarise(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    config = {"seeds": list(SEEDS), "n_cells": N_CELLS, "n_timepoints": N_TIMEPOINTS,
              "diffusion": DIFFUSION, "n_dims": N_DIMS, "label_frac": LABEL_FRAC,
              "fit_steps": FIT_STEPS, "truth_draws": TRUTH_DRAWS,
              "truth_ceiling_r": float(np.mean(ceiling)), "minutes": minutes,
              "python": sys.version.split()[0]}
    (out / "fate_simulation.json").write_text(json.dumps(
        {"config": config, "rows": rows, "best": best}, indent=1, default=float) + "\n")
    (out / "fate_simulation.md").write_text(markdown(table, best, effects, truth_note, minutes))
    print(markdown(table, best, effects, truth_note, minutes))
    for mode, b in best.items():
        print(f"best {mode}: {b['setting']} (r {b['r']:.3f}, AUROC {b['auroc']:.3f})")


# --- the labelling rule, on LARRY-like labels ------------------------------------------
#: labellings: name -> (timepoint read (its index), share of its cells labelled, share of
#: the labelled cells called "undiff" (those nearest the branch point, as LARRY's day-6
#: "undiff" third), share of the other labels flipped to the wrong branch). The last one
#: reads fates a timepoint before the end, where the branch is not yet decided for every
#: cell (LARRY's day 6 is not the end of differentiation either): there a label is the
#: side the cell is on, and the truth its branch at the end.
LABELLINGS = {"clean, 15%": (N_TIMEPOINTS - 1, 0.15, 0.0, 0.0),
              "LARRY-like, 15%": (N_TIMEPOINTS - 1, 0.15, 1 / 3, 0.1),
              "LARRY-like, 50%": (N_TIMEPOINTS - 1, 0.5, 1 / 3, 0.1),
              "LARRY-like, 50%, read before the end": (N_TIMEPOINTS - 2, 0.5, 1 / 3, 0.1)}
RULE_NEIGHBORS = (5, 15, 60, "auto")
RULE_FATES = {"all labels": None, "terminal only": ["lower", "upper"]}
RULE_REG = 0.1  # transport reg (0.03 won the grid above by 0.004 r, at 4x the time)
RULE_TRUTH_DRAWS = 200  # runs of the true process per cell (the r ceiling stays above 0.99)


def label_cells(adata, seed: int, t: int, frac: float, undiff: float,
                flip: float) -> pd.Series:
    """Labels on a random ``frac`` of timepoint ``t``: ``undiff`` for the share of them
    nearest the branch point (smallest ``|latent x_2|``), else the side of the branch point
    (``upper`` for ``x_2 > 0``; at the last timepoint, the branch), a ``flip`` share of which
    is swapped."""
    rng = np.random.default_rng(2000 + seed)
    at_t = adata.obs["t_idx"].to_numpy() == t
    keep = np.flatnonzero(at_t & (rng.random(adata.n_obs) < frac))
    x2 = adata.obsm["X_latent"][keep, 1]
    n_undiff = int(round(undiff * len(keep)))
    order = np.argsort(np.abs(x2))
    branch = np.where(x2 > 0, "upper", "lower")
    lab = branch.copy()
    swap = rng.random(len(keep)) < flip
    lab[swap] = np.where(branch[swap] == "upper", "lower", "upper")
    lab[order[:n_undiff]] = "undiff"
    out = np.full(adata.n_obs, None, dtype=object)
    out[keep] = lab
    return pd.Series(pd.Categorical(out), index=adata.obs_names)


def _score_before(q: np.ndarray, truth: np.ndarray, t_idx: np.ndarray, to_t: int) -> dict:
    """:func:`_score` over the cells pushed (those before ``to_t``)."""
    pushed = t_idx < to_t
    r = float(pearsonr(q[pushed], truth[pushed])[0]) if np.ptp(q[pushed]) > 0 else np.nan
    first = t_idx == 0
    r0 = float(pearsonr(q[first], truth[first])[0]) if np.ptp(q[first]) > 0 else np.nan
    keep = pushed & (truth != 0.5)
    return {"r": r, "auroc": auroc(q[keep], truth[keep] > 0.5), "r_t0": r0}


def run_labels_job(seed: int) -> list[dict]:
    import torch

    import scflow
    from scflow.fate.core import fate_bias

    torch.set_num_threads(1)
    scflow.settings.verbosity = 0
    adata = data(seed)
    truth = scflow.datasets.true_fate(adata, RULE_TRUTH_DRAWS, random_state=seed).to_numpy()
    t_idx = adata.obs["t_idx"].to_numpy()
    scflow.tl.fit(adata, use_rep="X_pca", n_dims=N_DIMS, n_steps=FIT_STEPS, random_state=seed)
    rows = []
    for lname, spec in LABELLINGS.items():
        adata.obs["lab"] = label_cells(adata, seed, *spec)
        to_t = spec[0]
        for mode in ("ode", "transport"):
            for fname, fates in RULE_FATES.items():
                if fates is not None and spec[2] == 0:
                    continue  # no other label: the same as "all labels"
                for k in RULE_NEIGHBORS:
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        scflow.tl.fate(adata, "lab", mode=mode, n_neighbors=k, fates=fates,
                                       to_time=float(to_t), reg=RULE_REG, key_added="pred",
                                       random_state=seed)
                    prob = adata.obsm["pred_probabilities"]
                    p = torch.as_tensor(prob[["lower", "upper"]].to_numpy())
                    q = np.nan_to_num(fate_bias(p, 1, 0).numpy())
                    params = adata.uns["pred"]["params"]
                    rows.append({"seed": seed, "labelling": lname, "mode": mode,
                                 "fates": fname, "n_neighbors": str(k),
                                 "k_used": int(params["n_neighbors"]),
                                 "n_labelled": int(params["n_labelled"]),
                                 **_score_before(q, truth, t_idx, to_t),
                                 "seconds": time.perf_counter() - start})
                    print(f"seed {seed} {lname} {mode} {fname} k={k}: r={rows[-1]['r']:.3f} "
                          f"(k used {rows[-1]['k_used']})", flush=True)
    return rows


def labels_markdown(df: pd.DataFrame, minutes: float) -> str:
    g = df.groupby(["labelling", "mode", "fates", "n_neighbors"], sort=False)
    t = g.agg(r=("r", "mean"), r_sd=("r", "std"), auroc=("auroc", "mean"),
              r_t0=("r_t0", "mean"), k_used=("k_used", lambda v: "/".join(map(str, v))),
              n_labelled=("n_labelled", "mean")).reset_index()
    lines = [
        "## The labelling rule of `tl.fate`, on a simulation with LARRY-like labels",
        "",
        f"`simulate({N_CELLS}, {N_TIMEPOINTS}, diffusion={DIFFUSION})`, seeds "
        f"{', '.join(map(str, SEEDS))}; one OT-CFM fit per seed (X_pca, {N_DIMS} dims, "
        f"{FIT_STEPS} steps). Labels on a random share of the cells of the timepoint where "
        "fates are read (the last, or the one before it, where not every cell has chosen "
        "its branch yet); LARRY-like: a third of them (those nearest the branch point) "
        "labelled `undiff`, as LARRY's day-6 annotation, the others by their side of the "
        "branch point, 10% of these swapped. Fate bias "
        "`P(upper) / (P(upper) + P(lower))` of every earlier cell against "
        f"`datasets.true_fate` ({RULE_TRUTH_DRAWS} runs per cell; the branch at the end) of "
        "every cell pushed: Pearson r (mean ± sd over "
        f"seeds), AUROC, r on the first timepoint. Transport reg {RULE_REG}. `auto`: "
        "`n_neighbors=\"auto\"` (leave-one-out Brier score of the labelled cells' own labels; "
        "k used per seed in the last column); a fixed k above a quarter of the labelled "
        "cells is lowered to it. `terminal only`: `fates=[\"lower\", \"upper\"]`. "
        f"Run time {minutes:.1f} min, one process per seed on a shared 2-core machine "
        "(`OMP_NUM_THREADS=1 python benchmarks/fate_simulation.py labels`).",
        "",
        "| labelling (cells labelled) | mode | fates read | n_neighbors | r | AUROC "
        "| r (first timepoint) | k used |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in t.itertuples():
        lines.append(f"| {row.labelling} ({row.n_labelled:.0f}) | {row.mode} | {row.fates} | "
                     f"{row.n_neighbors} | {row.r:.3f} ± {row.r_sd:.3f} | {row.auroc:.3f} | "
                     f"{row.r_t0:.3f} | {row.k_used} |")
    lines += ["", "Rule chosen for LARRY (criterion set before the LARRY run: the highest mean r "
              "over the LARRY-like labellings and both modes, among 15 neighbours and "
              "`\"auto\"`, all labels or the terminal ones):", ""]
    larry = t[t["labelling"].str.startswith("LARRY-like")]
    rules = larry[larry["n_neighbors"].isin(["15", "auto"])].groupby(
        ["fates", "n_neighbors"])["r"].mean().sort_values(ascending=False)
    lines += [f"- {f}, n_neighbors={k}: mean r {r:.3f}" for (f, k), r in rules.items()]
    return "\n".join(lines) + "\n"


def labels_rewrite() -> None:
    """Rewrite the Markdown from the JSON of the last run (no new run)."""
    saved = json.loads((HERE / "results" / "fate_simulation_labels.json").read_text())
    text = labels_markdown(pd.DataFrame(saved["rows"]), saved["config"]["minutes"])
    (HERE / "results" / "fate_simulation_labels.md").write_text(text)
    print(text)


def labels_main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    begin = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(len(SEEDS), mp_context=mp.get_context("spawn")) as pool:
        for part in pool.map(run_labels_job, SEEDS):
            rows += part
    minutes = (time.perf_counter() - begin) / 60
    df = pd.DataFrame(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    config = {"seeds": list(SEEDS), "labellings": LABELLINGS, "reg": RULE_REG,
              "truth_draws": RULE_TRUTH_DRAWS,
              "minutes": minutes, "python": sys.version.split()[0]}
    (out / "fate_simulation_labels.json").write_text(json.dumps(
        {"config": config, "rows": rows}, indent=1, default=float) + "\n")
    text = labels_markdown(df, minutes)
    (out / "fate_simulation_labels.md").write_text(text)
    print(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["labels"]:
        labels_main()
    elif sys.argv[1:] == ["labels", "--rewrite"]:
        labels_rewrite()
    else:
        main()
