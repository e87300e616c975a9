"""Command line: ``scflow benchmark`` and ``scflow fit`` (also ``python -m scflow``)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import methods
from .methods import PROTOCOLS
from .training.config import TrainConfig

__all__ = ["main"]

#: protocol settings per data set where they differ from the defaults
DATASET_DEFAULTS = {"simulate": {"n_dims": 5}}
REAL_DATASETS = ("emt", "emt_umap", "weinreb", "bargaje")
#: the published benchmark files: loaded from the path given with --path
PUBLISHED_DATASETS = ("eb", "cite", "multi")
DEBUG_HELP = ("show the full traceback of an error (also with SCFLOW_DEBUG=1); by default a "
              "bad input is reported in one line")


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _floats(s: str) -> list[float]:
    return [float(v) for v in s.split(",") if v.strip()]


def _mass(s: str):
    """``--mass`` of ``fit``: ``counts``, ``none`` or one number per timepoint."""
    return s if s in ("counts", "none") else _floats(s)


def _train_args(p: argparse.ArgumentParser) -> None:
    from .training.config import TrainConfig

    g = p.add_argument_group("training (same names as scflow.tl.fit)")
    TrainConfig.add_arguments(g)
    g.add_argument("--device", default="auto")


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
                   help="default: " + "; ".join(f"{p}: {','.join(methods.default_methods(p))}"
                                                for p in PROTOCOLS)
                   + " (the roll-out tables always carry static_chain, the no-network "
                     "reference)")
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
                   help="methods that take population sizes (static_partial, static_mix, "
                        "uotcfm): relative population size at each timepoint, e.g. 1,2.6,4 "
                        "(default: the numbers of cells)")
    b.add_argument("--quick", action="store_true",
                   help="a first look in a minute or two (what `make demo` runs): "
                        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                        + " unless given; tables written as <stem>_quick. Without --quick: "
                        "the full tables")
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
    f.add_argument("--method", choices=(*methods.names("neural"), "auto"),
                   default=methods.default_fit_method(),
                   help="auto: chosen among --candidates by leave-one-out on the kept "
                        "timepoints (scores stored in uns[key]['selection'])")
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
    f.add_argument("--mass", type=_mass, default="counts",
                   help="uotcfm: population sizes, 'counts' (the numbers of cells), 'none' "
                        "(equal) or one number per timepoint, e.g. 1,2.6,4")
    f.add_argument("--growth-prior", default=None, metavar="OBS_KEY",
                   help="uotcfm: an obs column of prior growth rates (e.g. written by "
                        "scflow.tl.growth_prior), per unit of the time key")
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


DEFAULT_METHODS = {p: ",".join(methods.default_methods(p)) for p in PROTOCOLS}
#: what ``scflow benchmark --quick`` sets where the command does not: one seed, a short
#: training, the neural default beside the no-network reference
QUICK = {"seeds": "0", "n_steps": "500",
         "methods": f"{methods.default_fit_method()},{methods.reference('leave_one_out')}"}


def _apply_quick(args: argparse.Namespace) -> str:
    """``--quick``: set :data:`QUICK`'s options the command did not give; the stem suffix."""
    if not args.quick:
        return ""
    given = {a.split("=")[0] for a in args.argv if a.startswith("--")}
    if "--seeds" not in given:
        args.seeds = _ints(QUICK["seeds"])
    if "--n-steps" not in given:
        args.n_steps = int(QUICK["n_steps"])
    if "--methods" not in given and "larry" not in args.dataset.split(","):
        args.methods = QUICK["methods"]
    return "_quick"


def _benchmark(args: argparse.Namespace) -> int:
    from .benchmark.report import run_benchmark

    suffix = _apply_quick(args)
    names = (_default_datasets(args.protocol) if args.dataset == "default"
             else args.dataset.split(","))
    methods = [m.strip() for m in (args.methods or DEFAULT_METHODS[args.protocol]).split(",")
               if m.strip()]
    if not methods:
        raise ValueError(f"--methods must name at least one method, got {args.methods!r}")
    from .protocols import CHAIN_REFERENCE

    if args.protocol != "leave_one_out" and CHAIN_REFERENCE not in methods:
        methods.append(CHAIN_REFERENCE)  # every roll-out table carries the reference
    if args.n_boot and args.n_boot < 10:
        raise ValueError(f"--n-boot must be 0 (no interval) or at least 10, got {args.n_boot}")
    if not args.seeds:
        raise ValueError("--seeds must list at least one seed (e.g. --seeds 0,1,2), got none")
    if "larry" in names:
        _check_larry_args(args)
    out = _out_folder(args.out)
    if "larry" in names:
        _larry(args, methods if args.methods else None, out)
        names = [n for n in names if n != "larry"]
    config = TrainConfig.from_args(args)
    for name in names:
        adata = _load(name, args.path, args.sha256)
        info = dict(adata.uns.get("scflow_dataset", {}))
        n_dims = args.n_dims or DATASET_DEFAULTS.get(name, {}).get("n_dims")
        prefix = "benchmark" if args.protocol == "leave_one_out" else args.protocol
        run_benchmark(adata, name, protocol=args.protocol, methods=methods, seeds=args.seeds,
                      use_rep=str(info.get("use_rep", "X_pca")), n_dims=n_dims,
                      whiten=_whiten(args, name, n_dims), time_scale=args.time_scale,
                      config=config, device=args.device, mass=args.mass, out=out,
                      stem=f"{prefix}_{name}" + (f"_{args.n_dims}d" if args.n_dims else "")
                      + suffix,
                      append=args.append, command=" ".join(["scflow", *args.argv]),
                      n_boot=args.n_boot)
    if suffix:
        print("quick tables (one seed, a short training): the full tables, every default "
              "method over 3 seeds of 3000 steps, are `scflow benchmark` without --quick "
              "(`make demo FULL=1`)", flush=True)
    return 0


#: ``benchmark`` flags the LARRY fate benchmark has no use for, and their defaults
_NOT_LARRY = {"protocol": "leave_one_out", "n_dims": None, "whiten": "auto", "path": None,
              "sha256": None, "time_scale": "index", "mass": None, "append": False}


def _check_larry_args(args: argparse.Namespace) -> None:
    """``--dataset larry`` runs the fate benchmark: flags it does not use are refused (never
    recorded as if they had been used)."""
    given = [f"--{k.replace('_', '-')}" for k, default in _NOT_LARRY.items()
             if getattr(args, k) != default]
    if given:
        raise ValueError(f"--dataset larry runs the fate benchmark (fits on X_emb with "
                         f"tl.fit's data options, fates against lineage tracing), which does "
                         f"not use {', '.join(given)}; drop them, or run the other data sets "
                         "in a separate call")


def _larry(args: argparse.Namespace, methods: list[str] | None, out: Path) -> None:
    """``--dataset larry``: fate bias of day-2 cells against the clonal truth."""
    from .benchmark.fate_table import write_fate
    from .benchmark.larry import DEFAULT_FATE_ROWS, FATE_METHODS, larry_fate

    methods = methods or list(DEFAULT_FATE_ROWS)
    unknown = [m for m in methods if m not in FATE_METHODS]
    if unknown:
        raise ValueError(f"--methods for --dataset larry must be among {list(FATE_METHODS)}, "
                         f"got {unknown}")
    train = TrainConfig.from_args(args)
    extra = {"n_boot": args.n_boot} if args.n_boot else {}
    df, bundle = larry_fate(methods, args.seeds, n_steps=args.n_steps, device=args.device,
                            config=train, return_predictions=True, **extra)
    changed = {k: list(v) if isinstance(v, tuple) else v
               for k, v in train.changed().items() if k != "n_steps"}
    config = {"dataset": "larry", "protocol": "fate", "methods": methods, "seeds": args.seeds,
              "n_steps": args.n_steps, "training": changed,
              "command": " ".join(["scflow", *args.argv])}
    shown = "".join(f", {k}={v}" for k, v in changed.items())
    title = (f"## Fate against lineage tracing: LARRY (day-2 neutrophil bias, Pearson r, seeds "
             f"{args.seeds}, {args.n_steps} steps{shown})")
    table = write_fate(out, df, bundle, config, title, **extra)
    print(f"\n{title}\n\n{table}\n", flush=True)
    print(f"wrote {out}/larry_fate.{{json,md}} and larry_fate_predictions.npz")


def _fit(args: argparse.Namespace) -> int:
    """``scflow fit``; under ``torchrun`` every process trains, rank 0 alone writes."""
    from .training import distributed

    own = distributed.init(device=args.device) if distributed.launched() else False
    ok = False
    try:
        code = _fit_one(args, write=distributed.is_main())
        ok = True
        return code
    finally:
        if own:  # no barrier after an error: a rank that failed never reaches it
            distributed.destroy(barrier=ok)


def _fit_one(args: argparse.Namespace, *, write: bool) -> int:
    from . import tl

    src, out = Path(args.file), _out_file(args.out)
    if not src.is_file():
        raise FileNotFoundError(f"input file {str(src)!r} does not exist")
    # backed: only obs, obsm and the columns of use_rep that are used are read into memory
    adata = _read_input(src)
    try:
        tl.fit(adata, args.time_key, use_rep=args.use_rep, n_dims=args.n_dims,
               method=args.method, time_scale=args.time_scale, key_added=args.key_added,
               device=args.device, random_state=args.random_state,
               checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
               mass=None if args.mass == "none" else args.mass,
               growth_prior=args.growth_prior, config=TrainConfig.from_args(args),
               candidates=None if args.candidates is None else args.candidates.split(","))
        record = adata.uns[args.key_added]
    finally:
        adata.file.close()
    if not write:  # data parallel: another process (rank 0) writes the file
        return 0
    _write_with_uns(src, out, args.key_added, record)
    print(f"wrote {out} (model in uns[{args.key_added!r}])")
    return 0


def _read_input(src: Path):
    """The input ``.h5ad``, backed; a ``ValueError`` naming the file when it is not one (not
    HDF5, truncated, or without the groups of an AnnData)."""
    import anndata as ad

    try:
        return ad.read_h5ad(src, backed="r")
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"input file {str(src)!r} cannot be read as an .h5ad (AnnData) file: "
                         f"{_one_line(err)}; is it truncated, or another format?") from None


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
            from .training.loop import resolve_device

            resolve_device(args.device)  # a bad --device is reported before any work
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
