"""scflow beside moscot and CellRank, the tools a scanpy user would pick instead, in one run.

Stages (each writes ``benchmarks/results/peers_<stage>.json`` and ``.md``; the versions of
every package, the commit and the command are in each JSON):

``loo``
    Leave one timepoint out on every set with a table (``--datasets``): whitened by a
    scaler fitted on the kept cells only (Schiebinger: also its 30 PCs), index time, the
    held-out timepoint ``k`` predicted from ``k - 1`` and ``k + 1``, exact W1 against all
    cells of ``k`` with a bootstrap interval over cells. Rows: moscot's ``TemporalProblem``
    solved without the held-out cells, cells drawn from its coupling and interpolated by
    moscot's own code (:mod:`peers_moscot`), at moscot's default ``epsilon`` and at the
    ``epsilon`` an inner leave-one-out on the kept timepoints chooses (never reading
    ``k``), in a child process per held-out time under a data cap (:data:`LOO_CAP`) and
    ``--budget`` CPU seconds (a row it could not make says what stopped it);
    ``tl.fit``'s default method (read from its signature) and ``static_ot``, the
    no-network reference. Every cloud is cached (``results/peers/``); ``--scflow-only``
    re-runs scflow's rows alone (e.g. after the default changed), ``report`` re-scores
    the caches: every prediction of one held-out timepoint on shared bootstrap draws
    (:func:`scflow.protocols.intervals.paired_bootstrap_w1`), with the paired differences.
``dev``
    moscot's ``epsilon`` for sets whose kept timepoints leave no inner hold-out (3
    timepoints): chosen by leave-one-out on a simulation drawn for development only
    (``datasets.simulate(random_state=1)``, never reported).
``larry``
    See :mod:`peers_larry`.
``growth``, ``cost``
    See :mod:`peers_stages`.

Run in the peers' venv (``make peers`` builds it; one thread, nice)::

    .venv-peers/bin/python benchmarks/peers.py loo --datasets emt_umap
    python benchmarks/peers.py loo --datasets emt_umap --scflow-only   # any venv
    python benchmarks/peers.py report
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import peers_core as core

LOO_SETS = ("simulate", "emt_umap", "emt", "weinreb", "bargaje", "schiebinger_subset")
#: bootstrap replicates per set (the committed leave-one-out tables' values)
N_BOOT = {"weinreb": 30}
SCHIEBINGER_PCS = 30
SIM_DIMS = 5  # as `scflow benchmark --dataset simulate`
#: bytes of data moscot's leave-one-out child may map (RLIMIT_DATA; a shared 24 GiB machine)
LOO_CAP = 8 * 2**30


def _args_line() -> str:
    return "python benchmarks/peers.py " + " ".join(sys.argv[1:])


def load_set(name: str, k: int):
    """The held-out time course of set ``name`` for held-out index ``k`` (scaler, and for
    the Schiebinger genes the PCA, fitted on the kept cells only)."""
    import scflow

    if name == "simulate":
        a = scflow.datasets.simulate()
        return core.holdout_course(a.obsm["X_pca"][:, :SIM_DIMS], a.obs["day"], k)
    if name == "schiebinger_subset":
        from sklearn.decomposition import PCA

        a = scflow.datasets.schiebinger_subset()
        x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
        days = np.sort(a.obs["day"].unique())
        kept = a.obs["day"].to_numpy() != days[k]
        pca = PCA(SCHIEBINGER_PCS, random_state=0).fit(x[kept])
        return core.holdout_course(pca.transform(x), a.obs["day"], k)
    if name not in LOO_SETS:
        raise ValueError(f"datasets must be among {LOO_SETS}, got {name!r}")
    a = getattr(scflow.datasets, name)()
    return core.holdout_course(a.obsm[a.uns["scflow_dataset"]["use_rep"]], a.obs["day"], k)


def n_timepoints(name: str) -> int:
    import scflow

    if name == "simulate":
        return len(np.unique(scflow.datasets.simulate().obs["day"]))
    return len(np.unique(getattr(scflow.datasets, name)().obs["day"]))


# --- scflow's rows ----------------------------------------------------------------------------

def scflow_rows(tc, k: int, seeds) -> tuple[dict, dict]:
    """``tl.fit``'s default (``tl.fit`` + ``tl.predict`` of every cell of ``k - 1``, as a
    user runs them, on the kept-whitened cells with ``whiten=False``) and ``static_ot``."""
    import anndata as ad
    import pandas as pd

    import scflow
    from scflow.methods import get
    from scflow.references import fraction, static_ot_interpolant

    method = core.scflow_default()
    neural = method == "auto" or get(method).neural or not get(method).deterministic
    labels = np.concatenate([[lab] * len(x) for lab, x in zip(tc.labels, tc.xs, strict=True)])
    adata = ad.AnnData(np.zeros((len(labels), 1), dtype=np.float32),
                       obs=pd.DataFrame({"day": labels},
                                        index=[f"c{i}" for i in range(len(labels))]))
    adata.obsm["X_w"] = np.concatenate([x.numpy() for x in tc.xs])
    rows, facts = {f"scflow_{method}": {}}, {}
    seconds = {}
    for seed in seeds if neural else seeds[:1]:
        start = time.perf_counter()
        scflow.tl.fit(adata, "day", use_rep="X_w", whiten=False, holdout=tc.labels[k],
                      random_state=int(seed), device="cpu", progress=False)
        out = scflow.tl.predict(adata, tc.labels[k], from_time=tc.labels[k - 1])
        w = out.obs["weight"].to_numpy() if "weight" in out.obs else None
        rows[f"scflow_{method}"][int(seed)] = (np.asarray(out.obsm["X_w"]), w)
        seconds[int(seed)] = time.perf_counter() - start
    params = adata.uns["scflow"]["params"]
    facts[f"scflow_{method}"] = {
        "library": "scflow", "what": f"tl.fit default (method={method!r}) + tl.predict",
        "tl_fit_default": method, "chosen": params.get("method"),
        "n_steps": params.get("n_steps"), "seconds": seconds, "versions": core.versions(),
        "commit": core.commit()}
    start = time.perf_counter()
    pts, w = static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1], fraction(tc, k))
    rows["scflow_static_ot"] = {0: (pts.numpy(), w.double().numpy())}
    facts["scflow_static_ot"] = {"library": "scflow", "what": "static_ot: McCann interpolant "
                                 "of the exact plan, plan-weighted (no network)",
                                 "seconds": {0: time.perf_counter() - start},
                                 "versions": core.versions(), "commit": core.commit()}
    return rows, facts


# --- moscot's rows ----------------------------------------------------------------------------

def _inner_scores(tc, k: int, grid) -> dict:
    """Inner leave-one-out W1 of moscot at every ``epsilon``: each interior kept timepoint
    predicted from its kept neighbours (the held-out ``k`` is never read)."""
    from peers_moscot import interpolate

    from scflow.metrics import wasserstein

    out: dict = {"scores": {e: [] for e in grid}, "converged": {e: [] for e in grid},
                 "inner": []}
    for a, j, b in core.inner_holdouts(tc.n_timepoints, k):
        out["inner"].append(int(j))
        ta, tj, tb = (float(tc.times[i]) for i in (a, j, b))
        for eps in grid:
            (cloud,), f = interpolate(tc.xs[a].numpy(), tc.xs[b].numpy(), ta, tb,
                                      (tj - ta) / (tb - ta), epsilon=eps, seeds=(0,))
            out["scores"][eps].append(wasserstein(cloud, tc.xs[j].numpy()))
            out["converged"][eps].append(f["converged"])
    return out


def dev_epsilon(grid=core.EPSILONS) -> dict:
    """moscot's ``epsilon`` chosen by leave-one-out on a development simulation
    (``simulate(random_state=1)``, never reported), cached in ``results/peers/``."""
    path = core.CACHE / "dev_epsilon.json"
    if path.is_file():
        return json.loads(path.read_text())
    from peers_moscot import interpolate

    import scflow
    from scflow.metrics import wasserstein

    a = scflow.datasets.simulate(random_state=1)
    x, days = a.obsm["X_pca"][:, :SIM_DIMS], a.obs["day"]
    scores: dict = {e: [] for e in grid}
    n = len(np.unique(days))
    for j in range(1, n - 1):
        tc = core.holdout_course(x, days, j)
        for eps in grid:
            (cloud,), _ = interpolate(tc.xs[j - 1].numpy(), tc.xs[j + 1].numpy(),
                                      float(tc.times[j - 1]), float(tc.times[j + 1]), 0.5,
                                      epsilon=eps, seeds=(0,))
            scores[eps].append(wasserstein(cloud, tc.xs[j].numpy()))
    out = {"epsilon": core.choose_epsilon(scores, grid),
           "scores": {f"{e:g}": v for e, v in scores.items()},
           "data": f"datasets.simulate(random_state=1), X_pca[:, :{SIM_DIMS}], each interior "
                   "timepoint held out in turn (kept-cell scaler, index time)",
           "versions": core.versions()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


def moscot_rows(tc, k: int, seeds, grid=core.EPSILONS) -> tuple[dict, dict]:
    """moscot at its default ``epsilon`` and at the one chosen without ``k``."""
    from peers_moscot import interpolate

    x0, x1 = tc.xs[k - 1].numpy(), tc.xs[k + 1].numpy()
    t0, t1 = float(tc.times[k - 1]), float(tc.times[k + 1])
    s = (float(tc.times[k]) - t0) / (t1 - t0)
    default = grid[0]
    inner = _inner_scores(tc, k, grid)
    if inner["inner"]:
        eps = core.choose_epsilon(inner["scores"], grid)
        why = (f"inner leave-one-out on the kept timepoints {inner['inner']} (mean W1 per "
               "epsilon: " + ", ".join(f"{e:g}: {np.mean(v):.3f}"
                                       for e, v in inner["scores"].items()) + ")")
    else:
        dev = dev_epsilon(grid)
        eps = float(dev["epsilon"])
        why = ("two kept timepoints leave no inner hold-out: chosen on the development "
               "simulation (`peers.py dev`)")
    rows, facts = {}, {}
    clouds, f = interpolate(x0, x1, t0, t1, s, epsilon=default, seeds=seeds)
    rows["moscot_default"] = {int(sd): (c, None) for sd, c in zip(seeds, clouds, strict=True)}
    base = {"library": "moscot", "versions": core.versions(), "commit": core.commit()}
    facts["moscot_default"] = {**base, **f, "why": "moscot's default (TemporalProblem.solve)"}
    if eps != default:
        clouds, f = interpolate(x0, x1, t0, t1, s, epsilon=eps, seeds=seeds)
    rows["moscot_nested"] = {int(sd): (c, None) for sd, c in zip(seeds, clouds, strict=True)}
    facts["moscot_nested"] = {**base, **f, "why": why + ("; = the default" if eps == default
                                                         else ""),
                              "inner": {"holdouts": inner["inner"],
                                        "scores": {f"{e:g}": v for e, v in
                                                   inner["scores"].items()},
                                        "converged": {f"{e:g}": v for e, v in
                                                      inner["converged"].items()}}}
    return rows, facts


def moscot_child(name: str, k: int, seeds: str, budget: float) -> dict:
    """moscot's rows of ``(name, k)`` in a child process (``loo-moscot-one``) under
    :data:`LOO_CAP` bytes of data and ``budget`` CPU seconds; the child writes its clouds to
    the cache. Returns the child's status (``"ok"`` or what stopped it, with its CPU
    seconds and peak memory when it finished)."""
    from peers_stages import _child

    return _child(["loo-moscot-one", "--datasets", name, "--k", str(int(k)), "--seeds",
                   seeds], budget, LOO_CAP)


def run_loo_moscot_one(args) -> None:
    """The child of :func:`moscot_child`: moscot's rows of one held-out time, cached."""
    import resource

    seeds = [int(s) for s in args.seeds.split(",")]
    tc = load_set(args.datasets, args.k)
    rows, facts = moscot_rows(tc, args.k, seeds)
    core.save_rows(args.datasets, args.k, rows, facts, real_digest=core.digest(tc.xs[args.k]))
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"status": "ok", "cpu_seconds": use.ru_utime + use.ru_stime,
                      "peak_mb": use.ru_maxrss / 1024}))


def run_loo(args) -> None:
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.datasets.split(","):
        n = n_timepoints(name)
        for k in range(1, n - 1):
            tc = load_set(name, k)
            dig = core.digest(tc.xs[k])
            start = time.perf_counter()
            if not args.scflow_only:
                res = moscot_child(name, k, args.seeds, args.budget)
                status = {"child": res}
                if res["status"] != "ok":  # no clouds: the facts say what stopped moscot
                    status["status"] = res["status"]
                core.save_rows(name, k, {}, {"moscot_default": status,
                                             "moscot_nested": status} if res["status"] != "ok"
                               else {}, real_digest=dig)
                if res["status"] == "ok":
                    _add_child_facts(name, k, res, dig)
            rows, facts = scflow_rows(tc, k, seeds)
            core.save_rows(name, k, rows, facts, real_digest=dig)
            print(f"{name} k={k}: {time.perf_counter() - start:.0f} s", flush=True)
    from peers_report import write_loo_report

    write_loo_report(LOO_SETS, load_set, n_boot=N_BOOT, command=_args_line())


def _add_child_facts(name: str, k: int, res: dict, dig: str) -> None:
    """Record the moscot child's CPU seconds and peak memory beside its rows' facts."""
    _, facts = core.load_cache(name, k)
    extra = {r: {**facts["rows"].get(r, {}), "child": res}
             for r in ("moscot_default", "moscot_nested") if r in facts["rows"]}
    core.save_rows(name, k, {}, extra, real_digest=dig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=("loo", "dev", "report", "larry", "growth", "cost",
                                     "cost-one", "larry-one", "larry-cellrank-one",
                                     "loo-moscot-one"))
    p.add_argument("--datasets", default=",".join(LOO_SETS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--scflow-only", action="store_true",
                   help="loo, cost: re-run scflow's rows only (no peer needed; cost: the "
                        "peers' rows of those sizes are kept from the earlier run)")
    p.add_argument("--budget", type=float, default=1200.0,
                   help="loo, larry, cost: CPU seconds a peer's child may take before the "
                        "row says so (loo: per held-out time)")
    p.add_argument("--k", type=int, default=0, help="loo-moscot-one: held-out index")
    p.add_argument("--sizes", default="1000,10000,40000", help="cost: cells per timepoint")
    p.add_argument("--tool", default="", help="cost-one: moscot, cellrank or scflow")
    p.add_argument("--n", type=int, default=0, help="cost-one: cells per timepoint")
    p.add_argument("--epsilon", type=float, default=None,
                   help="larry: moscot's epsilon (default 0.05, the value the issue tried)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="larry, cost: moscot's batch_size (its online cost; default: dense)")
    p.add_argument("--reuse-solve", action="store_true",
                   help="larry: take moscot's step from an earlier run of the same setting "
                        "(its kept problem and fates) instead of solving again")
    p.add_argument("--subsample", type=int, default=None,
                   help="larry: cells kept of day 4 (every day-2 and day-6 cell kept), "
                        "drawn with a fixed seed; default: all cells")
    args = p.parse_args(argv)
    if args.stage == "loo":
        run_loo(args)
    elif args.stage == "loo-moscot-one":
        run_loo_moscot_one(args)
    elif args.stage == "dev":
        print(json.dumps(dev_epsilon(), indent=1))
    elif args.stage == "report":
        from peers_report import write_loo_report

        write_loo_report(LOO_SETS, load_set, n_boot=N_BOOT, command=_args_line())
    else:
        import peers_larry
        import peers_stages

        module = peers_larry if args.stage.startswith("larry") else peers_stages
        getattr(module, "run_" + args.stage.replace("-", "_"))(args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
