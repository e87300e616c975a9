"""Train one velocity field across every consecutive interval of a time course.

Each step draws ``batch_size`` pairs from each interval's coupling, maps each interval's
local path time ``s in [0, 1]`` to model time ``t = t_a + s (t_b - t_a)`` (the target
velocity is divided by the span), and takes one Adam step on the mean loss over all pairs.
A held-out timepoint ``k`` is skipped: ``k - 1 -> k + 1`` becomes one interval.

With ``coupling="global"`` each interval's plan is solved once between the whole
populations and pairs are drawn from it on the device at every step, so OT-CFM costs what
I-CFM costs per step; ``"minibatch"`` solves a plan on each step's batch (TorchCFM);
``"auto"`` (the default) is global while the plans' set-up fits a fixed memory budget
(:data:`AUTO_GLOBAL_MAX_ENTRIES`), minibatch above.

Every method trains here: a registered :class:`~scflow.methods.NeuralMethod` says what is
drawn at each step (:meth:`~scflow.methods.NeuralMethod.training_data`: pairs per interval,
whole trajectories, growth targets) and what is minimised
(:meth:`~scflow.methods.NeuralMethod.loss` over the model's outputs: velocity, score,
growth); the loop brings the rest to every method alike: the optimiser and its schedule, the
weight average, the divergence checks, checkpoints and resume, data-parallel training and
the progress bar.

A loss that stops being finite (or explodes) stops training with a
:class:`TrainingDivergedError`; nothing is returned or checkpointed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from .._errors import TrainingDivergedError
from .._progress import Progress
from .._settings import logger
from .._threads import while_training
from ..couplings import PlanCache
from ..flow.model import FlowModel
from ..flow.timecourse import TimeCourse
from . import distributed as _dist
from . import registry as _methods
from .checkpoint import Checkpointer, fit_config
from .config import MAX_STEPS, TrainConfig
from .data import Outputs, TrainingData, kept_intervals

__all__ = ["fit_flow", "step_loss", "training_data", "resolve_device", "resolve_coupling",
           "check_data", "check_losses", "TrainingDivergedError", "MAX_STEPS",
           "AUTO_GLOBAL_MAX_ENTRIES"]

#: ``coupling="auto"`` (the default): the global plans while every interval's ``n x m``
#: holds at most this many cell pairs, minibatch OT above (memory O(batch^2) per step, flat in
#: the number of cells). 25M pairs (5000 x 5000 cells) is a set-up of about 1 GB for exact OT
#: (1.6 GB for Sinkhorn, see each method's ``plan_bytes``; solving times in BENCHMARKS.md,
#: "Scale"): every data set of the benchmarks resolves to global (the largest interval,
#: Weinreb's 3781 x 5788 = 21.9M pairs), so their published tables do not change, while
#: 20,000 x 20,000 cells (400M pairs) or LARRY's 20,000 x 38,000 resolve to minibatch. The
#: choice depends on the numbers of cells only, not on the memory free at the time, so a call
#: trains the same model on every machine.
AUTO_GLOBAL_MAX_ENTRIES = 25_000_000
#: below this many cell pairs a global plan is solved in seconds (a growth plan of 1000 x
#: 1000 cells: 26 s in 2-D, ``benchmarks/growth_coupling.py``), and a minibatch solve costs
#: its iterations more than its size: the cost rule of ``coupling="auto"`` starts above it
AUTO_COST_MIN_ENTRIES = 1_000_000
#: training checks its losses for divergence every this many steps (one device sync), at
#: every checkpoint and at the end
DIVERGENCE_CHECK_EVERY = 100

#: a finite loss above this many times the first step's loss (or 1, if larger) counts as
#: divergence too
EXPLODE_FACTOR = 1e12
_D = TrainConfig()  # the defaults of the keyword options


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or another torch "
                         f"device, got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but CUDA is not available")
    return device


def _available_memory(dev: torch.device) -> int | None:
    """Bytes of memory available for the global set-up (host, and the GPU's free memory on
    CUDA, the smaller); ``None`` when it cannot be told."""
    host = None
    try:
        import psutil

        host = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        host = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        host = int(free) if host is None else min(host, int(free))
    return host


def _largest_interval(tc: TimeCourse, holdout: int | None) -> tuple[int, int, int, int]:
    """``(a, b, n, m)``: the kept interval ``a -> b`` with the most cell pairs ``n * m``."""
    pairs = [(a, b, len(tc.xs[a]), len(tc.xs[b]))
             for a, b in kept_intervals(tc.n_timepoints, holdout)]
    return max(pairs, key=lambda p: p[2] * p[3])


def resolve_coupling(coupling: str, method: str, tc: TimeCourse, holdout: int | None,
                     dev: torch.device, *, n_steps: int | None = None,
                     batch_size: int | None = None) -> str:
    """The coupling mode used; refuses global plans that will not fit in memory.

    ``"auto"`` is ``"global"`` while the largest interval holds at most
    :data:`AUTO_GLOBAL_MAX_ENTRIES` cell pairs, else ``"minibatch"``: a choice made from the
    numbers of cells alone, so the same call trains the same model on every machine (and
    every process of a distributed run agrees). A method registered with a
    ``global_cost`` (``uotcfm``, whose plans are slow to solve) also needs the global plan,
    above :data:`AUTO_COST_MIN_ENTRIES` pairs, to cost less than the run's minibatch plans:
    ``global_cost * n * m <= n_steps * batch_size**2`` (a short run on many cells goes
    minibatch). Global plans (asked for, or
    chosen by
    ``"auto"``) whose set-up, estimated with the method's ``plan_bytes``, is larger than
    the memory available are refused with a ``ValueError`` before any plan is solved. I-CFM
    solves no plan: nothing to estimate.
    """
    if coupling == "minibatch":
        return coupling
    a, b, n, m = _largest_interval(tc, holdout)
    asked = f"coupling={coupling!r}" + (" (global plans here)" if coupling == "auto" else "")
    if coupling == "auto":
        coupling = "global" if n * m <= AUTO_GLOBAL_MAX_ENTRIES else "minibatch"
        why = f"global plans up to {AUTO_GLOBAL_MAX_ENTRIES:,} pairs"
        cost = _methods.get(method).global_cost
        if (cost is not None and n_steps is not None and batch_size is not None
                and n * m > AUTO_COST_MIN_ENTRIES):
            budget = n_steps * batch_size**2
            why += (f", and above {AUTO_COST_MIN_ENTRIES:,} pairs while {cost:g} x n x m "
                    f"<= n_steps x batch_size^2 = {budget:,}")
            if cost * n * m > budget:
                coupling = "minibatch"
        logger.info(f"coupling='auto' uses {coupling!r}: the largest interval, {a}->{b}, holds "
                    f"{n} x {m} cells ({why})")
        if coupling == "minibatch":
            return coupling
    need = _methods.get(method).plan_bytes * n * m
    avail = _available_memory(dev) if need else None
    if avail is not None and need > avail:
        raise ValueError(f"{asked} needs about {need / 1e9:.1f} GB for the {n} x {m} plan of "
                         f"interval {a}->{b}, more than the {avail / 1e9:.1f} GB available; use "
                         "coupling='minibatch', or subsample the cells")
    return coupling


#: beyond this magnitude the squared distances of the loss overflow float32
_MAX_ABS_VALUE = 1e18


#: the widest spread (RMS of the per-dimension std, model units) training follows: beyond it
#: Adam's squared gradients overflow float32 and the weights stop moving, silently
MAX_SPREAD = 1e8
#: path noise above this many times the cells' spread hides the data: refused (above once
#: the spread: a warning)
MAX_NOISE_RATIO = 10.0


def _check_scale(tc: TimeCourse, sigma: float, holdout: int | None = None) -> None:
    """The kept cells' spread in model units (1 when whitened) within what training can
    follow, and ``sigma`` (in those units) not far above it; a ``ValueError`` naming the way
    out."""
    x = torch.cat([c for r, c in enumerate(tc.xs) if r != holdout]).to(torch.float64)
    spread = float(x.std(0).pow(2).mean().sqrt()) if len(x) > 1 else 0.0
    unwhitened = "with whiten=False the model works in use_rep's units"
    if spread > MAX_SPREAD:
        raise ValueError(f"the cells spread over {spread:.3g} (RMS std) in the model's units, "
                         f"beyond {MAX_SPREAD:g}: training in float32 cannot follow (Adam's "
                         f"squared gradients overflow and the weights stop moving); "
                         f"{unwhitened}: pass whiten=True or rescale the representation")
    if spread > 0 and sigma > spread:
        msg = (f"sigma={sigma:g} is {sigma / spread:.3g} times the cells' spread ({spread:.3g}, "
               f"RMS std in the model's units): the path noise hides the data; {unwhitened}: "
               f"pass whiten=True, a sigma below {spread:.3g}, or rescale the representation")
        if sigma > MAX_NOISE_RATIO * spread:
            raise ValueError(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)


def check_data(tc: TimeCourse, sigma: float | None = None,
               holdout: int | None = None) -> None:
    """Every population finite in float32, and small enough that its squares are too; with
    ``sigma``, the scale checks of :func:`_check_scale`."""
    for k, x in enumerate(tc.xs):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"the cells of timepoint {k} hold values that are not finite in "
                             "float32 (NaN or inf, or beyond float32's range of 3.4e38); "
                             "rescale the data or use whiten=True")
        top = float(x.abs().max()) if x.numel() else 0.0
        if top > _MAX_ABS_VALUE:
            raise ValueError(f"the cells of timepoint {k} hold values up to {top:.3g}: their "
                             "squared distances overflow float32 and the loss would not be "
                             f"finite (|x| must stay below {_MAX_ABS_VALUE:g}); use whiten=True "
                             "(TimeCourse.from_arrays, tl.fit) or rescale the data")
    if sigma is not None:
        _check_scale(tc, sigma, holdout)


def check_losses(losses: Tensor, lo: int, hi: int, n_steps: int, lr: float) -> None:
    """Raise :class:`TrainingDivergedError` at the first step of ``lo..hi`` whose loss is not
    finite or exploded (more than :data:`EXPLODE_FACTOR` times the first's, or 1)."""
    seg = losses[lo:hi]
    limit = EXPLODE_FACTOR * torch.clamp(losses[0].abs(), min=1.0)
    bad = ~torch.isfinite(seg) | (seg > limit)
    if not bool(bad.any()):  # the one device sync of a check
        return
    first = lo + int(bad.nonzero()[0, 0])
    value = float(losses[first])
    what = ("not finite" if not math.isfinite(value) else
            f"more than {EXPLODE_FACTOR:g} times the first step's loss, {float(losses[0]):.4g}")
    raise TrainingDivergedError(
        f"training diverged: the loss was {value:.4g} ({what}) at step {first + 1} of "
        f"{n_steps}; try a smaller lr than {lr:g} (e.g. {lr / 10:g}), whiten=True, or check "
        "the data's scale", step=first + 1, loss=value)


@while_training
def fit_flow(tc: TimeCourse, method: str | None = None, *, holdout: int | None = None,
             n_steps: int = _D.n_steps, batch_size: int = _D.batch_size, lr: float = _D.lr,
             sigma: float | None = _D.sigma, hidden: Sequence[int] = _D.hidden,
             activation: str = _D.activation, coupling: str = _D.coupling,
             device: str | torch.device = "auto", random_state: int = 0,
             lr_schedule: str = _D.lr_schedule, ema: float | None = _D.ema,
             progress: bool | None = None, checkpoint: str | None = None,
             checkpoint_every: int = 500, spline: str = _D.spline,
             window: int | None = _D.window, distributed: bool | None = None,
             config: TrainConfig | None = None, plan_cache: PlanCache | None = None,
             reg: float | None = _D.reg, reg_m: float | None = _D.reg_m,
             growth_weight: float | None = _D.growth_weight, mass=None,
             growth_prior: Sequence | None = None,
             prior_times: Sequence[float] | None = None) -> FlowModel:
    """Fit a :class:`FlowModel` on a time course.

    Parameters
    ----------
    tc
        The time course (cells per timepoint, model times).
    method
        A registered neural method (:func:`scflow.methods.names` with ``kind="neural"``;
        ``None``: the default, :func:`scflow.methods.default_fit_method`): e.g. OT-CFM,
        SB-CFM, I-CFM, multi-marginal flow matching (trajectories through every kept
        timepoint, a :class:`~scflow.paths.SplinePath` through them) or growth-aware OT-CFM
        (a velocity and a growth field, :mod:`scflow.methods.uotcfm`).
    holdout
        Index of a timepoint to leave out (interior only); its neighbours are bridged.
    n_steps, batch_size, lr
        Adam steps, pairs drawn per interval per step, learning rate.
    sigma
        Path noise (OT-/I-CFM) or Brownian diffusion (SB-CFM); default per method.
    hidden, activation
        MLP widths and activation.
    coupling
        ``"global"`` (one plan per interval, solved once), ``"minibatch"`` (a plan on
        each step's batch: memory O(batch^2), flat in the number of cells) or ``"auto"``
        (default: global while every interval's ``n x m`` is at most
        :data:`AUTO_GLOBAL_MAX_ENTRIES`, minibatch above; the choice is logged and kept in
        ``meta["coupling"]``). Global plans whose set-up will not fit in the memory
        available are refused before anything is solved.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``... (under ``torchrun``, ``cuda`` is the GPU
        ``LOCAL_RANK``).
    random_state
        Seed of the weights and of every draw.
    lr_schedule
        ``"constant"`` or ``"cosine"`` (annealed to 1% of ``lr`` over ``n_steps``).
    ema
        Keep an exponential moving average of the weights with this decay (e.g. 0.999)
        and return it (the default, chosen as the README's "The engine" says); ``None``
        returns the last weights.
    progress
        Show progress (default: at ``scflow.settings.verbosity >= 1``): a bar in a terminal
        or notebook, a line every 10% of the steps when output goes to a log or a pipe.
    checkpoint, checkpoint_every
        A file to save the training state to every ``checkpoint_every`` steps (and at the
        end), atomically; if it exists, training resumes from it, and gives the same weights
        as an uninterrupted run. A checkpoint of another configuration (data, method,
        seed, ``n_steps``, ``batch_size``, ``lr``...) is refused with a ``ValueError``.
    spline, window
        ``mmfm`` only: the spline kind (``"natural"`` or ``"pchip"``) and its window (knots
        on each side of a segment; ``None``: all).
    distributed
        Data-parallel training over a ``torch.distributed`` process group
        (:mod:`scflow.training.distributed`): every process holds the same global plans and draws
        the same global batch, and computes the loss on its equal slice of it; gradients
        are averaged, so the run follows the single-process one. ``None`` (default): when
        a group of more than one process is initialised; ``True``: initialise it from
        ``torchrun``'s variables if needed. ``batch_size`` must be divisible by the
        number of processes. Only rank 0 writes the checkpoint.
    config
        The training options as one :class:`~scflow.TrainConfig`, instead of the
        keywords ``n_steps`` ... ``window`` (which must then be left at their defaults).
    plan_cache
        A :class:`~scflow.couplings.PlanCache` to take global plans from (and keep the
        ones solved here); the protocols share one across seeds and methods.
    mass, growth_prior, prior_times
        Inputs of growth-aware methods (``takes_mass``; refused by the others): the
        population sizes (``None`` or ``"counts"``: the numbers of cells; ``"none"``: equal
        masses; or one number > 0 per timepoint), a prior growth rate for every cell (one
        array per timepoint, per unit of ``prior_times``, default model time); see
        :class:`scflow.methods.uotcfm.UOTCFM`.

    Returns
    -------
    The model, with ``meta["loss"]`` the loss of every step (and, per named part of the
    method's loss, e.g. ``meta["growth_loss"]``, that part's).

    Raises
    ------
    TrainingDivergedError
        When a step's loss is not finite or explodes, or the final weights are not finite
        (checked every :data:`DIVERGENCE_CHECK_EVERY` steps, at checkpoints and at the end);
        the message names the first such step. A checkpoint is never written with
        non-finite values, and one holding them is refused on resume (``ValueError``).
    ValueError
        On bad arguments, data that overflow float32 (use ``whiten=True``), ``n_steps``
        above :data:`MAX_STEPS`, or global plans too large for the memory available.
    """
    cfg = TrainConfig.merge(config, {k: v for k, v in locals().items()
                                     if k in TrainConfig.names()})
    name = _methods.default_fit_method() if method is None else method
    entry = _methods.get(name)
    if not entry.neural:
        raise ValueError(f"method must be one of {_methods.names('neural')} (a method that "
                         f"trains a field), got {name!r}")
    cfg = cfg.resolved(entry)
    if holdout is not None:
        holdout = tc.interior_index(holdout, "holdout")
    inputs = entry.inputs(tc, mass=mass, growth_prior=growth_prior, prior_times=prior_times,
                          holdout=holdout)
    check_data(tc, cfg.sigma, holdout)
    dev = resolve_device(device)
    coupling = resolve_coupling(cfg.coupling, name, tc, holdout, dev, n_steps=cfg.n_steps,
                                batch_size=cfg.batch_size)
    if entry.global_only and coupling != "global":
        raise ValueError("coupling='auto' would use minibatch plans here (an interval holds "
                         f"more than {AUTO_GLOBAL_MAX_ENTRIES} cell pairs) and method "
                         f"{name!r} chains global plans; subsample the timepoints or use "
                         f"{_methods.default_fit_method()!r}")
    cfg = replace(cfg, coupling=coupling)
    parallel = _dist.resolve(distributed, dev)
    if parallel:  # one device per process; each takes an equal slice of every batch
        _dist.check_batch_size(cfg.batch_size)
        dev = _dist.device_for(dev)
        _dist.check_device(dev)
    tc = tc.to(dev)
    if parallel:
        _dist.check_same_data(tc.xs)
    g = torch.Generator(device=dev).manual_seed(int(random_state))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        model = FlowModel(tc.dim, cfg.hidden, cfg.activation, score=entry.has_score,
                          sigma=cfg.sigma if entry.has_score else 0.0,
                          growth=entry.learns_growth)
    model.to(dev).train()
    data = entry.training_data(tc, cfg, holdout=holdout, coupling=coupling, cache=plan_cache,
                               inputs=inputs, random_state=int(random_state),
                               progress=progress if not parallel or _dist.is_main() else False)
    if parallel:  # one global plan: rank 0's, bit for bit on every process
        _dist.broadcast_plans(data.plans())
    losses, parts = _train(model, entry, data, cfg, tc=tc, holdout=holdout, dev=dev, g=g,
                           random_state=random_state, progress=progress, parallel=parallel,
                           checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                           inputs=inputs)
    data.finish()
    model.eval()
    model.meta.update(
        method=name, sigma=cfg.sigma, coupling=coupling, holdout=-1 if holdout is None
        else int(holdout), times=np.asarray(tc.times, dtype=np.float64),
        scaler_mean=np.asarray(tc.mean), scaler_scale=np.asarray(tc.scale),
        n_steps=cfg.n_steps, batch_size=cfg.batch_size, lr=cfg.lr,
        lr_schedule=cfg.lr_schedule, ema=0.0 if cfg.ema is None else float(cfg.ema),
        random_state=int(random_state), loss=losses.cpu().numpy().astype(np.float64),
        **{k: v.cpu().numpy().astype(np.float64) for k, v in parts.items()},
        **tc.time_meta(), **entry.meta(cfg, inputs, data))
    return model


def _train(model: FlowModel, entry, data: TrainingData, cfg: TrainConfig, *,
           tc: TimeCourse, holdout: int | None, dev: torch.device, g: torch.Generator,
           random_state: int, progress: bool | None, parallel: bool,
           checkpoint: str | None, checkpoint_every: int, inputs: dict
           ) -> tuple[Tensor, dict[str, Tensor]]:
    """The optimiser loop: every step's loss, and each named part of it, per step."""
    n_steps, lr = cfg.n_steps, cfg.lr
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, n_steps, eta_min=0.01 * lr)
             if cfg.lr_schedule == "cosine" else None)
    params = list(model.parameters())
    averaged = [p.detach().clone() for p in params] if cfg.ema else None
    losses = torch.zeros(n_steps, device=dev)
    parts: dict[str, Tensor] = {}
    start, ck = 0, None
    if checkpoint is not None:
        # options left unset (None) are not part of the fingerprint, nor are a method's
        # inputs it does not read, so checkpoints written before they existed still resume
        options = {k: v for k, v in cfg.as_dict().items()
                   if not (k in ("reg", "reg_m", "growth_weight") and v is None)}
        fp = fit_config(tc.xs, tc.times, method=entry.name, holdout=holdout,
                        device=dev.type, random_state=int(random_state), **options,
                        **entry.fingerprint(inputs))
        ck = Checkpointer(checkpoint, checkpoint_every, fp, model=model, optimizer=opt,
                          scheduler=sched, ema=averaged, generator=g, losses=losses,
                          parts=parts)
        start = ck.resume()
    ddp = None
    if parallel:
        start = _dist.same_start(start, dev)
        ddp = _dist.DataParallel(model, dev)
        if ddp.rank != 0:  # one progress bar, rank 0's
            progress = False
    # a bar in a terminal or notebook, a line every 10% in a log (scflow._progress)
    bar = Progress(range(start, n_steps), desc=f"scflow {entry.name}", enabled=progress)
    show = not bar.disable
    checked = start  # the losses of steps before this one were checked (or resumed) finite
    for step in bar:
        loss, named = step_loss(model, entry, data, cfg, g, ddp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        if averaged is not None:  # EMA, its decay ramped up so short runs are not stale
            with torch.no_grad():
                torch._foreach_lerp_(averaged, params,
                                     1 - min(cfg.ema, (1 + step) / (10 + step)))
        losses[step] = loss.detach() if ddp is None else ddp.mean(loss)
        for key, value in named.items():
            if key not in parts:
                parts[key] = torch.zeros(n_steps, device=dev)
            parts[key][step] = value.detach() if ddp is None else ddp.mean(value)
        done = step + 1
        if (done % DIVERGENCE_CHECK_EVERY == 0 or done == n_steps
                or (ck is not None and ck.due(done))):
            check_losses(losses, checked, done, n_steps, lr)
            checked = done
        if ck is not None and (ddp is None or ddp.rank == 0):
            ck.after_step(done)
        if show and (step + 1) % 100 == 0:
            bar.set_postfix(loss=f"{losses[step - 99: step + 1].mean().item():.4f}")
    if averaged is not None:
        with torch.no_grad():
            torch._foreach_copy_(params, averaged)
    bad = [name for name, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise TrainingDivergedError(
            f"training diverged: the weights are not finite after {n_steps} steps (in "
            f"{', '.join(bad[:3])}); try a smaller lr than {lr:g}, whiten=True, or check the "
            "data's scale")
    return losses, parts


def step_loss(model: FlowModel, method, data: TrainingData, config: TrainConfig,
              generator: torch.Generator, ddp: _dist.DataParallel | None = None
              ) -> tuple[Tensor, dict[str, Tensor]]:
    """One training step's loss: a batch of ``config.batch_size`` draws per interval from
    ``data``, the model's outputs on it, and the loss of ``method`` (a registered
    :class:`~scflow.methods.NeuralMethod`, or its name) with its named parts. Under
    ``ddp``, on this process's equal slice of the batch."""
    entry = _methods.get(method) if isinstance(method, str) else method
    batch = data.batch(config.batch_size, generator)
    if ddp is not None:  # data parallel: this process's equal slice of the global batch
        batch = type(batch)(*ddp.shard(*batch))
        out = Outputs(*ddp(batch.t, batch.xt))
    else:
        out = Outputs(model.velocity(batch.t, batch.xt),
                      model.score(batch.t, batch.xt) if model.has_score else None,
                      model.growth(batch.t, batch.xt) if model.has_growth else None)
    return entry.loss(out, batch, config)


def training_data(tc: TimeCourse, method: str, sigma: float | None = None,
                  coupling: str = "global", holdout: int | None = None, *,
                  config: TrainConfig | None = None, cache: PlanCache | None = None,
                  mass=None, growth_prior: Sequence | None = None,
                  prior_times: Sequence[float] | None = None, random_state: int = 0,
                  progress: bool | None = False) -> TrainingData:
    """What :func:`fit_flow` draws at each step for ``method``, built as it builds it (for
    benchmarks and checks of a method's draws): ``sigma`` (``None``: the method's default)
    and ``config`` (other options) resolved for the method, ``coupling`` ``"global"`` or
    ``"minibatch"``, the inputs of growth-aware methods. Draw a step with
    ``data.batch(batch_size, generator)``, or its loss with :func:`step_loss`."""
    entry = _methods.get(method)
    if not entry.neural:
        raise ValueError(f"method must be one of {_methods.names('neural')}, got {method!r}")
    if coupling not in ("global", "minibatch"):
        raise ValueError(f"coupling must be 'global' or 'minibatch', got {coupling!r}")
    cfg = (config or TrainConfig())
    cfg = replace(cfg, sigma=cfg.sigma if sigma is None else sigma).resolved(entry)
    if holdout is not None:
        holdout = tc.interior_index(holdout, "holdout")
    inputs = entry.inputs(tc, mass=mass, growth_prior=growth_prior, prior_times=prior_times,
                          holdout=holdout)
    return entry.training_data(tc, replace(cfg, coupling=coupling), holdout=holdout,
                               coupling=coupling, cache=cache, inputs=inputs,
                               random_state=int(random_state), progress=progress)
