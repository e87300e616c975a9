"""The ``larry`` stage of ``benchmarks/peers.py``: moscot and CellRank fates on LARRY.

The protocol of scflow's LARRY table (:mod:`scflow.benchmark.larry`): day-2 neutrophil bias
``P(Neu) / (P(Neu) + P(Mono))`` of the 20,157 day-2 trajectory cells, Pearson r with the
clonal truth on the 10,087 held-out cells and a 95% bootstrap interval over cells
(:func:`~scflow.benchmark.larry.pearson_ci`), the no-motion null under the same labelling
rule. All 96,373 cells (days 2 / 4 / 6: 20,157 / 38,143 / 38,073), SPRING 2-D (``X_emb``)
as the user has it.

- moscot (``larry-one``, a child process): ``TemporalProblem`` over days 2 / 4 / 6,
  solved at ``--epsilon`` (0.05, the value the issue tried; not chosen on the clonal
  truth); the annotated day-6 neutrophils and monocytes pulled back to day 2 (WOT's
  fates). The two couplings are 20,157 x 38,143 and 38,143 x 38,073 cells: moscot's dense
  cost (``batch_size=None``) holds 3.1 and 5.8 GB of float32 cost alone and failed under
  the 12 GiB cap in the first session, so ``--batch-size`` (default
  :data:`LARRY_BATCH`; moscot's online cost,
  documented on ``TemporalProblem.solve``: "number of rows/columns of the cost matrix to
  materialize during solve/push/pull") recomputes the cost in blocks. The solved problem
  is kept (``moscot.problems.time.TemporalProblem.save``, under ``results/peers/``,
  ignored by git) so that CellRank reads it without solving again.
- CellRank 2 (``larry-cellrank-one``, another child): ``RealTimeKernel.from_moscot`` on the
  saved problem (couplings sparsified by moscot row block by row block,
  ``sparse_mode="min_row"``: :func:`peers_moscot.cellrank_fates`), fate probabilities
  towards the same annotated cells as terminal states.
- ``--subsample N``: day 4 thinned to ``N`` cells (:func:`subsample_middle`, a fixed seed;
  every day-2 cell, the scored ones, and every day-6 cell, the labelled ones, kept), solved
  with the dense cost unless ``--batch-size`` is given (the issue's own moscot run thinned
  days 4 and 6 to 12k each, which here would drop two thirds of the 168 labelled day-6
  cells), for when the full problem does not finish within the budget. Its rows and files
  say so.

Each child has a CPU-seconds budget (``RLIMIT_CPU``, ``--budget``: a loaded shared machine
slows the wall clock, not the CPU count) and a data cap (:data:`LARRY_CAP`); a child that
does not finish gives a row that says what stopped it. Per-cell biases of both peers are
saved (``results/peers/larry_peers_eps<eps>.npz``, the format of scflow's
``larry_fate_predictions.npz``: :mod:`peers_fates`) and, when scflow's per-cell file is
there, paired with every scflow row (the difference of r on shared resamples).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import peers_core as core
import peers_fates
from peers_stages import _child, _cpu_seconds, _peak_mb, _write

FATES = ["Neutrophil", "Monocyte"]
LARRY_CAP = 12 * 2**30  # bytes of data a LARRY child may map (a shared 24 GiB machine)
#: moscot's ``batch_size`` on LARRY (rows of the cost built at once: 4096 x 38k float32 is
#: 0.6 GB a block); the dense cost does not fit (see the module's docstring)
LARRY_BATCH = 4096
SCFLOW_PREDICTIONS = core.RESULTS / "larry_fate_predictions.npz"
#: the seed of :func:`subsample_middle` (``--subsample``)
SUBSAMPLE_SEED = 0


def _paths(epsilon: float, batch_size: int | None,
           subsample: int | None = None) -> tuple[Path, Path, Path]:
    tag = f"eps{epsilon:g}" + (f"_b{batch_size}" if batch_size else "")
    sub = f"_sub{subsample}" if subsample else ""
    return (core.CACHE / f"larry_problem_{tag}{sub}.pkl",
            core.CACHE / f"larry_problem_{tag}{sub}.json",
            core.CACHE / f"larry_peers_eps{epsilon:g}{sub}.npz")


def subsample_middle(days, n: int | None, *, seed: int = SUBSAMPLE_SEED):
    """A boolean mask keeping every cell of the first and the last day and ``n`` cells
    (drawn without replacement, ``np.random.default_rng(seed)``) of each day between them
    that has more; ``n=None`` keeps all.

    The cells scored (day 2) and the annotated cells the labels are pulled from (day 6: 168
    neutrophils and monocytes among 38,073 cells, which thinning would lose) are all kept;
    only day 4, which the pull passes through, is thinned."""
    import numpy as np

    days = np.asarray(days)
    keep = np.ones(days.shape, dtype=bool)
    if n is None:
        return keep
    if int(n) < 1:
        raise ValueError(f"subsample must be a positive number of cells, got {n}")
    rng = np.random.default_rng(seed)
    ends = (days.min(), days.max())
    for day in np.unique(days):
        idx = np.flatnonzero(days == day)
        if day in ends or len(idx) <= n:
            continue
        keep[idx] = False
        keep[np.sort(rng.choice(idx, size=int(n), replace=False))] = True
    return keep


def _larry(subsample: int | None = None):
    import scflow

    adata = scflow.datasets.larry()
    adata.obs["state_info"] = adata.obs["state_info"].astype("category")
    if subsample:
        adata = adata[subsample_middle(adata.obs["day"].to_numpy(), subsample)].copy()
    return adata, scflow.datasets.larry_truth()


def _save(path: Path, truth, preds: dict) -> None:
    peers_fates.save_predictions(path, truth.index, truth["heldout"].to_numpy(),
                                 truth["truth"].to_numpy(), preds)


def larry_one(epsilon: float, batch_size: int | None = None,
              subsample: int | None = None) -> dict:
    """moscot on LARRY (a child of :func:`run_larry`): solve, keep the problem, pull the
    day-6 labels to day 2, save the per-cell bias (``subsample``: cells kept of day 4,
    :func:`subsample_middle`)."""
    import peers_moscot as pm

    from scflow.benchmark.larry import neutrophil_bias

    adata, truth = _larry(subsample)
    problem, facts_path, npz = _paths(epsilon, batch_size, subsample)
    solve = {} if batch_size is None else {"batch_size": int(batch_size)}
    cpu0 = _cpu_seconds()
    tp, facts = pm.temporal_problem(adata, "day", "X_emb", epsilon=epsilon, **solve)
    facts["solve_cpu_seconds"] = _cpu_seconds() - cpu0
    core.CACHE.mkdir(parents=True, exist_ok=True)
    tp.save(problem, overwrite=True)
    facts_path.write_text(json.dumps(facts, default=str) + "\n")
    start, cpu1 = time.perf_counter(), _cpu_seconds()
    probs = pm.pull_fates(tp, "state_info", FATES, 2.0, 6.0)
    facts.update(pull_seconds=time.perf_counter() - start,
                 pull_cpu_seconds=_cpu_seconds() - cpu1)
    name = f"moscot (epsilon {epsilon:g}{_sub_label(subsample)})"
    _save(npz, truth, {name: neutrophil_bias(probs.loc[truth.index])})
    return {"status": "ok", **facts, "peak_mb": _peak_mb(), "cpu_seconds": _cpu_seconds()}


def _sub_label(subsample: int | None) -> str:
    return f", day 4 subsampled to {subsample:,} cells" if subsample else ""


def larry_cellrank_one(epsilon: float, batch_size: int | None = None,
                       subsample: int | None = None) -> dict:
    """CellRank on the problem :func:`larry_one` kept (a child of :func:`run_larry`); adds
    its per-cell bias to the peers' file."""
    import peers_moscot as pm
    from moscot.problems.time import TemporalProblem

    from scflow.benchmark.larry import neutrophil_bias

    problem, _, npz = _paths(epsilon, batch_size, subsample)
    if not problem.is_file():
        raise FileNotFoundError(f"{problem}: run `peers.py larry-one` first")
    pm._quiet()
    _, truth = _larry()
    tp = TemporalProblem.load(problem)
    obs = tp.adata.obs
    late = (obs["day"] == 6) & obs["state_info"].isin(FATES)
    terminal = {f: list(obs.index[late & (obs["state_info"] == f)]) for f in FATES}
    probs, facts = pm.cellrank_fates(tp, terminal)
    saved = peers_fates.load_predictions(npz)["predictions"]
    name = f"cellrank (epsilon {epsilon:g}{_sub_label(subsample)})"
    saved[name] = neutrophil_bias(probs.loc[truth.index])
    _save(npz, truth, saved)
    return {"status": "ok", **facts, "peak_mb": _peak_mb(), "cpu_seconds": _cpu_seconds()}


def run_larry_one(args) -> None:
    print(json.dumps(larry_one(args.epsilon, args.batch_size, args.subsample), default=str))


def run_larry_cellrank_one(args) -> None:
    print(json.dumps(larry_cellrank_one(args.epsilon, args.batch_size, args.subsample),
                     default=str))


def _tries_text(tried: list[dict]) -> str:
    out = []
    for t in tried:
        what = f"{t.get('step', 'moscot solve + pull')} at epsilon {t['epsilon']:g}" + (
            f" (batch_size {t['batch_size']})" if t.get("batch_size") else " (dense cost)") + (
            _sub_label(t.get("subsample")) or ", all cells") + (
            " (an earlier run)" if t.get("earlier") else "")
        done = f"{t['status']}, {t['wall']:.0f} s wall"
        if "solve_cpu_seconds" in t and t["status"] != "ok":
            done += (f" (solve {t['solve_cpu_seconds']:.0f} CPU s, converged "
                     f"{t['all_converged']})")
        if t["status"] == "ok":
            done += f", {t['cpu_seconds']:.0f} CPU s, peak {t['peak_mb'] / 1024:.1f} GB"
            if "solve_cpu_seconds" in t:
                done += (f" (solve {t['solve_cpu_seconds']:.0f} CPU s, converged "
                         f"{t['all_converged']})")
            if "transition_nnz" in t:
                done += f" (transition matrix {t['transition_nnz']:,} non-zeros)"
        out.append(f"{what}: {done}")
    return "; ".join(out)


def run_larry(args) -> None:
    """moscot then CellRank in children, the table with the null, the published rows and
    scflow's rows (paired with them when scflow's per-cell file is there)."""
    import scflow
    from scflow.benchmark.larry import FATE_RULE, LABEL_RULE, _no_motion, pearson_ci

    eps, sub = float(args.epsilon or 0.05), args.subsample
    # all cells: the online cost (the dense one does not fit); subsampled: dense, as the
    # issue's run (unless --batch-size says otherwise)
    batch = args.batch_size if (args.batch_size or sub) else LARRY_BATCH
    setting = {"epsilon": eps, "batch_size": batch, "subsample": sub}
    tried = earlier_tries(setting)
    flags = (["--epsilon", f"{eps}"] + (["--batch-size", str(batch)] if batch else [])
             + (["--subsample", str(sub)] if sub else []))
    res = (reused_solve(eps, batch, sub) if args.reuse_solve else
           _child(["larry-one", *flags], args.budget, LARRY_CAP))
    tried.append({"step": "moscot solve + pull", **setting, **res})
    if res["status"].startswith("ok"):  # "ok (...)": reused
        res = _child(["larry-cellrank-one", *flags], args.budget, LARRY_CAP)
        tried.append({"step": "CellRank on moscot's couplings", **setting, **res})
    truth = scflow.datasets.larry_truth()
    held = truth["heldout"].to_numpy()
    y = truth["truth"].to_numpy()[held]
    npz = _paths(eps, batch, sub)[2]
    rows = []
    peers = peers_fates.load_predictions(npz)["predictions"] if npz.is_file() else {}
    for name, bias in peers.items():
        r, lo, hi = pearson_ci(bias[held], y)
        rows.append({"method": name, "r": r, "lo": lo, "hi": hi, "run": "this run"})
    null, k = _no_motion(scflow.datasets.larry(), truth.index,
                         n_neighbors=FATE_RULE["n_neighbors"], fates=FATE_RULE["fates"],
                         return_k=True)
    r, lo, hi = pearson_ci(null[held], y)
    rows.append({"method": f"null: no motion (k={k})", "r": r, "lo": lo, "hi": hi,
                 "run": "this run"})
    for name in scflow.datasets.PUBLISHED_FATE_METHODS:
        r, lo, hi = pearson_ci(truth[name].to_numpy()[held], y)
        rows.append({"method": f"published {name}", "r": r, "lo": lo, "hi": hi,
                     "run": "this run"})
    ours = json.loads((core.RESULTS / "larry_fate.json").read_text())
    for s in ours["summary"]:
        if s["method"].startswith(("published", "null")):
            continue
        rows.append({"method": f"scflow {s['method']}" + (f" ({s['readout']})"
                                                          if s.get("readout") else ""),
                     "r": s["r_mean"], "lo": s["r_low"], "hi": s["r_high"],
                     "run": f"larry_fate.json ({s['n_seeds']} seeds)"})
    pairs = _pairs(npz, list(peers), ours.get("rows", []))
    _write("peers_larry", {"rows": rows, "tried": tried, "pairs": pairs, **setting},
           larry_markdown(rows, tried, pairs, LABEL_RULE, args.budget))


def reused_solve(epsilon: float, batch_size: int | None, subsample: int | None) -> dict:
    """The moscot step of an earlier ``larry`` run of the same setting, read back from what
    its child kept (the solved problem, its facts, the pulled fates) for ``--reuse-solve``;
    raises ``FileNotFoundError`` naming what is missing."""
    problem, facts_path, npz = _paths(epsilon, batch_size, subsample)
    missing = [str(p) for p in (problem, facts_path, npz) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"--reuse-solve needs an earlier run's files: {missing}")
    facts = json.loads(facts_path.read_text())
    return {"status": "ok (solved and pulled by an earlier run of this setting, reused)",
            "wall": facts["solve_seconds"], **facts}


def earlier_tries(setting: dict) -> list[dict]:
    """The steps of the last ``larry`` run made with another ``setting`` (epsilon, batch
    size, subsample), marked ``earlier``: a table made after a run that did not finish
    still says what was tried before it."""
    path = core.RESULTS / "peers_larry.json"
    if not path.is_file():
        return []
    keys = ("epsilon", "batch_size", "subsample")
    old = json.loads(path.read_text()).get("tried", [])
    return [{**t, "earlier": True} for t in old
            if tuple(t.get(k) for k in keys) != tuple(setting[k] for k in keys)]


def _pairs(npz: Path, peers: list[str], scflow_rows: list[dict]) -> list[dict]:
    """Every scflow row against every peer, paired, when scflow's per-cell file is there."""
    if not peers or not SCFLOW_PREDICTIONS.is_file():
        return []
    out = []
    for label, names in peers_fates.prediction_groups(scflow_rows).items():
        for peer in peers:
            d = peers_fates.pair_files(SCFLOW_PREDICTIONS, names, npz, peer)
            out.append({"scflow": label, "peer": peer, **d})
    return out


def larry_markdown(rows: list[dict], tried: list[dict], pairs: list[dict], rule: str,
                   budget: float) -> str:
    """The LARRY table: every row with its interval, then the paired differences."""
    lines = ["## scflow beside moscot and CellRank: LARRY fates", "",
             f"`python benchmarks/peers.py {' '.join(sys.argv[1:])}`", "",
             "| method | Pearson r | 95% interval (cells) | run |", "|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: -r["r"]):
        lines.append(f"| {row['method']} | {row['r']:.3f} | [{row['lo']:.3f}, "
                     f"{row['hi']:.3f}] | {row['run']} |")
    if pairs:
        lines += ["", "Paired on the same resamples of the held-out cells (scflow's r minus "
                  "the peer's; 1,000 resamples; bold where the interval excludes 0):", "",
                  "| scflow row | peer | difference of r | 95% interval |", "|---|---|---|---|"]
        for p in pairs:
            mark = "**" if p["separated"] else ""
            lines.append(f"| {p['scflow']} | {p['peer']} | {mark}{p['diff']:+.3f}{mark} | "
                         f"[{p['lo']:+.3f}, {p['hi']:+.3f}] |")
    else:
        lines += ["", "No paired differences: scflow's per-cell predictions "
                  "(`benchmarks/results/larry_fate_predictions.npz`) are not in this "
                  "checkout, or no peer finished; `peers_fates.pair_files` pairs any two "
                  "per-cell files when they are."]
    lines += ["", f"What ran (each step a child process, a {budget:.0f} CPU-s budget and a "
              f"{LARRY_CAP / 2**30:.0f} GiB data cap): {_tries_text(tried)}.", "",
              f"Labelling rule (null and scflow): {rule}. moscot and CellRank read the same "
              "annotated day-6 neutrophils and monocytes (moscot: each label's cells pulled "
              "back as one distribution, WOT's fates; CellRank: those cells as terminal "
              "states). scflow's rows are those of the committed LARRY table "
              "(`benchmarks/larry_fate.py`), not re-run here; the per-cell predictions of "
              "moscot and CellRank are in `benchmarks/results/peers/larry_peers_eps*.npz`."]
    return "\n".join(lines) + "\n"
