"""The trained field: an MLP velocity ``v(t, x)`` (and a score ``s(t, x)`` for SB-CFM).

A :class:`FlowModel` serialises to plain arrays and plain values only (``to_dict``), with
a format version, so it can live in ``adata.uns`` and in ``.npz`` files; loading never
unpickles anything, and saving is atomic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import integer
from .._io import atomic_file
from .._plain import json_default, plain

__all__ = ["MLP", "FlowModel", "FORMAT_VERSION", "check_hidden"]

FORMAT_VERSION = 1
_FORMAT = "scflow.FlowModel"
_ACTIVATIONS = {"selu": nn.SELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh,
                "gelu": nn.GELU, "elu": nn.ELU}


class MLP(nn.Module):
    """``(t, x) -> R^dim``: time concatenated to the state, as in TorchCFM's ``MLP``."""

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64, 64),
                 activation: str = "selu", out_dim: int | None = None) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        widths = [dim + 1, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
        layers.append(nn.Linear(widths[-1], dim if out_dim is None else int(out_dim)))
        self.net = nn.Sequential(*layers)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        t = t.to(x.dtype)
        if t.dim() == 0:
            t = t.expand(len(x))
        return self.net(torch.cat([x, t.reshape(-1, 1)], dim=1))


def check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    """``hidden`` as a tuple of positive widths; a ``ValueError`` naming it otherwise (a
    string such as ``"128"`` is refused, not read as the widths ``1, 2, 8``)."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (Sequence, np.ndarray)):
        raise ValueError(f"hidden must be a sequence of positive layer widths, e.g. (64, 64, 64) "
                         f"or [128, 128], got {hidden!r}")
    ok = all(isinstance(h, (int, np.integer)) and not isinstance(h, (bool, np.bool_))
             for h in hidden)
    widths = tuple(int(h) for h in hidden) if ok else ()
    if not widths or any(h <= 0 for h in widths):
        raise ValueError(f"hidden must be a non-empty sequence of positive integer widths, got "
                         f"{hidden!r}")
    return widths


#: the most hidden layers and the widest layer a stored model may declare: its config is
#: checked against its arrays before anything is built, these only bound the check itself
MAX_LAYERS = 1000


def _net_shapes(prefix: str, dim: int, hidden: tuple[int, ...], out: int) -> dict:
    """The state-dict shapes of one :class:`MLP` (linear layers at even indices)."""
    widths = [dim + 1, *hidden, out]
    shapes = {}
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        shapes[f"{prefix}.net.{2 * i}.weight"] = (b, a)
        shapes[f"{prefix}.net.{2 * i}.bias"] = (b,)
    return shapes


def _read_config(cfg: Any) -> dict[str, Any]:
    """A stored model's ``config``, checked (types, sizes) before any network is built."""
    def bad(what: str) -> ValueError:
        return ValueError(f"scflow model: config {what}; the stored model is damaged or edited "
                          "by hand, refit it")

    if not isinstance(cfg, Mapping):
        raise bad(f"must be a mapping, got {type(cfg).__name__}")
    missing = [k for k in ("dim", "hidden", "activation", "score", "sigma") if k not in cfg]
    if missing:
        raise bad(f"lacks {missing}")
    dim = np.asarray(cfg["dim"])
    if dim.ndim or dim.dtype.kind not in "iu" or int(dim) < 1:
        raise bad(f"'dim' must be a positive integer, got {cfg['dim']!r}")
    hidden = np.asarray(cfg["hidden"])
    if hidden.ndim != 1 or not 1 <= len(hidden) <= MAX_LAYERS or hidden.dtype.kind not in "iu":
        raise bad(f"'hidden' must list 1 to {MAX_LAYERS} integer widths, got "
                  f"{hidden.dtype} of shape {hidden.shape}")
    if (hidden <= 0).any():
        raise bad(f"'hidden' widths must be positive, got {hidden.tolist()[:10]}")
    activation = str(np.asarray(cfg["activation"]))
    if activation not in _ACTIVATIONS:
        raise bad(f"'activation' must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    sigma = float(np.asarray(cfg["sigma"]))
    if not np.isfinite(sigma) or sigma < 0:
        raise bad(f"'sigma' must be a finite number >= 0, got {sigma!r}")
    return {"dim": int(dim), "hidden": tuple(int(h) for h in hidden), "activation": activation,
            "score": bool(np.asarray(cfg["score"])), "sigma": sigma,
            "growth": bool(np.asarray(cfg.get("growth", False)))}


def _expected_shapes(c: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    nets = [("velocity_net", c["dim"])]
    if c["score"]:
        nets.append(("score_net", c["dim"]))
    if c["growth"]:
        nets.append(("growth_net", 1))
    shapes: dict[str, tuple[int, ...]] = {}
    for prefix, out in nets:
        shapes.update(_net_shapes(prefix, c["dim"], c["hidden"], out))
    return shapes


class FlowModel(nn.Module):
    """A learned time-dependent velocity field over a ``dim``-dimensional embedding.

    Parameters
    ----------
    dim
        Dimension of the (scaled) state.
    hidden, activation
        Layer widths and activation of the MLPs.
    score
        Also hold a score network (SB-CFM), so trajectories can be drawn as an SDE.
    sigma
        Diffusion coefficient of the SDE (per unit of model time) for SB-CFM.
    meta
        Plain values kept with the model: method, timepoints, scaler, training options.
    growth
        Also hold a growth network ``g(t, x)``, the log-mass change per unit of model time
        (growth-aware fits, :mod:`scflow.methods.uotcfm`).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64, 64),
                 activation: str = "selu", *, score: bool = False, sigma: float = 0.0,
                 meta: Mapping[str, Any] | None = None, growth: bool = False) -> None:
        super().__init__()
        integer(dim, "dim", lower=1)
        self.dim, self.hidden, self.activation = int(dim), check_hidden(hidden), activation
        self.sigma = float(sigma)
        self.velocity_net = MLP(self.dim, self.hidden, activation)
        self.score_net = MLP(self.dim, self.hidden, activation) if score else None
        # growth-aware fits: a scalar head beside the velocity (absent otherwise, so older
        # models and their state dicts are unchanged)
        self.growth_net = MLP(self.dim, self.hidden, activation, out_dim=1) if growth else None
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def has_score(self) -> bool:
        return self.score_net is not None

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}) for this model, "
                             f"got {tuple(x.shape)}")

    def velocity(self, t: Tensor | float, x: Tensor) -> Tensor:
        """The velocity ``v(t, x)`` at model time ``t`` (scalar or ``(n,)``)."""
        self._check_x(x)
        return self.velocity_net(torch.as_tensor(t, device=x.device), x)

    def score(self, t: Tensor | float, x: Tensor) -> Tensor:
        """The score ``grad log p_t(x)`` (SB-CFM models only)."""
        if self.score_net is None:
            raise ValueError("this model has no score network; fit it with a method that trains "
                             "one (scflow.methods.names(has_score=True))")
        self._check_x(x)
        return self.score_net(torch.as_tensor(t, device=x.device), x)

    @property
    def has_growth(self) -> bool:
        return self.growth_net is not None

    def growth(self, t: Tensor | float, x: Tensor) -> Tensor:
        """The growth rate ``g(t, x)``, ``d log(mass) / dt`` per cell, shape ``(n,)``
        (growth-aware models only)."""
        if self.growth_net is None:
            raise ValueError("this model has no growth network; fit it with a growth-aware method "
                             "(scflow.methods.names(learns_growth=True))")
        self._check_x(x)
        return self.growth_net(torch.as_tensor(t, device=x.device), x)[:, 0]

    def sde_drift(self, t: Tensor | float, x: Tensor) -> Tensor:
        """Drift of the SDE with the same marginals: ``v + sigma**2 / 2 * score``."""
        return self.velocity(t, x) + 0.5 * self.sigma**2 * self.score(t, x)

    forward = velocity

    # ----- serialisation: plain arrays and values only -----
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the model, as plain values and numpy arrays."""
        return {
            "format": _FORMAT,
            "version": FORMAT_VERSION,
            "config": {"dim": self.dim, "hidden": list(self.hidden),
                       "activation": self.activation, "score": self.has_score,
                       "sigma": self.sigma, "growth": self.has_growth},
            "meta": plain(self.meta),
            "weights": {k: v.detach().cpu().numpy().copy()
                        for k, v in self.state_dict().items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], device: str | torch.device = "cpu") -> FlowModel:
        """Rebuild a model from :meth:`to_dict` output; rejects other formats and versions.

        The config is checked against the stored arrays (their number, shapes and
        finiteness) before any network is built, so a damaged or hostile record (a config
        far larger than its arrays, NaN weights, a missing part) is refused with a
        ``ValueError`` before anything is allocated.
        """
        if not isinstance(d, Mapping) or d.get("format") != _FORMAT:
            raise ValueError("not a scflow model: expected a mapping with format "
                             f"{_FORMAT!r}")
        version = int(np.asarray(d.get("version", -1)))
        if version != FORMAT_VERSION:
            raise ValueError(f"scflow model format version {version} is not supported "
                             f"(expected {FORMAT_VERSION})")
        for part in ("config", "weights"):
            if not isinstance(d.get(part), Mapping):
                raise ValueError(f"scflow model: its {part!r} is missing or not a mapping; the "
                                 "stored model is incomplete (edited by hand?), refit it")
        cfg = _read_config(d["config"])
        weights = d["weights"]
        n_nets = 1 + cfg["score"] + cfg["growth"]
        n_expected = 2 * (len(cfg["hidden"]) + 1) * n_nets
        if len(weights) != n_expected:  # before the shapes are listed: O(stored arrays)
            raise ValueError(f"model weights do not match the architecture: the config (dim "
                             f"{cfg['dim']}, {len(cfg['hidden'])} hidden layers) needs "
                             f"{n_expected} arrays, {len(weights)} are stored")
        own = _expected_shapes(cfg)
        if set(weights) != set(own):
            raise ValueError(f"model weights do not match the architecture: missing "
                             f"{sorted(set(own) - set(weights))[:5]}, unexpected "
                             f"{sorted(set(weights) - set(own))[:5]}")
        for k, shape in own.items():
            got = np.shape(weights[k])
            if got != shape:
                raise ValueError(f"weight {k!r} has shape {got}, but the config (dim "
                                 f"{cfg['dim']}, hidden {list(cfg['hidden'])[:10]}) expects "
                                 f"{shape}")
        state = {}
        for k in own:
            arr = np.asarray(weights[k])
            if arr.dtype.kind not in "fiu":
                raise ValueError(f"weight {k!r} must hold numbers, got dtype {arr.dtype}")
            arr = arr.astype(np.float32, copy=True)
            if not np.isfinite(arr).all():
                raise ValueError(f"model weight {k!r} holds NaN or infinite values: the stored "
                                 "model is damaged (a diverged fit, or edited by hand); refit "
                                 "it")
            state[k] = torch.from_numpy(arr)
        with torch.device("meta"):  # shapes only: the arrays above are the memory
            model = cls(cfg["dim"], cfg["hidden"], cfg["activation"], score=cfg["score"],
                        sigma=cfg["sigma"], meta=dict(d.get("meta", {})),
                        growth=cfg["growth"])
        model.to_empty(device="cpu")
        model.load_state_dict(state)
        return model.to(device)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to an ``.npz`` file atomically (old file intact on a crash)."""
        d = self.to_dict()
        arrays = {f"w/{k}": v for k, v in d["weights"].items()}
        header = {k: d[k] for k in ("format", "version", "config", "meta")}
        arrays["header"] = np.array(json.dumps(header, default=json_default))
        with atomic_file(path) as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> FlowModel:
        """Read a model written by :meth:`save` (no pickle: ``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as z:
            if "header" not in z.files:
                raise ValueError(f"{path} is not a scflow model file (no header)")
            header = json.loads(str(z["header"]))
            weights = {k[2:]: z[k] for k in z.files if k.startswith("w/")}
        return cls.from_dict({**header, "weights": weights}, device=device)
