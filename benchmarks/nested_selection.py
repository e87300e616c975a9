"""The nested leave-one-out protocol on every real data set here: a choice that never reads
the timepoint it is scored on, beside static OT, with bootstrap intervals over cells.

For each interior held-out timepoint ``k`` (whitened, the scaler fitted on the kept cells;
index time: the leave-one-out protocol): ``scflow.protocols.select_method`` chooses among
the candidates by leave-one-out on the other timepoints only (each interior kept timepoint
held out in turn, mean W1); the choice is then trained and scored at ``k``. Static OT is
scored at ``k`` beside it. Every W1 carries a 95% bootstrap interval over cells (the
held-out cells and the predicted cloud resampled; the percentile interval moved down by the
replicates' excess over the score, so that it sits on it), and the choice's difference to
static OT a paired one (``scflow.protocols.intervals.paired_bootstrap_w1``: the same
resamples).
With fewer than three kept timepoints (mouse 2-D: 3 timepoints, one held out) nothing can
be scored without the held-out cells, and the choice falls back to the first candidate;
the table says so. Run::

    SCFLOW_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/nested_selection.py \\
        --datasets emt,emt_umap,weinreb,bargaje --n-steps 1000 --n-boot 100

Writes ``benchmarks/results/nested_selection.json`` and ``nested_selection.md`` (data sets
already in the JSON are kept unless run again, so sets can be run one at a time).
``--holdouts 1,2,3`` runs only those outer held-out timepoints (indices into the time
course); a run of other held-out timepoints of the same set with the same settings is then
merged into the record rather than replacing it, so one set can be split over processes
(one per core) that write the same JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import scflow
from scflow.cli import DATASET_DEFAULTS
from scflow.flow.timecourse import TimeCourse
from scflow.methods import names
from scflow.protocols import leave_one_out_tc
from scflow.protocols.intervals import format_w1
from scflow.protocols.selection import (
    ALL_CANDIDATES,
    candidate_label,
    first_best,
    nested_leave_one_out,
    parse_candidate,
)

HERE = Path(__file__).resolve().parent
STEM = "nested_selection"
#: the data sets with a leave-one-out table (the default ``--datasets``)
DATASETS = ("simulate", "emt", "emt_umap", "weinreb", "bargaje")
ORDER = ["emt_umap", "emt", "weinreb", "bargaje"]  # the order of the other tables


def _candidates(value: str) -> list:
    """``"otcfm,mmfm:window=1,static_ot"`` -> candidates (``name:key=int`` settings)."""
    out = []
    for item in value.split(","):
        name, _, setting = item.partition(":")
        if setting:
            key, _, v = setting.partition("=")
            out.append({"method": name, key: int(v)})
        else:
            out.append(name)
    return out


def _course(name: str) -> tuple[TimeCourse, str]:
    """The whitened time course of a data set as its leave-one-out table has it (with
    ``scflow benchmark``'s per-set defaults: the simulation's first 5 PCs)."""
    adata = getattr(scflow.datasets, name)()
    use_rep = adata.uns["scflow_dataset"]["use_rep"]
    return TimeCourse.from_arrays(adata.obsm[use_rep], adata.obs["day"], whiten=True,
                                  **DATASET_DEFAULTS.get(name, {})), use_rep


def run_one(name: str, candidates: list, args: argparse.Namespace) -> dict:
    tc, use_rep = _course(name)
    seeds = [int(s) for s in args.seeds.split(",")]
    train = {"n_steps": args.n_steps, "progress": False, "device": "cpu"}
    start = time.perf_counter()
    holdouts = _holdouts(args)
    auto, inner = nested_leave_one_out(tc, candidates, seeds, select_seeds=seeds[:1],
                                       holdouts=holdouts, n_boot=args.n_boot, **train)
    ref = leave_one_out_tc(tc, ["static_ot"], seeds[:1], holdouts=holdouts,
                           n_boot=args.n_boot, **train)
    seconds = time.perf_counter() - start
    print(f"{name}: {seconds:.0f} s", file=sys.stderr)
    return {"dataset": name, "use_rep": use_rep, "n_cells": [len(x) for x in tc.xs],
            "candidates": [candidate_label(c) for c in candidates], "seeds": seeds,
            "n_steps": args.n_steps, "n_boot": args.n_boot, "seconds": seconds,
            "holdouts": sorted({int(k) for k in auto["holdout_index"]}),
            "rows": pd.concat([auto, ref], ignore_index=True).to_dict(orient="records"),
            "inner": inner.to_dict(orient="records")}


def _holdouts(args: argparse.Namespace) -> list[int] | None:
    """``--holdouts "1,2"`` -> ``[1, 2]`` (None: every interior timepoint)."""
    return [int(k) for k in args.holdouts.split(",")] if args.holdouts else None


#: what two parts of one set must share to be merged into one record
_SAME = ("candidates", "seeds", "n_steps", "n_boot", "n_cells")


def merge_record(record: list[dict], rec: dict) -> list[dict]:
    """``record`` with ``rec`` in it: it replaces the set's earlier record, unless both name
    their held-out timepoints (``holdouts``), these are disjoint and the settings are the
    same (a set split over processes): then the rows, inner rows and seconds are joined."""
    old = next((r for r in record if r["dataset"] == rec["dataset"]), None)
    rest = [r for r in record if r["dataset"] != rec["dataset"]]
    if (old is None or "holdouts" not in old or "holdouts" not in rec
            or set(old["holdouts"]) & set(rec["holdouts"])
            or any(old.get(key) != rec.get(key) for key in _SAME)):
        return rest + [rec]
    joined = {**rec, "holdouts": sorted(old["holdouts"] + rec["holdouts"]),
              "rows": old["rows"] + rec["rows"], "inner": old["inner"] + rec["inner"]}
    for key in ("seconds", "seconds_fit_auto"):
        joined[key] = old.get(key, 0.0) + rec.get(key, 0.0)
    return rest + [joined]


def add_fit_auto(rec: dict, candidates: list, args: argparse.Namespace) -> dict:
    """Rows ``fit_auto``: what ``tl.fit(method="auto")`` would fit, the same choice made among
    the neural candidates only (a fit trains a field), read off the same inner scores, then
    trained and scored at each held-out timepoint."""
    tc, _ = _course(rec["dataset"])
    inner = pd.DataFrame(rec["inner"])
    by_label = {candidate_label(c): c for c in candidates}
    neural = [lab for lab in rec["candidates"]
              if lab in by_label and parse_candidate(by_label[lab])[0] in names("neural")]
    start, rows = time.perf_counter(), []
    for k in sorted({int(r["holdout_index"]) for r in rec["rows"]}):
        sub = (inner[(inner["outer_holdout_index"] == k) & inner["candidate"].isin(neural)]
               if len(inner) else inner)  # no inner rows at all: every choice fell back
        if sub.empty:  # fell back: the first neural candidate
            label, fallback = neural[0], True
        else:
            means = sub.groupby("candidate", sort=False)["w1"].mean().reindex(
                [lab for lab in neural if lab in set(sub["candidate"])])
            label, fallback = means.index[first_best(means.to_numpy())], False
        method, settings = parse_candidate(by_label[label])
        df = leave_one_out_tc(tc, [method], rec["seeds"], holdouts=[k], n_boot=rec["n_boot"],
                              n_steps=rec["n_steps"], progress=False, device="cpu",
                              **settings)
        df["method"], df["chosen"], df["fallback"] = "fit_auto", label, fallback
        rows.append(df)
    rec["rows"] = [r for r in rec["rows"] if r["method"] != "fit_auto"] + pd.concat(
        rows, ignore_index=True).to_dict(orient="records")
    rec["seconds_fit_auto"] = time.perf_counter() - start
    return rec


def _verdict(auto: pd.Series, ref: pd.Series) -> str:
    """Where the choice sits against static OT: by the paired interval of the difference
    (the same bootstrap resamples for both) where the row has it, else by the two separate
    intervals (records made before the paired column)."""
    lo, hi = auto.get("diff_static_ot_lo", float("nan")), auto.get("diff_static_ot_hi",
                                                                   float("nan"))
    if not pd.isna(lo) and not pd.isna(hi):
        if hi < 0:
            return BELOW
        return "above, paired interval > 0" if lo > 0 else "paired interval holds 0"
    if pd.isna([auto["w1_lo"], auto["w1_hi"], ref["w1_lo"], ref["w1_hi"]]).any():
        return "below, no interval" if auto["w1"] < ref["w1"] else "not below, no interval"
    if auto["w1_hi"] < ref["w1_lo"]:
        return "below, intervals apart"
    if auto["w1_lo"] > ref["w1_hi"]:
        return "above, intervals apart"
    return "intervals overlap"


#: the verdict counted in the summary (the paired interval of the difference below 0)
BELOW = "below, paired interval < 0"


def _diff(a: pd.Series) -> str:
    """``W1 - W1(static OT)`` and its paired interval, or a dash for older records."""
    if pd.isna(a.get("diff_static_ot", float("nan"))):
        return "–"
    lo, hi = a.get("diff_static_ot_lo"), a.get("diff_static_ot_hi")
    ci = "" if pd.isna(lo) or pd.isna(hi) else f" [{lo:+.3f}, {hi:+.3f}]"
    return f"{a['diff_static_ot']:+.3f}{ci}"


def markdown(record: list[dict]) -> str:
    lines, summary = [], []
    record = sorted(record, key=lambda r: (ORDER.index(r["dataset"]) if r["dataset"] in ORDER
                                           else len(ORDER), r["dataset"]))
    for rec in record:
        rows = pd.DataFrame(rec["rows"])
        first = rows[rows["seed"] == rec["seeds"][0]]
        apart = {"auto": 0, "fit_auto": 0}
        for _, grp in first.groupby("holdout_index", sort=True):
            r = grp[grp["method"] == "static_ot"].iloc[0]
            for which in ("auto", "fit_auto"):
                if not (grp["method"] == which).any():
                    continue
                a = grp[grp["method"] == which].iloc[0]
                chosen = a["chosen"] + (" (fallback)" if a["fallback"] else "")
                held = (f"{a['holdout']:.4g}" if isinstance(a["holdout"], float)
                        else a["holdout"])
                apart[which] += _verdict(a, r) in (BELOW, "below, intervals apart")
                lines.append(f"| {rec['dataset']} | {held} | {a['floor']:.3f} | {which} "
                             f"| {chosen} | {format_w1(a['w1'], a['w1_lo'], a['w1_hi'])} "
                             f"| {format_w1(r['w1'], r['w1_lo'], r['w1_hi'])} "
                             f"| {_diff(a)} | {_verdict(a, r)} |")
        means = first.groupby("method")["w1"].mean()
        fit_auto = f"{means['fit_auto']:.3f}" if "fit_auto" in means else "–"
        n_held = first["holdout_index"].nunique()
        summary.append(f"| {rec['dataset']} | {means['auto']:.3f} | {fit_auto} "
                       f"| {means['static_ot']:.3f} | {apart['auto']}/{n_held} "
                       f"| {apart['fit_auto']}/{n_held} | {rec['n_steps']} | {rec['n_boot']} "
                       f"| {(rec['seconds'] + rec.get('seconds_fit_auto', 0)) / 60:.0f} |")
    lists = list(dict.fromkeys(tuple(rec["candidates"]) for rec in record))
    if len(lists) <= 1:
        cands = ", ".join(lists[0]) if lists else ""
    else:  # runs with different candidate lists: say which set had which
        sets = {c: ", ".join(r["dataset"] for r in record if tuple(r["candidates"]) == c)
                for c in lists}
        cands = "; ".join(f"{', '.join(c)} ({names})" for c, names in sets.items())
    default = [candidate_label(c) for c in ALL_CANDIDATES]
    missing = sorted({c for rec in record for c in default if c not in rec["candidates"]})
    left_out = (f" `{'`, `'.join(missing)}` left out of the candidates of some runs, where "
                "the CPU here was shared (`tl.fit`'s default list has "
                f"{'it' if len(missing) == 1 else 'them'})." if missing else "")
    absent = [d for d in DATASETS if d not in {r["dataset"] for r in record}]
    if absent:
        left_out += (f" Not in this record (not run with the current code): "
                     f"{', '.join(absent)}.")
    return "\n".join([
        "## Selection that never reads the test: nested leave-one-out (whitened on kept "
        "cells, index time)",
        "", "`python benchmarks/nested_selection.py` (`scflow.protocols.nested_leave_one_out`"
        ", `tl.leave_one_out(select=...)`)", "",
        f"For each held-out timepoint the method is chosen among {cands} by leave-one-out "
        "on the other timepoints only (mean W1 over the kept interior timepoints held out "
        "in turn, seed 0), then trained and scored at the held-out one (*auto*, "
        "`tl.leave_one_out(select=...)`); *fit_auto* makes the same choice among the neural "
        "candidates only, as `tl.fit(method=\"auto\")` does. No number here chose a "
        "default. W1 [95% bootstrap interval over cells: held-out cells and "
        "prediction resampled, the percentile interval moved down by the replicates' mean "
        "excess over the score, which resampling with replacement inflates]. The difference "
        "to static OT is paired: both scored on the same bootstrap resamples of the held-out "
        "cells (`scflow.protocols.intervals.paired_bootstrap_w1`); a choice is counted below "
        "static OT when that interval is below 0. Every scaler (outer and inner fits) is "
        "fitted on the kept cells only; scores are in the units of one fitted on all "
        "cells. With two kept timepoints (mouse 2-D) no inner hold-out exists: the first "
        "candidate is used and the row says *fallback*. Training steps (`n_steps`) and bootstrap "
        "replicates (`n_boot`: fewer on mouse 2-D, where each replicate solves a 7000 x "
        "3781 plan) are columns of the summary; one seed." + left_out + " Command per data "
        "set: `python benchmarks/nested_selection.py --datasets NAME --n-steps N --n-boot B`"
        " (with `--candidates` where the list differs from the default).",
        "",
        "| data | mean W1, auto | mean W1, fit_auto | mean W1, static OT | auto below static "
        "OT (paired interval < 0) | fit_auto below | n_steps | n_boot | minutes |",
        "|---|---|---|---|---|---|---|---|---|", *summary, "",
        "| data | held-out | split-half W1 | row | chosen | W1 chosen | W1 static OT | "
        "W1 chosen - static OT [95% paired] | vs static OT |",
        "|---|---|---|---|---|---|---|---|---|", *lines, ""])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--candidates", default=",".join(
        c if isinstance(c, str) else f"{c['method']}:window={c['window']}"
        for c in ALL_CANDIDATES))
    p.add_argument("--seeds", default="0")
    p.add_argument("--n-steps", type=int, default=3000)
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--holdouts", default="",
                   help="only these outer held-out timepoints (indices, comma-separated); "
                        "a part of a set is merged with its other parts in the JSON")
    p.add_argument("--fit-auto-only", action="store_true",
                   help="only add the fit_auto rows to the data sets already in the JSON")
    p.add_argument("--render-only", action="store_true",
                   help="only write the Markdown again from the JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{STEM}.json"
    record = json.loads(path.read_text()) if path.exists() else []
    if args.render_only:
        (out / f"{STEM}.md").write_text(markdown(record))
        return
    for name in args.datasets.split(","):
        if args.fit_auto_only:
            rec = add_fit_auto(next(r for r in record if r["dataset"] == name),
                               _candidates(args.candidates), args)
        else:
            rec = add_fit_auto(run_one(name, _candidates(args.candidates), args),
                               _candidates(args.candidates), args)
        # read again: another process may have written a part of a set meanwhile
        record = json.loads(path.read_text()) if path.exists() else []
        record = merge_record(record, rec)  # --fit-auto-only: the same held-out times, replaced
        path.write_text(json.dumps(record, indent=1, default=float))  # after every set
        (out / f"{STEM}.md").write_text(markdown(record))
    print(f"wrote {path} and {out / f'{STEM}.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
