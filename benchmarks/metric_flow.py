"""Metric flow matching (``scflow.paths.metric``) on the leave-one-out protocol, beside OT-CFM
and static OT: a research loop until the training seam takes the method.

The loop (:func:`fit_mfm`) is ``scflow.fit_flow``'s OT-CFM step with the straight line
swapped for the learned interpolant: global exact OT plans per kept interval (the held-out
timepoint bridged), ``batch_size`` pairs drawn from each per step, ``scflow.FlowModel`` (MLP
64 x 3 SELU), Adam, EMA 0.999, 3000 steps. Before it, the interpolant is trained on pairs
drawn from the same plans, with each interval's metric built from kept cells only. With no
interpolant it is OT-CFM bit for bit (``--stage check`` asserts it against ``fit_flow``).
The whitening scaler is fitted on the kept cells of each hold-out and the scores are in the
all-cells units, as ``scflow benchmark`` does; every W1 has a 95% bootstrap interval over
cells and each difference (to static OT, to OT-CFM of the same seed) a paired one
(``scflow.protocols.intervals.paired_bootstrap_w1``).

Stages (each writes ``benchmarks/results/metric_flow_<stage>.json``; ``--stage report``
writes ``metric_flow.md`` from them):

- ``check``: the loop without an interpolant against ``fit_flow``'s OT-CFM.
- ``choose``: the metric, its bandwidth and the interpolant's training chosen on
  development simulations (``simulate(random_state=1)``, 5 whitened PCs, every interior
  hold-out, seed 0), never on a table reported here: the lowest mean W1.
- ``sim``: the reported simulation (``simulate()``, random state 0, the CLI's), seeds 0, 1, 2.
- ``real``: EMT UMAP, EMT 10-D, mouse 2-D, Bargaje, seed 0, the chosen settings: a check, not
  a choice.
- ``draw``: the interpolants beside the data on mouse 2-D (a PNG).
- ``cost``: seconds and peak memory of one fit of each, each in a fresh process.

Run (about an hour per stage on 2 shared cores)::

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
from scflow.couplings import ExactOT, PlanCache
from scflow.flow.integrate import integrate
from scflow.flow.model import FlowModel
from scflow.flow.timecourse import TimeCourse
from scflow.metrics import sampling_floor, wasserstein
from scflow.paths.metric import (
    INTERPOLANT_LR,
    INTERPOLANT_STEPS,
    GeodesicInterpolant,
    IntervalPairs,
    build_metric,
    interpolate,
    sample,
    train_interpolant,
)
from scflow.protocols.intervals import paired_bootstrap_w1
from scflow.references.interpolants import fraction, static_ot_interpolant
from scflow.training.data import kept_intervals

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"
#: the flow stage, as the leave-one-out tables train OT-CFM
STEPS, BATCH, LR, HIDDEN, EMA, SIGMA = 3000, 256, 1e-3, (64, 64, 64), 0.999, 0.1
#: pairs drawn per interval for the interpolant (from the exact plan), and the metric's
#: cells per interval at most (a uniform subsample above: LAND's cost is batch x cells)
N_PAIRS, MAX_METRIC_CELLS = 8192, 4000
#: the candidates of ``--stage choose`` (first round: the metric; second: the interpolant's
#: training and the metric's cells, around the best of the first)
#: (the paper's LAND bandwidth, 0.125 in whitened units, is left out: on the development
#: simulation it is far below the cells' spacing, median 10th-neighbour distance 0.89, so the
#: metric is flat there and the interpolant stays straight: energy ratio 0.999 after 300
#: steps, i.e. OT-CFM, which is in the list)
ROUND_1 = [
    {"metric": "land", "params": {"gamma": 0.5, "gamma_unit": "knn"}},
    {"metric": "land", "params": {"gamma": 1.0, "gamma_unit": "knn"}},
    {"metric": "land", "params": {"gamma": 2.0, "gamma_unit": "knn"}},
    {"metric": "rbf", "params": {}},  # the paper's parser: kappa 1, 100 centres
]
BASE = {"cells": "interval", "interp_steps": INTERPOLANT_STEPS, "interp_lr": INTERPOLANT_LR}
REAL = ("emt_umap", "emt", "weinreb", "bargaje")


def label(cfg: dict | None) -> str:
    if cfg is None:
        return "otcfm"
    p = ", ".join(f"{k}={v}" for k, v in sorted(cfg["params"].items()))
    return (f"{cfg['metric']}({p}) cells={cfg['cells']} steps={cfg['interp_steps']} "
            f"lr={cfg['interp_lr']:g}")


def course(name: str, random_state: int = 0) -> TimeCourse:
    """The whitened time course of a data set (simulation: 5 PCs, as the CLI's table)."""
    if name == "simulate":
        a = scflow.datasets.simulate(random_state=random_state)
        return TimeCourse.from_arrays(a.obsm["X_pca"], a.obs["day"], n_dims=5, whiten=True)
    a = getattr(scflow.datasets, name)()
    rep = a.uns["scflow_dataset"]["use_rep"]
    return TimeCourse.from_arrays(a.obsm[rep], a.obs["day"], whiten=True)


def _ema(averaged, params, ema, step):
    with torch.no_grad():  # as fit_flow: the decay ramped up
        torch._foreach_lerp_(averaged, params, 1 - min(ema, (1 + step) / (10 + step)))


def fit_interpolant(tc: TimeCourse, holdout: int, cfg: dict, plans: list, seed: int
                    ) -> tuple[GeodesicInterpolant, dict]:
    """The interpolant of a fit: each kept interval's metric (its two ends' cells, or all
    kept cells), pairs drawn from its exact plan, :func:`train_interpolant`."""
    start = time.perf_counter()
    dev = tc.xs[0].device
    gi = torch.Generator(device=dev).manual_seed(seed)
    keep = [r for r in range(tc.n_timepoints) if r != holdout]
    metrics, pairs = [], []
    for (a, b), plan in zip(kept_intervals(tc.n_timepoints, holdout), plans, strict=True):
        cells = torch.cat([tc.xs[a], tc.xs[b]] if cfg["cells"] == "interval"
                          else [tc.xs[r] for r in keep])
        if len(cells) > MAX_METRIC_CELLS:
            cells = cells[torch.randperm(len(cells), generator=gi, device=dev)
                          [:MAX_METRIC_CELLS]]
        metrics.append(build_metric(cfg["metric"], cells, random_state=seed, **cfg["params"]))
        i, j = plan.sample_pairs(N_PAIRS, gi)
        pairs.append(IntervalPairs(tc.xs[a][i], tc.xs[b][j], float(tc.times[a]),
                                   float(tc.times[b])))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        phi = GeodesicInterpolant(tc.dim, t_range=(float(tc.times[0]), float(tc.times[-1])))
    phi.to(dev)
    built = time.perf_counter()
    ratios = train_interpolant(phi, metrics, pairs, n_steps=cfg["interp_steps"],
                               lr=cfg["interp_lr"], sigma=SIGMA, generator=gi)
    return phi, {"metric_seconds": built - start,
                 "interp_seconds": time.perf_counter() - built,
                 "energy_ratio": float(ratios[-100:].mean())}


def fit_mfm(tc: TimeCourse, holdout: int, cfg: dict | None, *, seed: int,
            cache: PlanCache, n_steps: int | None = None) -> tuple[FlowModel, dict]:
    """Metric flow matching trained without ``holdout`` (``cfg=None``: OT-CFM), ``n_steps``
    (default :data:`STEPS`) steps."""
    n_steps = STEPS if n_steps is None else n_steps
    dev = tc.xs[0].device
    intervals = kept_intervals(tc.n_timepoints, holdout)
    plans = [cache.discrete_plan(ExactOT(), tc.xs[a], tc.xs[b]) for a, b in intervals]
    phi, info = (None, {}) if cfg is None else fit_interpolant(tc, holdout, cfg, plans, seed)
    start = time.perf_counter()
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FlowModel(tc.dim, HIDDEN, "selu")
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params]
    for step in range(n_steps):
        ts, xts, uts = [], [], []
        for (a, b), plan in zip(intervals, plans, strict=True):
            i, j = plan.sample_pairs(BATCH, g)
            smp = sample(phi, tc.xs[a][i], tc.xs[b][j], float(tc.times[a]),
                         float(tc.times[b]), sigma=SIGMA, generator=g)
            ts.append(smp.t)
            xts.append(smp.xt)
            uts.append(smp.ut)
        t, xt, ut = torch.cat(ts), torch.cat(xts), torch.cat(uts)
        loss = (model.velocity(t, xt) - ut).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ema(averaged, params, EMA, step)
    with torch.no_grad():
        torch._foreach_copy_(params, averaged)
    model.eval()
    model.meta.update(times=np.asarray(tc.times, dtype=np.float64))
    return model, {**info, "flow_seconds": time.perf_counter() - start}


def predictions(tc: TimeCourse, k: int, cfgs: dict, seeds, cache: PlanCache) -> tuple:
    """Every prediction of held-out ``k`` in ``tc``'s units: static OT and one per
    candidate and seed (fits on the kept cells' scaler), with the fits' timings."""
    fit = tc.refit_scaler(k)
    pts, w = static_ot_interpolant(fit.xs[k - 1], fit.xs[k + 1], fraction(fit, k),
                                   plan_cache=cache)
    preds, info = {"static_ot": (tc.from_course(pts, fit), w)}, {}
    for name, cfg in cfgs.items():
        for seed in seeds:
            model, extra = fit_mfm(fit, k, cfg, seed=seed, cache=cache)
            x = integrate(model, fit.xs[k - 1], float(fit.times[k - 1]), float(fit.times[k]),
                          n_steps=100)
            preds[f"{name}/{seed}"] = (tc.from_course(x, fit), None)
            info[f"{name}/{seed}"] = extra
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


def run_set(tc: TimeCourse, cfgs: dict, seeds, n_boot: int) -> pd.DataFrame:
    cache, rows = PlanCache(), []
    for k in range(1, tc.n_timepoints - 1):
        preds, info = predictions(tc, k, cfgs, seeds, cache)
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
    """Round 1 over the metric, round 2 over the interpolant's training around its best; on
    the development simulation only."""
    tc = course("simulate", random_state=args.dev_state)
    cfgs = {"otcfm": None, **{label({**BASE, **c}): {**BASE, **c} for c in ROUND_1}}
    df = run_set(tc, cfgs, [0], n_boot=0)
    means = df.groupby("method")["w1"].mean()
    best1 = min((n for n in cfgs if n != "otcfm"), key=means.__getitem__)
    b = cfgs[best1]
    round2 = [{**b, "interp_lr": 1e-3}, {**b, "cells": "all"}]
    df2 = run_set(tc, {label(c): c for c in round2}, [0], n_boot=0)
    df = pd.concat([df, df2], ignore_index=True)
    means = df.groupby("method")["w1"].mean()
    allc = {**cfgs, **{label(c): c for c in round2}}
    best = min((n for n in allc if n != "otcfm"), key=means.__getitem__)
    _save("choose", {"dev_random_state": args.dev_state, "rows": df.to_dict("records"),
                     "means": means.to_dict(), "chosen": allc[best], "chosen_label": best})
    print(means.sort_values().to_string(), f"\nchosen: {best}", file=sys.stderr)


def stage_sets(args, names) -> None:
    chosen = _load("choose")["chosen"]
    seeds = [int(s) for s in args.seeds.split(",")]
    out = {}
    for name in names:
        start = time.perf_counter()
        df = run_set(course(name), {"otcfm": None, "otmfm": chosen}, seeds, args.n_boot)
        out[name] = {"rows": df.to_dict("records"), "seconds": time.perf_counter() - start}
        _save(args.stage, {"chosen": chosen, "seeds": seeds, "n_boot": args.n_boot, **out})


def _cost_worker(which: str, out: str, steps: int, interp_steps: int, q) -> None:
    global OUT, STEPS
    OUT, STEPS = Path(out), steps  # a fresh process: the parent's settings
    torch.set_num_threads(1)
    tc = course("simulate").refit_scaler(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    cfg = None if which == "otcfm" else {**_load("choose")["chosen"],
                                         "interp_steps": interp_steps}
    _, info = fit_mfm(tc, 2, cfg, seed=0, cache=PlanCache())
    q.put({"method": which, "seconds": time.perf_counter() - start, "rss_before_mb": before,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **info})


def stage_cost(args) -> None:
    ctx, rows = mp.get_context("spawn"), []
    steps = _load("choose")["chosen"]["interp_steps"] if not args.smoke else 10
    for which in ("otcfm", "otmfm", "otcfm", "otmfm"):  # twice each, interleaved
        q = ctx.Queue()
        p = ctx.Process(target=_cost_worker, args=(which, str(OUT), STEPS, steps, q))
        p.start()
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"the {which} cost run failed (exit code {p.exitcode})")
        rows.append(q.get(timeout=60))
        print(rows[-1], file=sys.stderr)
    _save("cost", {"dataset": "simulate (random_state 0), held-out 2, seed 0, CPU 1 thread",
                   "rows": rows})


def stage_check(args) -> None:
    """The loop without an interpolant is fit_flow's OT-CFM, weight for weight."""
    tc = course("simulate").refit_scaler(2)
    cache = PlanCache()
    mine, _ = fit_mfm(tc, 2, None, seed=3, cache=cache, n_steps=200)
    ref = scflow.fit_flow(tc, "otcfm", holdout=2, n_steps=200, coupling="global",
                          random_state=3, device="cpu", plan_cache=cache, progress=False)
    same = all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(),
                                                  ref.state_dict().values(), strict=True))
    print(f"research loop == fit_flow otcfm, weight for weight: {same}", file=sys.stderr)
    if not same:
        raise SystemExit(1)


def stage_draw(args) -> None:
    """Interpolants of the chosen settings beside the cells, mouse 2-D, held-out day 4."""
    import matplotlib.pyplot as plt

    chosen = _load("choose")["chosen"]
    tc = course("weinreb")
    fit = tc.refit_scaler(1)
    plans = [PlanCache().discrete_plan(ExactOT(), fit.xs[0], fit.xs[2])]
    phi, info = fit_interpolant(fit, 1, chosen, plans, seed=0)
    g = torch.Generator().manual_seed(0)
    i, j = plans[0].sample_pairs(60, g)
    x0, x1 = fit.xs[0][i], fit.xs[2][j]
    s = torch.linspace(0, 1, 41)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, (title, p) in zip(axes, [("OT-CFM: straight", None), (label(chosen), phi)],
                              strict=True):
        for r, c in ((1, "#999999"), (0, "#1f77b4"), (2, "#d62728")):  # held out first
            ax.scatter(*fit.xs[r][:, :2].T, s=2, c=c, alpha=0.3,
                       label=f"day {tc.labels[r]}" + (" (held out)" if r == 1 else ""))
        with torch.no_grad():
            path = torch.stack([interpolate(p, x0, x1, torch.full((len(x0),), float(v)), 0.0,
                                            2.0)[0] for v in s])
        for n in range(len(x0)):
            ax.plot(*path[:, n, :2].T, c="k", lw=0.6, alpha=0.7)
        ax.set_title(title, fontsize=9)
    axes[0].legend(markerscale=5, fontsize=8)
    fig.suptitle(f"mouse 2-D: interpolants day 2 -> day 6 (day 4 held out; the scaler and "
                 f"metric see days 2 and 6 only; energy ratio {info['energy_ratio']:.2f})",
                 fontsize=9)
    fig.savefig(OUT / "metric_flow_interpolants.png", dpi=120, bbox_inches="tight")
    print(f"wrote {OUT / 'metric_flow_interpolants.png'}", file=sys.stderr)


def _iv(lo, hi, sign=""):
    """`` [lo, hi]``, or nothing without an interval."""
    return "" if pd.isna(lo) else f" [{lo:{sign}.3f}, {hi:{sign}.3f}]"


def _ci(m, lo, hi, sign=""):
    return f"{m:{sign}.3f}" + _iv(lo, hi, sign)


def _table(df: pd.DataFrame) -> list[str]:
    """Per held-out time and method: W1 (mean ± std over seeds) [interval over cells], the
    paired differences to static OT and to OT-CFM (means over seeds), fit seconds."""
    lines = ["| held-out | floor | method | W1 [95% over cells] | - static OT [paired 95%] | "
             "- OT-CFM [paired 95%] | seconds |", "|---|---|---|---|---|---|---|"]
    for (_, method), g in df.groupby(["holdout_index", "method"], sort=True):
        sd = g["w1"].std()
        w1 = f"{g['w1'].mean():.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}")
        w1 += _iv(g["w1_lo"].mean(), g["w1_hi"].mean())
        d = _ci(g["diff_static_ot"].mean(), g["diff_static_ot_lo"].mean(),
                g["diff_static_ot_hi"].mean(), "+")
        o = ("–" if "diff_otcfm" not in g or g["diff_otcfm"].isna().all() else
             _ci(g["diff_otcfm"].mean(), g["diff_otcfm_lo"].mean(), g["diff_otcfm_hi"].mean(),
                 "+"))
        secs = g[[c for c in ("metric_seconds", "interp_seconds", "flow_seconds")
                  if c in g]].sum(1).mean()
        lines.append(f"| {g['holdout'].iloc[0]} | {g['floor'].iloc[0]:.3f} | {method} | {w1} "
                     f"| {d} | {o} | {secs:.0f} |")
    return lines


def report() -> str:
    """``metric_flow.md`` from the stages' JSON files present."""
    out = ["## Metric flow matching (research loop, `benchmarks/metric_flow.py`)", ""]
    if (OUT / "metric_flow_choose.json").exists():
        ch = _load("choose")
        out += [f"Chosen on the development simulation (`simulate(random_state="
                f"{ch['dev_random_state']})`, 5 whitened PCs, held-out 1, 2, 3, seed 0, "
                "no bootstrap; never on a reported table): mean W1 per candidate.", "",
                "| candidate | mean W1 |", "|---|---|"]
        out += [f"| {n}{' (chosen)' if n == ch['chosen_label'] else ''} | {w:.4f} |"
                for n, w in sorted(ch["means"].items(), key=lambda kv: kv[1])] + [""]
    for stage in ("sim", "real"):
        if not (OUT / f"metric_flow_{stage}.json").exists():
            continue
        rec = _load(stage)
        for name in [k for k in rec if k not in ("chosen", "seeds", "n_boot")]:
            df = pd.DataFrame(rec[name]["rows"])
            out += [f"### {name}: leave one out, seeds {rec['seeds']}, {STEPS} steps, "
                    f"otmfm = {label(rec['chosen'])}"
                    + (" (a check, not a choice)" if stage == "real" else ""), "",
                    *_table(df), ""]
            means = df.groupby("method")["w1"].mean()
            out += ["Mean W1 over held-out times: " + ", ".join(
                f"{m} {v:.3f}" for m, v in means.items()), ""]
    if (OUT / "metric_flow_cost.json").exists():
        c = pd.DataFrame(_load("cost")["rows"]).groupby("method").mean(numeric_only=True)
        out += ["### Cost (simulation, held-out 2, seed 0, one CPU thread, fresh process "
                "each, mean of two)", "", "| method | seconds | of which metric / interpolant "
                "/ field | peak RSS MB |", "|---|---|---|---|"]
        for m, r in c.iterrows():
            parts = " / ".join(f"{r.fillna(0).get(k, 0):.0f}"
                               for k in ("metric_seconds", "interp_seconds", "flow_seconds"))
            out.append(f"| {m} | {r['seconds']:.0f} | {parts} | {r['peak_rss_mb']:.0f} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stage", required=True,
                   choices=("check", "choose", "sim", "real", "draw", "cost", "report"))
    p.add_argument("--dev-state", type=int, default=1)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--datasets", default=",".join(REAL))
    p.add_argument("--smoke", default=None, metavar="DIR",
                   help="a few steps of everything, written to DIR (checks the script only)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.smoke:
        global OUT, STEPS
        OUT, STEPS = Path(args.smoke), 20
        BASE["interp_steps"] = 10
    if args.stage == "check":
        stage_check(args)
    elif args.stage == "choose":
        stage_choose(args)
    elif args.stage == "sim":
        stage_sets(args, ["simulate"])
    elif args.stage == "real":
        stage_sets(args, args.datasets.split(","))
    elif args.stage == "draw":
        stage_draw(args)
    elif args.stage == "cost":
        stage_cost(args)
    else:
        (OUT / "metric_flow.md").write_text(report())
        print(f"wrote {OUT / 'metric_flow.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
