"""Checkpoint and resume of :func:`scflow.fit_flow`.

A checkpoint holds everything the training loop needs to go on as if it had never stopped:
the model weights, the optimiser state, the learning-rate scheduler and EMA states (if any),
the state of the training ``torch.Generator``, the number of steps done, the losses so far,
and a fingerprint of the configuration (data, method, seed, step counts, learning rate...).

The file is written with ``torch.save`` to a temporary file that then replaces the old one
(``os.replace``), so a crash leaves the previous checkpoint intact; it is read with
``torch.load(..., weights_only=True)``: tensors, dicts, lists and plain values only, no
pickled objects.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import integer
from .._errors import TrainingDivergedError
from .._io import atomic_file
from .._plain import plain

__all__ = ["Checkpointer", "fit_config", "fingerprint", "load_checkpoint", "save_checkpoint"]

FORMAT = "scflow-checkpoint"
VERSION = 1


def fit_config(xs, times, **options: Any) -> dict[str, Any]:
    """The configuration a checkpoint belongs to: the data (shapes and a digest) and options."""
    h = hashlib.sha256()
    for x in xs:
        h.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    cfg = {"data_shapes": [list(x.shape) for x in xs], "data_sha256": h.hexdigest(),
           "times": [float(t) for t in np.asarray(times, dtype=np.float64)]}
    for k, v in options.items():
        cfg[k] = plain(v, json=True)
    return cfg


def fingerprint(config: dict[str, Any]) -> str:
    """sha256 of the configuration, written as canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    with atomic_file(path) as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (no pickle: ``weights_only=True``), on the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read as a scflow checkpoint: "
                         f"{err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a scflow checkpoint")
    if state.get("version") != VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version "
                         f"{state.get('version')!r}; this scflow reads version {VERSION}")
    return state


class Checkpointer:
    """Saves the training state every ``every`` steps to ``path`` and resumes from it.

    Parameters
    ----------
    path
        The checkpoint file.
    every
        Steps between two checkpoints (the last step is always saved).
    config
        :func:`fit_config` of the run; a checkpoint of another configuration is refused.
    model, optimizer, scheduler, ema, generator, losses
        The training objects; ``scheduler`` and ``ema`` may be ``None``; ``ema`` is a module
        (e.g. ``AveragedModel``) or a list of averaged tensors, restored in place. ``losses``
        is the tensor of per-step losses, filled in place on resume.
    parts
        The per-step logs of the named parts of a method's loss (e.g. ``growth_loss``), by
        name, each as long as ``losses``: filled (created) in place on resume; saved only
        when there are any, so checkpoints of methods without parts are unchanged.
    """

    def __init__(self, path: str | os.PathLike, every: int, config: dict[str, Any], *,
                 model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                 ema: torch.nn.Module | list[torch.Tensor] | None,
                 generator: torch.Generator,
                 losses: torch.Tensor, parts: dict[str, torch.Tensor] | None = None) -> None:
        integer(every, "checkpoint_every", lower=1)
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ValueError(f"checkpoint must be a file path, got {path!r}")
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"checkpoint={str(path)!r} is a directory; expected a file path")
        if not self.path.parent.is_dir():
            raise ValueError(f"checkpoint={str(path)!r}: folder {str(self.path.parent)!r} "
                             "does not exist")
        self.every = int(every)
        self.config = config
        self.fingerprint = fingerprint(config)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.ema, self.generator, self.losses = ema, generator, losses
        self.parts = {} if parts is None else parts

    def resume(self) -> int:
        """Load the checkpoint if there is one; the number of steps already done (else 0)."""
        if not self.path.exists():
            return 0
        state = load_checkpoint(self.path)
        bad = _non_finite(state)
        if bad:
            raise ValueError(f"checkpoint {str(self.path)!r} holds non-finite values (in "
                             f"{', '.join(bad[:5])}): it was written by a run that diverged, "
                             "and resuming would go on from NaN; remove it (or pass another "
                             "checkpoint path) and train again, e.g. with a smaller lr")
        if state["fingerprint"] != self.fingerprint:
            old = json.loads(state["config"])
            diff = sorted(k for k in set(old) | set(self.config)
                          if old.get(k) != self.config.get(k))
            hint = ("; model times differ: a time_scale='real' checkpoint of an earlier "
                    "scflow (model time value - first value, now divided by the mean gap) "
                    "cannot resume" if "times" in diff else "")
            raise ValueError(f"checkpoint {str(self.path)!r} was written by a run with another "
                             f"configuration (differs in: {', '.join(diff)}){hint}; remove it "
                             "or pass another checkpoint path")
        step = int(state["step"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            _load_ema(self.ema, state["ema"])
        self.generator.set_state(state["generator"])
        self.losses[:step] = state["losses"].to(self.losses.device)
        for key, value in state.get("parts", {}).items():
            self.parts[key] = torch.zeros_like(self.losses)
            self.parts[key][:step] = value.to(self.losses.device)
        return step

    def due(self, step: int) -> bool:
        """Whether :meth:`after_step` saves after ``step`` steps."""
        return step % self.every == 0 or step == len(self.losses)

    def after_step(self, step: int) -> None:
        """Called with the number of steps done; saves every ``every`` steps and at the end."""
        if self.due(step):
            self.save(step)

    def save(self, step: int) -> None:
        """Write the state after ``step`` steps; refused when it holds non-finite values.

        Raises
        ------
        TrainingDivergedError
            When the weights, the EMA weights or the losses so far are not all finite
            (nothing is written; the previous checkpoint stays as it was).
        """
        def cpu(sd):
            return {k: v.detach().cpu().clone() for k, v in sd.items()}

        model, ema = cpu(self.model.state_dict()), _ema_state(self.ema)
        losses = self.losses[:step].detach().cpu().clone()
        parts = {k: v[:step].detach().cpu().clone() for k, v in self.parts.items()}
        bad = _non_finite({"model": model, "ema": ema, "losses": losses, "parts": parts})
        if bad:
            raise TrainingDivergedError(
                f"not saving checkpoint {str(self.path)!r} at step {step}: non-finite values "
                f"in {', '.join(bad[:5])} (training diverged); try a smaller lr, whiten=True, "
                "or check the data's scale")
        save_checkpoint(self.path, {
            "format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint,
            "config": json.dumps(self.config, sort_keys=True), "step": int(step),
            "model": model,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {} if self.scheduler is None else self.scheduler.state_dict(),
            "ema": ema,
            "generator": self.generator.get_state(),
            "losses": losses,
            **({"parts": parts} if parts else {}),
        })


def _non_finite(obj: Any, where: str = "") -> list[str]:
    """Where (dotted keys) ``obj`` holds floating-point tensors with NaN or inf entries."""
    if isinstance(obj, torch.Tensor):
        ok = not obj.is_floating_point() or bool(torch.isfinite(obj).all())
        return [] if ok else [where or "tensor"]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return []
    return [w for k, v in items for w in _non_finite(v, f"{where}.{k}" if where else str(k))]


def _ema_state(ema) -> dict[str, torch.Tensor]:
    if ema is None:
        return {}
    if isinstance(ema, torch.nn.Module):
        return {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()}
    return {str(i): t.detach().cpu().clone() for i, t in enumerate(ema)}


def _load_ema(ema, state: dict[str, torch.Tensor]) -> None:
    if isinstance(ema, torch.nn.Module):
        ema.load_state_dict(state)
        return
    if sorted(state) != sorted(str(i) for i in range(len(ema))):
        raise ValueError("the checkpoint's EMA state does not match the model")
    with torch.no_grad():
        for i, t in enumerate(ema):
            t.copy_(state[str(i)])
