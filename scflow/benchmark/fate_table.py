"""The LARRY fate table: every row at every readout, with its paired difference to the
no-motion null (:func:`scflow.fate_benchmark.larry_fate` makes the rows)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .fate_paired import paired_pearson

__all__ = ["summarize_fate", "fate_markdown", "beats_null", "write_fate"]

NULL = "null: no motion"
_DIFFS = ("vs_null", "vs_best_null")


def summarize_fate(df: pd.DataFrame, predictions: Mapping[str, np.ndarray] | None = None,
                   truth: np.ndarray | None = None, *, n_boot: int = 1000) -> pd.DataFrame:
    """One row per method and readout: the mean r over seeds and its paired differences to
    the null.

    Parameters
    ----------
    df
        Rows of :func:`scflow.fate_benchmark.larry_fate`.
    predictions, truth
        The rows' predictions (by their ``prediction`` key) and the truth, on the scored
        cells: the intervals are then those of the mean over seeds, on shared resamples
        (:func:`scflow.fate_paired.paired_pearson`, ``random_state=0``). Without them, the
        mean over seeds of each seed's interval.
    n_boot
        Resamples, with ``predictions``.

    Returns
    -------
    DataFrame with ``method``, ``readout``, ``r_mean``, ``r_std`` (over seeds), ``r_low``,
    ``r_high``, ``vs_null`` (+ ``_low``, ``_high``), ``vs_best_null`` (+ ``_low``,
    ``_high``), ``best_null_readout``, ``n_seeds``, ``fate_mode``, ``seconds``,
    ``n_neighbors`` (the values used, per seed).
    """
    df = df.copy()
    if "readout" not in df:
        df["readout"] = ""
    df["readout"] = df["readout"].fillna("").astype(str)
    paired = None
    if predictions is not None:
        if truth is None or "prediction" not in df:
            raise ValueError("predictions need truth and the rows' 'prediction' column")
        paired = paired_pearson(dict(predictions), truth, n_boot=n_boot, random_state=0)
    out = []
    for (method, readout), g in df.groupby(["method", "readout"], sort=False):
        row = {"method": method, "readout": readout, "r_mean": g["r"].mean(),
               "r_std": g["r"].std(), "n_seeds": int((g["seed"] >= 0).sum()),
               "fate_mode": g["fate_mode"].iloc[0], "seconds": g["seconds"].mean(),
               "n_neighbors": _ks(g["n_neighbors"]) if "n_neighbors" in g else "–",
               "best_null_readout": (g["best_null_readout"].iloc[0]
                                     if "best_null_readout" in g else "")}
        if paired is not None:
            keys = list(g["prediction"])
            _, row["r_low"], row["r_high"] = paired.mean(keys)
            for col, ref in (("vs_null", f"{NULL}|seed=-1|k={readout}"),
                             ("vs_best_null", f"{NULL}|seed=-1|k={row['best_null_readout']}")):
                if readout and ref in paired.names and ref not in keys:
                    row[col], row[col + "_low"], row[col + "_high"] = paired.difference(
                        keys, [ref] * len(keys))
        else:
            row["r_low"], row["r_high"] = g["r_low"].mean(), g["r_high"].mean()
            for col in _DIFFS:
                if col in g and g[col].notna().any():
                    for suffix in ("", "_low", "_high"):
                        row[col + suffix] = g[col + suffix].mean()
        out.append(row)
    s = pd.DataFrame(out)
    for col in _DIFFS:
        for suffix in ("", "_low", "_high"):
            if col + suffix not in s:
                s[col + suffix] = np.nan
    return s


def _ks(values: pd.Series) -> str:
    ks = [str(int(v)) for v in values if pd.notna(v)]
    return "/".join(ks) if ks else "–"


def beats_null(summary: pd.DataFrame, col: str = "vs_null") -> pd.DataFrame:
    """The rows of a :func:`summarize_fate` table whose paired interval of ``col`` lies
    above 0."""
    return summary[summary[col + "_low"] > 0]


def _cell(r, lo, hi) -> str:
    if pd.isna(r):
        return "–"
    return f"{r:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else f"{r:.3f}"


def _diff(r, lo, hi) -> str:
    if pd.isna(r):
        return "–"
    mark = " **>**" if lo > 0 else (" <" if hi < 0 else "")
    return f"{r:+.3f} [{lo:+.3f}, {hi:+.3f}]{mark}"


def fate_markdown(df: pd.DataFrame, rule: str | None = None, *,
                  summary: pd.DataFrame | None = None) -> str:
    """The tables: r of every row at every readout; its paired difference to the null at
    the same readout; to the null at its best readout. The summary leads with whether any
    row beats the null.

    Parameters
    ----------
    df
        Rows of :func:`scflow.fate_benchmark.larry_fate`.
    rule
        The labelling rule in words (default: the rows' ``label_rule`` at ``"auto"``, else
        the first).
    summary
        :func:`summarize_fate` of ``df`` (default: computed without predictions).
    """
    s = summarize_fate(df) if summary is None else summary
    if rule is None and "label_rule" in df and df["label_rule"].notna().any():
        lr = df[df.get("readout", pd.Series("", index=df.index)).astype(str) == "auto"]
        lr = lr if lr["label_rule"].notna().any() else df
        rule = str(lr["label_rule"].dropna().iloc[0])
    readouts = [r for r in dict.fromkeys(s["readout"]) if r]
    methods = list(dict.fromkeys(s["method"]))
    ours = s[s["readout"] != ""]
    mine = ours[ours["method"] != NULL]
    wins = beats_null(mine)
    best = [str(b) for b in s["best_null_readout"] if isinstance(b, str) and b]
    best = best[0] if best else ""
    null_best = s[(s["method"] == NULL) & (s["readout"] == best)]
    lines = []
    if len(mine):
        if len(wins):
            names = ", ".join(f"`{w.method}` at k={w.readout} ({w.vs_null:+.3f} "
                              f"[{w.vs_null_low:+.3f}, {w.vs_null_high:+.3f}])"
                              for w in wins.itertuples())
            lines.append(f"**Rows above the no-motion null at the same readout (paired 95% "
                         f"interval above 0): {names}.**")
        else:
            lines.append("**No row beats the no-motion null at the same readout (no paired "
                         "95% interval above 0).**")
        if len(null_best):
            nb = null_best.iloc[0]
            above = mine[mine["vs_best_null_low"] > 0]
            what = (", ".join(f"`{w.method}` at k={w.readout}" for w in above.itertuples())
                    if len(above) else "none")
            lines.append(f"Against the null at its best readout on the truth (k={best}: r "
                         f"{_cell(nb.r_mean, nb.r_low, nb.r_high)}), rows above it: {what}.")
        lines.append("")
    head = "| method | fate estimate | seeds | " + " | ".join(
        f"k={r}" for r in readouts) + " |"
    rule_line = "|---" * (3 + len(readouts)) + "|"
    lines += ["Pearson r (mean over seeds) [95% interval over cells]:", "", head, rule_line]
    for m in methods:
        sub = s[s["method"] == m].set_index("readout")
        first = sub.iloc[0]
        if "" in sub.index:  # a published row: one value
            cells = [_cell(first.r_mean, first.r_low, first.r_high)] + ["" for _ in readouts[1:]]
            seeds, mode = "–", "shipped predictions"
        else:
            cells = [_cell(sub.loc[r, "r_mean"], sub.loc[r, "r_low"], sub.loc[r, "r_high"])
                     if r in sub.index else "–" for r in readouts]
            seeds, mode = first.n_seeds or "–", first.fate_mode
        lines.append(f"| {m} | {mode} | {seeds} | " + " | ".join(cells) + " |")
    if "auto" in readouts:
        auto = s[s["readout"] == "auto"]
        ks = "; ".join(f"{a.method} {a.n_neighbors}" for a in auto.itertuples())
        lines += ["", f"k used by `\"auto\"` (per seed): {ks}."]
    for col, title in (("vs_null", "Paired difference to the no-motion null at the same "
                                   "readout"),
                       ("vs_best_null", f"Paired difference to the no-motion null at its best "
                                        f"readout (k={best})")):
        if mine[col].notna().any():
            lines += ["", f"{title} (mean over seeds, 95% interval over cells; **>**: above "
                          "0, <: below 0):", "", head.replace("fate estimate | seeds | ", ""),
                      "|---" * (1 + len(readouts)) + "|"]
            for m in dict.fromkeys(mine["method"]):
                sub = mine[mine["method"] == m].set_index("readout")
                cells = [_diff(sub.loc[r, col], sub.loc[r, col + "_low"],
                               sub.loc[r, col + "_high"]) if r in sub.index else "–"
                         for r in readouts]
                lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", f"Labelling rule: {rule}. Scored on the 10,087 held-out day-2 cells."]
    return "\n".join(lines)


def write_fate(out: str | Path, df: pd.DataFrame, bundle: dict, config: dict, title: str,
               note: str = "", *, n_boot: int = 1000) -> str:
    """Write ``larry_fate.json`` (config, rows, summary), ``larry_fate.md`` and
    ``larry_fate_predictions.npz`` (``cells``, ``heldout``, ``truth``, ``names`` and
    ``predictions``: ``(len(names), cells)`` float32 bias, row ``i`` of prediction
    ``names[i]``, the rows' ``prediction`` key) to the folder ``out``; returns the
    Markdown. The summary's intervals are those of the mean over seeds, paired on shared
    resamples of the held-out cells."""
    out = Path(out)
    held = np.asarray(bundle["heldout"], dtype=bool)
    preds = bundle["predictions"]
    summary = summarize_fate(df, {k: np.asarray(v)[held] for k, v in preds.items()},
                             np.asarray(bundle["truth"])[held], n_boot=n_boot)
    table = fate_markdown(df, summary=summary)
    text = f"{title}\n\n`{config.get('command', '')}`\n\n{table}{note}\n"
    names = list(preds)
    out.mkdir(parents=True, exist_ok=True)
    # every file is built in memory first, then written: none is left half-written
    payload = json.dumps({"config": config, "rows": df.to_dict(orient="records"),
                          "summary": summary.to_dict(orient="records")}, indent=1,
                         default=str)
    np.savez_compressed(out / "larry_fate_predictions.npz", cells=np.asarray(bundle["cells"]),
                        heldout=held, truth=np.asarray(bundle["truth"], dtype=np.float64),
                        names=np.asarray(names),
                        predictions=np.stack([np.asarray(preds[k], dtype=np.float32)
                                              for k in names]))
    (out / "larry_fate.json").write_text(payload)
    (out / "larry_fate.md").write_text(text)
    return table
