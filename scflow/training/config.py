"""The training options, in one place: :class:`TrainConfig`.

``tl.fit``, :func:`scflow.fit_flow`, the protocols (``leave_one_out``, the roll-outs), the
checkpoint fingerprint, the stored model and the CLI all read the same dataclass: an
option is added here once (its default, its check and its command-line flag).

Not training options: where and how a run happens (``device``, ``progress``,
``distributed``, ``checkpoint``), which data (``holdout``) and the seed (``random_state``).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .._checks import integer, number

__all__ = ["TrainConfig", "COUPLING_MODES", "LR_SCHEDULES", "MAX_STEPS"]

COUPLING_MODES = ("global", "minibatch", "auto")
LR_SCHEDULES = ("constant", "cosine")
#: the most training steps one fit takes: the loss of every step is kept (on the device
#: during training, and in ``meta["loss"]``), 400 MB at this bound
MAX_STEPS = 100_000_000


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v.strip())


def _cli(help: str, **argparse_kwargs: Any) -> dict[str, Any]:
    return {"help": help, "argparse": argparse_kwargs}


@dataclass(frozen=True)
class TrainConfig:
    """How one velocity field is trained (the same names in ``fit``, ``leave_one_out`` and
    the CLI).

    Parameters
    ----------
    n_steps, batch_size, lr
        Adam steps, pairs drawn from each interval per step, learning rate.
    sigma
        Path noise (OT-/I-CFM) or Brownian diffusion (SB-CFM); ``None``: the method's default
        (:mod:`scflow.methods`).
    hidden, activation
        MLP widths and activation.
    coupling
        ``"auto"``, ``"global"`` or ``"minibatch"`` (see :func:`scflow.fit_flow`).
    lr_schedule
        ``"constant"`` or ``"cosine"``.
    ema
        Decay of the weight average returned; ``None``: the last weights.
    spline, window
        Chain methods (``mmfm``; also ``static_spline`` / ``static_mean_spline``): the spline
        kind and its window (knots on each side of a segment; ``None``: all).
    reg, reg_m, growth_weight
        Growth-aware methods (``uotcfm``, :mod:`scflow.methods.uotcfm`): the entropic blur and
        the early-marginal penalty of the unbalanced plan, and the weight of the growth loss
        beside the velocity loss; ``None``: the method's defaults
        (:data:`~scflow.methods.uotcfm.DEFAULT_REG`, ``DEFAULT_REG_M``,
        ``DEFAULT_GROWTH_WEIGHT``). Other methods do not read them.
    """

    n_steps: int = field(default=3000, metadata=_cli("Adam steps", type=int))
    batch_size: int = field(default=256, metadata=_cli("pairs per interval per step",
                                                        type=int))
    lr: float = field(default=1e-3, metadata=_cli("learning rate", type=float))
    sigma: float | None = field(default=None, metadata=_cli("default per method", type=float))
    hidden: tuple[int, ...] = field(default=(64, 64, 64),
                                    metadata=_cli("e.g. 64,64,64", type=_ints))
    activation: str = field(default="selu", metadata={})
    coupling: str = field(default="auto", metadata=_cli(
        "auto: global plans up to 25M cell pairs per interval, minibatch OT above",
        choices=COUPLING_MODES))
    lr_schedule: str = field(default="constant", metadata=_cli("", choices=LR_SCHEDULES))
    ema: float | None = field(default=0.999, metadata=_cli(
        "weight-average decay; 0: none", type=float))
    spline: str = field(default="natural", metadata=_cli(
        "mmfm / static_spline: spline through the chained cells; static_mean_spline: "
        "through the timepoints' means", choices=("natural", "pchip")))
    window: int | None = field(default=None, metadata=_cli(
        "mmfm / static_spline / static_mean_spline: knots on each side of a segment "
        "(default all)", type=int))
    reg: float | None = field(default=None, metadata=_cli(
        "growth-aware methods: entropic blur of the unbalanced plan (default: the method's)",
        type=float))
    reg_m: float | None = field(default=None, metadata=_cli(
        "growth-aware methods: how strongly each early cell is held to its population's mean "
        "growth, in units of the interval's mean squared distance (default: the method's)",
        type=float))
    growth_weight: float | None = field(default=None, metadata=_cli(
        "growth-aware methods: weight of the growth loss (default: the method's)", type=float))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, base: TrainConfig | None = None, **options: Any) -> TrainConfig:
        """``base`` (default: the defaults) with ``options`` replaced; unknown names are a
        ``TypeError`` that lists the known ones."""
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise TypeError(f"unknown training option(s) {unknown}; expected among "
                            f"{list(cls.names())}")
        return replace(base or cls(), **options)

    @classmethod
    def merge(cls, config: TrainConfig | None, keywords: dict[str, Any]) -> TrainConfig:
        """``config``, or the config of the keyword options of a call (``fit_flow``,
        ``tl.fit``); both at once is a ``ValueError`` unless the keywords are the defaults."""
        if config is None:
            return cls.from_options(**keywords)
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a scflow.TrainConfig, got {config!r}")
        default = cls()
        given = sorted(k for k, v in keywords.items()
                       if (tuple(v) if isinstance(v, list) else v) != getattr(default, k))
        if given:
            raise ValueError(f"give the training options either as config or as keywords, "
                             f"not both (keywords given: {given})")
        return config

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
        """The training options among ``options`` as a config, and the rest."""
        mine = {k: v for k, v in options.items() if k in cls.names()}
        return cls.from_options(**mine), {k: v for k, v in options.items() if k not in mine}

    def changed(self) -> dict[str, Any]:
        """The options that differ from the defaults."""
        default = TrainConfig()
        return {k: v for k, v in asdict(self).items() if getattr(default, k) != v}

    def checked(self) -> TrainConfig:
        """Every option checked (the one place they are), ``n_steps``, ``batch_size``,
        ``lr`` and ``hidden`` normalised; ``sigma`` and ``coupling`` stay as asked (see
        :meth:`resolved`). Raises a ``ValueError`` naming the option and what was expected.
        """
        from ..flow.model import check_hidden
        from ..paths import SPLINE_KINDS

        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got "
                             f"{self.lr_schedule!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema must be a decay in (0, 1) or None, got {self.ema!r}")
        if self.spline not in SPLINE_KINDS:
            raise ValueError(f"spline must be one of {SPLINE_KINDS}, got {self.spline!r}")
        if self.coupling not in COUPLING_MODES:
            raise ValueError(f"coupling must be one of {COUPLING_MODES}, got "
                             f"{self.coupling!r}")
        for name, strict in (("reg", True), ("reg_m", True), ("growth_weight", False)):
            if getattr(self, name) is not None:
                number(getattr(self, name), name, lower=0, strict=strict)
        n_steps = integer(self.n_steps, "n_steps", lower=1)
        if n_steps > MAX_STEPS:
            raise ValueError(f"n_steps must be at most {MAX_STEPS:,} (the loss of every step "
                             f"is kept), got {n_steps:,}")
        batch_size = integer(self.batch_size, "batch_size", lower=1)
        lr = number(self.lr, "lr", lower=0, strict=True)
        return replace(self, n_steps=n_steps, batch_size=batch_size, lr=lr,
                       hidden=check_hidden(self.hidden))

    def resolved(self, method) -> TrainConfig:
        """:meth:`checked`, with ``sigma`` resolved for ``method`` (a registered neural
        method, :class:`scflow.methods.NeuralMethod`: its ``default_sigma``, whether
        ``sigma`` is a diffusion that must be > 0, whether its plans must be global).

        ``coupling`` stays as asked (``"auto"`` is resolved against the data by
        :func:`scflow.fit_flow`).
        """
        cfg = self.checked()
        if method.global_only and cfg.coupling not in ("global", "auto"):
            raise ValueError(f"coupling must be 'global' for method {method.name!r}, got "
                             f"{cfg.coupling!r}")
        sigma = number(method.default_sigma if cfg.sigma is None else cfg.sigma, "sigma",
                       lower=0, strict=method.diffusion)
        return replace(cfg, sigma=sigma)

    def as_dict(self) -> dict[str, Any]:
        """The options by name (``hidden`` a tuple)."""
        return asdict(self)

    # ----- the command line -----
    @classmethod
    def add_arguments(cls, group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
        """One ``--option`` per field that has a command-line form."""
        for f in fields(cls):
            if "argparse" not in f.metadata:
                continue
            kw = dict(f.metadata["argparse"])
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            if f.name == "hidden":
                kw["type"] = lambda s: list(_ints(s))
            group.add_argument("--" + f.name.replace("_", "-"), default=default,
                               help=f.metadata["help"] or None, **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TrainConfig:
        """The config of parsed arguments (``--ema 0`` means none)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        values["hidden"] = tuple(values["hidden"])
        values["ema"] = values["ema"] or None
        return cls.from_options(**values)
