"""``uotcfm``: a velocity field and a growth field, trained together without simulation.

In the spirit of unbalanced flow matching (UOT-FM, Eyring et al. 2024: pairs from an
unbalanced plan) and velocity-growth flow matching (VGFM, 2025); DeepRUOT and Var-RUOT learn
a velocity and a growth by simulating the dynamics instead. For each kept interval ``a -> b`` the
:class:`~scflow.growth.GrowthOT` plan between the two populations, weighted by their masses
(:func:`~scflow.growth.population_masses`), gives every pair ``(i, j)`` a mass and every
early cell ``i`` its number of descendants ``r_i``. Each step draws ``batch_size`` pairs per
interval from the plan (one global plan per interval, or, with ``coupling="minibatch"`` or
``"auto"`` on large data, the plan of the step's minibatch: :mod:`scflow.growth.data`), a
time ``s`` on the straight path between them (with ``sigma`` noise, as OT-CFM), and
regresses

* the velocity ``v(t, x_t)`` on ``(x1 - x0) / span`` (OT-CFM's target), and
* the growth ``g(t, x_t)`` on ``log r_i / span``, the log-mass change along the pair per
  unit of model time,

with loss ``|v - u|^2 + growth_weight (g - log r / span)^2``. Integrating ``d log w / dt =
g(t, x)`` beside ``dx / dt = v`` (:func:`scflow.integrate` with ``log_weights=True``)
carries each cell's weight. Pairs are drawn in proportion to the plan, the mass they carry
at the later time.

It trains in the one training loop (:func:`scflow.fit_flow`: checkpoints, the learning-rate
schedule, distributed training and the progress bar as every method): its draws are
:class:`~scflow.growth.data.GrowthData`, its loss :meth:`UOTCFM.loss`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import torch
from torch import Tensor

from .._settings import logger
from ..couplings import GrowthOT, population_masses
from ..flow.timecourse import TimeCourse
from ..growth.data import GrowthData, growth_intervals, interval_priors, minibatch_growth_intervals
from ..paths import LinearPath
from ..training.registry import NeuralMethod, register

__all__ = ["UOTCFM", "DEFAULT_REG", "DEFAULT_REG_M", "DEFAULT_GROWTH_WEIGHT",
           "GROWTH_GLOBAL_COST", "check_prior", "check_prior_times"]

#: the entropic blur of the plan, in units of the squared distance of whitened data: the
#: default of :class:`~scflow.couplings.GrowthOT` (set before any measurement, not tuned)
DEFAULT_REG = next(f.default for f in fields(GrowthOT) if f.name == "reg")
#: how strongly each early cell is held to the mean growth of its population (see
#: :class:`~scflow.couplings.GrowthOT`), in units of each interval's mean squared distance
#: (:func:`~scflow.couplings.mean_cost`): chosen on a simulation with a known growth, never on
#: a reported timepoint (``benchmarks/growth.py sim``: leave-one-out W1 over its interior
#: timepoints and the error of the learned rate, both best at 1 of 0.1 / 0.3 / 1 / 3 / 10 in
#: 2-D; in 10-D, where the absolute penalty's best moved from 3 to 10, 1 is within 0.003 of
#: the best rate error)
DEFAULT_REG_M = 1.0
#: weight of the growth loss beside the velocity loss
DEFAULT_GROWTH_WEIGHT = 1.0
#: a global GrowthOT plan's cost per cell pair over a 256 x 256 minibatch plan's, measured
#: in one run (``benchmarks/growth_coupling.py``, one CPU thread): 1.0 / 1.2 / 2.6 at 500 /
#: 1000 / 2000 cells per population in 2-D, 0.8 / 1.1 at 500 / 1000 in 10-D (4.2 at 250,
#: 46 s against 11 s a step on a loaded machine); 3 covers the sizes where the choice falls
#: (a run of 3000 steps keeps global plans up to the memory bound)
GROWTH_GLOBAL_COST = 3.0


def check_prior(tc: TimeCourse, growth_prior: Sequence) -> list[Tensor]:
    """``growth_prior`` as one float64 tensor per timepoint, of its number of cells."""
    if isinstance(growth_prior, (str, bytes)) or len(growth_prior) != tc.n_timepoints:
        raise ValueError(f"growth_prior must hold one array of rates per timepoint "
                         f"({tc.n_timepoints}), got {type(growth_prior).__name__}")
    out = []
    for k, (rates, x) in enumerate(zip(growth_prior, tc.xs, strict=True)):
        r = torch.as_tensor(np.asarray(rates, dtype=np.float64))
        if r.shape != (len(x),) or not bool(torch.isfinite(r).all()):
            raise ValueError(f"growth_prior[{k}] must hold one finite rate per cell of "
                             f"timepoint {k} ({len(x)}), got shape {tuple(r.shape)}")
        out.append(r)
    return out


def check_prior_times(tc: TimeCourse, prior_times: Sequence[float] | None) -> list[float]:
    if prior_times is None:
        return [float(t) for t in tc.times]
    times = [float(t) for t in prior_times]
    if len(times) != tc.n_timepoints or not all(np.isfinite(times)) or any(
            b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"prior_times must hold one finite, increasing time per timepoint "
                         f"({tc.n_timepoints}), got {prior_times!r}")
    return times



@register
class UOTCFM(NeuralMethod):
    """Growth-aware OT-CFM (see the module).

    Inputs: ``mass`` (``None`` or ``"counts"``: the numbers of cells; ``"none"``: equal
    masses, growth from the shapes alone; or one number > 0 per timepoint), which set each
    interval's mean growth ``log(m1 / m0)`` (the semi-relaxed plan only scales with them);
    ``growth_prior`` (one array of prior growth rates per timepoint, per unit of
    ``prior_times``, default model time), which pulls each plan's rows towards
    ``exp(rate * length)``. Options (:class:`~scflow.TrainConfig`): ``reg`` (default
    :data:`DEFAULT_REG`), ``reg_m`` (:data:`DEFAULT_REG_M`, in units of each interval's mean
    squared distance), ``growth_weight`` (:data:`DEFAULT_GROWTH_WEIGHT`).
    """

    name = "uotcfm"
    summary = "growth-aware OT-CFM: a velocity and a growth field from unbalanced plans"
    default_sigma = 0.1
    learns_growth = True
    takes_mass = True
    global_cost = GROWTH_GLOBAL_COST
    order = 50
    params = ("masses", "growth_from", "growth_prior", "reg", "reg_m", "growth_weight")

    def inputs(self, tc: TimeCourse, *, mass=None, growth_prior=None, prior_times=None,
               holdout: int | None = None) -> dict:
        mass = "counts" if mass is None else mass
        masses = population_masses([len(x) for x in tc.xs], mass)
        growth_from = ("counts" if isinstance(mass, str) and mass == "counts" else
                       "shape" if isinstance(mass, str) else "mass")
        if growth_from == "shape":
            logger.info("uotcfm: equal population masses (mass='none'): growth is learned "
                        "from the shapes of the populations alone")
        priors = None
        if growth_prior is not None:
            priors = interval_priors(check_prior(tc, growth_prior),
                                     check_prior_times(tc, prior_times), holdout)
        elif prior_times is not None:
            raise ValueError("prior_times is read with growth_prior only")
        return {"masses": masses, "growth_from": growth_from, "priors": priors}

    @staticmethod
    def options(config) -> tuple[float, float, float]:
        """``(reg, reg_m, growth_weight)`` of ``config``, defaults filled in."""
        return (DEFAULT_REG if config.reg is None else config.reg,
                DEFAULT_REG_M if config.reg_m is None else config.reg_m,
                DEFAULT_GROWTH_WEIGHT if config.growth_weight is None else config.growth_weight)

    def training_data(self, tc, config, *, holdout, coupling, cache, inputs,
                      random_state=0, progress=None):
        reg, reg_m, _ = self.options(config)
        solver = GrowthOT(reg=reg, reg_m=reg_m)
        masses, priors = inputs["masses"], inputs["priors"]
        intervals = (growth_intervals(tc, masses, solver, holdout, cache, priors)
                     if coupling == "global" else
                     minibatch_growth_intervals(tc, masses, solver, holdout, priors))
        return GrowthData(intervals, LinearPath(config.sigma))

    def loss(self, out, batch, config):
        v_loss = (out.velocity - batch.ut).pow(2).sum(1).mean()
        g_loss = (out.growth - batch.growth).pow(2).mean()
        return v_loss + self.options(config)[2] * g_loss, {"growth_loss": g_loss}

    def meta(self, config, inputs, data):
        reg, reg_m, weight = self.options(config)
        return {"masses": np.asarray(inputs["masses"], dtype=np.float64),
                "growth_from": inputs["growth_from"],
                "growth_prior": inputs["priors"] is not None, "reg": float(reg),
                "reg_m": float(reg_m), "growth_weight": float(weight)}

    def fingerprint(self, inputs) -> dict:
        out = {"masses": [float(m) for m in inputs["masses"]]}
        if inputs["priors"] is not None:
            h = hashlib.sha256()
            for p in inputs["priors"]:
                h.update(np.ascontiguousarray(torch.as_tensor(p).cpu().numpy()).tobytes())
            out["growth_prior_sha256"] = h.hexdigest()
        return out
