"""Training, inference and evaluation speed; scflow beside TorchCFM in the same run.

Every measurement runs in a fresh process (spawn), so its peak resident memory is its own.
Training throughput is measured *interleaved*: inside one process, short blocks of steps of
every configuration take turns for many rounds, and each figure is a median over blocks, so
a neighbour's job slowing the machine slows every configuration alike. Ratios are medians
of per-round ratios (scflow OT-CFM / I-CFM blocks run back to back, order alternating).

Time to TorchCFM's accuracy: leave timepoint 2 of EMT UMAP 3-D out (DESIGN.md protocol:
whitened, index time, bridged hold-out, push the cells of k-1 with 100 Euler steps, exact
W1 against all cells of k). TorchCFM OT-CFM trains 3000 steps (its own flow matcher and
MLP, as ``benchmarks/peer_torchcfm.py``); scflow ``otcfm`` trains with ``fit_flow``'s
defaults and its EMA weights are scored every ``--eval-every`` steps, off the clock. Run::

    OMP_NUM_THREADS=1 SCFLOW_DATA_DIR=../shared/data python benchmarks/speed.py [--device cuda]

Writes ``benchmarks/results/speed.json`` and ``benchmarks/results/speed.md``
(``python benchmarks/report.py`` gathers the sections into ``BENCHMARKS.md``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the peer's training loop: benchmarks/peer_torchcfm.py
#: the configurations of the training-step table: (library, method, coupling)
CONFIGS = (("scflow", "otcfm", "global"), ("scflow", "icfm", "global"),
           ("scflow", "otcfm", "minibatch"), ("torchcfm", "otcfm", "-"),
           ("torchcfm", "icfm", "-"))
OT, IND, PEER = "scflow/otcfm/global", "scflow/icfm/global", "torchcfm/otcfm/-"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _warm_imports() -> None:
    """Pay one-time process costs off the clock (the first optimizer imports torch._dynamo)."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)


def _course(device: str):
    import scflow
    from scflow.flow.timecourse import TimeCourse

    adata = scflow.datasets.emt_umap()
    return TimeCourse.from_arrays(adata.obsm["X_umap"], adata.obs["day"], whiten=True,
                                  device=device)


# ----- training throughput ---------------------------------------------------------------
def _stepper(tc, lib: str, method: str, coupling: str, batch_size: int, device: str
             ) -> tuple[Callable[[], None], float]:
    """One full training step (draw, loss, backward, Adam) of a configuration; setup s."""
    import torch

    if lib == "scflow":
        from scflow import TrainConfig
        from scflow.flow.model import FlowModel
        from scflow.training.loop import step_loss, training_data

        t0 = time.perf_counter()
        ivs = training_data(tc, method, None, coupling, None)
        cfg = TrainConfig(batch_size=batch_size)
        setup = time.perf_counter() - t0
        model = FlowModel(tc.dim).to(device)
        g = torch.Generator(device=device).manual_seed(0)

        def loss_fn():
            return step_loss(model, method, ivs, cfg, g)[0]
    else:
        from torchcfm.conditional_flow_matching import (
            ConditionalFlowMatcher,
            ExactOptimalTransportConditionalFlowMatcher,
        )
        from torchcfm.models.models import MLP

        setup = 0.0
        fm = (ExactOptimalTransportConditionalFlowMatcher(0.1) if method == "otcfm"
              else ConditionalFlowMatcher(0.1))
        model = MLP(tc.dim, time_varying=True, w=64).to(device)

        def loss_fn():
            ts, xts, uts = [], [], []
            for a in range(tc.n_timepoints - 1):
                x0 = tc.xs[a][torch.randint(len(tc.xs[a]), (batch_size,), device=device)]
                x1 = tc.xs[a + 1][torch.randint(len(tc.xs[a + 1]), (batch_size,),
                                                device=device)]
                t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
                ts.append(a + t)
                xts.append(xt)
                uts.append(ut)
            xt = torch.cat(xts)
            v = model(torch.cat([xt, torch.cat(ts)[:, None].to(xt)], -1))
            return ((v - torch.cat(uts)) ** 2).mean()

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, setup


def train_interleaved(batch_size: int, n_rounds: int, block_seconds: float, device: str
                      ) -> dict:
    """Seconds per step of every configuration, measured in interleaved blocks.

    Each configuration runs blocks of as many steps as take about ``block_seconds``. A round
    is three back-to-back pairs of scflow OT-CFM / I-CFM blocks (order alternating), then one
    block of each other configuration (order alternating between rounds).
    """
    tc = _course(device)
    keys = ["/".join(c) for c in CONFIGS]
    steppers, setup, block = {}, {}, {}
    for key, (lib, method, coupling) in zip(keys, CONFIGS, strict=True):
        steppers[key], setup[key] = _stepper(tc, lib, method, coupling, batch_size, device)

    def run(key: str, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            steppers[key]()
        _sync(device)
        return (time.perf_counter() - t0) / n

    for key in keys:  # warm up, then size the blocks
        run(key, 3)
        block[key] = max(1, round(block_seconds / run(key, 5)))
    block[OT] = block[IND] = max(block[OT], block[IND])  # the paired blocks: equal steps
    per_step: dict[str, list[float]] = {k: [] for k in keys}
    overhead, speedup = [], []
    others = [k for k in keys if k not in (OT, IND)]
    for r in range(n_rounds):
        for rep in range(3):
            pair = (OT, IND) if (r + rep) % 2 == 0 else (IND, OT)
            sec = {k: run(k, block[k]) for k in pair}
            overhead.append(sec[OT] / sec[IND])
            for k in pair:
                per_step[k].append(sec[k])
        for k in (others if r % 2 == 0 else others[::-1]):
            per_step[k].append(run(k, block[k]))
        # the peer's OT block against the nearest scflow OT-CFM block of the same round
        speedup.append(per_step[PEER][-1] / per_step[OT][-1])
    out: dict[str, Any] = {"batch_size": batch_size, "rounds": n_rounds, "configs": {}}
    for k in keys:
        sec = statistics.median(per_step[k])
        out["configs"][k] = {"seconds_per_step": sec, "steps_per_second": 1 / sec,
                             "steps_per_block": block[k], "blocks": len(per_step[k]),
                             "setup_seconds": setup[k]}
    q = statistics.quantiles(overhead, n=4)
    out["coupling_overhead"] = {"median": statistics.median(overhead), "q1": q[0], "q3": q[2],
                                "pairs": len(overhead)}
    q = statistics.quantiles(speedup, n=4)
    out["speedup_vs_torchcfm_otcfm"] = {"median": statistics.median(speedup), "q1": q[0],
                                        "q3": q[2], "rounds": len(speedup)}
    out["peak_rss_mb"] = _peak_mb()
    return out


# ----- time to TorchCFM's held-out W1 -------------------------------------------------------
def torchcfm_holdout(k: int, n_steps: int, batch_size: int, seed: int, device: str) -> dict:
    """TorchCFM OT-CFM trained without timepoint ``k``: training seconds and held-out W1.

    The training loop is the one of ``benchmarks/peer_torchcfm.py`` (its flow matcher, its
    MLP 64x3 SELU, Adam 1e-3); the push is torchdyn's Euler, 100 steps, off the clock.
    """
    from peer_torchcfm import torchcfm_push, torchcfm_train

    from scflow.metrics import wasserstein

    tc = _course(device)
    _warm_imports()
    start = time.perf_counter()
    model = torchcfm_train(tc, "otcfm", k, seed, n_steps, batch_size, 0.1, device=device)
    _sync(device)
    seconds = time.perf_counter() - start
    pred = torchcfm_push(model, tc, k)
    return {"seconds": seconds, "n_steps": n_steps, "w1": wasserstein(pred, tc.xs[k]),
            "peak_rss_mb": _peak_mb()}


def scflow_holdout(k: int, n_steps: int, eval_every: int, seed: int, device: str,
                   check_steps: int) -> dict:
    """scflow ``otcfm`` with ``fit_flow``'s defaults, held-out W1 of its EMA weights over time.

    The loop is ``fit_flow``'s (same seeding, global plans, Adam, EMA update), so the EMA
    weights at step ``s`` are those ``fit_flow(..., n_steps=s)`` returns; this is checked at
    ``check_steps`` against ``fit_flow`` itself. The clock runs from the data on the device
    to the last step (plans, model, steps) and stops while a model is scored.
    """
    import torch

    from scflow import TrainConfig
    from scflow.flow.integrate import integrate
    from scflow.flow.model import FlowModel
    from scflow.methods import get
    from scflow.metrics import sampling_floor, wasserstein
    from scflow.training.loop import fit_flow, resolve_device, step_loss, training_data

    tc0 = _course("cpu")
    hidden, activation, lr, ema, batch_size = (64, 64, 64), "selu", 1e-3, 0.999, 256
    sigma = get("otcfm").default_sigma
    cfg = TrainConfig(batch_size=batch_size)
    x_prev, x_real = tc0.xs[k - 1], tc0.xs[k]
    t_prev, t_k = float(tc0.times[k - 1]), float(tc0.times[k])

    def score(weights: list) -> float:
        ev = FlowModel(tc0.dim, hidden, activation)
        with torch.no_grad():
            torch._foreach_copy_(list(ev.parameters()), [w.cpu() for w in weights])
        ev.eval()
        return wasserstein(integrate(ev, x_prev, t_prev, t_k, n_steps=100), x_real)

    _warm_imports()
    clock, t0 = 0.0, time.perf_counter()
    dev = resolve_device(device)
    tc = tc0.to(dev)
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FlowModel(tc.dim, hidden, activation, score=False, sigma=0.0)
    model.to(dev).train()
    intervals = training_data(tc, "otcfm", sigma, "global", k)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params]
    losses = torch.zeros(n_steps, device=dev)
    curve, snapshot = [], None
    for step in range(n_steps):
        loss = step_loss(model, "otcfm", intervals, cfg, g)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(averaged, params, 1 - min(ema, (1 + step) / (10 + step)))
        losses[step] = loss.detach()
        done = step + 1
        if done % eval_every == 0 or done == n_steps or done == check_steps:
            _sync(device)
            clock += time.perf_counter() - t0
            if done == check_steps:
                snapshot = [w.detach().cpu().clone() for w in averaged]
            if done % eval_every == 0 or done == n_steps:
                curve.append({"step": done, "seconds": clock, "w1": score(averaged)})
            t0 = time.perf_counter()
    ref = fit_flow(tc0, "otcfm", holdout=k, n_steps=check_steps, device=device,
                   random_state=seed, progress=False)
    diff = max(float((a - b.detach().cpu()).abs().max())
               for a, b in zip(snapshot, ref.parameters(), strict=True))
    return {"curve": curve, "n_steps": n_steps, "eval_every": eval_every,
            "fit_flow_check": {"steps": check_steps, "max_abs_weight_diff": diff},
            "floor": sampling_floor(x_real), "peak_rss_mb": _peak_mb()}


# ----- inference and evaluation ---------------------------------------------------------------
def inference(n_cells: int, dim: int, device: str, batch_size: int | None) -> dict:
    """``integrate`` of ``n_cells`` random cells, 100 Euler steps, on a fresh MLP 64x3."""
    import torch

    from scflow.flow.integrate import integrate
    from scflow.flow.model import FlowModel

    model = FlowModel(dim).to(device)
    x = torch.randn(n_cells, dim, device=device)
    integrate(model, x[:1000], 0.0, 1.0, n_steps=5)
    base = _rss_mb()
    t0 = time.perf_counter()
    integrate(model, x, 0.0, 1.0, n_steps=100, batch_size=batch_size)
    _sync(device)
    sec = time.perf_counter() - t0
    return {"seconds": sec, "cell_steps_per_second": n_cells * 100 / sec,
            "batch_size": batch_size, "rss_before_mb": base, "peak_rss_mb": _peak_mb()}


def evaluation(n_cells: int) -> dict:
    """Exact W1 (``scflow.metrics.wasserstein``) between two n-cell 5-D clouds."""
    import torch

    from scflow.metrics import wasserstein

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n_cells, 5, generator=g), torch.randn(n_cells, 5, generator=g) + 0.5
    base = _rss_mb()
    t0 = time.perf_counter()
    w1 = wasserstein(x, y)
    return {"seconds": time.perf_counter() - t0, "w1": w1, "rss_before_mb": base,
            "peak_rss_mb": _peak_mb()}


def _isolated(fn: Callable[..., dict], *args: Any) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def _machine(device: str) -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "python": platform.python_version(), "cuda_available": torch.cuda.is_available(),
            "device_name": (torch.cuda.get_device_name(0) if device.startswith("cuda")
                            else "none (CPU run)")}


def _command() -> str:
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
                   if k in os.environ)
    args = " ".join(sys.argv[1:])
    return " ".join(s for s in (env, "SCFLOW_DATA_DIR=../shared/data python benchmarks/speed.py",
                                args) if s)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--rounds", type=int, default=40,
                   help="interleaved rounds at batch 256 (half as many at 1024)")
    p.add_argument("--block-seconds", type=float, default=0.1)
    p.add_argument("--holdout", type=int, default=2)
    p.add_argument("--holdout-steps", type=int, default=3000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--w1-sizes", default="1000,4000,10000")
    p.add_argument("--inference-cells", type=int, default=100_000)
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--markdown-only", action="store_true",
                   help="rewrite speed.md from the speed.json under --out; measure nothing")
    args = p.parse_args()
    out = Path(args.out)
    if args.markdown_only:
        (out / "speed.md").write_text(markdown(json.loads((out / "speed.json").read_text())))
        return
    out.mkdir(parents=True, exist_ok=True)
    dev = args.device
    res: dict = {"command": _command(), "machine": _machine(dev), "device": dev,
                 "load_average_start": os.getloadavg(), "train": {}, "inference": {},
                 "evaluation": {}}
    started = time.perf_counter()
    for bs, rounds in ((256, args.rounds), (1024, max(4, args.rounds // 2))):
        res["train"][f"b{bs}"] = r = _isolated(train_interleaved, bs, rounds,
                                               args.block_seconds, dev)
        print(f"b{bs}", json.dumps(r), flush=True)
    k, steps = args.holdout, args.holdout_steps
    runs = []
    for seed in (int(x) for x in args.seeds.split(",")):
        peer = _isolated(torchcfm_holdout, k, steps, 256, seed, dev)
        print("torchcfm holdout", seed, peer, flush=True)
        ours = _isolated(scflow_holdout, k, steps, args.eval_every, seed, dev,
                         2 * args.eval_every)
        print("scflow holdout", seed, ours, flush=True)
        hit = next((c for c in ours["curve"] if c["w1"] <= peer["w1"]), None)
        runs.append({"seed": seed, "torchcfm": peer, "scflow": ours, "reached": hit,
                     "ratio": None if hit is None else hit["seconds"] / peer["seconds"]})
    ratios = [r["ratio"] for r in runs]
    res["time_to_torchcfm_w1"] = {
        "dataset": "emt_umap", "holdout_index": k, "floor": runs[0]["scflow"]["floor"],
        "runs": runs, "worst_ratio": None if None in ratios else max(ratios)}
    n_inf = args.inference_cells
    for n_cells, dim, bsz in ((n_inf, 5, 10_000), (n_inf, 50, 10_000), (n_inf, 5, None),
                              (n_inf, 50, None)):
        key = f"{n_cells}x{dim}/{'all' if bsz is None else bsz}"
        res["inference"][key] = _isolated(inference, n_cells, dim, dev, bsz)
        print("inference", key, res["inference"][key], flush=True)
    for n in (int(s) for s in args.w1_sizes.split(",")):
        res["evaluation"][str(n)] = _isolated(evaluation, n)
        print("W1", n, res["evaluation"][str(n)], flush=True)
    res["load_average_end"] = os.getloadavg()
    res["wall_seconds"] = time.perf_counter() - started
    (out / "speed.json").write_text(json.dumps(res, indent=1))
    (out / "speed.md").write_text(markdown(res))
    print(markdown(res))


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"## Speed ({res['device']}: {m['cpu']}, {m['cores']} cores, torch {m['torch']})",
             "", f"`{res['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
             f"{res['load_average_start'][0]:.1f} at the start, "
             f"{res['load_average_end'][0]:.1f} at the end), torch {m['torch']} with "
             f"{m['torch_threads']} thread(s), Python {m['python']}. GPU: "
             f"{m['device_name'] if m['cuda_available'] else 'none available for this run'}; "
             "every figure below is a CPU figure. Whole run "
             f"{res['wall_seconds'] / 60:.1f} min.", ""]
    goals = []
    for b in ("b256", "b1024"):
        tr = res["train"][b]
        sp, ov = tr["speedup_vs_torchcfm_otcfm"], tr["coupling_overhead"]
        goals.append(f"| steps/s, scflow OT-CFM (global plan) / TorchCFM OT-CFM (per-batch "
                     f"OT), batch {b[1:]}: unlike couplings, like for like in "
                     f"`speed_like_for_like` | >= 5x | "
                     f"{sp['median']:.1f}x (IQR {sp['q1']:.1f} to {sp['q3']:.1f}) | "
                     f"{_verdict(sp['median'] >= 5)} (couplings differ) |")
        goals.append(f"| coupling overhead, scflow OT-CFM / I-CFM step time, batch {b[1:]} "
                     f"| <= 1.25 | {ov['median']:.3f} (IQR {ov['q1']:.3f} to {ov['q3']:.3f}) | "
                     f"{_verdict(ov['median'] <= 1.25)} |")
    tt = res["time_to_torchcfm_w1"]
    runs = tt["runs"]
    per_seed = ", ".join(f"seed {r['seed']}: " + ("not reached" if r["ratio"] is None else
                                                  f"{r['ratio']:.3f}") for r in runs)
    worst = tt["worst_ratio"]
    goals.append("| training time to reach TorchCFM OT-CFM's final held-out W1 / TorchCFM's "
                 "training time (worst seed) | <= 1/5 (0.20) | "
                 + ("not reached" if worst is None else f"{worst:.3f} = 1/{1 / worst:.0f}")
                 + f" ({per_seed}) | withdrawn: stopped at the first crossing of the test "
                 "timepoint's W1 (see `speed_like_for_like` for a validation split) |")
    lines += ["| goal | target | measured | |", "|---|---|---|---|", *goals, ""]

    lines += ["### Training steps", "",
              "EMT UMAP 3-D, 4 intervals, MLP 64x3 SELU, Adam; batch = pairs per interval. "
              "Interleaved in one process per batch size: blocks of about "
              "0.1 s of each configuration take turns; steps/s is the median over blocks, the "
              "ratios are medians of per-round ratios (IQR: interquartile range). `global`: "
              "one exact OT plan per interval, solved once per fit (setup column), pairs "
              "drawn from it on the device (per interval and step: one uniform draw, one "
              "`searchsorted` over the plan's cumulative mass, two gathers; "
              "`DiscretePlan.sample_pairs`); `minibatch`: a plan per step's batch (TorchCFM's "
              "way).", "",
              "| batch | library | method | coupling | steps/s | blocks x steps | setup s |",
              "|---|---|---|---|---|---|---|"]
    for b, tr in res["train"].items():
        for key, r in tr["configs"].items():
            lib, method, coupling = key.split("/")
            lines.append(f"| {b[1:]} | {lib} | {method} | {coupling} | "
                         f"{r['steps_per_second']:.1f} | {r['blocks']} x "
                         f"{r['steps_per_block']} | {r['setup_seconds']:.2f} |")
    lines.append("")
    lines.append("Peak RSS of each interleaved process (all five configurations): " + ", ".join(
        f"batch {b[1:]} {tr['peak_rss_mb']:.0f} MB" for b, tr in res["train"].items()) + ".")

    first = runs[0]
    lines += ["", "### Time to TorchCFM's held-out W1 (withdrawn)", "",
              "Withdrawn: the time below is the first crossing of the held-out (test) W1, "
              "monitored every few steps, i.e. early stopping on the test timepoint. The "
              "like-for-like replacement, timed on a validation split of kept cells, is the "
              "section *Speed like for like*. The curve is kept as a record.", "",
              f"EMT UMAP 3-D, timepoint {tt['holdout_index']} left out (DESIGN.md protocol: "
              "whitened, index time, k-1 -> k+1 bridged, cells of k-1 pushed with 100 Euler "
              "steps, exact W1 against all cells of k; sampling floor of k "
              f"{tt['floor']:.3f}), batch 256 per interval, one TorchCFM and one scflow run "
              "per seed, each in its own process. TorchCFM OT-CFM "
              "(`ExactOptimalTransportConditionalFlowMatcher`, its MLP 64x3 SELU, Adam 1e-3, "
              f"the loop of `benchmarks/peer_torchcfm.py`) trains {first['torchcfm']['n_steps']}"
              " steps; its final W1 is the target. scflow `otcfm` (`fit_flow` defaults: global "
              f"plans, EMA 0.999) trains {first['scflow']['n_steps']} steps and its EMA weights "
              f"are scored every {first['scflow']['eval_every']} steps off the clock; the "
              "clock includes solving the plans. Both clocks start after imports (the first "
              "optimizer imports torch._dynamo, about 3 s, paid once per process). The EMA "
              "weights of this loop equal those of `fit_flow(n_steps="
              f"{first['scflow']['fit_flow_check']['steps']})` to "
              + ", ".join(f"{r['scflow']['fit_flow_check']['max_abs_weight_diff']:.0e}"
                          for r in runs) + " (per seed).", "",
              "| seed | TorchCFM s | TorchCFM final W1 | scflow reaches it at step | scflow s "
              "| ratio | scflow best W1 (step) | scflow final W1 | peak RSS MB TorchCFM / "
              "scflow |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        peer, ours, h = r["torchcfm"], r["scflow"], r["reached"]
        best = min(ours["curve"], key=lambda c: c["w1"])
        reach = ("never | - | -" if h is None else
                 f"{h['step']} | {h['seconds']:.2f} | {r['ratio']:.3f}")
        lines.append(f"| {r['seed']} | {peer['seconds']:.1f} | {peer['w1']:.3f} | {reach} | "
                     f"{best['w1']:.3f} ({best['step']}) | {ours['curve'][-1]['w1']:.3f} | "
                     f"{peer['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f} |")
    worse = [r["seed"] for r in runs if r["scflow"]["curve"][-1]["w1"] > r["torchcfm"]["w1"]]
    lines += ["", "scflow reaches its best held-out W1 within the first "
              f"{max(min(r['scflow']['curve'], key=lambda c: c['w1'])['step'] for r in runs)} "
              "steps and drifts up after: at the last step its W1 is "
              + ("below TorchCFM's final W1 on every seed." if not worse else
                 f"above TorchCFM's final W1 on seed(s) {', '.join(map(str, worse))}.")]
    lines += ["", "scflow's held-out W1 along training (training seconds, W1):", "",
              "| step | " + " | ".join(f"seed {r['seed']}" for r in runs) + " |",
              "|---|" + "---|" * len(runs)]
    curves = [r["scflow"]["curve"] for r in runs]
    for i, c in enumerate(curves[0]):
        if c["step"] <= 1000 or c["step"] % 500 == 0 or i == len(curves[0]) - 1:
            lines.append(f"| {c['step']} | " + " | ".join(
                f"{cv[i]['seconds']:.2f} s, {cv[i]['w1']:.3f}" for cv in curves) + " |")

    lines += ["", "### Inference", "",
              "`scflow.flow.integrate.integrate`, 100 Euler steps, a fresh MLP 64x3 SELU; `batch` "
              "is `batch_size=` (cells integrated at a time) or all at once. "
              "Only the end states are kept when no path is asked for, so memory does not grow "
              "with the number of steps. RSS before: the process after imports and the input.",
              "", "| cells x dims / batch | seconds | cell-steps/s | RSS before MB | "
              "peak RSS MB |", "|---|---|---|---|---|"]
    for key, r in res["inference"].items():
        lines.append(f"| {key} | {r['seconds']:.1f} | {r['cell_steps_per_second']:.2e} | "
                     f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", "### Evaluation: exact W1", "",
              "`scflow.metrics.wasserstein` (POT network simplex, Euclidean cost) between two "
              "n-cell 5-D Gaussian clouds, one process each; exact at every size (no "
              "subsampling), the dense n x n problem is what the memory is.", "",
              "| cells | seconds | W1 | RSS before MB | peak RSS MB |", "|---|---|---|---|---|"]
    for key, r in res["evaluation"].items():
        lines.append(f"| {key} | {r['seconds']:.1f} | {r['w1']:.4f} | {r['rss_before_mb']:.0f} "
                     f"| {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
