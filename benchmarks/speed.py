"""Training, inference and evaluation speed; scflow beside TorchCFM in the same run.

Each measurement runs in a fresh process (spawn), so its peak resident memory is its own.
Ratios compare two things measured in the same run on the same machine. Run::

    SCFLOW_DATA_DIR=../shared/data python benchmarks/speed.py [--device cuda]

Writes ``benchmarks/results/speed.json`` and ``benchmarks/results/speed.md``
(``python benchmarks/report.py`` gathers the sections into ``BENCHMARKS.md``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _course(device: str):
    import scflow
    from scflow.timecourse import TimeCourse

    adata = scflow.datasets.emt_umap()
    return TimeCourse.from_arrays(adata.obsm["X_umap"], adata.obs["day"], whiten=True,
                                  device=device)


def train_steps(lib: str, method: str, batch_size: int, n_steps: int, device: str,
                coupling: str = "global") -> dict:
    """Seconds per training step (after a warm-up), EMT UMAP 3-D, 4 intervals."""
    import torch

    tc = _course(device)
    if lib == "scflow":
        from scflow.model import FlowModel
        from scflow.train import _intervals, _step_loss

        t0 = time.perf_counter()
        ivs = _intervals(tc, method, 0.1 if method != "sbcfm" else 0.5, coupling, None)
        setup = time.perf_counter() - t0
        model = FlowModel(tc.dim, score=method == "sbcfm").to(device)
        g = torch.Generator(device=device).manual_seed(0)

        def step():
            return _step_loss(model, ivs, batch_size, g)
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

        def step():
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

    def run(n):
        for _ in range(n):
            loss = step()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    run(20)
    t0 = time.perf_counter()
    run(n_steps)
    sec = (time.perf_counter() - t0) / n_steps
    return {"seconds_per_step": sec, "steps_per_second": 1 / sec, "setup_seconds": setup,
            "peak_rss_mb": _peak_mb()}


def inference(n_cells: int, dim: int, device: str) -> dict:
    import torch

    from scflow.integrate import integrate
    from scflow.model import FlowModel

    model = FlowModel(dim).to(device)
    x = torch.randn(n_cells, dim, device=device)
    integrate(model, x[:1000], 0.0, 1.0, n_steps=5)
    t0 = time.perf_counter()
    integrate(model, x, 0.0, 1.0, n_steps=100)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    return {"seconds": sec, "cell_steps_per_second": n_cells * 100 / sec,
            "peak_rss_mb": _peak_mb()}


def evaluation(n_cells: int) -> dict:
    import torch

    from scflow.metrics import wasserstein

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n_cells, 5, generator=g), torch.randn(n_cells, 5, generator=g) + 0.5
    t0 = time.perf_counter()
    wasserstein(x, y)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_mb()}


def _isolated(fn, *args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-steps", type=int, default=200)
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = args.device
    res: dict = {"device": dev, "machine": platform.processor() or platform.machine(),
                 "train": {}, "inference": {}, "evaluation": {}}
    if dev.startswith("cuda"):
        import torch
        res["device_name"] = torch.cuda.get_device_name(0)
    for bs in (256, 1024):
        for lib, method, coupling in [("scflow", "otcfm", "global"), ("scflow", "icfm", "global"),
                                      ("scflow", "otcfm", "minibatch"),
                                      ("torchcfm", "otcfm", "-"), ("torchcfm", "icfm", "-")]:
            key = f"{lib}/{method}/{coupling}/b{bs}"
            n = args.n_steps if lib == "scflow" and coupling == "global" else args.n_steps // 4
            res["train"][key] = _isolated(train_steps, lib, method, bs, n, dev, coupling)
            print(key, res["train"][key], flush=True)
    for n_cells, dim in ((100_000, 5), (100_000, 50)):
        res["inference"][f"{n_cells}x{dim}"] = _isolated(inference, n_cells, dim, dev)
    for n in (1000, 4000, 10000):
        res["evaluation"][str(n)] = _isolated(evaluation, n)
        print("W1", n, res["evaluation"][str(n)], flush=True)
    (out / "speed.json").write_text(json.dumps(res, indent=1))
    (out / "speed.md").write_text(markdown(res))
    print(markdown(res))


def markdown(res: dict) -> str:
    tr = res["train"]
    name = res.get("device_name", res["device"])
    lines = [f"### Speed on {name} ({res['machine']})", "",
             "Training step (EMT UMAP 3-D, 4 intervals, MLP 64x3; batch = pairs per interval):",
             "", "| batch | library | method | coupling | steps/s | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for key, r in tr.items():
        lib, method, coupling, b = key.split("/")
        lines.append(f"| {b[1:]} | {lib} | {method} | {coupling} | "
                     f"{r['steps_per_second']:.0f} | {r['peak_rss_mb']:.0f} |")
    lines.append("")
    for bs in (256, 1024):
        ours = tr[f"scflow/otcfm/global/b{bs}"]["seconds_per_step"]
        peer = tr[f"torchcfm/otcfm/-/b{bs}"]["seconds_per_step"]
        icfm = tr[f"scflow/icfm/global/b{bs}"]["seconds_per_step"]
        setup = tr[f"scflow/otcfm/global/b{bs}"]["setup_seconds"]
        lines.append(f"- batch {bs}: scflow OT-CFM is **{peer / ours:.1f}x** TorchCFM OT-CFM's "
                     f"steps/s (goal >= 5); coupling overhead scflow OT-CFM / I-CFM step time "
                     f"**{ours / icfm:.2f}** (goal <= 1.25); the global plans cost "
                     f"{setup:.1f} s once per fit.")
    lines += ["", "Inference (100 Euler steps, all cells at once):", "",
              "| cells x dims | seconds | cell-steps/s | peak RSS MB |", "|---|---|---|---|"]
    for key, r in res["inference"].items():
        lines.append(f"| {key} | {r['seconds']:.2f} | {r['cell_steps_per_second']:.2e} | "
                     f"{r['peak_rss_mb']:.0f} |")
    lines += ["", "Exact W1 (POT network simplex, 5-D, n x n cells):", "",
              "| cells | seconds | peak RSS MB |", "|---|---|---|"]
    for key, r in res["evaluation"].items():
        lines.append(f"| {key} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
