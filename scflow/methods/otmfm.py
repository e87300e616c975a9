"""OT-MFM: exact OT pairs on learned interpolants that stay near the cells (metric flow
matching, Kapusniak et al. 2024).

Before the field is trained, each kept interval gets a data-dependent metric built from
the cells of its two ends only (the held-out timepoint never: a bridged interval reads its
two neighbours), :data:`N_PAIRS` pairs are drawn from its OT plan (the global exact plan,
or minibatch plans as the fit's ``coupling`` says), and one geodesic interpolant network
for the whole course is trained to lower the metric's kinetic energy along them
(:func:`scflow.paths.metric.train_interpolant`). The field is then regressed onto the
interpolants' velocities at OT-CFM's path noise (:func:`scflow.paths.metric.sample`). With
an interpolant that stays straight (a flat metric, or none trained) every step's draws are
OT-CFM's, bit for bit (``tests/methods/test_otmfm.py``).

The metric and its bandwidth (:data:`METRIC`, :data:`METRIC_PARAMS`) were chosen on a
development simulation (``datasets.simulate(random_state=1)``, never a reported table:
``benchmarks/metric_flow.py --stage choose``); the interpolant network, its optimiser and
batch are the paper's (:mod:`scflow.paths.metric`).
"""

from __future__ import annotations

import torch

from .._progress import Progress
from ..paths.metric import (
    INTERPOLANT_LR,
    INTERPOLANT_STEPS,
    GeodesicInterpolant,
    IntervalPairs,
    build_metric,
    sample,
    train_interpolant,
)
from ..training.data import Batch, PairData, pair_data
from ..training.registry import NeuralMethod, register
from .otcfm import DEFAULT_SIGMA, otcfm

__all__ = ["OTMFM", "MetricPairData", "METRIC", "METRIC_PARAMS", "N_PAIRS",
           "MAX_METRIC_CELLS"]

#: the metric of every interval (:func:`scflow.paths.metric.build_metric`) and its
#: parameters (``{}``: the paper's RBF defaults, 100 k-means centres, ``kappa`` 1, ``eps``
#: 1e-3, ``alpha`` 1), chosen on the development simulation (``benchmarks/metric_flow.py
#: --stage choose``: mean W1 over its hold-outs 0.657 against 0.657 for LAND at half the
#: cells' 10th-neighbour spacing, 0.664 for OT-CFM, 0.82 to 1.02 for wider LAND bandwidths
#: or a larger learning rate; ``benchmarks/results/metric_flow_choose.json``)
METRIC = "rbf"
METRIC_PARAMS: dict = {}
#: pairs drawn per interval to train the interpolant on, and the cells (at most, a uniform
#: subsample above) each interval's metric is built from (LAND's cost is batch x cells)
N_PAIRS, MAX_METRIC_CELLS = 8192, 4000


class MetricPairData(PairData):
    """OT-CFM's pairs per interval, on the learned interpolant ``phi`` (``None``: straight
    lines, OT-CFM's draws)."""

    def __init__(self, intervals, phi: GeodesicInterpolant | None, sigma: float,
                 energy_ratio: float) -> None:
        super().__init__(intervals, score=False)
        self.phi, self.sigma, self.energy_ratio = phi, sigma, energy_ratio

    def batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        ts, xts, uts = [], [], []
        for iv in self.intervals:
            x0, x1 = iv.draw(batch_size, generator)
            ms = sample(self.phi, x0, x1, iv.t0, iv.t0 + iv.span, sigma=self.sigma,
                        generator=generator)
            ts.append(ms.t)
            xts.append(ms.xt)
            uts.append(ms.ut)
        return Batch(torch.cat(ts), torch.cat(xts), torch.cat(uts))


def interpolant_for(tc, intervals, *, sigma: float, random_state: int,
                    metric: str = METRIC, metric_params: dict | None = None,
                    n_steps: int | None = None, lr: float | None = None,
                    batch_size: int | None = None, progress: bool | None = False
                    ) -> tuple[GeodesicInterpolant, float]:
    """The interpolant of a fit: each kept interval's metric from the cells of its two
    ends (the held-out timepoint is in none: ``intervals`` are
    :func:`scflow.training.data.pair_data`'s, a bridged one holds its neighbours), pairs
    from its plan,
    :func:`~scflow.paths.metric.train_interpolant` (``n_steps``, ``lr``, ``batch_size``:
    ``None`` reads its defaults); and the energy ratio to straight lines
    over its last 100 steps (below 1: the interpolants found cheaper paths)."""
    dev = tc.xs[0].device
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    metrics, pairs = [], []
    for iv in intervals:
        cells = torch.cat([iv.x0, iv.x1])
        if len(cells) > MAX_METRIC_CELLS:
            cells = cells[torch.randperm(len(cells), generator=g, device=dev)
                          [:MAX_METRIC_CELLS]]
        metrics.append(build_metric(metric, cells, random_state=random_state,
                                    **(METRIC_PARAMS if metric_params is None
                                       else metric_params)))
        drawn = [iv.draw(min(N_PAIRS, 1024), g) for _ in range(-(-N_PAIRS // 1024))]
        x0 = torch.cat([d[0] for d in drawn])[:N_PAIRS]
        x1 = torch.cat([d[1] for d in drawn])[:N_PAIRS]
        pairs.append(IntervalPairs(x0, x1, iv.t0, iv.t0 + iv.span))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        phi = GeodesicInterpolant(tc.dim, t_range=(float(tc.times[0]), float(tc.times[-1])))
    phi.to(dev)
    n_steps = INTERPOLANT_STEPS if n_steps is None else n_steps
    with Progress(total=n_steps, desc="scflow otmfm interpolant", enabled=progress) as bar:
        ratios = train_interpolant(phi, metrics, pairs, n_steps=n_steps, lr=lr,
                                   batch_size=batch_size, sigma=sigma, generator=g,
                                   progress=bar.update)
    for p in phi.parameters():
        p.requires_grad_(False)
    return phi, float(ratios[-100:].mean())


@register
class OTMFM(NeuralMethod):
    name = "otmfm"
    summary = "exact OT pairs on learned interpolants that stay near the cells (OT-MFM)"
    default_sigma = DEFAULT_SIGMA
    plan_bytes = 42
    #: in the leave-one-out tables by default; the roll-outs take it when named
    protocols = ("leave_one_out",)
    order = 15
    candidates = ({},)
    params = ("interpolant_energy",)
    #: the metric and the interpolant's training (a variant is a subclass that changes them)
    metric: str = METRIC
    metric_params: dict = METRIC_PARAMS
    interpolant_steps: int = INTERPOLANT_STEPS
    interpolant_lr: float = INTERPOLANT_LR

    def training_data(self, tc, config, *, holdout, coupling, cache, inputs,
                      random_state=0, progress=None):
        sigma = config.sigma
        data = pair_data(tc, lambda span: otcfm(sigma), coupling, holdout, cache=cache)
        phi, ratio = interpolant_for(tc, data.intervals, sigma=sigma,
                                     random_state=random_state, metric=self.metric,
                                     metric_params=self.metric_params,
                                     n_steps=self.interpolant_steps, lr=self.interpolant_lr,
                                     progress=progress)
        return MetricPairData(data.intervals, phi, sigma, ratio)

    def meta(self, config, inputs, data) -> dict:
        return {"interpolant_energy": float(data.energy_ratio), "metric": self.metric,
                "interpolant_steps": int(self.interpolant_steps),
                "interpolant_lr": float(self.interpolant_lr),
                **{f"metric_{k}": v for k, v in self.metric_params.items()}}
