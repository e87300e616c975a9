"""The LARRY fate table (``scflow benchmark --dataset larry``), with the fits kept.

The same rows, options and output as the CLI (``benchmarks/results/larry_fate.{json,md}``
and the per-cell predictions of every row, ``larry_fate_predictions.npz``, so that rows
can be paired again later: :func:`scflow.benchmark.fate_table.write_fate`),
but each ``tl.fit`` is cached in ``--cache-dir`` (:func:`scflow.benchmark.larry.larry_fate`),
so the fits can run ahead (in parallel processes) and a fate rule can be re-scored without
refitting. Run::

    SCFLOW_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/larry_fate.py \\
        --methods default,transport,sbcfm --seeds 0,1,2 --cache-dir /tmp/larry_fits

or in parts (one process per method and seed, ``--rows PART.json``: the rows, and the
predictions in ``PART.npz``), gathered by ``--merge PART.json ...`` (the null and published
rows are kept once). Every row is read at every readout (``--readouts``, default
:data:`scflow.benchmark.larry.READOUTS`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from scflow.benchmark.fate_table import write_fate
from scflow.benchmark.larry import DEFAULT_FATE_ROWS, FATE_METHODS, READOUTS, larry_fate

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default=",".join(DEFAULT_FATE_ROWS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-steps", type=int, default=3000)
    p.add_argument("--readouts", default=",".join(map(str, READOUTS)))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--rows", default=None,
                   help="write only the rows (PART.json) and predictions (PART.npz)")
    p.add_argument("--merge", nargs="+", default=None, help="gather these --rows files")
    args = p.parse_args(argv)
    readouts = [r if r == "auto" else int(r) for r in args.readouts.split(",")]
    if args.merge:
        df, bundle = _merge(args.merge)
        ours = df[df["seed"] >= 0]
        methods = [m for m in FATE_METHODS if m in set(ours["method"])]
        seeds = sorted(int(s) for s in ours["seed"].unique())
        args.methods, args.seeds = ",".join(methods), ",".join(map(str, seeds))
    else:
        methods = args.methods.split(",")
        seeds = [int(s) for s in args.seeds.split(",")]
        df, bundle = larry_fate(methods, seeds, n_steps=args.n_steps, readouts=readouts,
                                cache_dir=args.cache_dir, return_predictions=True)
        if args.rows:
            part = Path(args.rows)
            np.savez_compressed(part.with_suffix(".npz"), cells=bundle["cells"],
                                heldout=bundle["heldout"], truth=bundle["truth"],
                                names=np.asarray(list(bundle["predictions"])),
                                predictions=np.stack(list(bundle["predictions"].values())))
            part.with_suffix(".json").write_text(json.dumps(df.to_dict(orient="records"),
                                                            default=str))
            print(df)
            return
    command = (f"python benchmarks/larry_fate.py --methods {args.methods} --seeds {args.seeds}"
               f" --n-steps {args.n_steps} --readouts {args.readouts}")
    config = {"dataset": "larry", "protocol": "fate", "methods": methods, "seeds": seeds,
              "n_steps": args.n_steps, "readouts": [str(r) for r in readouts],
              "command": command, "run_by": "benchmarks/larry_fate.py (the same rows, fits "
                                            "cached)"}
    title = (f"## Fate against lineage tracing: LARRY (day-2 neutrophil bias, Pearson r, seeds "
             f"{seeds}, {args.n_steps} steps)")
    note = ""
    if args.merge:
        note = ("\n\nRun in parts, one process per method and seed, fits cached "
                "(`python benchmarks/larry_fate.py --rows` / `--merge`), on a shared 2-core "
                "machine under load from other jobs: the seconds are wall time there, not "
                "comparable with a run on an idle machine.")
    note += _growth_note(df)
    table = write_fate(args.out, df, bundle, config, title, note)
    print(f"{title}\n\n{table}")


def _merge(parts: list[str]) -> tuple[pd.DataFrame, dict]:
    """The rows and predictions of several ``--rows`` parts (the null and published rows,
    the same in every part, kept once)."""
    frames, preds, bundle = [], {}, {}
    for f in parts:
        part = Path(f)
        frames.append(pd.DataFrame(json.loads(part.with_suffix(".json").read_text())))
        with np.load(part.with_suffix(".npz")) as z:
            bundle = {k: z[k] for k in ("cells", "heldout", "truth")}
            preds.update(zip(z["names"].tolist(), z["predictions"], strict=True))
    df = pd.concat(frames, ignore_index=True)
    once = df["seed"] < 0
    ours = df[~once].sort_values(["method", "seed"], kind="stable")
    df = pd.concat([ours, df[once].drop_duplicates(["method", "readout"])], ignore_index=True)
    return df, {**bundle, "predictions": preds}


def _growth_note(df: pd.DataFrame) -> str:
    """One line on growth on vs off, with the seeds of every row (when both rows are in)."""
    ours = df[df["seed"] >= 0]
    if not {"growth", "default"} <= set(ours["method"]):
        return ""
    seeds = "; ".join(f"{m} {', '.join(str(int(s)) for s in sorted(g['seed'].unique()))}"
                      for m, g in ours.groupby("method", sort=False))
    return ("\n\nGrowth on vs off: `scflow growth` is `tl.fit(method=\"uotcfm\")` (a velocity "
            "and a growth field from semi-relaxed unbalanced plans, masses from the cell "
            "counts), `scflow default` is `tl.fit(method=\"otcfm\")` (balanced), both with "
            "tl.fit's other defaults (on LARRY `coupling=\"auto\"` gives minibatch plans to "
            "both) and the same `tl.fate` ODE push (the growth weights change no cell's "
            f"fate). Seeds per row: {seeds}." + _ablation_note(ours))


def _ablation_note(ours: pd.DataFrame) -> str:
    """What the growth ablation rows are, when they are in the table."""
    parts = {"sbcfm_ode": "`sbcfm_ode` pushes the `sbcfm` row's fits along their ODE "
                          "(balanced entropic pairs, blur 0.125 beside uotcfm's 0.1, no "
                          "growth: entropic pairing without growth)",
             "growth_shape": "`growth_shape` gives both populations the same mass "
                             "(`mass=\"none\"`: growth from the shapes alone, not the "
                             "counts); it equals the `growth` row of the same seed, as it "
                             "must: population masses only scale the semi-relaxed plan and "
                             "shift every cell's log-growth by the same constant, so they "
                             "change no pair and no fate (`tests/test_growth.py`)"}
    have = [text for name, text in parts.items() if name in set(ours["method"])]
    if not have:
        return ""
    return (" Ablations of the growth row, run once to say where its gain comes from (no "
            "setting was chosen by them): " + "; ".join(have) + ".")


if __name__ == "__main__":
    main()
