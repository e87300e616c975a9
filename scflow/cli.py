"""Command line: ``scflow benchmark`` and ``scflow fit`` (also ``python -m scflow``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["main"]

#: protocol settings per data set where they differ from the defaults
DATASET_DEFAULTS = {"simulate": {"n_dims": 5}}
REAL_DATASETS = ("emt", "emt_umap", "weinreb", "bargaje")


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (same names as scflow.tl.fit)")
    g.add_argument("--n-steps", type=int, default=3000)
    g.add_argument("--batch-size", type=int, default=256, help="pairs per interval per step")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--sigma", type=float, default=None, help="default per method")
    g.add_argument("--hidden", type=_ints, default=[64, 64, 64], help="e.g. 64,64,64")
    g.add_argument("--coupling", choices=("global", "minibatch"), default="global")
    g.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    g.add_argument("--ema", type=float, default=0.999, help="weight-average decay; 0: none")
    g.add_argument("--device", default="auto")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("benchmark", help="leave-one-timepoint-out table (TorchCFM protocol)")
    b.add_argument("--dataset", default="default",
                   help="simulate, emt, emt_umap, weinreb, bargaje, or 'default' (simulate, "
                        "plus emt when SCFLOW_DATA_DIR holds it)")
    b.add_argument("--methods", default="otcfm,sbcfm,icfm,static_ot")
    b.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    b.add_argument("--n-dims", type=int, default=None)
    b.add_argument("--time-scale", choices=("index", "real"), default="index")
    b.add_argument("--out", default="results", help="folder for the table, JSON and figure")
    _train_args(b)
    f = sub.add_parser("fit", help="fit a flow on an .h5ad file; write it with the model in uns")
    f.add_argument("file", help="input .h5ad")
    f.add_argument("--time-key", default="day")
    f.add_argument("--use-rep", default="X_pca")
    f.add_argument("--n-dims", type=int, default=None)
    f.add_argument("--method", choices=("otcfm", "sbcfm", "icfm"), default="otcfm")
    f.add_argument("--time-scale", choices=("index", "real"), default="index")
    f.add_argument("--key-added", default="scflow")
    f.add_argument("--random-state", type=int, default=0)
    f.add_argument("--out", required=True, help="output .h5ad (written atomically)")
    f.add_argument("--checkpoint", default=None,
                   help="training state file; resumes from it when it exists")
    f.add_argument("--checkpoint-every", type=int, default=500)
    _train_args(f)
    return p


def _load(name: str):
    from . import datasets

    if name == "simulate":
        return datasets.simulate()
    if name in REAL_DATASETS:
        return getattr(datasets, name)()
    raise SystemExit(f"scflow: unknown --dataset {name!r}; expected simulate or one of "
                     f"{', '.join(REAL_DATASETS)}")


def _default_datasets() -> list[str]:
    names = ["simulate"]
    root = os.environ.get("SCFLOW_DATA_DIR")
    if root and (Path(root) / "emt_cook2020_deepruot_10d").is_dir():
        names.append("emt")
    return names


def _markdown(summary: pd.DataFrame) -> str:
    lines = ["| method | held-out | W1 | W2 | MMD | floor (W1) | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        def ms(m, s):  # one seed: no spread to show
            return f"{m:.3f}" if pd.isna(s) else f"{m:.3f} ± {s:.3f}"
        held = f"{r.holdout:.4g}" if isinstance(r.holdout, float) else r.holdout
        lines.append(f"| {r.method} | {held} | {ms(r.w1_mean, r.w1_std)} | "
                     f"{ms(r.w2_mean, r.w2_std)} | {ms(r.mmd_mean, r.mmd_std)} | "
                     f"{r.floor_mean:.3f} | {r.seconds_mean:.1f} |")
    return "\n".join(lines)


def _section(c: dict, table: str) -> str:
    """A Markdown section for BENCHMARKS.md: what was run, how, and the table."""
    return (f"## Leave one timepoint out: {c['dataset']} ({c['use_rep']}, "
            f"{c['n_dims'] or 'all'} dims, whitened, {c['time_scale']} time, seeds "
            f"{c['seeds']}, {c['n_steps']} steps)\n\n`{c['command']}`\n\n{table}\n")


def _benchmark(args: argparse.Namespace) -> int:
    from . import pl, tl
    from .benchmark import summarize

    names = _default_datasets() if args.dataset == "default" else args.dataset.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    train = dict(n_steps=args.n_steps, batch_size=args.batch_size, lr=args.lr,
                 sigma=args.sigma, hidden=tuple(args.hidden), coupling=args.coupling,
                 lr_schedule=args.lr_schedule, ema=args.ema or None)
    for name in names:
        adata = _load(name)
        info = dict(adata.uns.get("scflow_dataset", {}))
        n_dims = args.n_dims or DATASET_DEFAULTS.get(name, {}).get("n_dims")
        use_rep = str(info.get("use_rep", "X_pca"))
        df = tl.leave_one_out(adata, "day", use_rep=use_rep, methods=methods,
                              seeds=args.seeds, n_dims=n_dims, time_scale=args.time_scale,
                              device=args.device, **train)
        summary = summarize(df)
        table = _markdown(summary)
        print(f"\n## {name} ({use_rep}, {n_dims or 'all'} dims, whitened, "
              f"{args.time_scale} time)\n\n{table}\n", flush=True)
        config = {"dataset": name, "use_rep": use_rep, "n_dims": n_dims, "methods": methods,
                  "seeds": args.seeds, "time_scale": args.time_scale, **train,
                  "command": " ".join(["scflow", *sys.argv[1:]])}
        (out / f"benchmark_{name}.json").write_text(json.dumps(
            {"config": config, "rows": df.to_dict(orient="records"),
             "summary": summary.to_dict(orient="records")}, indent=1, default=str))
        (out / f"benchmark_{name}.md").write_text(_section(config, table))
        pl.leave_one_out(df, title=f"{name}: leave one timepoint out", show=False,
                         save=str(out / f"benchmark_{name}.png"))
        print(f"wrote {out}/benchmark_{name}.{{json,md,png}}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    import anndata as ad

    from . import tl

    src, out = Path(args.file), Path(args.out)
    if not src.is_file():
        raise SystemExit(f"scflow fit: input file {str(src)!r} does not exist")
    if not out.parent.is_dir():
        raise SystemExit(f"scflow fit: output folder {str(out.parent)!r} does not exist")
    adata = ad.read_h5ad(src)
    tl.fit(adata, args.time_key, use_rep=args.use_rep, n_dims=args.n_dims, method=args.method,
           time_scale=args.time_scale, key_added=args.key_added, device=args.device,
           random_state=args.random_state, n_steps=args.n_steps, batch_size=args.batch_size,
           lr=args.lr, sigma=args.sigma, hidden=tuple(args.hidden), coupling=args.coupling,
           lr_schedule=args.lr_schedule, ema=args.ema or None, checkpoint=args.checkpoint,
           checkpoint_every=args.checkpoint_every)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.h5ad")
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    print(f"wrote {out} (model in uns[{args.key_added!r}])")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "benchmark":
        return _benchmark(args)
    if args.command == "fit":
        return _fit(args)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
