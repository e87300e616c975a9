"""Metric flow matching (``otmfm``, :mod:`scflow.methods.otmfm`) beside OT-CFM and static OT
on the leave-one-out protocol: its defaults chosen on a development simulation, its rows on
every table, the interpolants drawn beside the data, its cost.

Every fit is ``scflow.fit_flow`` (the tables' settings: 3000 steps, batch 256, MLP 64 x 3,
EMA 0.999, global exact OT plans where they fit), on a time course whitened on the kept
cells of each hold-out, pushed 100 Euler steps from the timepoint before and scored in the
all-cells units by exact W1 against every held-out cell, as ``scflow benchmark`` does.
Every W1 has a 95% bootstrap interval over cells and each difference (to static OT, and to
OT-CFM of the same seed) a paired one (``scflow.protocols.intervals.paired_bootstrap_w1``:
both predictions scored on the same resamples).

Stages (each writes ``benchmarks/results/metric_flow_<stage>.json``; ``--stage report``
writes ``metric_flow.md``):

- ``choose``: the metric, its bandwidth and the interpolant's learning rate, chosen on the
  development simulation (``datasets.simulate(random_state=1)``, 5 whitened PCs, every
  interior hold-out, seed 0), never on a table reported here: the lowest mean W1. The
  chosen values are then written into :mod:`scflow.methods.otmfm` by hand (a test checks
  that the module holds what the JSON chose).
- ``sets``: ``--sets`` (default: simulation, EMT UMAP 3-D, EMT 10-D, mouse 2-D, Bargaje 4-D),
  OT-CFM and OT-MFM with their defaults, ``--seeds`` (0, 1, 2).
- ``draw``: the interpolants beside the cells on mouse 2-D, day 4 held out (a PNG).
- ``cost``: seconds and peak memory of one fit of each, each in a fresh process.

Run (on 2 shared cores: ``choose`` about 30 minutes, ``sets`` about 15 per data set)::

    SCFLOW_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/metric_flow.py \\
        --stage choose
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import scflow
from scflow.benchmark.report import held_label
from scflow.cli import DATASET_DEFAULTS
from scflow.couplings import PlanCache
from scflow.flow.integrate import integrate
from scflow.flow.timecourse import TimeCourse
from scflow.methods import otmfm as mfm
from scflow.metrics import sampling_floor, wasserstein
from scflow.protocols.intervals import paired_bootstrap_w1
from scflow.references.interpolants import fraction, static_ot_interpolant
from scflow.training.registry import register

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
STEPS = 3000
SETS = ("simulate", "emt_umap", "emt", "weinreb", "bargaje")
#: the candidates of ``--stage choose``: the metric (LAND with a bandwidth in units of the
#: cells' 10th-neighbour spacing, or the paper's RBF), and the interpolant's learning rate
#: (the paper's 1e-4, or 1e-3). The paper's absolute LAND bandwidth (0.125 in whitened
#: units) is left out: on the development simulation it is far below the cells' spacing
#: (median 10th-neighbour distance 0.89), the metric is flat there and the interpolant stays
#: straight (energy ratio 0.999: OT-CFM, which is in the list)
CANDIDATES = {
    "land_knn0.5": {"metric": "land", "metric_params": {"gamma": 0.5, "gamma_unit": "knn"}},
    "land_knn1": {"metric": "land", "metric_params": {"gamma": 1.0, "gamma_unit": "knn"}},
    "land_knn2": {"metric": "land", "metric_params": {"gamma": 2.0, "gamma_unit": "knn"}},
    "rbf": {"metric": "rbf", "metric_params": {}},
    "land_knn1_lr1e-3": {"metric": "land", "interpolant_lr": 1e-3,
                         "metric_params": {"gamma": 1.0, "gamma_unit": "knn"}},
}


def variant(tag: str, settings: dict) -> str:
    """Register an OT-MFM variant (this process only) and return its name."""
    name = f"otmfm_{tag}"
    if name not in scflow.methods.names():
        register(type(f"OTMFM_{tag}", (mfm.OTMFM,), {"name": name, "protocols": (),
                                                     "candidates": (), **settings}))
    return name


def course(name: str, random_state: int = 0) -> TimeCourse:
    """The whitened time course of a data set, with ``scflow benchmark``'s per-set defaults
    (the simulation: its first 5 PCs)."""
    a = (scflow.datasets.simulate(random_state=random_state) if name == "simulate"
         else getattr(scflow.datasets, name)())
    rep = a.uns["scflow_dataset"]["use_rep"]
    return TimeCourse.from_arrays(a.obsm[rep], a.obs["day"], whiten=True,
                                  **DATASET_DEFAULTS.get(name, {}))


def predictions(tc: TimeCourse, k: int, methods: list[str], seeds, cache: PlanCache,
                n_steps: int = STEPS) -> tuple[dict, dict]:
    """Static OT and every method and seed's prediction of held-out ``k`` in ``tc``'s
    units (fits on the kept cells' scaler), with each fit's seconds and energy ratio."""
    fit = tc.refit_scaler(k)
    pts, w = static_ot_interpolant(fit.xs[k - 1], fit.xs[k + 1], fraction(fit, k),
                                   plan_cache=cache)
    preds, info = {"static_ot": (tc.from_course(pts, fit), w)}, {}
    for method in methods:
        for seed in seeds:
            start = time.perf_counter()
            model = scflow.fit_flow(fit, method, holdout=k, n_steps=n_steps, device="cpu",
                                    random_state=seed, plan_cache=cache, progress=False)
            x = integrate(model, fit.xs[k - 1], float(fit.times[k - 1]), float(fit.times[k]),
                          n_steps=100)
            preds[f"{method}/{seed}"] = (tc.from_course(x, fit), None)
            info[f"{method}/{seed}"] = {
                "seconds": time.perf_counter() - start,
                "energy_ratio": float(model.meta.get("interpolant_energy", np.nan))}
    return preds, info


def scored(tc: TimeCourse, k: int, preds: dict, info: dict, n_boot: int) -> list[dict]:
    """Rows: W1 [interval], and paired differences to static OT and to OT-CFM (same seed)."""
    real = tc.xs[k]
    base = {"holdout": str(tc.labels[k]), "holdout_index": k, "floor": sampling_floor(real)}
    if not n_boot:
        return [{**base, "name": n, "w1": wasserstein(p, real, a=w), **info.get(n, {})}
                for n, (p, w) in preds.items()]
    ref = paired_bootstrap_w1(preds, real, reference="static_ot", n_boot=n_boot)
    rows = []
    for name, ci in ref.intervals.items():
        row = {**base, "name": name, "w1": ci.w1, "w1_lo": ci.lo, "w1_hi": ci.hi,
               "diff_static_ot": ref.diff[name], "diff_static_ot_lo": ref.diff_lo[name],
               "diff_static_ot_hi": ref.diff_hi[name], **info.get(name, {})}
        seed = name.partition("/")[2]
        if seed and not name.startswith("otcfm") and f"otcfm/{seed}" in preds:
            o = paired_bootstrap_w1({"otcfm": preds[f"otcfm/{seed}"], "mfm": preds[name]},
                                    real, reference="otcfm", n_boot=n_boot)
            row.update(diff_otcfm=o.diff["mfm"], diff_otcfm_lo=o.diff_lo["mfm"],
                       diff_otcfm_hi=o.diff_hi["mfm"])
        rows.append(row)
    return rows


def run_set(tc: TimeCourse, methods: list[str], seeds, n_boot: int,
            n_steps: int = STEPS) -> pd.DataFrame:
    cache, rows = PlanCache(), []
    for k in range(1, tc.n_timepoints - 1):
        preds, info = predictions(tc, k, methods, seeds, cache, n_steps)
        rows += scored(tc, k, preds, info, n_boot)
        print(pd.DataFrame(rows).tail(len(preds)).to_string(), file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    df["method"] = df["name"].str.partition("/")[0]
    df["seed"] = pd.to_numeric(df["name"].str.partition("/")[2], errors="coerce")
    return df


def _save(stage: str, payload: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"metric_flow_{stage}.json").write_text(json.dumps(payload, indent=1, default=float))


def _load(stage: str) -> dict:
    return json.loads((OUT / f"metric_flow_{stage}.json").read_text())


def stage_choose(args) -> None:
    """Every candidate on the development simulation, seed 0; the lowest mean W1 wins."""
    tc = course("simulate", random_state=args.dev_state)
    names = {variant(tag, c): tag for tag, c in CANDIDATES.items()}
    df = run_set(tc, ["otcfm", *names], [0], n_boot=0, n_steps=args.n_steps)
    means = df.groupby("method")["w1"].mean()
    best = min(names, key=means.__getitem__)
    _save("choose", {"dev_random_state": args.dev_state, "n_steps": args.n_steps,
                     "rows": df.to_dict("records"), "means": means.to_dict(),
                     "candidates": CANDIDATES, "chosen": CANDIDATES[names[best]],
                     "chosen_label": names[best]})
    print(means.sort_values().to_string(), f"\nchosen: {names[best]}", file=sys.stderr)


def stage_sets(args) -> None:
    seeds = [int(s) for s in args.seeds.split(",")]
    path = OUT / "metric_flow_sets.json"
    out = json.loads(path.read_text()) if path.is_file() else {}
    for name in args.sets.split(","):
        start = time.perf_counter()
        df = run_set(course(name), ["otcfm", "otmfm"], seeds, args.n_boot, args.n_steps)
        out[name] = {"rows": df.to_dict("records"), "seconds": time.perf_counter() - start,
                     "seeds": seeds, "n_boot": args.n_boot, "n_steps": args.n_steps,
                     "defaults": _defaults()}
        _save("sets", out)


def _defaults() -> dict:
    m = scflow.methods.get("otmfm")
    return {"metric": m.metric, "metric_params": m.metric_params,
            "interpolant_steps": m.interpolant_steps, "interpolant_lr": m.interpolant_lr}


def _cost_worker(which: str, q) -> None:
    torch.set_num_threads(1)
    tc = course("simulate").refit_scaler(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    scflow.fit_flow(tc, which, holdout=2, n_steps=STEPS, device="cpu", progress=False)
    q.put({"method": which, "seconds": time.perf_counter() - start, "rss_before_mb": before,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def stage_cost(args) -> None:
    ctx, rows = mp.get_context("spawn"), []
    for which in ("otcfm", "otmfm", "otcfm", "otmfm"):  # twice each, interleaved
        q = ctx.Queue()
        p = ctx.Process(target=_cost_worker, args=(which, q))
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"the {which} cost run failed (exit code {p.exitcode})")
        rows.append(q.get(timeout=60))
        print(rows[-1], file=sys.stderr)
    _save("cost", {"dataset": "simulate (random_state 0), held-out 2, seed 0, CPU 1 thread, "
                   f"{STEPS} steps", "rows": rows})


def stage_draw(args) -> None:
    """The interpolants of the defaults beside the cells, mouse 2-D, held-out day 4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scflow.paths.metric import interpolate
    from scflow.training.loop import training_data

    tc = course("weinreb")
    fit = tc.refit_scaler(1)
    data = training_data(fit, "otmfm", holdout=1, random_state=0)
    g = torch.Generator().manual_seed(0)
    x0, x1 = data.intervals[0].draw(60, g)
    t0, t1 = float(fit.times[0]), float(fit.times[2])
    s = torch.linspace(0, 1, 41)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, (title, p) in zip(axes, [("OT-CFM: straight", None), ("OT-MFM", data.phi)],
                              strict=True):
        for r, c in ((1, "#999999"), (0, "#1f77b4"), (2, "#d62728")):  # held out first
            ax.scatter(*fit.xs[r][:, :2].T, s=2, c=c, alpha=0.3,
                       label=f"day {tc.labels[r]}" + (" (held out)" if r == 1 else ""))
        with torch.no_grad():
            path = torch.stack([interpolate(p, x0, x1, torch.full((len(x0),), float(v)), t0,
                                            t1)[0] for v in s])
        for n in range(len(x0)):
            ax.plot(*path[:, n, :2].T, c="k", lw=0.6, alpha=0.7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(markerscale=5, fontsize=8)
    fig.suptitle("mouse 2-D: interpolants day 2 -> day 6 (day 4 held out; the scaler and "
                 f"metric see days 2 and 6 only; energy ratio {data.energy_ratio:.2f})",
                 fontsize=9)
    fig.savefig(OUT / "metric_flow_interpolants.png", dpi=120, bbox_inches="tight")
    print(f"wrote {OUT / 'metric_flow_interpolants.png'}", file=sys.stderr)


def _iv(lo, hi, sign=""):
    return "" if pd.isna(lo) else f" [{lo:{sign}.3f}, {hi:{sign}.3f}]"


def _table(df: pd.DataFrame) -> list[str]:
    lines = ["| held-out | split-half W1 | method | W1 (mean ± std over seeds) [95% over cells] "
             "| - static OT [paired 95%] | - OT-CFM, same seed [paired 95%] | seconds |",
             "|---|---|---|---|---|---|---|"]
    for (_, method), g in df.groupby(["holdout_index", "method"], sort=True):
        sd = g["w1"].std()
        w1 = f"{g['w1'].mean():.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}")
        w1 += _iv(g["w1_lo"].mean(), g["w1_hi"].mean())
        d = f"{g['diff_static_ot'].mean():+.3f}" + _iv(
            g["diff_static_ot_lo"].mean(), g["diff_static_ot_hi"].mean(), "+")
        o = ("–" if "diff_otcfm" not in g or g["diff_otcfm"].isna().all() else
             f"{g['diff_otcfm'].mean():+.3f}" + _iv(g["diff_otcfm_lo"].mean(),
                                                   g["diff_otcfm_hi"].mean(), "+"))
        secs = g["seconds"].mean() if "seconds" in g and g["seconds"].notna().any() else 0.0
        held = held_label(float(g["holdout"].iloc[0]))
        lines.append(f"| {held} | {g['floor'].iloc[0]:.3f} | {method} | {w1} "
                     f"| {d} | {o} | {secs:.0f} |")
    return lines


def verdict(df: pd.DataFrame) -> dict:
    """Per held-out time: is OT-MFM's mean paired difference to OT-CFM's below 0 with its
    interval (mean of the seeds' bounds) below 0, above, or neither."""
    g = df[df["method"] == "otmfm"].groupby("holdout_index")
    out = {}
    for k, s in g:
        hi, lo = s["diff_otcfm_hi"].mean(), s["diff_otcfm_lo"].mean()
        out[int(k)] = "below" if hi < 0 else "above" if lo > 0 else "tie"
    return out


def report() -> str:
    out = ["## Metric flow matching (`otmfm`) beside OT-CFM and static OT (leave one "
           "timepoint out)", "",
           "`python benchmarks/metric_flow.py --stage sets` (and `choose`, `draw`, `cost`): "
           "every fit `scflow.fit_flow` at the tables' settings (3000 steps), the scaler "
           "fitted on the kept cells; W1 in the all-cells units, 95% bootstrap intervals "
           "over cells, differences paired on the same resamples (to OT-CFM: the same "
           "seed).", ""]
    if (OUT / "metric_flow_choose.json").is_file():
        c = _load("choose")
        means = ", ".join(f"{k} {v:.3f}" for k, v in sorted(c["means"].items(),
                                                             key=lambda kv: kv[1]))
        out += [f"Defaults chosen on the development simulation (`simulate(random_state="
                f"{c['dev_random_state']})`, 5 PCs, every interior hold-out, seed 0, "
                f"{c['n_steps']} steps; never a reported table): mean W1 {means}. Chosen: "
                f"**{c['chosen_label']}** ({c['chosen']}).", ""]
    if (OUT / "metric_flow_sets.json").is_file():
        sets = _load("sets")
        summary = []
        for name, d in sets.items():
            df = pd.DataFrame(d["rows"])
            v = verdict(df)
            below = sum(x == "below" for x in v.values())
            summary.append(f"{name}: OT-MFM below OT-CFM at {below}"
                           f" of {len(v)} held-out times, above at "
                           f"{sum(x == 'above' for x in v.values())}")
            out += [f"### {name} (seeds {d['seeds']}, {d['n_steps']} steps, "
                    f"{d['seconds'] / 60:.0f} min)", "", *_table(df), ""]
        out[4:4] = ["Summary (paired interval of OT-MFM - OT-CFM, mean of the seeds' bounds, "
                    "below or above 0): " + "; ".join(summary) + ".", ""]
    if (OUT / "metric_flow_cost.json").is_file():
        c = _load("cost")
        df = pd.DataFrame(c["rows"]).groupby("method")[["seconds", "peak_rss_mb"]].mean()
        out += [f"Cost ({c['dataset']}, each fit in a fresh process, two runs each "
                "interleaved): " + ", ".join(f"{m} {r.seconds:.0f} s and {r.peak_rss_mb:.0f} "
                                             "MB peak" for m, r in df.iterrows())
                + f"; ratio {df.loc['otmfm', 'seconds'] / df.loc['otcfm', 'seconds']:.2f}.",
                ""]
    if (OUT / "metric_flow_interpolants.png").is_file():
        out += ["![interpolants](metric_flow_interpolants.png)", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", required=True,
                   choices=["choose", "sets", "draw", "cost", "report"])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--n-steps", type=int, default=STEPS)
    p.add_argument("--dev-state", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.stage == "choose":
        stage_choose(args)
    elif args.stage == "sets":
        stage_sets(args)
    elif args.stage == "draw":
        stage_draw(args)
    elif args.stage == "cost":
        stage_cost(args)
    text = report()
    (OUT / "metric_flow.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
