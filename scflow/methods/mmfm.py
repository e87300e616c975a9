"""Multi-marginal flow matching: trajectories through every kept timepoint, drawn by
chaining the exact OT plans, on a cubic spline in time through the cells drawn
(:class:`~scflow.paths.SplinePath`; Rohbeck et al., ICLR 2025)."""

from __future__ import annotations

from ..couplings import ExactOT
from ..training.data import chain_data
from ..training.registry import PROTOCOLS, NeuralMethod, register

__all__ = ["MMFM"]


@register
class MMFM(NeuralMethod):
    name = "mmfm"
    shape = "chain"
    summary = "trajectories through chained exact OT plans, splines (multi-marginal)"
    default_sigma = 0.1
    plan_bytes = 42
    global_only = True
    protocols = PROTOCOLS
    order = 20
    candidates = ({}, {"window": 1})
    params = ("spline", "window")
    coupling = ExactOT

    def training_data(self, tc, config, *, holdout, coupling, cache, inputs,
                      random_state=0, progress=None):
        return chain_data(tc, config.sigma, holdout, coupling=self.coupling(),
                          spline=config.spline, window=config.window, cache=cache)

    def meta(self, config, inputs, data):
        return {"spline": config.spline,
                "window": -1 if config.window is None else int(config.window)}
