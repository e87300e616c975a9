"""Command line: ``scflow benchmark`` and ``scflow fit`` (also ``python -m scflow``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

__all__ = ["main"]

#: protocol settings per data set where they differ from the defaults
DATASET_DEFAULTS = {"simulate": {"n_dims": 5}}
REAL_DATASETS = ("emt", "emt_umap", "weinreb", "bargaje")
#: the published benchmark files: loaded from the path given with --path
PUBLISHED_DATASETS = ("eb", "cite", "multi")
PROTOCOLS = ("leave_one_out", "rollout", "rollout_holdout")
DEBUG_HELP = ("show the full traceback of an error (also with SCFLOW_DEBUG=1); by default a "
              "bad input is reported in one line")


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def _train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (same names as scflow.tl.fit)")
    g.add_argument("--n-steps", type=int, default=3000)
    g.add_argument("--batch-size", type=int, default=256, help="pairs per interval per step")
    g.add_argument("--lr", type=float, default=1e-3)
    g.add_argument("--sigma", type=float, default=None, help="default per method")
    g.add_argument("--hidden", type=_ints, default=[64, 64, 64], help="e.g. 64,64,64")
    g.add_argument("--coupling", choices=("global", "minibatch", "auto"), default="auto",
                   help="auto: global plans up to 25M cell pairs per interval, minibatch "
                        "OT above")
    g.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    g.add_argument("--ema", type=float, default=0.999, help="weight-average decay; 0: none")
    g.add_argument("--device", default="auto")
    g.add_argument("--spline", choices=("natural", "pchip"), default="natural",
                   help="mmfm / static_spline: spline through the chained cells; "
                        "static_mean_spline: through the timepoints' means")
    g.add_argument("--window", type=int, default=None,
                   help="mmfm / static_spline / static_mean_spline: knots on each side of a "
                        "segment (default all)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scflow", description=__doc__)
    p.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("benchmark", help="leave-one-timepoint-out table (TorchCFM protocol)")
    b.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    b.add_argument("--dataset", default="default",
                   help="simulate, emt, emt_umap, weinreb, bargaje, larry (the fate "
                        "benchmark against lineage tracing), or 'default' (simulate, plus emt "
                        "when SCFLOW_DATA_DIR holds it)")
    b.add_argument("--protocol", choices=PROTOCOLS, default="leave_one_out",
                   help="leave_one_out (TorchCFM's table); rollout: train on all, push the "
                        "first timepoint through every later one (raw units); "
                        "rollout_holdout: its hold-one-out variant")
    b.add_argument("--methods", default=None,
                   help="default: otcfm,sbcfm,icfm,mmfm,static_ot,static_spline,"
                        "static_partial,static_mean_spline (rollout: otcfm,mmfm; "
                        "rollout_holdout: otcfm,mmfm,static_spline); the roll-out tables "
                        "always carry static_chain, the no-network reference")
    b.add_argument("--n-boot", type=int, default=0,
                   help="bootstrap replicates of every W1 over cells: the tables show "
                        "W1 [95%% interval] (default 0: no interval)")
    b.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    b.add_argument("--n-dims", type=int, default=None)
    b.add_argument("--whiten", choices=("auto", "yes", "no"), default="auto",
                   help="auto: as published (leave_one_out: whitened, except eb/cite/multi "
                        "above 5 dims; rollout: raw units)")
    b.add_argument("--path", default=None,
                   help="your copy of the eb / cite / multi file (checked by sha256)")
    b.add_argument("--sha256", default=None,
                   help="expected sha256 of --path (default: the published file's)")
    b.add_argument("--time-scale", choices=("index", "real"), default="index")
    b.add_argument("--mass", type=_floats, default=None,
                   help="static_partial: relative population size at each timepoint, e.g. "
                        "1,2.6,4 (default: the numbers of cells)")
    b.add_argument("--out", default="results", help="folder for the table, JSON and figure")
    b.add_argument("--append", action="store_true",
                   help="add these methods to the table already in --out (its rows of other "
                        "methods are kept, rows of these methods replaced)")
    _train_args(b)
    f = sub.add_parser("fit", help="fit a flow on an .h5ad file; write it with the model in uns")
    f.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    f.add_argument("file", help="input .h5ad")
    f.add_argument("--time-key", default="day")
    f.add_argument("--use-rep", default="X_pca")
    f.add_argument("--n-dims", type=int, default=None)
    f.add_argument("--method", choices=("otcfm", "sbcfm", "icfm", "mmfm", "auto"),
                   default="otcfm", help="auto: chosen among --candidates by leave-one-out "
                   "on the kept timepoints (scores stored in uns[key]['selection'])")
    f.add_argument("--candidates", default=None,
                   help="--method auto: comma-separated methods (default otcfm, mmfm, mmfm "
                        "with window 1, sbcfm)")
    f.add_argument("--time-scale", choices=("index", "real"), default="index")
    f.add_argument("--key-added", default="scflow")
    f.add_argument("--random-state", type=int, default=0)
    f.add_argument("--out", required=True, help="output .h5ad (written atomically)")
    f.add_argument("--checkpoint", default=None,
                   help="training state file; resumes from it when it exists")
    f.add_argument("--checkpoint-every", type=int, default=500)
    _train_args(f)
    return p


def _load(name: str, path: str | None = None, sha256: str | None = None):
    from . import datasets

    if name == "simulate":
        return datasets.simulate()
    if name in REAL_DATASETS:
        return getattr(datasets, name)()
    if name in PUBLISHED_DATASETS:
        if path is None:
            raise ValueError(f"--dataset {name} needs --path, your copy of its file")
        return getattr(datasets, name)(path, sha256=sha256)
    raise ValueError(f"unknown --dataset {name!r}; expected simulate, larry or one of "
                     f"{', '.join(REAL_DATASETS + PUBLISHED_DATASETS)}")


def _whiten(args: argparse.Namespace, name: str, n_dims: int | None) -> bool:
    if args.whiten != "auto":
        return args.whiten == "yes"
    if args.protocol != "leave_one_out":
        return False  # the roll-out papers report raw units
    return not (name in PUBLISHED_DATASETS and (n_dims is None or n_dims > 5))


def _default_datasets(protocol: str = "leave_one_out") -> list[str]:
    root = os.environ.get("SCFLOW_DATA_DIR")
    if protocol != "leave_one_out":  # the two files the roll-out papers report on
        return ["emt", "weinreb"]
    names = ["simulate"]
    if root and (Path(root) / "emt_cook2020_deepruot_10d").is_dir():
        names.append("emt")
    return names


def _interval(lo: float, hi: float, digits: int = 3) -> str:
    """`` [lo, hi]``: the bootstrap interval over cells (averaged over seeds), or nothing."""
    return "" if pd.isna(lo) or pd.isna(hi) else f" [{lo:.{digits}f}, {hi:.{digits}f}]"


def _markdown(summary: pd.DataFrame) -> str:
    lines = ["| method | held-out | W1 [95% interval over cells] | W2 | MMD | floor (W1) | "
             "seconds |", "|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        def ms(m, s):  # one seed: no spread to show
            return f"{m:.3f}" if pd.isna(s) else f"{m:.3f} ± {s:.3f}"
        held = f"{r.holdout:.4g}" if isinstance(r.holdout, float) else r.holdout
        ci = _interval(getattr(r, "w1_lo_mean", float("nan")),
                       getattr(r, "w1_hi_mean", float("nan")))
        lines.append(f"| {r.method} | {held} | {ms(r.w1_mean, r.w1_std)}{ci} | "
                     f"{ms(r.w2_mean, r.w2_std)} | {ms(r.mmd_mean, r.mmd_std)} | "
                     f"{r.floor_mean:.3f} | {r.seconds_mean:.1f} |")
    return "\n".join(lines)


def _section(c: dict, table: str) -> str:
    """A Markdown section for BENCHMARKS.md: what was run, how, and the table."""
    commands = " and then ".join(f"`{cmd}`" for cmd in _commands(c))
    return f"{_title(c)}\n\n{commands}\n\n{table}\n"


DEFAULT_METHODS = {"leave_one_out": ("otcfm,sbcfm,icfm,mmfm,static_ot,static_spline,"
                                     "static_partial,static_mean_spline"),
                   "rollout": "otcfm,mmfm,static_chain",
                   "rollout_holdout": "otcfm,mmfm,static_spline,static_chain"}


def _benchmark(args: argparse.Namespace) -> int:
    from .benchmark import summarize

    names = (_default_datasets(args.protocol) if args.dataset == "default"
             else args.dataset.split(","))
    methods = [m.strip() for m in (args.methods or DEFAULT_METHODS[args.protocol]).split(",")
               if m.strip()]
    if not methods:
        raise ValueError(f"--methods must name at least one method, got {args.methods!r}")
    if args.protocol != "leave_one_out" and "static_chain" not in methods:
        methods.append("static_chain")  # every roll-out table carries the reference
    if args.n_boot and args.n_boot < 10:
        raise ValueError(f"--n-boot must be 0 (no interval) or at least 10, got {args.n_boot}")
    if not args.seeds:
        raise ValueError("--seeds must list at least one seed (e.g. --seeds 0,1,2), got none")
    out = _out_folder(args.out)
    if "larry" in names:
        _larry(args, methods if args.methods else None, out)
        names = [n for n in names if n != "larry"]
    train = dict(n_steps=args.n_steps, batch_size=args.batch_size, lr=args.lr,
                 sigma=args.sigma, hidden=tuple(args.hidden), coupling=args.coupling,
                 lr_schedule=args.lr_schedule, ema=args.ema or None, spline=args.spline,
                 window=args.window)
    for name in names:
        adata = _load(name, args.path, args.sha256)
        info = dict(adata.uns.get("scflow_dataset", {}))
        n_dims = args.n_dims or DATASET_DEFAULTS.get(name, {}).get("n_dims")
        use_rep = str(info.get("use_rep", "X_pca"))
        whiten = _whiten(args, name, n_dims)
        config = {"dataset": name, "protocol": args.protocol, "use_rep": use_rep,
                  "n_dims": n_dims, "whiten": whiten, "methods": methods,
                  "seeds": args.seeds, "time_scale": args.time_scale, **train,
                  "command": " ".join(["scflow", *args.argv])}
        prefix = "benchmark" if args.protocol == "leave_one_out" else args.protocol
        stem = f"{prefix}_{name}" + (f"_{args.n_dims}d" if args.n_dims else "")
        previous = _previous(out / f"{stem}.json", config) if args.append else None
        if args.protocol == "leave_one_out":
            df = _leave_one_out(adata, use_rep, methods, args, n_dims, whiten, train)
        else:
            df = _rollout(adata, use_rep, methods, args, n_dims, whiten, train)
        if previous is not None:  # keep the other methods' rows, in their order
            old_config, old = previous
            old = old[~old["method"].isin(methods)]
            df = pd.concat([old, df], ignore_index=True)
            config["methods"] = list(dict.fromkeys([*old["method"], *methods]))
            config["command"] = [*_commands(old_config), config["command"]]
        if args.protocol == "leave_one_out":
            from . import pl

            pl.leave_one_out(df, title=f"{name}: leave one timepoint out", show=False,
                             save=str(out / f"{stem}.png"))
            summary = summarize(df)
            table = _markdown(summary) + _published_loo(name, summary)
        else:
            table = _rollout_markdown(df, name)
            summary = summarize(df, by=("method", "protocol", "time_index"))
        print(f"\n{_title(config)}\n\n{table}\n", flush=True)
        (out / f"{stem}.json").write_text(json.dumps(
            {"config": config, "rows": df.to_dict(orient="records"),
             "summary": summary.to_dict(orient="records")}, indent=1, default=str))
        (out / f"{stem}.md").write_text(_section(config, table))
        print(f"wrote {out}/{stem}.{{json,md{',png' if args.protocol == 'leave_one_out' else ''}}}")
    return 0


def _larry(args: argparse.Namespace, methods: list[str] | None, out: Path) -> None:
    """``--dataset larry``: fate bias of day-2 cells against the clonal truth."""
    from .fate_benchmark import FATE_METHODS, fate_markdown, larry_fate, summarize_fate

    methods = methods or list(FATE_METHODS)
    unknown = [m for m in methods if m not in FATE_METHODS]
    if unknown:
        raise ValueError(f"--methods for --dataset larry must be among {list(FATE_METHODS)}, "
                         f"got {unknown}")
    df = larry_fate(methods, args.seeds, n_steps=args.n_steps, device=args.device)
    config = {"dataset": "larry", "protocol": "fate", "methods": methods, "seeds": args.seeds,
              "n_steps": args.n_steps, "command": " ".join(["scflow", *args.argv])}
    title = (f"## Fate against lineage tracing: LARRY (day-2 neutrophil bias, Pearson r, seeds "
             f"{args.seeds}, {args.n_steps} steps)")
    table = fate_markdown(df)
    print(f"\n{title}\n\n{table}\n", flush=True)
    (out / "larry_fate.json").write_text(json.dumps(
        {"config": config, "rows": df.to_dict(orient="records"),
         "summary": summarize_fate(df).to_dict(orient="records")}, indent=1, default=str))
    (out / "larry_fate.md").write_text(f"{title}\n\n`{config['command']}`\n\n{table}\n")
    print(f"wrote {out}/larry_fate.{{json,md}}")


def _commands(config: dict) -> list[str]:
    c = config["command"]
    return list(c) if isinstance(c, list) else [c]


def _previous(path: Path, config: dict) -> tuple[dict, pd.DataFrame] | None:
    """The table already at ``path`` for ``--append``; it must come from the same set-up."""
    if not path.exists():
        return None
    old = json.loads(path.read_text())
    fixed = ("dataset", "protocol", "use_rep", "n_dims", "whiten", "seeds", "time_scale")
    differ = {k: old["config"].get(k) for k in fixed if old["config"].get(k) != config[k]}
    if differ:
        raise ValueError(f"--append: {path} was made with other settings "
                         f"({', '.join(f'{k}={v!r}' for k, v in differ.items())}); run "
                         "without --append, or with the same settings")
    return old["config"], pd.DataFrame(old["rows"])


def _leave_one_out(adata, use_rep, methods, args, n_dims, whiten, train):
    from . import tl

    return tl.leave_one_out(adata, "day", use_rep=use_rep, methods=methods, seeds=args.seeds,
                            n_dims=n_dims, whiten=whiten, time_scale=args.time_scale,
                            device=args.device, mass=args.mass, n_boot=args.n_boot,
                            **train)


def _rollout(adata, use_rep, methods, args, n_dims, whiten, train):
    from .rollout import rollout_tc
    from .tl._anndata import time_course

    tc = time_course(adata, "day", use_rep, n_dims=n_dims, whiten=whiten,
                     time_scale=args.time_scale)
    holdouts = (None if args.protocol == "rollout" else list(range(1, tc.n_timepoints)))
    return rollout_tc(tc, methods, args.seeds, holdouts=holdouts, device=args.device,
                      mass=args.mass, n_boot=args.n_boot, **train)


def _ms(values: pd.Series, lo: pd.Series | None = None, hi: pd.Series | None = None) -> str:
    m, s = values.mean(), values.std()
    out = f"{m:.4f}" if pd.isna(s) else f"{m:.4f} ± {s:.4f}"
    return out if lo is None else out + _interval(lo.mean(), hi.mean(), 4)


def _rollout_markdown(df: pd.DataFrame, name: str) -> str:
    """W1 (and W2) per method and timepoint; the published rows and the floor beside."""
    from .published import ROLLOUT, ROLLOUT_HOLDOUT

    ks = sorted(df["time_index"].unique())
    labels = {int(r.time_index): (f"{r.timepoint:.4g}" if isinstance(r.timepoint, float)
                                  else r.timepoint) for r in df.itertuples()}
    head = "| method | " + " | ".join(f"W1 t{k} ({labels[k]})" for k in ks) + " | " + \
        " | ".join(f"W2 t{k}" for k in ks) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(ks))]
    for method, g in df.groupby("method", sort=False):
        w1 = [_ms(*(g.loc[g.time_index == k, c] for c in ("w1", "w1_lo", "w1_hi")))
              if (g.time_index == k).any() else "–" for k in ks]
        w2 = [_ms(g.loc[g.time_index == k, "w2"]) if (g.time_index == k).any() else "–"
              for k in ks]
        label = ("no network: chained OT plans from t0" if method == "static_chain"
                 else f"scflow {method}")
        lines.append(f"| {label} | " + " | ".join(w1 + w2) + " |")
    published = (ROLLOUT if (df["protocol"] == "all").all() else ROLLOUT_HOLDOUT).get(name, {})
    for method, vals in published.items():
        cells = [f"{vals[k - 1]:.4f}" if k - 1 < len(vals) else "–" for k in ks]
        lines.append(f"| published {method} | " + " | ".join(cells + ["–"] * len(ks)) + " |")
    floor = [f"{df.loc[df.time_index == k, 'floor'].iloc[0]:.4f}" for k in ks]
    lines.append("| sampling floor | " + " | ".join(floor + ["–"] * len(ks)) + " |")
    return "\n".join(lines)


def _published_loo(name: str, summary: pd.DataFrame) -> str:
    """The published mean held-out W1 beside ours (EB / Cite / Multi)."""
    from .published import LEAVE_ONE_OUT

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


def _title(c: dict) -> str:
    what = {"leave_one_out": "Leave one timepoint out",
            "rollout": "Roll-out from t0, trained on all timepoints (scores fit to the "
                       "training cells, not prediction)",
            "rollout_holdout": "Roll-out from t0, hold one out (prediction)"}[c["protocol"]]
    return (f"## {what}: {c['dataset']} ({c['use_rep']}, {c['n_dims'] or 'all'} dims, "
            f"{'whitened' if c['whiten'] else 'raw units'}, {c['time_scale']} time, seeds "
            f"{c['seeds']}, {c['n_steps']} steps)")


def _fit(args: argparse.Namespace) -> int:
    """``scflow fit``; under ``torchrun`` every process trains, rank 0 alone writes."""
    from . import distributed

    own = distributed.init(device=args.device) if distributed.launched() else False
    try:
        return _fit_one(args, write=distributed.is_main())
    finally:
        if own:
            distributed.destroy()


def _fit_one(args: argparse.Namespace, *, write: bool) -> int:
    import anndata as ad

    from . import tl

    src, out = Path(args.file), _out_file(args.out)
    if not src.is_file():
        raise FileNotFoundError(f"input file {str(src)!r} does not exist")
    # backed: only obs, obsm and the columns of use_rep that are used are read into memory
    adata = ad.read_h5ad(src, backed="r")
    try:
        tl.fit(adata, args.time_key, use_rep=args.use_rep, n_dims=args.n_dims,
               method=args.method, time_scale=args.time_scale, key_added=args.key_added,
               device=args.device, random_state=args.random_state, n_steps=args.n_steps,
               batch_size=args.batch_size, lr=args.lr, sigma=args.sigma,
               hidden=tuple(args.hidden), coupling=args.coupling,
               lr_schedule=args.lr_schedule, ema=args.ema or None,
               checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
               spline=args.spline, window=args.window,
               candidates=None if args.candidates is None else args.candidates.split(","))
        record = adata.uns[args.key_added]
    finally:
        adata.file.close()
    if not write:  # data parallel: another process (rank 0) writes the file
        return 0
    _write_with_uns(src, out, args.key_added, record)
    print(f"wrote {out} (model in uns[{args.key_added!r}])")
    return 0


def _out_file(value: str) -> Path:
    """``--out`` of ``scflow fit``, checked before any work: a file path in a writable folder."""
    out = Path(value)
    if out.is_dir():
        raise ValueError(f"--out {value!r} is a directory; expected the path of the output "
                         ".h5ad file")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"--out {value!r}: its folder {str(folder)!r} does not exist; create "
                         "it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--out {value!r}: its folder {str(folder)!r} is not writable")
    return out


def _out_folder(value: str) -> Path:
    """``--out`` of ``scflow benchmark``, created (with its parents) and checked writable."""
    out = Path(value)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {value!r} is a file; expected a folder (created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {value!r}: the folder cannot be created "
                         f"({err.strerror or err})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {value!r}: the folder is not writable")
    return out


def _write_with_uns(src: Path, out: Path, key: str, record: dict) -> None:
    """``out``: a copy of ``src`` with ``uns[key] = record``, streamed, written atomically.

    The input is copied byte for byte (``X`` and layers never pass through memory) and the
    record is written into the copy's ``uns`` with anndata's element writer.
    """
    import shutil

    import h5py
    from anndata.io import write_elem

    from ._io import atomic_path

    with atomic_path(out, suffix=".tmp.h5ad") as tmp:
        shutil.copyfile(src, tmp)
        with h5py.File(tmp, "a") as f:
            uns = f.require_group("uns")
            if key in uns:
                del uns[key]
            write_elem(uns, key, record)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that report bad input (reported in one line), not a bug in scflow."""
    from ._errors import TrainingDivergedError
    from .couplings import ConvergenceError

    return (ValueError, KeyError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, ConvergenceError, TrainingDivergedError)


def _one_line(err: BaseException) -> str:
    msg = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else err
    return " ".join(line.strip() for line in str(msg).splitlines() if line.strip()) or \
        type(err).__name__


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn ``SIGTERM`` into ``SystemExit(143)`` so that clean-ups (``finally``, the removal
    of temporary files) run; ``SIGKILL`` cannot be caught. Main thread only."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad input (``ValueError``, ``KeyError``, a missing file, a non-converging OT plan) is
    reported as one line on stderr, ``scflow: error: <message>``, with status 2 (as
    ``argparse`` does); ``--debug`` or ``SCFLOW_DEBUG=1`` shows the traceback instead. Any
    other exception is a bug and propagates with its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    args.argv = [a for a in argv if a != "--debug"]  # the command, as recorded by each table
    debug = args.debug or os.environ.get("SCFLOW_DEBUG", "").strip() not in ("", "0")
    try:
        with _sigterm_as_exit():
            if args.command == "benchmark":
                return _benchmark(args)
            if args.command == "fit":
                return _fit(args)
            raise AssertionError(args.command)  # pragma: no cover
    except _user_errors() as err:
        if debug:
            traceback.print_exc()
        print(f"scflow: error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
