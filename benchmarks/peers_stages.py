"""The ``larry``, ``growth`` and ``cost`` stages of ``benchmarks/peers.py``.

``larry``
    LARRY fates (the protocol of ``scflow/benchmark/larry.py``: day-2 neutrophil bias
    ``P(Neu) / (P(Neu) + P(Mono))`` on the 10,087 held-out trajectory cells, Pearson r with
    the clonal truth and a 95% bootstrap interval over cells, the no-motion null under the
    same labelling rule). moscot: ``TemporalProblem`` over days 2 / 4 / 6 on SPRING 2-D
    (``X_emb`` as the user has it), the annotated day-6 neutrophils and monocytes pulled
    back to day 2 (WOT's fates). CellRank 2: ``RealTimeKernel`` on the same couplings, fate
    probabilities towards the same annotated cells. moscot's default ``epsilon`` is tried
    first in a child process within ``--budget`` CPU seconds (one thread); past it,
    ``--epsilon`` (0.05: the value the issue tried, the first that finished; not chosen on
    the clonal truth). Per-cell biases are saved (``results/peers/larry_eps<eps>.npz``) to
    pair with scflow's
    rows later.
``growth``
    The CoSpar clone check of ``benchmarks/growth.py clones``: moscot's marker-gene prior
    (``score_genes_for_marginals``) and posterior growth rates of each day-4 cell, beside
    ``tl.growth_prior`` and ``uotcfm``, Spearman with the clone's expansion, 95% interval
    over whole clones (the same resamples for every row).
``cost``
    Wall time and peak memory (a child process per measurement, its own peak RSS) of
    moscot prepare + solve + pull, of CellRank on moscot's couplings, and of ``tl.fit`` +
    ``tl.fate`` with defaults, on the simulation at ``--sizes`` cells per timepoint (3
    timepoints, 5 PCs); a child past ``--budget`` CPU seconds or over the memory cap is stopped
    and the table says so.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import peers_core as core

FATES = ["Neutrophil", "Monocyte"]
N_BOOT_CLONES = 200  # as benchmarks/growth.py clones
MEMORY_CAP = 10 * 2**30  # bytes of data a cost child may map (RLIMIT_DATA)
MEMORY_ERRORS = ("MemoryError", "RESOURCE_EXHAUSTED", "bad_alloc", "YNNPACK operation failed",
                 "Cannot allocate memory")
WALL_FACTOR = 6  # wall-clock limit of a child, in CPU budgets (a loaded shared machine)
LARRY_CAP = 12 * 2**30  # the same for the LARRY child (a shared 24 GiB machine)
LARRY_BATCH = 4096  # moscot's batch_size (online cost) when the dense cost does not fit


def _write(stem: str, result: dict, md: str) -> None:
    core.RESULTS.mkdir(parents=True, exist_ok=True)
    result = {**result, "versions": core.versions(), "commit": core.commit(),
              "command": "python benchmarks/peers.py " + " ".join(sys.argv[1:])}
    (core.RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1, default=str)
                                               + "\n")
    (core.RESULTS / f"{stem}.md").write_text(md)
    print(md)


def _child(argv: list[str], budget: float, cap: int | None = None) -> dict:
    """Run ``peers.py`` ``argv`` in a child; its last stdout line is its JSON result.

    ``budget`` is in CPU seconds (``RLIMIT_CPU``: the child is stopped past it, however
    loaded the shared machine is), with a wall-clock limit of ``WALL_FACTOR`` times it;
    ``cap``: bytes of data it may map (``RLIMIT_DATA``)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (int(budget), int(budget) + 5))
        if cap:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    start = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, str(Path(__file__).with_name("peers.py")),
                              *argv], capture_output=True, text=True,
                             timeout=WALL_FACTOR * budget, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"status": f"stopped after {WALL_FACTOR * budget:.0f} s of wall time",
                "wall": WALL_FACTOR * budget}
    wall = time.perf_counter() - start
    if run.returncode == -signal.SIGXCPU:
        return {"status": f"stopped after the {budget:.0f} CPU-s budget", "wall": wall}
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        # under the data cap, XLA's failed allocations surface as its INTERNAL errors
        memory = any(m in t for t in tail for m in MEMORY_ERRORS) or run.returncode in (-9,
                                                                                        137)
        return {"status": ("out of memory (the data cap; an allocation failed)" if memory
                           else "failed"), "wall": wall,
                "error": " | ".join(tail)}
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "wall": wall}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU seconds of this process so far (all threads, user + system): the measure that a
    loaded shared machine disturbs least."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


# --- LARRY ---------------------------------------------------------------------------------

def larry_one(epsilon: float, batch_size: int | None = None) -> dict:
    """moscot and CellRank on LARRY at ``epsilon`` (run in a child by :func:`run_larry`;
    ``batch_size``: moscot's online cost, for when the dense one does not fit); writes the
    per-cell day-2 biases to ``results/peers/larry_eps<eps>.npz``."""
    import peers_moscot as pm

    import scflow
    from scflow.benchmark.larry import neutrophil_bias

    adata = scflow.datasets.larry()
    adata.obs["state_info"] = adata.obs["state_info"].astype("category")
    solve = {} if batch_size is None else {"batch_size": int(batch_size)}
    tp, facts = pm.temporal_problem(adata, "day", "X_emb", epsilon=epsilon, **solve)
    start = time.perf_counter()
    probs = pm.pull_fates(tp, "state_info", FATES, 2.0, 6.0)
    facts["pull_seconds"] = time.perf_counter() - start
    day2 = adata.obs_names[adata.obs["day"] == 2]
    out = {"moscot": neutrophil_bias(probs.loc[day2])}
    late = (adata.obs["day"] == 6) & adata.obs["state_info"].isin(FATES)
    terminal = {f: list(adata.obs_names[late & (adata.obs["state_info"] == f)]) for f in FATES}
    try:
        fp, cr_facts = pm.cellrank_fates(tp, terminal)
        out["cellrank"] = neutrophil_bias(fp.loc[day2])
        facts["cellrank"] = cr_facts
    except Exception as err:  # the failure is the finding: the table says so
        facts["cellrank"] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    core.CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(core.CACHE / f"larry_eps{epsilon:g}.npz", cells=np.asarray(day2),
                        **out)
    return {"status": "ok", **facts, "peak_mb": _peak_mb(), "cpu_seconds": _cpu_seconds()}


def run_larry(args) -> None:
    import scflow
    from scflow.benchmark.larry import FATE_RULE, LABEL_RULE, _no_motion, pearson_ci

    tried = []
    epsilons = [float(e) for e in args.epsilons.split(",")]
    for eps in epsilons:
        budget = args.budget if eps == 1e-3 else 2 * args.budget
        res = _child(["larry-one", "--epsilon", f"{eps}"], budget, LARRY_CAP)
        if res["status"].startswith("out of memory"):  # moscot's online cost instead
            tried.append({"epsilon": eps, **res})
            res = _child(["larry-one", "--epsilon", f"{eps}", "--batch-size",
                          str(LARRY_BATCH)], budget, LARRY_CAP)
            res["batch_size"] = LARRY_BATCH
        tried.append({"epsilon": eps, **res})
        if res["status"] == "ok":
            break
    ok = [t for t in tried if t["status"] == "ok"]
    truth = scflow.datasets.larry_truth()
    held = truth["heldout"].to_numpy()
    y = truth["truth"].to_numpy()[held]
    rows = []
    if ok:
        eps = ok[-1]["epsilon"]
        with np.load(core.CACHE / f"larry_eps{eps:g}.npz") as z:
            cells = pd.Index(z["cells"])
            preds = {k: z[k] for k in z.files if k != "cells"}
        if not cells.equals(truth.index):
            raise ValueError("the cached day-2 cells are not the truth's cells, in order")
        for name, bias in preds.items():
            r, lo, hi = pearson_ci(bias[held], y)
            rows.append({"method": f"{name} (epsilon {eps:g})", "r": r, "lo": lo, "hi": hi})
    adata = scflow.datasets.larry()
    null, k = _no_motion(adata, truth.index, n_neighbors=FATE_RULE["n_neighbors"],
                         fates=FATE_RULE["fates"], return_k=True)
    r, lo, hi = pearson_ci(null[held], y)
    rows.append({"method": f"null: no motion (k={k})", "r": r, "lo": lo, "hi": hi})
    for name in scflow.datasets.PUBLISHED_FATE_METHODS:
        r, lo, hi = pearson_ci(truth[name].to_numpy()[held], y)
        rows.append({"method": f"published {name}", "r": r, "lo": lo, "hi": hi})
    ours = json.loads((core.RESULTS / "larry_fate.json").read_text())["summary"]
    lines = ["## scflow beside moscot and CellRank: LARRY fates", "",
             f"`python benchmarks/peers.py {' '.join(sys.argv[1:])}`", "",
             "| method | Pearson r | 95% interval (cells) | run |", "|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: -r["r"]):
        lines.append(f"| {row['method']} | {row['r']:.3f} | [{row['lo']:.3f}, "
                     f"{row['hi']:.3f}] | this run |")
    for s in ours:
        if s["method"].startswith(("published", "null")):
            continue
        lines.append(f"| scflow {s['method']} ({s['n_seeds']} seeds) | {s['r_mean']:.3f} | "
                     f"[{s['r_low']:.3f}, {s['r_high']:.3f}] | larry_fate.json |")
    lines += ["", "moscot tries: " + "; ".join(
        f"epsilon {t['epsilon']:g}"
        + (f" (batch_size {t['batch_size']})" if t.get("batch_size") else "")
        + f": {t['status']}, {t['wall']:.0f} s"
        + (f" (solve {t['solve_seconds']:.0f} s, converged {t['converged']})"
           if t["status"] == "ok" else "") for t in tried),
        "" if 1e-3 in epsilons else "\nmoscot's default epsilon (0.001) was not tried in this "
        "run: the issue measured it unfinished after 15 minutes on this machine (one thread); "
        f"`--epsilons 0.001,0.05` tries it first within --budget ({args.budget:.0f}) CPU "
        "seconds.",
        "", f"Labelling rule (null and scflow): {LABEL_RULE}. moscot and CellRank read the "
        "same annotated day-6 neutrophils and monocytes (moscot: each label's cells pulled "
        "back as one distribution, WOT's fates; CellRank: those cells as terminal states). "
        "scflow's rows are those of the committed LARRY table (`benchmarks/larry_fate.py`), "
        "not re-run here; the per-cell predictions of moscot and CellRank are in "
        "`benchmarks/results/peers/larry_eps*.npz` for a paired comparison."]
    _write("peers_larry", {"rows": rows, "tried": tried}, "\n".join(lines) + "\n")


# --- growth ----------------------------------------------------------------------------------

def run_growth(args) -> None:
    import anndata as ad
    import peers_moscot as pm
    import scanpy as sc
    import scipy.sparse as sp
    from growth import _clone_interval, _spearman
    from moscot.problems.time import TemporalProblem

    import scflow
    from scflow.datasets import _larry

    pm._quiet()
    a = scflow.datasets.larry_cospar()
    raw = ad.read_h5ad(_larry._path("cospar_larry_subset_annotated.h5ad"))
    clone = sp.csr_matrix(raw.obsm["X_clone"]).indices
    sc.pp.log1p(a)
    day = a.obs["day"].to_numpy()
    n = {d: np.bincount(clone[day == d], minlength=clone.max() + 1) for d in (4.0, 6.0)}
    early = day == 4.0
    truth = np.log((n[6.0][clone[early]] + 1.0) / n[4.0][clone[early]])
    rows = []

    def add(name: str, pred) -> None:
        lo, hi = _clone_interval(np.asarray(pred, dtype=float), truth, clone[early],
                                 N_BOOT_CLONES,
                                 np.random.default_rng(0))  # same clone resamples per row
        rows.append({"method": name, "spearman": _spearman(np.asarray(pred, float), truth),
                     "lo": lo, "hi": hi})

    scflow.tl.growth_prior(a, "mouse")
    add("scflow tl.growth_prior (no fit)", a.obs["growth_prior"].to_numpy()[early])
    start = time.perf_counter()
    tp = TemporalProblem(a.copy())
    tp.score_genes_for_marginals(gene_set_proliferation="mouse", gene_set_apoptosis="mouse")
    tp.prepare("day", joint_attr="X_pca")
    prior = tp.prior_growth_rates.loc[a.obs_names[early], "prior_growth_rates"]
    add("moscot prior growth (marker-gene marginals, no fit)", np.log(prior.to_numpy()))
    facts = {}
    for tau in (1.0, 0.95):
        tp.solve(tau_a=tau)
        post = tp.posterior_growth_rates.loc[a.obs_names[early], "posterior_growth_rates"]
        label = "defaults" if tau == 1.0 else "tau_a 0.95 (moscot tutorial value)"
        add(f"moscot posterior growth, {label}", np.log(post.to_numpy()))
        facts[f"tau_a={tau}"] = pm._converged(tp)
    facts["moscot_seconds"] = time.perf_counter() - start
    for s in [int(v) for v in args.seeds.split(",")]:
        scflow.tl.fit(a, "day", use_rep="X_pca", method="uotcfm", key_added="u",
                      random_state=s, device="cpu", progress=False)
        scflow.tl.growth(a, key="u", to_time=6.0)
        add(f"scflow uotcfm (seed {s})", np.log(a.obs["u_growth_descendants"].to_numpy()[early]))
    lines = ["## scflow beside moscot: growth against clonal expansion (LARRY CoSpar subset)",
             "", f"`python benchmarks/peers.py {' '.join(sys.argv[1:])}`", "",
             f"{int(early.sum())} day-4 cells in {len(np.unique(clone[early]))} clones, 40-D "
             "PCA; truth: log((day-6 cells of the clone + 1) / day-4 cells of the clone); "
             "95% interval over whole clones, the same resamples for every row. moscot's "
             "prior: `score_genes_for_marginals(\"mouse\", \"mouse\")`, then `prepare` "
             "(marginals from the scores); posterior: `solve` (balanced at its defaults, so "
             "it returns the prior; `tau_a=0.95` as in moscot's tutorials, not tuned here). "
             "Growth over day 4 -> 6 on a log scale (a rank statistic: the scale does not "
             "matter).", "", "| growth of a day-4 cell | Spearman r | 95% interval (clones) |",
             "|---|---|---|"]
    lines += [f"| {r['method']} | {r['spearman']:.3f} | [{r['lo']:.3f}, {r['hi']:.3f}] |"
              for r in rows]
    _write("peers_growth", {"rows": rows, "facts": facts}, "\n".join(lines) + "\n")


# --- cost ------------------------------------------------------------------------------------

def cost_one(tool: str, n: int) -> dict:
    """One measurement (run in a child): simulation with ``n`` cells per timepoint."""
    import scflow

    a = scflow.datasets.simulate(n_cells=3 * n, n_timepoints=3, random_state=0)
    a.obsm["X_5"] = np.ascontiguousarray(a.obsm["X_pca"][:, :5])
    last = a.obs["day"] == a.obs["day"].max()
    a.obs["end_label"] = pd.Categorical(np.where(last, a.obs["branch"].astype(str), None))
    start, cpu0 = time.perf_counter(), _cpu_seconds()
    out: dict = {"status": "ok", "tool": tool, "n": n}
    if tool == "scflow":
        scflow.tl.fit(a, "day", use_rep="X_5", device="cpu", progress=False)
        fitted = time.perf_counter()
        scflow.tl.fate(a, "end_label")
        out.update(fit_seconds=fitted - start, fate_seconds=time.perf_counter() - fitted)
    else:
        import peers_moscot as pm

        tp, facts = pm.temporal_problem(a, "day", "X_5")
        solved = time.perf_counter()
        pm.pull_fates(tp, "end_label", ["upper", "lower"], 0.0, 2.0)
        out.update(prepare_seconds=facts["prepare_seconds"],
                   solve_seconds=facts["solve_seconds"], converged=facts["all_converged"],
                   pull_seconds=time.perf_counter() - solved)
        if tool == "cellrank":
            terminal = {f: list(a.obs_names[a.obs["end_label"] == f]) for f in ("upper", "lower")}
            _, cr_facts = pm.cellrank_fates(tp, terminal, use_rep="X_5")
            out["cellrank"] = cr_facts
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = _cpu_seconds() - cpu0
    out["peak_mb"] = _peak_mb()
    return out


def run_cost(args) -> None:
    sizes = [int(v) for v in args.sizes.split(",")]
    path = core.RESULTS / "peers_cost.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    rows = [r for r in old if r["n"] not in sizes]
    for n in sizes:
        for tool in ("scflow", "moscot", "cellrank"):
            res = _child(["cost-one", "--tool", tool, "--n", str(n)], args.budget, MEMORY_CAP)
            rows.append({"tool": tool, "n": n, **res})
            print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: (r["n"], r["tool"]))
    _write("peers_cost", {"rows": rows, "budget": args.budget, "memory_cap": MEMORY_CAP},
           cost_markdown(rows, args.budget, "python benchmarks/peers.py "
                         + " ".join(sys.argv[1:])))


def cost_markdown(rows: list[dict], budget: float, command: str) -> str:
    """The cost table of ``rows`` (one per tool and size; ``status`` says what stopped a
    measurement)."""
    lines = ["## scflow beside moscot and CellRank: cost (one run, one thread each)", "",
             f"`{command}`", "",
             "Simulation (`datasets.simulate`, 3 timepoints, 5 PCs), n cells per timepoint. "
             "One child process per measurement (its own peak RSS), JAX and torch on one CPU "
             f"thread, a {budget:.0f} s budget and a {MEMORY_CAP / 2**30:.0f} GiB data "
             "cap per child. scflow: `tl.fit` + `tl.fate` with defaults; moscot: `prepare` + "
             "`solve` (defaults) + `pull` of the last timepoint's labels to the first; "
             "CellRank: the same moscot run, then `RealTimeKernel` + GPCCA fate "
             "probabilities. Ratios are other / scflow in the same run, on CPU seconds (all "
             "threads of the child): the machine is shared (2 cores, other jobs), so wall "
             "seconds mostly measure the load; the budget is in CPU seconds too.", "",
             "| cells / timepoint | tool | status | CPU seconds | wall seconds | peak MB | "
             "CPU s / scflow | peak / scflow | detail |", "|---|---|---|---|---|---|---|---|---|"]
    base = {r["n"]: r for r in rows if r["tool"] == "scflow" and r["status"] == "ok"}
    for r in rows:
        b = base.get(r["n"])
        ok = r["status"] == "ok"
        ratio = (f"{r['cpu_seconds'] / b['cpu_seconds']:.2f}" if ok and b else "–")
        mem = (f"{r['peak_mb'] / b['peak_mb']:.2f}" if ok and b else "–")
        detail = (f"solve {r['solve_seconds']:.0f} s wall, converged {r['converged']}"
                  if ok and "solve_seconds" in r else
                  f"fit {r['fit_seconds']:.0f} s, fate {r['fate_seconds']:.0f} s wall"
                  if ok and "fit_seconds" in r else r.get("error", ""))
        lines.append(f"| {r['n']} | {r['tool']} | {r['status']} | {r['cpu_seconds']:.0f} | "
                     f"{r['seconds']:.0f} | {r['peak_mb']:.0f} | {ratio} | {mem} | {detail} |"
                     if ok else f"| {r['n']} | {r['tool']} | {r['status']} | – | "
                     f"{r['wall']:.0f} | – | – | – | {detail[:120]} |")
    return "\n".join(lines) + "\n"


def run_cost_one(args) -> None:
    print(json.dumps(cost_one(args.tool, args.n), default=str))


def run_larry_one(args) -> None:
    print(json.dumps(larry_one(args.epsilon, args.batch_size), default=str))
