"""Torch's intra-op threads while training scflow's small networks: one, or one per core?

A notebook user calls ``tl.fit`` without ``OMP_NUM_THREADS``, so torch would use one
intra-op thread per core. This measures training throughput (steps per second of
:func:`scflow.fit_flow`, OT-CFM on EMT 10-D, whitened, batch 256 per interval) with

- ``1``: one intra-op thread,
- ``cores``: one per core (torch's default without ``OMP_NUM_THREADS``),
- ``auto``: what scflow now does by default (``scflow.settings.n_threads = "auto"``,
  torch left at its default: :data:`scflow._threads.TRAINING_THREADS` while training),

for the default network (3 x 64) and a wide one (3 x 512), interleaved: every round runs
each configuration once (``--steps`` steps, global plans solved once and shared), for
``--rounds`` rounds, and each ratio is the median of the per-round ratios, so a neighbour's
job slowing the machine slows every configuration alike. The choice of
``TRAINING_THREADS`` rests on the ``cores / 1`` ratio of the default network. Run (without
``OMP_NUM_THREADS``, so that torch's default is one thread per core)::

    env -u OMP_NUM_THREADS SCFLOW_DATA_DIR=../shared/data python benchmarks/threads.py

Writes ``benchmarks/results/threads.json`` and ``benchmarks/results/threads.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETWORKS = {"default (3 x 64)": (64, 64, 64), "wide (3 x 512)": (512, 512, 512)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    env_threads = os.environ.get("OMP_NUM_THREADS")

    import torch

    import scflow
    from scflow import TimeCourse, _threads
    from scflow.couplings import PlanCache

    cores = len(os.sched_getaffinity(0))
    default = torch.get_num_threads()  # torch's own choice in this process
    try:
        adata = scflow.datasets.emt()
        data, rep = "emt (10-D)", "X_latent"
    except (FileNotFoundError, OSError, KeyError):
        adata = scflow.datasets.simulate()
        data, rep = "simulate", "X_pca" if "X_pca" in adata.obsm else list(adata.obsm)[0]
    tc = TimeCourse.from_arrays(adata.obsm[rep], adata.obs["day"], whiten=True)
    cache = PlanCache()

    def run(config: str, hidden: tuple[int, ...]) -> float:
        if config == "auto":
            scflow.settings.n_threads = "auto"
            torch.set_num_threads(default)
        else:
            scflow.settings.n_threads = None  # leave torch at the count set here
            torch.set_num_threads(1 if config == "1" else cores)
        start = time.perf_counter()
        scflow.fit_flow(tc, "otcfm", n_steps=args.steps, hidden=hidden, device="cpu",
                        progress=False, plan_cache=cache, random_state=0)
        return args.steps / (time.perf_counter() - start)

    configs = ("1", "cores", "auto")
    for hidden in NETWORKS.values():  # warm-up: plans solved, kernels loaded
        run("1", hidden)
    rates: dict[str, dict[str, list[float]]] = {n: {c: [] for c in configs} for n in NETWORKS}
    for r in range(args.rounds):
        for name, hidden in NETWORKS.items():
            order = configs if r % 2 == 0 else configs[::-1]
            for config in order:
                rates[name][config].append(run(config, hidden))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{n} {c} {rates[n][c][-1]:.1f}/s" for n in NETWORKS for c in configs), flush=True)
    scflow.settings.n_threads = "auto"
    torch.set_num_threads(default)

    def ratio(name: str, a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(rates[name][a], rates[name][b],
                                                       strict=True))

    result = {
        "what": "steps/s of scflow.fit_flow (otcfm, batch 256 per interval, global plans), "
                "interleaved rounds; ratios are medians of per-round ratios",
        "data": data, "steps_per_block": args.steps, "rounds": args.rounds,
        "cores": cores, "torch_default_threads": default,
        "OMP_NUM_THREADS": env_threads, "training_threads": _threads.TRAINING_THREADS,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "processor": platform.processor() or platform.machine(),
                    "load_average_at_end": list(os.getloadavg())},
        "networks": {n: {"steps_per_s_median": {c: statistics.median(rates[n][c])
                                                for c in configs},
                         "steps_per_s": rates[n],
                         "ratio_1_over_cores": ratio(n, "1", "cores"),
                         "ratio_auto_over_cores": ratio(n, "auto", "cores")}
                     for n in NETWORKS},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"## Torch threads while training ({data}, {cores} cores, "
             f"{args.rounds} interleaved rounds of {args.steps} steps)", "",
             "`env -u OMP_NUM_THREADS python benchmarks/threads.py`", "",
             "| network | 1 thread (steps/s) | one per core (steps/s) | scflow default "
             "(steps/s) | 1 / per core | default / per core |", "|---|---|---|---|---|---|"]
    for n, v in result["networks"].items():
        m = v["steps_per_s_median"]
        lines.append(f"| {n} | {m['1']:.1f} | {m['cores']:.1f} | {m['auto']:.1f} | "
                     f"{v['ratio_1_over_cores']:.2f} | {v['ratio_auto_over_cores']:.2f} |")
    lines += ["", f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
                  "(a shared machine: the ratios, measured round by round, are what carry "
                  "over)."]
    (out / "threads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
