"""Run a protocol on one data set and write its report: Markdown, JSON (and a figure).

:func:`run_benchmark` is what ``scflow benchmark`` does for each data set: build the time
course, run the protocol (one :class:`~scflow.couplings.PlanCache` for all its fits),
merge the rows of an earlier table (``--append``), and write ``{stem}.json`` (config, rows,
summary), ``{stem}.md`` (a section for ``BENCHMARKS.md``) and, for leave-one-out, a figure.
The rendering helpers (:func:`markdown`, :func:`rollout_markdown`,
:func:`published_leave_one_out`, :func:`title`, :func:`section`) are public too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..protocols.published import LEAVE_ONE_OUT, ROLLOUT, ROLLOUT_HOLDOUT
from ..protocols.rollout import CHAIN_REFERENCE
from ..protocols.scoring import summarize
from ..training.config import TrainConfig

__all__ = ["run_benchmark", "markdown", "rollout_markdown", "published_leave_one_out",
           "title", "section", "commands", "previous_table", "render", "held_label",
           "SPLIT_HALF"]

_TITLES = {"leave_one_out": "Leave one timepoint out",
           "rollout": "Roll-out from t0, trained on all timepoints (scores fit to the "
                      "training cells, not prediction)",
           "rollout_holdout": "Roll-out from t0, hold one out (prediction)"}


def _interval(lo: float, hi: float, digits: int = 3, signed: bool = False) -> str:
    """`` [lo, hi]``: the bootstrap interval over cells (averaged over seeds), or nothing;
    ``signed``: with the sign of each bound."""
    f = f"{'+' if signed else ''}.{digits}f"
    return "" if pd.isna(lo) or pd.isna(hi) else f" [{lo:{f}}, {hi:{f}}]"


#: what the ``floor`` column is (:func:`scflow.metrics.sampling_floor`), under every table
SPLIT_HALF = ("split-half W1: the exact W1 between two random halves of the held-out cells "
              "(each half the size, mean of 5 splits), the noise level of a W1 between samples "
              "of that size. Not a floor: a prediction with as many cells as the held-out set "
              "is scored against all of them and can land below it.")


def held_label(value, labels: dict | None = None) -> str:
    """A held-out time as shown: the data set's label (``8h``) when ``labels`` names it,
    else 3 significant digits (``0.333``), as the plots show it."""
    if labels:
        for t, lab in labels.items():
            try:
                if abs(float(t) - float(value)) <= 1e-9 + 1e-6 * abs(float(t)):
                    return str(lab)
            except (TypeError, ValueError):
                if str(t) == str(value):
                    return str(lab)
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def markdown(summary: pd.DataFrame, labels: dict | None = None) -> str:
    """The leave-one-out table: mean ± std over seeds per method and held-out time, and the
    paired difference to static OT (when the rows carry it); ``labels``: ``{time value:
    label}``, the data set's names of its timepoints."""
    diff = "diff_static_ot_mean" in summary
    lines = ["| method | held-out | W1 [95% interval over cells] | "
             + ("W1 - static OT [95% paired interval] | " if diff else "")
             + "W2 | MMD | split-half W1 | seconds |",
             "|---|---|---|" + ("---|" if diff else "") + "---|---|---|---|"]
    for r in summary.itertuples():
        def ms(m, s, sign=""):  # one seed: no spread to show
            return f"{m:{sign}.3f}" if pd.isna(s) else f"{m:{sign}.3f} ± {s:.3f}"
        held = held_label(r.holdout, labels)
        ci = _interval(getattr(r, "w1_lo_mean", float("nan")),
                       getattr(r, "w1_hi_mean", float("nan")))
        cells = [r.method, held, f"{ms(r.w1_mean, r.w1_std)}{ci}"]
        if diff:
            cells.append("–" if pd.isna(r.diff_static_ot_mean) else
                         ms(r.diff_static_ot_mean, r.diff_static_ot_std, "+")
                         + _interval(r.diff_static_ot_lo_mean, r.diff_static_ot_hi_mean,
                                     signed=True))
        cells += [ms(r.w2_mean, r.w2_std), ms(r.mmd_mean, r.mmd_std), f"{r.floor_mean:.3f}",
                  f"{r.seconds_mean:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if diff and summary["diff_static_ot_lo_mean"].notna().any():
        lines += ["", PAIRED_NOTE]
    return "\n".join(lines + ["", SPLIT_HALF])


#: what the paired column of a leave-one-out table means
PAIRED_NOTE = (
    "W1 - static OT: the row's W1 minus static OT's at the same held-out time (below 0: "
    "closer to the held-out cells than the no-network reference), mean ± std over seeds, "
    "then [95% interval over cells, paired: every prediction scored on the same bootstrap "
    "resamples of the real cells, cells pushed from k - 1 resampled together; centred as "
    "the W1 intervals, averaged over seeds]. An interval below 0 beats static OT beyond "
    "the cells' sampling noise.")


def _ms(values: pd.Series, lo: pd.Series | None = None, hi: pd.Series | None = None) -> str:
    m, s = values.mean(), values.std()
    out = f"{m:.4f}" if pd.isna(s) else f"{m:.4f} ± {s:.4f}"
    return out if lo is None else out + _interval(lo.mean(), hi.mean(), 4)


def rollout_markdown(df: pd.DataFrame, name: str, labels: dict | None = None) -> str:
    """W1 (and W2) per method and timepoint; the published rows and the split-half W1 of the
    real cells beside (``labels``: the data set's names of its timepoints)."""
    ks = sorted(df["time_index"].unique())
    labels = {int(r.time_index): held_label(r.timepoint, labels) for r in df.itertuples()}
    head = "| method | " + " | ".join(f"W1 t{k} ({labels[k]})" for k in ks) + " | " + \
        " | ".join(f"W2 t{k}" for k in ks) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(ks))]
    for method, g in df.groupby("method", sort=False):
        w1 = [_ms(*(g.loc[g.time_index == k, c] for c in ("w1", "w1_lo", "w1_hi")))
              if (g.time_index == k).any() else "–" for k in ks]
        w2 = [_ms(g.loc[g.time_index == k, "w2"]) if (g.time_index == k).any() else "–"
              for k in ks]
        label = ("no network: chained OT plans from t0" if method == CHAIN_REFERENCE
                 else f"scflow {method}")
        lines.append(f"| {label} | " + " | ".join(w1 + w2) + " |")
    published = (ROLLOUT if (df["protocol"] == "all").all() else ROLLOUT_HOLDOUT).get(name, {})
    for method, vals in published.items():
        cells = [f"{vals[k - 1]:.4f}" if k - 1 < len(vals) else "–" for k in ks]
        lines.append(f"| published {method} | " + " | ".join(cells + ["–"] * len(ks)) + " |")
    floor = [f"{df.loc[df.time_index == k, 'floor'].iloc[0]:.4f}" for k in ks]
    lines.append("| split-half W1 of the real cells | " + " | ".join(floor + ["–"] * len(ks))
                 + " |")
    lines += ["", SPLIT_HALF.replace("held-out cells", "real cells of the timepoint")
              .replace("the held-out set", "the timepoint")]
    if "w1_lo" in df and df["w1_lo"].notna().any():
        lines += ["", ROLLOUT_INTERVALS]
    return "\n".join(lines)


#: what the brackets of a roll-out table mean
ROLLOUT_INTERVALS = (
    "W1: mean ± std over seeds, then [95% bootstrap interval over cells: the real cells and "
    "the prediction resampled, the percentile interval moved down by the replicates' mean "
    "excess over the score, averaged over seeds]. Deterministic rows (static, no network) "
    "have no spread over seeds; their interval is the cells' share of the uncertainty.")


def published_leave_one_out(name: str, summary: pd.DataFrame) -> str:
    """The published mean held-out W1 beside ours (EB / Cite / Multi); ``""`` elsewhere."""
    if name not in LEAVE_ONE_OUT:
        return ""
    ours = summary.groupby("method", sort=False)["w1_mean"].mean()
    lines = ["", "", "Mean held-out W1 over timepoints, ours beside the published:", "",
             "| method | scflow | published |", "|---|---|---|"]
    for method, value in LEAVE_ONE_OUT[name].items():
        mine = f"{ours[method]:.3f}" if method in ours else "–"
        lines.append(f"| {method} | {mine} | {value:.3f} |")
    for method in ours.index:
        if method not in LEAVE_ONE_OUT[name]:
            lines.append(f"| {method} | {ours[method]:.3f} | – |")
    return "\n".join(lines)


def title(c: dict) -> str:
    """The section title of a run's config."""
    units = "raw units"
    if c["whiten"]:  # older tables: the scaler saw every cell, held-out ones included
        units = "whitened on the kept cells" if c.get("scaler") else "whitened on all cells"
    return (f"## {_TITLES[c['protocol']]}: {c['dataset']} ({c['use_rep']}, "
            f"{c['n_dims'] or 'all'} dims, {units}, "
            f"{c['time_scale']} time, seeds {c['seeds']}, {c['n_steps']} steps)")


def commands(config: dict) -> list[str]:
    """The command(s) that made a table (several after ``--append``)."""
    c = config["command"]
    return list(c) if isinstance(c, list) else [c]


def section(c: dict, table: str) -> str:
    """A Markdown section for BENCHMARKS.md: what was run, how, and the table."""
    cmds = " and then ".join(f"`{cmd}`" for cmd in commands(c))
    return f"{title(c)}\n\n{cmds}\n\n{table}\n"


def render(record: dict, labels: dict | None = None) -> str:
    """The Markdown section of a table written by :func:`run_benchmark` (its JSON record),
    rendered again (after a change of presentation, no rerun). ``labels``: the data set's
    time labels (default: those the record holds)."""
    run = record["config"]
    if labels is None:
        labels = {float(k): v for k, v in record.get("time_labels", {}).items()}
    if run["protocol"] == "leave_one_out":
        summary = pd.DataFrame(record["summary"])
        table = markdown(summary, labels) + published_leave_one_out(run["dataset"], summary)
    else:
        table = rollout_markdown(pd.DataFrame(record["rows"]), run["dataset"], labels)
    return section(run, table)


#: what must match for ``--append`` to add rows to an earlier table
_FIXED = ("dataset", "protocol", "use_rep", "n_dims", "whiten", "scaler", "seeds",
          "time_scale")


def _scaler(whiten: bool) -> str:
    """What the whitening scaler of a table was fitted on (recorded in its config; tables
    made before the scaler left the held-out cells out have none, and are not appended
    to)."""
    return "fitted on the kept cells of each hold-out" if whiten else "none"


def previous_table(path: Path, config: dict) -> tuple[dict, pd.DataFrame] | None:
    """The table already at ``path`` for ``--append``; it must come from the same set-up."""
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    differ = {k: old["config"].get(k) for k in _FIXED if old["config"].get(k) != config[k]}
    if differ:
        raise ValueError(f"--append: {path} was made with other settings "
                         f"({', '.join(f'{k}={v!r}' for k, v in differ.items())}); run "
                         "without --append, or with the same settings")
    return old["config"], pd.DataFrame(old["rows"])


def run_benchmark(adata, name: str, *, protocol: str, methods: Sequence[str],
                  seeds: Sequence[int], use_rep: str, n_dims: int | None, whiten: bool,
                  time_scale: str, config: TrainConfig, device: str = "auto",
                  mass: Sequence[float] | None = None, out: Path, stem: str,
                  append: bool = False, command: str = "", n_boot: int = 0) -> pd.DataFrame:
    """Run ``protocol`` on the AnnData of data set ``name`` and write its report.

    Returns the rows (after merging an earlier table when ``append``); prints the table and
    writes ``out / stem`` ``.json``, ``.md`` (and ``.png`` for leave-one-out).
    """
    from .. import tl
    from .._adata.access import time_course
    from .._adata.time_labels import dataset_time_labels
    from ..protocols.rollout import rollout_tc

    train = {k: v for k, v in config.as_dict().items() if k != "activation"}
    run: dict[str, Any] = {"dataset": name, "protocol": protocol, "use_rep": use_rep,
                           "n_dims": n_dims, "whiten": whiten, "scaler": _scaler(whiten),
                           "methods": list(methods),
                           "seeds": list(seeds), "time_scale": time_scale, **train,
                           "command": command}
    previous = previous_table(out / f"{stem}.json", run) if append else None
    labels = dataset_time_labels(adata)
    if protocol == "leave_one_out":
        df = tl.leave_one_out(adata, "day", use_rep=use_rep, methods=methods, seeds=seeds,
                              n_dims=n_dims, whiten=whiten, time_scale=time_scale,
                              device=device, mass=mass, config=config, n_boot=n_boot)
    else:
        tc = time_course(adata, "day", use_rep, n_dims=n_dims, whiten=whiten,
                         time_scale=time_scale)
        holdouts = None if protocol == "rollout" else list(range(1, tc.n_timepoints))
        df = rollout_tc(tc, methods, seeds, holdouts=holdouts, device=device, mass=mass,
                        config=config, n_boot=n_boot)
    if previous is not None:  # keep the other methods' rows, in their order
        old_config, old = previous
        old = old[~old["method"].isin(methods)]
        df = pd.concat([old, df], ignore_index=True)
        run["methods"] = list(dict.fromkeys([*old["method"], *methods]))
        run["command"] = [*commands(old_config), command]
    if protocol == "leave_one_out":
        from .. import pl

        pl.leave_one_out(df, title=f"{name}: leave one timepoint out", show=False,
                         save=str(out / f"{stem}.png"))
        summary = summarize(df)
        table = markdown(summary, labels) + published_leave_one_out(name, summary)
    else:
        table = rollout_markdown(df, name, labels)
        summary = summarize(df, by=("method", "protocol", "time_index"))
    print(f"\n{title(run)}\n\n{table}\n", flush=True)
    (out / f"{stem}.json").write_text(json.dumps(
        {"config": run, "rows": df.to_dict(orient="records"),
         "summary": summary.to_dict(orient="records"),
         "time_labels": {str(k): v for k, v in labels.items()}}, indent=1, default=str))
    (out / f"{stem}.md").write_text(section(run, table))
    print(f"wrote {out}/{stem}.{{json,md{',png' if protocol == 'leave_one_out' else ''}}}")
    return df
