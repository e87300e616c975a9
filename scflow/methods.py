"""The method registry: every list of methods (``fit``, ``leave_one_out``, the CLI) reads it.

One :class:`Method` per name says what the method is made of and how it is run:

- ``kind``: ``"neural"`` (a velocity field is trained, :func:`scflow.fit_flow`) or
  ``"static"`` (a prediction with no network, made by ``predict``);
- ``shape``: ``"pair"`` (pairs ``(x0, x1)`` per interval: a :class:`~scflow.FlowMatcher`
  per interval) or ``"chain"`` (whole trajectories through every kept timepoint, drawn by
  chaining the plans of ``coupling``, on a :class:`~scflow.paths.SplinePath`);
- ``matcher`` (neural pairs): the path composed with the coupling, from the interval's
  local sigma (:mod:`scflow.matching`'s presets);
- ``coupling`` (chains): the coupling whose consecutive plans are chained;
- ``fit`` (neural methods with their own trainer, e.g. ``uotcfm``): ``"module:function"``;
- ``weighted``: its model carries a weight per cell (a growth field): pushes integrate
  ``log w`` beside the cells (:func:`scflow.integrate` with ``log_weights=True``) and the
  protocols score the weighted cloud.

Adding a method is one :func:`register` call here, pointing at the module that holds its
code (a static method's ``predict`` is named ``"module:function"`` and imported on first
use, so the registry stays importable from the tensor core).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .couplings import ExactOT, _PlanCoupling
from .matching import FlowMatcher, icfm, otcfm, sbcfm

__all__ = ["Method", "register", "get", "names", "check", "default_methods", "KINDS", "SHAPES",
           "PROTOCOLS"]

KINDS = ("neural", "static")
SHAPES = ("pair", "chain")
#: the benchmark protocols (:mod:`scflow.protocols`); each has a default list of methods
PROTOCOLS = ("leave_one_out", "rollout", "rollout_holdout")


@dataclass(frozen=True)
class Method:
    """One method: its name, what it is made of and where its code lives.

    Parameters
    ----------
    name
        The name used by ``tl.fit``, ``tl.leave_one_out`` and the CLI.
    kind
        ``"neural"`` or ``"static"``.
    shape
        ``"pair"`` or ``"chain"``.
    summary
        One line for help texts.
    default_sigma
        Neural methods: the default ``sigma``.
    matcher
        Neural pair methods: ``local_sigma -> FlowMatcher`` for one interval.
    diffusion
        ``sigma`` is a Brownian diffusion per unit of model time: an interval of span ``h``
        uses ``sigma * sqrt(h)``, and a score network is trained beside the field.
    coupling
        Chain methods: the coupling of consecutive timepoints, chained.
    plan_bytes
        Measured peak bytes per cell pair of solving one global plan (memory check of
        ``coupling="auto"/"global"``); 0: no plan is solved.
    global_cost
        Methods whose global plan is slow to solve (``uotcfm``'s semi-relaxed Sinkhorn):
        the measured cost of solving it per cell pair, in units of the cost per cell pair of
        a minibatch plan. ``coupling="auto"`` then takes the global plan only while it costs
        less than the minibatch plans of the whole run (``n_steps`` plans of ``batch_size``
        x ``batch_size`` pairs), besides the memory bound; ``None``: the memory bound only
        (exact OT plans are solved in seconds at that bound).
    predict
        Static methods: ``"module:function"``, called as ``function(tc, t, *, start,
        holdout, random_state, mass, spline, window)`` and returning ``(points, weights)``
        (weights ``None`` for uniform).
    deterministic
        Static methods whose prediction does not depend on the seed (solved once).
    fit
        Neural methods with their own trainer: ``"module:function"``, called as
        :func:`scflow.fit_flow` is (``tc, method, *, holdout, device, random_state, progress,
        config, plan_cache``) plus ``mass`` (see ``takes_mass``); ``None``: ``fit_flow``.
    weighted
        Its models carry a weight per cell (``model.has_growth``): pushes integrate the
        log-weights too and the protocols score the weighted cloud.
    takes_mass
        It reads the population sizes (``mass=`` of ``tl.fit`` and the protocols).
    params
        Keys of the model's ``meta`` that ``tl.fit`` also writes to ``uns[key]["params"]``.
    defaults
        The protocols (:data:`PROTOCOLS`) whose default list of methods holds this one.
    """

    name: str
    kind: str
    shape: str
    summary: str = ""
    default_sigma: float | None = None
    matcher: Callable[[float], FlowMatcher] | None = None
    diffusion: bool = False
    coupling: Callable[[], _PlanCoupling] | None = None
    plan_bytes: int = 0
    global_cost: float | None = None
    predict: str | None = None
    deterministic: bool = False
    defaults: tuple[str, ...] = field(default=())
    fit: str | None = None
    weighted: bool = False
    takes_mass: bool = False
    params: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.shape not in SHAPES:
            raise ValueError(f"method {self.name!r}: kind must be one of {KINDS} and shape one "
                             f"of {SHAPES}, got {self.kind!r}, {self.shape!r}")
        if self.kind == "neural" and self.default_sigma is None:
            raise ValueError(f"neural method {self.name!r} needs a default_sigma")
        if (self.kind == "neural" and self.shape == "pair" and self.matcher is None
                and self.fit is None):
            raise ValueError(f"neural pair method {self.name!r} needs a matcher (or its own "
                             "fit='module:function')")
        if self.shape == "chain" and self.coupling is None:
            raise ValueError(f"chain method {self.name!r} needs a coupling")
        if self.kind == "static" and self.predict is None:
            raise ValueError(f"static method {self.name!r} needs predict='module:function'")
        bad = [p for p in self.defaults if p not in PROTOCOLS]
        if bad:
            raise ValueError(f"method {self.name!r}: defaults must be among {PROTOCOLS}, "
                             f"got {bad}")

    @property
    def neural(self) -> bool:
        return self.kind == "neural"

    def interval_matcher(self, sigma: float, span: float) -> FlowMatcher:
        """The :class:`FlowMatcher` of one interval of ``span`` units of model time."""
        return self.matcher(sigma * math.sqrt(span) if self.diffusion else sigma)

    def predictor(self) -> Callable:
        """The static method's prediction function (imported on first use)."""
        return _load(self.predict)

    def fit_model(self, tc, *, mass=None, growth_prior=None, **options):
        """Train this (neural) method on ``tc``: its own ``fit`` or :func:`scflow.fit_flow`.

        ``options`` are those of :func:`scflow.fit_flow` (``holdout``, ``device``,
        ``random_state``, ``progress``, ``config``, ``plan_cache``...); ``mass`` (the
        population sizes, ``None``: the numbers of cells) goes to methods that take it, and
        so does ``growth_prior`` (per-cell prior growth rates and their time axis, see
        :func:`scflow.growth_train.fit_uotcfm`), refused by the others.
        """
        if not self.neural:
            raise ValueError(f"method {self.name!r} is not neural: nothing to train")
        if growth_prior is not None and not self.takes_mass:
            raise ValueError(f"growth_prior is read by growth-aware methods only, got "
                             f"method={self.name!r}")
        if self.fit is None:
            from .train import fit_flow

            return fit_flow(tc, self.name, **options)
        extra = {"mass": mass} if self.takes_mass else {}
        if growth_prior is not None:
            extra["growth_prior"] = growth_prior
        return _load(self.fit)(tc, self.name, **options, **extra)


def _load(target: str) -> Callable:
    """The function named ``"module:function"`` (imported on first use)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, Method] = {}
#: the order of each protocol's default list (names must be registered)
_DEFAULT_ORDER = {
    "leave_one_out": ("otcfm", "sbcfm", "icfm", "mmfm", "static_ot", "static_spline",
                      "static_partial", "static_mean_spline"),
    "rollout": ("otcfm", "mmfm", "static_chain"),
    "rollout_holdout": ("otcfm", "mmfm", "static_spline", "static_chain"),
}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its name must be new)."""
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def get(name: str, what: str = "method") -> Method:
    """The registered method ``name``; a ``ValueError`` naming ``what`` otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"{what} must be one of {names()}, got {name!r}") from None


def names(kind: str | None = None, shape: str | None = None) -> tuple[str, ...]:
    """Registered names, in registration order, of one ``kind`` and ``shape`` (or all)."""
    return tuple(m.name for m in _REGISTRY.values()
                 if (kind is None or m.kind == kind) and (shape is None or m.shape == shape))


def check(requested, what: str = "methods", kind: str | None = None) -> list[str]:
    """``requested`` names, each registered (of ``kind`` when given); else a ``ValueError``
    naming ``what`` and the known names."""
    known = names(kind)
    unknown = [m for m in requested if m not in known]
    if unknown:
        raise ValueError(f"{what} must be among {known}, got {unknown}")
    return list(requested)


def default_methods(protocol: str) -> tuple[str, ...]:
    """The methods a protocol runs when none are named: those listing it in ``defaults``,
    in the protocol's display order (then registration order)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    chosen = [m.name for m in _REGISTRY.values() if protocol in m.defaults]
    order = _DEFAULT_ORDER.get(protocol, ())
    return tuple(sorted(chosen, key=lambda n: (order.index(n) if n in order else len(order),
                                               names().index(n))))


_STATIC = "scflow.protocols.static"
register(Method("icfm", "neural", "pair", "independent pairs, linear paths (I-CFM)",
                default_sigma=0.1, matcher=icfm, defaults=("leave_one_out",)))
register(Method("otcfm", "neural", "pair", "exact OT pairs, linear paths (OT-CFM)",
                default_sigma=0.1, matcher=otcfm, plan_bytes=42, defaults=PROTOCOLS))
register(Method("sbcfm", "neural", "pair",
                "entropic OT pairs, Brownian bridges, a score network (SB-CFM)",
                default_sigma=0.5, matcher=sbcfm, diffusion=True, plan_bytes=64,
                defaults=("leave_one_out",)))
register(Method("mmfm", "neural", "chain",
                "trajectories through chained exact OT plans, splines (multi-marginal)",
                default_sigma=0.1, coupling=ExactOT, plan_bytes=42, defaults=PROTOCOLS))
register(Method("static_ot", "static", "pair",
                "McCann interpolant of the exact OT plan between the neighbours",
                predict=f"{_STATIC}:predict_static_ot", deterministic=True,
                defaults=("leave_one_out",)))
register(Method("static_spline", "static", "chain",
                "spline through chained exact OT plans, no network", coupling=ExactOT,
                predict=f"{_STATIC}:predict_static_spline",
                defaults=("leave_one_out", "rollout_holdout")))
register(Method("static_partial", "static", "pair",
                "growth-aware interpolant of the exact partial OT plan",
                predict=f"{_STATIC}:predict_static_partial", deterministic=True,
                takes_mass=True,
                defaults=("leave_one_out",)))
register(Method("static_chain", "static", "chain",
                "no network: the first cells carried by chained exact OT plans, barycentric "
                "projection (the roll-out reference)", coupling=ExactOT,
                predict="scflow.chain_reference:predict_static_chain", deterministic=True,
                defaults=("rollout", "rollout_holdout")))
register(Method("static_mean_spline", "static", "pair",
                "static_ot re-centred on the spline through the timepoints' means",
                predict=f"{_STATIC}:predict_static_mean_spline", deterministic=True,
                defaults=("leave_one_out",)))
# growth-aware methods (issue 20): their code is in scflow.growth / scflow.growth_train
#: a global GrowthOT plan's cost per cell pair over a 256 x 256 minibatch plan's, measured
#: in one run (``benchmarks/growth_coupling.py``, one CPU thread): 1.0 / 1.2 / 2.6 at 500 /
#: 1000 / 2000 cells per population in 2-D, 0.8 / 1.1 at 500 / 1000 in 10-D (4.2 at 250,
#: 46 s against 11 s a step on a loaded machine); 3 covers the sizes where the choice falls
#: (a run of 3000 steps keeps global plans up to the memory bound)
GROWTH_GLOBAL_COST = 3.0
register(Method("uotcfm", "neural", "pair",
                "growth-aware OT-CFM: a velocity and a growth field from unbalanced plans",
                default_sigma=0.1, fit="scflow.growth_train:fit_uotcfm", weighted=True,
                takes_mass=True, global_cost=GROWTH_GLOBAL_COST,
                params=("masses", "growth_from", "growth_prior", "reg", "reg_m",
                        "growth_weight")))
register(Method("static_mix", "static", "pair",
                "count-mix null: the neighbours mixed in proportion to their counts",
                predict="scflow.growth:predict_static_mix", deterministic=True,
                takes_mass=True))
