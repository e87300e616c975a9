"""When ``uotcfm``'s ``coupling="auto"`` should stop solving one global plan per interval.

``uotcfm`` trains on pairs of a :class:`~scflow.couplings.GrowthOT` plan: one plan per interval
between the whole populations (``"global"``, solved once before the first step), or one on
each step's minibatch of ``batch_size`` early and late cells (``"minibatch"``). The balanced
methods switch at :data:`scflow.training.loop.AUTO_GLOBAL_MAX_ENTRIES` cell pairs (a memory bound:
their exact plans are solved in seconds at that size), but the semi-relaxed Sinkhorn
iterations of a growth plan cost far more per cell pair, so at that bound a fit spent many
minutes in its first plan before step 1 (issue 27: 2 x 5000 cells, over 600 s).

Measured here, in one process, on two Gaussian populations of ``n`` cells each (a shifted
and a wider one, whitened units, seeded), in 2 and 10 dimensions: the seconds of one global
solve at ``n x n`` and of one minibatch step's solve at 256 x 256 (mean of ``REPEATS``), and
so how many minibatch steps one global solve costs, and its cost per cell pair over a
minibatch plan's. ``uotcfm``'s auto rule (registry ``global_cost``,
:data:`scflow.methods.uotcfm.GROWTH_GLOBAL_COST`) takes the global plan while it costs less than
the run's minibatch plans: ``GROWTH_GLOBAL_COST * n * m <= n_steps * batch_size**2``.
Found: both are slow (thousands of log-domain iterations at reg 0.1), and a 3000-step run's
minibatch plans cost more than one global plan up to the memory bound (5000 x 5000 cells);
a short run on many cells (issue 27's 10 steps on 2 x 5000) goes minibatch.

Run::

    OMP_NUM_THREADS=1 python benchmarks/growth_coupling.py

Writes ``benchmarks/results/growth_coupling.json`` and ``.md``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SIZES = {2: (500, 1000, 2000), 10: (250, 500, 1000)}
BATCH = 256
REPEATS = 5


def _populations(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, dim, generator=g, dtype=torch.float64)
    x1 = 1.3 * torch.randn(n, dim, generator=g, dtype=torch.float64) + 0.5
    return x0, x1


def _seconds(coupling, x0, x1) -> tuple[float, float]:
    start = time.perf_counter()
    _, _, err = coupling.solve(x0, x1, (1.0, 2.0))
    return time.perf_counter() - start, float(err)


def main() -> int:
    from scflow.couplings import GrowthOT
    from scflow.growth.data import scaled
    from scflow.methods.uotcfm import DEFAULT_REG, DEFAULT_REG_M

    torch.set_num_threads(1)
    rows = []
    for dim, sizes in SIZES.items():
        b0, b1 = _populations(BATCH, dim, seed=1)
        coupling = scaled(GrowthOT(reg=DEFAULT_REG, reg_m=DEFAULT_REG_M), b0, b1)
        step = [_seconds(coupling, *_populations(BATCH, dim, seed=10 + r))[0]
                for r in range(REPEATS)]
        per_step = sum(step) / len(step)
        for n in sizes:
            x0, x1 = _populations(n, dim, seed=0)
            seconds, err = _seconds(scaled(GrowthOT(reg=DEFAULT_REG, reg_m=DEFAULT_REG_M),
                                           x0, x1), x0, x1)
            rows.append({"dim": dim, "n": n, "pairs": n * n, "global_seconds": seconds,
                         "global_err": err, "minibatch_step_seconds": per_step,
                         "steps_per_global": seconds / per_step})
            print(rows[-1], flush=True)
    out = {"machine": platform.platform(), "python": sys.version.split()[0],
           "torch_threads": 1, "batch": BATCH, "rows": rows}
    (HERE / "results" / "growth_coupling.json").write_text(json.dumps(out, indent=1))
    (HERE / "results" / "growth_coupling.md").write_text(markdown(out))
    return 0


def markdown(out: dict) -> str:
    """The table of a result (``growth_coupling.json``)."""
    rows = out["rows"]
    lines = ["## uotcfm: one global growth plan against minibatch plans",
             "", "`OMP_NUM_THREADS=1 python benchmarks/growth_coupling.py` (one CPU thread; "
             "GrowthOT at uotcfm's defaults, reg 0.1, reg_m 1 x the mean cost)", "",
             "| dims | cells per population | cell pairs | global solve (s) | minibatch "
             "step (s, 256 x 256) | steps one global solve costs | cost per pair, global / "
             "minibatch |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dim']} | {r['n']} | {r['pairs']:,} | {r['global_seconds']:.1f} | "
              f"{r['minibatch_step_seconds']:.2f} | {r['steps_per_global']:.0f} | "
              f"{r['steps_per_global'] * out['batch'] ** 2 / r['pairs']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
