"""Where the leave-one-out error comes from, on every real data set here.

For each interior held-out timepoint (whitened, index time, as the protocol scales the
data): the sampling floor, static OT, and two oracles that read the held-out cells
(``scflow.tl.error_budget``): static OT at the best fraction between the neighbours
(timing) and static OT moved onto the held-out mean (centre). Beside them, for reference,
the best mean W1 of any scflow method in ``benchmarks/results/benchmark_*.json`` (the
leave-one-out tables above; that column comes from those runs, not this one). Run::

    SCFLOW_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/error_budget.py

Writes ``benchmarks/results/error_budget.json`` and ``benchmarks/results/error_budget.md``
(``python benchmarks/report.py`` gathers the sections into ``BENCHMARKS.md``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import scflow

HERE = Path(__file__).resolve().parent
#: (data set, n_dims, the leave-one-out table it sits beside)
SETS = [("emt_umap", None, "benchmark_emt_umap"), ("emt", None, "benchmark_emt"),
        ("emt", 5, "benchmark_emt_5d"), ("weinreb", None, "benchmark_weinreb"),
        ("bargaje", None, "benchmark_bargaje")]
COLS = ["floor", "static_ot", "timing_oracle", "centre_oracle"]


def _best_method(stem: str) -> tuple[str, float] | None:
    """The scflow method with the lowest mean W1 over held-out times in a table written
    by ``scflow benchmark`` (mean over seeds first), or None when there is no table."""
    path = HERE / "results" / f"{stem}.json"
    if not path.exists():
        return None
    rows = pd.DataFrame(json.loads(path.read_text())["rows"])
    per_method = rows.groupby(["method", "holdout_index"])["w1"].mean().groupby("method").mean()
    return str(per_method.idxmin()), float(per_method.min())


def main() -> None:
    torch.set_num_threads(1)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    record, summary, detail = [], [], []
    for name, n_dims, stem in SETS:
        adata = getattr(scflow.datasets, name)()
        use_rep = adata.uns["scflow_dataset"]["use_rep"]
        start = time.perf_counter()
        df = scflow.tl.error_budget(adata, "day", use_rep=use_rep, n_dims=n_dims)
        label = name if n_dims is None else f"{name} {n_dims}-D"
        best = _best_method(stem)
        record.append({"dataset": name, "n_dims": n_dims, "use_rep": use_rep,
                       "seconds": time.perf_counter() - start, "best_method": best,
                       "rows": df.to_dict(orient="records")})
        m = df[COLS].mean()
        summary.append(f"| {label} | {m['floor']:.3f} | {m['static_ot']:.3f} | "
                       f"{m['timing_oracle']:.3f} | {m['centre_oracle']:.3f} | "
                       + (f"{best[0]} {best[1]:.3f} |" if best else "n/a |"))
        for r in df.itertuples():
            held = f"{r.holdout:.4g}" if isinstance(r.holdout, float) else r.holdout
            detail.append(f"| {label} | {held} | {r.floor:.3f} | {r.w1_prev:.3f} | "
                          f"{r.w1_next:.3f} | {r.static_ot:.3f} | {r.best_fraction:.2f} | "
                          f"{r.timing_oracle:.3f} | {r.centre_oracle:.3f} |")
        print(f"{label}: {m.round(4).to_dict()}", file=sys.stderr)
    (out / "error_budget.json").write_text(json.dumps(record, indent=1, default=float))
    command = "SCFLOW_DATA_DIR=../shared/data python benchmarks/error_budget.py"
    md = ["## Where the held-out error comes from: the error budget (leave one out, whitened, "
          "index time)", "", f"`{command}` (`scflow.tl.error_budget`)", "",
          "Means over the held-out timepoints. *timing*: static OT at the fraction between "
          "the neighbours that fits the held-out cells best (searched on 0, 0.05, ..., 1); "
          "*centre*: static OT at the protocol's fraction, moved onto the held-out mean. "
          "Both read the held-out cells: they are bounds, not methods. The last column is "
          "the best scflow method of the leave-one-out table above (its own runs), picked on "
          "the very held-out times it reports: optimistic, what the best of scflow's methods "
          "can do, not what a user gets (that is the nested-selection table). The split-half W1 "
          "is the W1 between two halves of the held-out cells: a prediction with many more "
          "points than half of them can score under it (EMT 10-D's centre oracle does), so "
          "it is the noise level of a score, not a strict bound.", "",
          "| data | split-half W1 | static OT | timing oracle | centre oracle | "
          "best scflow method |",
          "|---|---|---|---|---|---|", *summary, "",
          "| data | held-out | split-half W1 | W1 to previous | W1 to next | static OT | "
          "best fraction | timing oracle | centre oracle |",
          "|---|---|---|---|---|---|---|---|---|", *detail,
          ""]
    (out / "error_budget.md").write_text("\n".join(md))
    print(f"wrote {out / 'error_budget.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
