"""The ``growth`` and ``cost`` stages of ``benchmarks/peers.py`` and the child processes
they run (``larry``: :mod:`peers_larry`).

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

N_BOOT_CLONES = 200  # as benchmarks/growth.py clones
MEMORY_CAP = 10 * 2**30  # bytes of data a cost child may map (RLIMIT_DATA)
MEMORY_ERRORS = ("MemoryError", "RESOURCE_EXHAUSTED", "bad_alloc", "YNNPACK operation failed",
                 "Cannot allocate memory")
WALL_FACTOR = 6  # wall-clock limit of a child, in CPU budgets (a loaded shared machine)


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
    except subprocess.TimeoutExpired as err:
        return {"status": f"stopped after {WALL_FACTOR * budget:.0f} s of wall time",
                "wall": WALL_FACTOR * budget, "partial": _json_lines(err.stdout)}
    wall = time.perf_counter() - start
    partial = _json_lines(run.stdout)
    if run.returncode == -signal.SIGXCPU:
        return {"status": f"stopped after the {budget:.0f} CPU-s budget", "wall": wall,
                "partial": partial}
    if run.returncode != 0:
        tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
        # under the data cap, XLA's failed allocations surface as its INTERNAL errors
        memory = any(m in t for t in tail for m in MEMORY_ERRORS) or run.returncode in (-9,
                                                                                        137)
        return {"status": ("out of memory (the data cap; an allocation failed)" if memory
                           else "failed"), "wall": wall,
                "error": " | ".join(tail), "partial": partial}
    return {**partial[-1], "wall": wall}


def _json_lines(text: str | bytes | None) -> list[dict]:
    """The lines of a child's stdout that are JSON objects (its results so far)."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU seconds of this process so far (all threads, user + system): the measure that a
    loaded shared machine disturbs least."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


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

def cost_one(tool: str, n: int, batch_size: int | None = None) -> dict:
    """One measurement (run in a child): simulation with ``n`` cells per timepoint.

    ``tool="scflow"``: ``tl.fit`` + ``tl.fate`` with defaults. ``tool="peers"``: moscot's
    ``prepare`` + ``solve`` (defaults; ``batch_size``: its online cost) + ``pull``, whose
    CPU seconds and peak memory so far are printed as a JSON line as soon as the pull
    ends (so a child stopped later still gives moscot's row), then CellRank on that
    problem (``RealTimeKernel`` + GPCCA fate probabilities: what a CellRank user runs,
    moscot's solve included)."""
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
    elif tool == "peers":
        import peers_moscot as pm

        solve = {} if batch_size is None else {"batch_size": int(batch_size)}
        tp, facts = pm.temporal_problem(a, "day", "X_5", **solve)
        solved = time.perf_counter()
        pm.pull_fates(tp, "end_label", ["upper", "lower"], 0.0, 2.0)
        moscot = {"status": "ok", "tool": "moscot", "n": n, **solve,
                  "prepare_seconds": facts["prepare_seconds"],
                  "solve_seconds": facts["solve_seconds"], "converged": facts["all_converged"],
                  "pull_seconds": time.perf_counter() - solved,
                  "seconds": time.perf_counter() - start,
                  "cpu_seconds": _cpu_seconds() - cpu0, "peak_mb": _peak_mb()}
        print(json.dumps({"part": moscot}), flush=True)
        terminal = {f: list(a.obs_names[a.obs["end_label"] == f]) for f in ("upper", "lower")}
        _, cr_facts = pm.cellrank_fates(tp, terminal, use_rep="X_5")
        out.update(tool="cellrank", moscot=moscot, cellrank=cr_facts)
    else:
        raise ValueError(f"tool must be 'scflow' or 'peers', got {tool!r}")
    out["seconds"] = time.perf_counter() - start
    out["cpu_seconds"] = _cpu_seconds() - cpu0
    out["peak_mb"] = _peak_mb()
    return out


def run_cost(args) -> None:
    sizes = [int(v) for v in args.sizes.split(",")]
    path = core.RESULTS / "peers_cost.json"
    old = json.loads(path.read_text())["rows"] if path.is_file() else []
    # --scflow-only: scflow's rows measured again, the peers' rows of those sizes kept
    rows = [r for r in old if r["n"] not in sizes
            or (args.scflow_only and r["tool"] != "scflow")]
    extra = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:])
    for n in sizes:
        res = _child(["cost-one", "--tool", "scflow", "--n", str(n)], args.budget, MEMORY_CAP)
        rows.append({"tool": "scflow", "n": n, **res, "command": command})
        if args.scflow_only:
            continue
        smaller = stopped_below(rows, n)
        if smaller is not None:  # more cells cannot finish in the same budget
            rows += [{"tool": t, "n": n, "status": f"not run: stopped at {smaller:,} cells "
                      "per timepoint already", "wall": 0.0} for t in ("moscot", "cellrank")]
            continue
        res = _child(["cost-one", "--tool", "peers", "--n", str(n), *extra], args.budget,
                     MEMORY_CAP)
        rows += [{**r, "command": command} for r in peer_rows(res, n)]
        print(json.dumps(rows[-3:], default=str), flush=True)
    rows.sort(key=lambda r: (r["n"], r["tool"]))
    _write("peers_cost", {"rows": rows, "budget": args.budget, "memory_cap": MEMORY_CAP,
                          "batch_size": args.batch_size},
           cost_markdown(rows, args.budget, command))


def stopped_below(rows: list[dict], n: int) -> int | None:
    """The largest size below ``n`` at which moscot's row was stopped (budget, wall time or
    memory), or ``None``: a peer that could not finish with fewer cells is not run on more."""
    sizes = [r["n"] for r in rows if r["tool"] == "moscot" and r["n"] < n
             and r["status"] != "ok" and not r["status"].startswith("not run")]
    return max(sizes) if sizes else None


def peer_rows(res: dict, n: int) -> list[dict]:
    """moscot's and CellRank's rows from one ``peers`` child: moscot's from the line it
    printed when its pull ended (even when the child was stopped later), CellRank's from
    the child's end (its CPU seconds include moscot's run, which it needs)."""
    parts = [p["part"] for p in res.get("partial", []) if "part" in p]
    rest = {k: v for k, v in res.items() if k != "partial"}
    if res["status"] == "ok":
        moscot = {**res["moscot"], "wall": res["moscot"]["seconds"]}
    elif parts:
        moscot = {**parts[0], "wall": parts[0]["seconds"]}
    else:  # stopped before moscot's pull ended: the same status for both
        moscot = {**rest, "tool": "moscot", "n": n}
    return [moscot, {**rest, "tool": "cellrank", "n": n}]


def cost_markdown(rows: list[dict], budget: float, command: str) -> str:
    """The cost table of ``rows`` (one per tool and size; ``status`` says what stopped a
    measurement)."""
    lines = ["## scflow beside moscot and CellRank: cost (one run, one thread each)", "",
             f"`{command}`", "",
             "Simulation (`datasets.simulate`, 3 timepoints, 5 PCs), n cells per timepoint. "
             "JAX and torch on one CPU thread, a child process per tool and size with a "
             f"{budget:.0f} CPU-s budget (`RLIMIT_CPU`) and a {MEMORY_CAP / 2**30:.0f} GiB "
             "data cap (`RLIMIT_DATA`). scflow: `tl.fit` + `tl.fate` with defaults. moscot: "
             "`prepare` + `solve` (its defaults: epsilon 0.001, dense cost) + `pull` of the "
             "last timepoint's labels to the first. CellRank: that moscot run, then "
             "`RealTimeKernel.from_moscot` (couplings sparsified by moscot, `min_row`) + "
             "GPCCA fate probabilities, in the same child: moscot's row is read off it when "
             "its pull ends (CPU seconds and peak memory so far), CellRank's at the end (what "
             "a CellRank user runs, moscot's solve included). Ratios are other / scflow in "
             "the same run (a row from another run names its command), on CPU seconds (all "
             "threads of the child): the machine is shared (2 cores, other jobs), so wall "
             "seconds mostly measure the load.", "",
             "| cells / timepoint | tool | status | CPU seconds | wall seconds | peak MB | "
             "CPU s / scflow | peak / scflow | detail |", "|---|---|---|---|---|---|---|---|---|"]
    base = {r["n"]: r for r in rows if r["tool"] == "scflow" and r["status"] == "ok"}
    for r in rows:
        b = base.get(r["n"])
        if b is not None and b.get("command") != r.get("command"):
            b = None  # measured in another run (``--scflow-only``): no ratio across runs
        ok = r["status"] == "ok"
        ratio = (f"{r['cpu_seconds'] / b['cpu_seconds']:.2f}" if ok and b else "–")
        mem = (f"{r['peak_mb'] / b['peak_mb']:.2f}" if ok and b else "–")
        cr = r.get("cellrank") or {}
        detail = (f"solve {r['solve_seconds']:.0f} s wall, converged {r['converged']}"
                  if ok and "solve_seconds" in r else
                  f"fit {r['fit_seconds']:.0f} s, fate {r['fate_seconds']:.0f} s wall"
                  if ok and "fit_seconds" in r else
                  f"moscot part {r['moscot']['cpu_seconds']:.0f} CPU s; kernel "
                  f"{cr['kernel_seconds']:.0f} s, fates {cr['fate_seconds']:.0f} s wall; "
                  f"{cr['transition_nnz']:,} non-zeros" if ok and "moscot" in r else
                  r.get("error", ""))
        if r.get("command") not in (None, command):
            detail += f" (`{r['command']}`)"
        lines.append(f"| {r['n']} | {r['tool']} | {r['status']} | {r['cpu_seconds']:.0f} | "
                     f"{r['seconds']:.0f} | {r['peak_mb']:.0f} | {ratio} | {mem} | {detail} |"
                     if ok else f"| {r['n']} | {r['tool']} | {r['status']} | – | "
                     f"{r['wall']:.0f} | – | – | – | {detail[:120]} |")
    return "\n".join(lines) + "\n"


def run_cost_one(args) -> None:
    print(json.dumps(cost_one(args.tool, args.n, args.batch_size), default=str))

