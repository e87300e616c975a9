"""Speed like for like: scflow beside TorchCFM with the same coupling, timed to a W1 on
validation cells, never on the test timepoint.

Two couplings, each run by both libraries:

- ``minibatch``: an exact OT plan per step's batch. scflow ``otcfm`` with
  ``coupling="minibatch"``; TorchCFM's ``ExactOptimalTransportConditionalFlowMatcher``.
- ``global``: one exact OT plan per interval, solved once per fit, pairs drawn from it.
  scflow ``otcfm`` with ``coupling="global"`` (its default); TorchCFM given the plan through
  its own API: ``OTPlanSampler("exact").get_map`` on all cells of the interval once, then
  ``sample_map`` each step and its ``ConditionalFlowMatcher`` on the drawn pairs.

Part 1, steps/s: EMT UMAP 3-D (all 4 intervals), batch 256, MLP 64x3 SELU, Adam; the four
configurations run in interleaved blocks (as ``benchmarks/speed.py``), ratios are medians of
per-round ratios.

Part 2, time to a fixed validation W1: timepoint ``--holdout`` is the test and is never
scored during training. A fixed fraction (``--val-fraction``, split seed 0) of the cells of
every kept timepoint is set aside; both libraries train on the rest with the test timepoint
left out (bridged). Every ``--eval-every`` steps, off the clock, the raw weights and their
EMA (0.999, ramped as ``fit_flow`` does; scflow's default recipe, not TorchCFM's) are scored:
validation W1 = mean over the kept intervals ``a -> b`` of the exact W1 between the
validation cells of ``a`` pushed to ``b`` (100 Euler steps) and the validation cells of
``b``. The target is fixed on validation only: the largest final validation W1 over all runs
of the seed, so every run reaches it. Reported per run: seconds to reach it, and beside it
the final held-out (test) W1 of the same weights (cells of ``k-1`` pushed, exact W1 against
all cells of ``k``), scored once at the end. Run::

    OMP_NUM_THREADS=1 SCFLOW_DATA_DIR=../shared/data python benchmarks/speed_like_for_like.py

Writes ``benchmarks/results/speed_like_for_like.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from speed import _course, _machine, _peak_mb, _stepper, _warm_imports  # noqa: E402

EMA = 0.999
CHECK_STEPS = 200  #: scflow's loop here is checked against fit_flow at this step
RUNS = (("scflow", "minibatch"), ("torchcfm", "minibatch"), ("scflow", "global"),
        ("torchcfm", "global"))


# ----- TorchCFM given a global plan ------------------------------------------------------
def torchcfm_global(xs: list[torch.Tensor], sigma: float) -> tuple[Callable, float]:
    """Pair sampler for TorchCFM given the exact plan of each interval (its own API).

    Returns ``draw(a, batch_size) -> (x0, x1)`` for interval ``a`` (``xs[a] -> xs[a + 1]``)
    and the seconds spent solving the plans.
    """
    from torchcfm.optimal_transport import OTPlanSampler

    ot = OTPlanSampler(method="exact")
    t0 = time.perf_counter()
    plans = [ot.get_map(xs[a], xs[a + 1]) for a in range(len(xs) - 1)]
    setup = time.perf_counter() - t0

    def draw(a: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        i, j = ot.sample_map(plans[a], batch_size)
        return xs[a][torch.from_numpy(i)], xs[a + 1][torch.from_numpy(j)]

    return draw, setup


def _torchcfm_global_stepper(tc, batch_size: int) -> tuple[Callable[[], None], float]:
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
    from torchcfm.models.models import MLP

    draw, setup = torchcfm_global(tc.xs, 0.1)
    fm = ConditionalFlowMatcher(0.1)
    model = MLP(tc.dim, time_varying=True, w=64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        ts, xts, uts = [], [], []
        for a in range(tc.n_timepoints - 1):
            t, xt, ut = fm.sample_location_and_conditional_flow(*draw(a, batch_size))
            ts.append(a + t)
            xts.append(xt)
            uts.append(ut)
        xt = torch.cat(xts)
        v = model(torch.cat([xt, torch.cat(ts)[:, None].to(xt)], -1))
        loss = ((v - torch.cat(uts)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, setup


def steps_per_second(batch_size: int, n_rounds: int, block_seconds: float) -> dict:
    """Interleaved blocks of the four configurations; medians over blocks and rounds."""
    np.random.seed(0)  # noqa: NPY002 - TorchCFM's samplers draw from the global state
    tc = _course("cpu")
    _warm_imports()
    steppers, setup = {}, {}
    for lib, coupling in RUNS:
        key = f"{lib}/{coupling}"
        if lib == "scflow":
            steppers[key], setup[key] = _stepper(tc, "scflow", "otcfm", coupling, batch_size,
                                                 "cpu")
        elif coupling == "minibatch":
            steppers[key], setup[key] = _stepper(tc, "torchcfm", "otcfm", "-", batch_size,
                                                 "cpu")
        else:
            steppers[key], setup[key] = _torchcfm_global_stepper(tc, batch_size)

    def run(key: str, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            steppers[key]()
        return (time.perf_counter() - t0) / n

    block = {}
    for key in steppers:
        run(key, 2)
        block[key] = max(1, round(block_seconds / run(key, 3)))
    per: dict[str, list[float]] = {k: [] for k in steppers}
    ratio: dict[str, list[float]] = {"minibatch": [], "global": []}
    keys = list(steppers)
    for r in range(n_rounds):
        for key in (keys if r % 2 == 0 else keys[::-1]):
            per[key].append(run(key, block[key]))
        for coupling in ratio:  # scflow steps/s over TorchCFM's, this round
            ratio[coupling].append(per[f"torchcfm/{coupling}"][-1] / per[f"scflow/{coupling}"][-1])
    out = {"batch_size": batch_size, "rounds": n_rounds, "configs": {}, "ratio": {}}
    for key in keys:
        sec = statistics.median(per[key])
        out["configs"][key] = {"steps_per_second": 1 / sec, "steps_per_block": block[key],
                               "blocks": len(per[key]), "setup_seconds": setup[key]}
    for coupling, vals in ratio.items():
        q = statistics.quantiles(vals, n=4)
        out["ratio"][coupling] = {"median": statistics.median(vals), "q1": q[0], "q3": q[2]}
    return out


# ----- time to a fixed validation W1 -----------------------------------------------------
def split(tc, k: int, fraction: float):
    """Training course (validation cells removed from every kept timepoint) and the
    validation cells per kept timepoint; the test timepoint ``k`` is untouched."""
    from scflow.flow.timecourse import TimeCourse

    g = torch.Generator().manual_seed(0)
    train, val = [], {}
    for i, x in enumerate(tc.xs):
        if i == k:
            train.append(x)
            continue
        perm = torch.randperm(len(x), generator=g)
        n_val = round(fraction * len(x))
        val[i] = x[perm[:n_val]]
        train.append(x[perm[n_val:]])
    return TimeCourse(train, tc.times, tc.labels, tc.values, tc.mean, tc.scale), val


class _Scorer:
    """Validation W1 (kept intervals, validation cells) and test W1 of a velocity field."""

    def __init__(self, tc, k: int, val: dict):
        self.tc, self.k, self.val = tc, k, val
        keep = [i for i in range(tc.n_timepoints) if i != k]
        self.pairs = list(zip(keep[:-1], keep[1:], strict=True))

    def _push(self, field: Callable, x: torch.Tensor, t0: float, t1: float) -> torch.Tensor:
        dt = (t1 - t0) / 100
        with torch.no_grad():
            for s in range(100):  # Euler, 100 steps, as the protocol
                x = x + dt * field(torch.full((len(x), 1), t0 + s * dt), x)
        return x

    def validation(self, field: Callable) -> float:
        from scflow.metrics import wasserstein

        t = self.tc.times
        return float(np.mean([wasserstein(self._push(field, self.val[a], t[a], t[b]),
                                           self.val[b]) for a, b in self.pairs]))

    def test(self, field: Callable) -> float:
        from scflow.metrics import wasserstein

        t, k = self.tc.times, self.k
        return wasserstein(self._push(field, self.tc.xs[k - 1], t[k - 1], t[k]), self.tc.xs[k])


def _scflow_field(model) -> Callable:
    return lambda t, x: model.velocity(t.squeeze(1), x)


def _torchcfm_field(model) -> Callable:
    return lambda t, x: model(torch.cat([x, t], -1))


def _with(model: torch.nn.Module, weights: list[torch.Tensor]) -> torch.nn.Module:
    m = copy.deepcopy(model)
    with torch.no_grad():
        torch._foreach_copy_(list(m.parameters()), weights)
    return m.eval()


def time_to_w1(lib: str, coupling: str, tc, k: int, scorer: _Scorer, seed: int,
               n_steps: int, eval_every: int, batch_size: int = 256) -> dict:
    """Train one configuration; validation W1 of raw and EMA weights every ``eval_every``
    steps (off the clock), test W1 of both at the end."""
    from scflow import TrainConfig
    from scflow.flow.model import FlowModel
    from scflow.training.loop import step_loss, training_data

    _warm_imports()
    keep = [i for i in range(tc.n_timepoints) if i != k]
    clock, t0 = 0.0, time.perf_counter()
    if lib == "scflow":  # fit_flow's loop (seeding, data, Adam, EMA)
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FlowModel(tc.dim, (64, 64, 64), "selu", score=False, sigma=0.0)
        model.train()
        data = training_data(tc, "otcfm", 0.1, coupling, k)

        def loss_fn() -> torch.Tensor:
            return step_loss(model, "otcfm", data, TrainConfig(batch_size=batch_size), g)[0]
        field = _scflow_field
    else:  # the loop of benchmarks/peer_torchcfm.py; global: the plan given
        from torchcfm.conditional_flow_matching import (
            ConditionalFlowMatcher,
            ExactOptimalTransportConditionalFlowMatcher,
        )
        from torchcfm.models.models import MLP

        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - the peer draws its pairs from the global state
        model = MLP(dim=tc.dim, time_varying=True, w=64)
        if coupling == "global":
            fm = ConditionalFlowMatcher(sigma=0.1)
            draw, _ = torchcfm_global([tc.xs[i] for i in keep], 0.1)
        else:
            fm = ExactOptimalTransportConditionalFlowMatcher(sigma=0.1)

            def draw(j: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
                a, b = keep[j], keep[j + 1]
                return (tc.xs[a][torch.randint(len(tc.xs[a]), (n,))],
                        tc.xs[b][torch.randint(len(tc.xs[b]), (n,))])

        def loss_fn() -> torch.Tensor:
            ts, xts, uts = [], [], []
            for j, (a, b) in enumerate(zip(keep[:-1], keep[1:], strict=True)):
                t, xt, ut = fm.sample_location_and_conditional_flow(*draw(j, batch_size))
                span = float(tc.times[b] - tc.times[a])
                ts.append(tc.times[a] + t * span)
                xts.append(xt)
                uts.append(ut / span)
            t, xt, ut = torch.cat(ts).float(), torch.cat(xts), torch.cat(uts)
            return ((model(torch.cat([xt, t[:, None]], dim=-1)) - ut) ** 2).mean()
        field = _torchcfm_field
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params]
    curve, snapshot = [], None
    for step in range(n_steps):
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(averaged, params, 1 - min(EMA, (1 + step) / (10 + step)))
        done = step + 1
        if done == min(CHECK_STEPS, n_steps):
            snapshot = [w.clone() for w in averaged]
        if done % eval_every == 0 or done == n_steps:
            clock += time.perf_counter() - t0
            curve.append({"step": done, "seconds": clock,
                          "val_raw": scorer.validation(field(_with(model, params))),
                          "val_ema": scorer.validation(field(_with(model, averaged)))})
            t0 = time.perf_counter()
    check = None
    if lib == "scflow":  # this loop is fit_flow's: same EMA weights at CHECK_STEPS
        from scflow.training.loop import fit_flow

        ref = fit_flow(tc, "otcfm", holdout=k, n_steps=min(CHECK_STEPS, n_steps),
                       coupling=coupling, device="cpu", random_state=seed, progress=False)
        check = max(float((a - b.detach()).abs().max())
                    for a, b in zip(snapshot, ref.parameters(), strict=True))
    return {"library": lib, "coupling": coupling, "seed": seed, "curve": curve,
            "fit_flow_check": check,
            "test_raw": scorer.test(field(_with(model, params))),
            "test_ema": scorer.test(field(_with(model, averaged))),
            "peak_rss_mb": _peak_mb()}


def _reach(curve: list[dict], key: str, target: float) -> dict | None:
    return next((c for c in curve if c[key] <= target), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--block-seconds", type=float, default=0.2)
    p.add_argument("--holdout", type=int, default=2)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--n-steps", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--markdown-only", action="store_true",
                   help="rewrite the .md from the .json under --out; measure nothing")
    args = p.parse_args()
    if args.markdown_only:
        res = json.loads((Path(args.out) / "speed_like_for_like.json").read_text())
        (Path(args.out) / "speed_like_for_like.md").write_text(markdown(res))
        return
    started = time.perf_counter()
    res: dict = {"args": vars(args), "machine": _machine("cpu"),
                 "load_average_start": os.getloadavg()}
    res["steps"] = steps_per_second(256, args.rounds, args.block_seconds)
    print(json.dumps(res["steps"], indent=1), flush=True)
    tc = _course("cpu")
    k = args.holdout
    train, val = split(tc, k, args.val_fraction)
    scorer = _Scorer(tc, k, val)
    res["split"] = {"train": [len(x) for x in train.xs], "validation": {
        str(i): len(v) for i, v in val.items()}, "test": k}
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for lib, coupling in RUNS:
            r = time_to_w1(lib, coupling, train, k, scorer, seed, args.n_steps,
                           args.eval_every)
            print(lib, coupling, seed, r["curve"][-1], r["test_raw"], r["test_ema"],
                  flush=True)
            runs.append(r)
    for seed in {r["seed"] for r in runs}:
        mine = [r for r in runs if r["seed"] == seed]
        target = max(r["curve"][-1][w] for r in mine for w in ("val_raw", "val_ema"))
        for r in mine:
            r["target"] = target
            for w in ("raw", "ema"):
                r[f"reach_{w}"] = _reach(r["curve"], f"val_{w}", target)
    res["runs"] = runs
    res["load_average_end"] = os.getloadavg()
    res["wall_seconds"] = time.perf_counter() - started
    out = Path(args.out)
    (out / "speed_like_for_like.json").write_text(json.dumps(res, indent=1))
    (out / "speed_like_for_like.md").write_text(markdown(res))
    print(markdown(res))


def markdown(res: dict) -> str:
    m, a, st = res["machine"], res["args"], res["steps"]
    cmd = ("OMP_NUM_THREADS=1 SCFLOW_DATA_DIR=../shared/data python "
           "benchmarks/speed_like_for_like.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in a.items()
               if k not in ("out", "markdown_only")))
    lines = ["## Speed like for like (scflow and TorchCFM with the same coupling; time to a "
             "validation W1)", "", f"`{cmd}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
             f"{res['load_average_start'][0]:.1f} at the start, "
             f"{res['load_average_end'][0]:.1f} at the end), torch {m['torch']} with "
             f"{m['torch_threads']} thread(s); CPU figures. Whole run "
             f"{res['wall_seconds'] / 60:.1f} min. EMT UMAP 3-D only.", "",
             "### Training steps per second, same coupling", "",
             f"All 4 intervals, batch {st['batch_size']} per interval, MLP 64x3 SELU, Adam; "
             f"the four configurations take turns in blocks of about {a['block_seconds']} s "
             f"for {st['rounds']} rounds in one process. `minibatch`: an exact OT plan per "
             "step's batch (scflow `coupling=\"minibatch\"`; TorchCFM "
             "`ExactOptimalTransportConditionalFlowMatcher`). `global`: one exact plan per "
             "interval solved once (setup column), pairs drawn from it (scflow "
             "`coupling=\"global\"`, `DiscretePlan.sample_pairs` on torch; TorchCFM given the "
             "plan: `OTPlanSampler(\"exact\").get_map` once, `sample_map` each step, which "
             "draws with `np.random.choice` over the flattened plan, then "
             "`ConditionalFlowMatcher`).", "",
             "| coupling | library | steps/s | blocks x steps | setup s |", "|---|---|---|---|---|"]
    for key, r in st["configs"].items():
        lib, coupling = key.split("/")
        lines.append(f"| {coupling} | {lib} | {r['steps_per_second']:.1f} | {r['blocks']} x "
                     f"{r['steps_per_block']} | {r['setup_seconds']:.2f} |")
    lines += ["", "| coupling | scflow steps/s / TorchCFM steps/s (median of rounds, IQR) |",
              "|---|---|"]
    for coupling, q in st["ratio"].items():
        lines.append(f"| {coupling} | {q['median']:.2f}x ({q['q1']:.2f} to {q['q3']:.2f}) |")
    sp = res["split"]
    runs = res["runs"]
    lines += ["", "### Time to a fixed validation W1", "",
              f"Test timepoint {sp['test']} is left out of training (bridged) and never scored "
              f"during it. {a['val_fraction']:.0%} of the cells of every kept timepoint are "
              "set aside (validation cells per timepoint: " + ", ".join(
                  f"{i}: {n}" for i, n in sp["validation"].items()) + "); both libraries "
              f"train {a['n_steps']} steps on the rest (batch 256 per interval, Adam 1e-3, "
              "sigma 0.1, each library's own MLP 64x3 SELU and loss). Every "
              f"{a['eval_every']} steps, off the clock, the raw weights and their EMA "
              f"({EMA}, ramped as `fit_flow` does) are scored on validation: mean over the "
              "kept intervals of the exact W1 between the validation cells of the earlier "
              "timepoint pushed (100 Euler steps) and those of the later one. Target: the "
              "largest final validation W1 of all runs of the seed (fixed on validation "
              "only; every run ends at or below it). Seconds: training only, plans included. "
              "Test W1: held-out cells of k-1 pushed, exact W1 against all cells of k, "
              "scored once after the last step, beside each time. The runs are sequential on "
              "a shared machine whose load varied (see the load averages above), so their "
              "seconds carry that noise; the step at which the target is reached does not, "
              "and the steps/s ratio above is the interleaved, load-fair one.", "",
              "| seed | coupling | library | weights | target val W1 | reached at step | "
              "seconds | total s | final val W1 | best val W1 (step) | final test W1 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for w in ("raw", "ema"):
            h, c = r[f"reach_{w}"], r["curve"]
            best = min(c, key=lambda e: e[f"val_{w}"])
            reach = "never | -" if h is None else f"{h['step']} | {h['seconds']:.1f}"
            lines.append(f"| {r['seed']} | {r['coupling']} | {r['library']} | "
                         f"{'EMA ' + str(EMA) if w == 'ema' else 'raw'} | {r['target']:.3f} | "
                         f"{reach} | {c[-1]['seconds']:.1f} | {c[-1][f'val_{w}']:.3f} | "
                         f"{best[f'val_{w}']:.3f} ({best['step']}) | {r[f'test_{w}']:.3f} |")
    lines += ["", "Seconds to the target, scflow / TorchCFM, same coupling and weights "
              "(below 1: scflow faster):", "", "| seed | coupling | raw | EMA |",
              "|---|---|---|---|"]
    for seed in dict.fromkeys(r["seed"] for r in runs):
        for coupling in ("minibatch", "global"):
            pair = {r["library"]: r for r in runs
                    if r["seed"] == seed and r["coupling"] == coupling}
            cells = []
            for w in ("raw", "ema"):
                h = [pair[lib][f"reach_{w}"] for lib in ("scflow", "torchcfm")]
                cells.append("-" if None in h else f"{h[0]['seconds'] / h[1]['seconds']:.2f}")
            lines.append(f"| {seed} | {coupling} | {cells[0]} | {cells[1]} |")
    checks = [r["fit_flow_check"] for r in runs if r["fit_flow_check"] is not None]
    lines += ["", f"scflow's loop here is `fit_flow`'s: its EMA weights after {CHECK_STEPS} "
              "steps equal those of `fit_flow(n_steps=" f"{CHECK_STEPS})` to a largest "
              f"absolute difference of {max(checks):.0e} (every scflow run)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
