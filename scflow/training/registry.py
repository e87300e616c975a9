"""The method seam and registry: what a method is, and the methods by name.

A method is one subclass of :class:`NeuralMethod` (a field is trained by the one training
loop, :func:`scflow.fit_flow`) or :class:`StaticMethod` (a prediction with no network), in
a module of its own under :mod:`scflow.methods`, registered there with :func:`register`
(importing :mod:`scflow` imports them all). The seam lives here, with training, so the loop
asks for a method by name without importing the methods above it.
Its class attributes are its capabilities and defaults, stated once: what the rest of the
package asks instead of comparing names.

A neural method plugs into the training loop through two seams:

- :meth:`NeuralMethod.training_data`: what it draws at each step (pairs per interval,
  whole trajectories, growth targets...), an object with ``plans()`` and
  ``batch(batch_size, generator) -> Batch`` (:mod:`scflow.training.data`);
- :meth:`NeuralMethod.loss`: what it minimises, from the model's outputs on the batch
  (velocity, and the score or the growth where the method has them).

Adding a method touches its own module and its test: the registry, the CLI's choices, the
protocols' default lists and ``method="auto"``'s candidates are read from the classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor

from ..couplings import PlanCache
from ..flow.matching import FlowMatcher
from .data import Batch, Outputs, TrainingData

__all__ = ["Method", "NeuralMethod", "PairMethod", "StaticMethod", "register", "get", "names",
           "check", "default_methods", "fit_candidates", "reference_candidates",
           "default_fit_method", "reference", "KINDS", "SHAPES", "PROTOCOLS"]

KINDS = ("neural", "static")
SHAPES = ("pair", "chain")
#: the benchmark protocols (:mod:`scflow.protocols`); each has a default list of methods
PROTOCOLS = ("leave_one_out", "rollout", "rollout_holdout")


class Method:
    """A method: its name, what it is made of and what it can do.

    Attributes
    ----------
    name
        The name used by ``tl.fit``, ``tl.leave_one_out`` and the CLI.
    kind
        ``"neural"`` or ``"static"``.
    shape
        ``"pair"`` (pairs per interval) or ``"chain"`` (whole trajectories through every
        kept timepoint, by chaining consecutive plans).
    summary
        One line for help texts.
    deterministic
        Static methods whose prediction does not depend on the seed (solved once).
    takes_mass
        It reads the population sizes (``mass=`` of ``tl.fit`` and the protocols).
    protocols
        The protocols (:data:`PROTOCOLS`) whose default list of methods holds it.
    order
        Its place in every list of methods (help texts, default lists, tables).
    candidates
        The settings ``method="auto"`` tries it with (one dict per candidate, ``{}``: its
        defaults); empty: not a candidate.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    shape: ClassVar[str] = "pair"
    summary: ClassVar[str] = ""
    deterministic: ClassVar[bool] = False
    takes_mass: ClassVar[bool] = False
    protocols: ClassVar[tuple[str, ...]] = ()
    order: ClassVar[int] = 100
    candidates: ClassVar[tuple[dict, ...]] = ()

    @property
    def neural(self) -> bool:
        return self.kind == "neural"

    def __repr__(self) -> str:
        return f"<scflow method {self.name!r}: {self.summary}>"


class NeuralMethod(Method):
    """A method whose velocity field is trained by :func:`scflow.fit_flow`.

    Attributes
    ----------
    default_sigma
        The default ``sigma`` (path noise, or a diffusion for ``diffusion`` methods).
    diffusion
        ``sigma`` is a Brownian diffusion per unit of model time: an interval of span ``h``
        uses ``sigma * sqrt(h)``, and ``sigma`` must be > 0.
    has_score
        The model holds a score network (SDE trajectories, :func:`scflow.integrate` with
        ``stochastic=True``).
    learns_growth
        The model holds a growth network; pushes integrate ``log w`` beside the cells.
    plan_bytes
        Measured peak bytes per cell pair of solving one global plan (the memory check of
        ``coupling="auto"/"global"``); 0: no plan is solved.
    global_cost
        Methods whose global plan is slow to solve: the measured cost of solving it per cell
        pair, in units of the cost per cell pair of a minibatch plan. ``coupling="auto"``
        then takes the global plan only while it costs less than the minibatch plans of
        the whole run (``n_steps`` plans of ``batch_size`` x ``batch_size`` pairs), besides
        the memory bound; ``None``: the memory bound only (exact OT plans are solved in
        seconds at that bound).
    global_only
        Its plans must be global (chains through every kept timepoint).
    params
        Keys of the model's ``meta`` that ``tl.fit`` also writes to ``uns[key]["params"]``.
    fit_default
        The method ``tl.fit`` uses when none is named (one class says so).
    """

    kind = "neural"
    default_sigma: ClassVar[float] = 0.1
    diffusion: ClassVar[bool] = False
    has_score: ClassVar[bool] = False
    learns_growth: ClassVar[bool] = False
    plan_bytes: ClassVar[int] = 0
    global_cost: ClassVar[float | None] = None
    global_only: ClassVar[bool] = False
    params: ClassVar[tuple[str, ...]] = ()
    fit_default: ClassVar[bool] = False

    def inputs(self, tc, *, mass=None, growth_prior=None, prior_times=None,
               holdout: int | None = None) -> dict[str, Any]:
        """Checked method-specific inputs beside the cells (population sizes, a growth
        prior); methods that read none refuse them with a ``ValueError``."""
        for name, value in (("mass", mass), ("growth_prior", growth_prior),
                            ("prior_times", prior_times)):
            if value is not None:
                raise ValueError(f"{name} is read by growth-aware methods only "
                                 f"({names(takes_mass=True)}), got method={self.name!r}")
        return {}

    def interval_sigma(self, sigma: float, span: float) -> float:
        """The path noise of one interval of ``span`` units of model time."""
        return sigma * math.sqrt(span) if self.diffusion else sigma

    def training_data(self, tc, config, *, holdout: int | None, coupling: str,
                      cache: PlanCache | None, inputs: Mapping[str, Any],
                      random_state: int = 0, progress: bool | None = None) -> TrainingData:
        """What the loop draws at each step (``coupling``: ``"global"`` or
        ``"minibatch"``, already resolved; ``config``: resolved for this method).
        ``random_state`` and ``progress`` are the fit's, for methods that train something
        before the field (the interpolant of ``otmfm``)."""
        raise NotImplementedError

    def loss(self, out: Outputs, batch: Batch, config) -> tuple[Tensor, dict[str, Tensor]]:
        """What the loop minimises: the velocity's squared error (per pair, summed over
        dimensions, averaged over the batch), plus denoising score matching weighted by
        ``sigma_t^2`` where the method has a score. Returns the loss and its named parts
        beyond the total (logged per step in ``meta``), none here."""
        loss = (out.velocity - batch.ut).pow(2).sum(1).mean()
        if self.has_score:  # |sigma_t s + eps|^2
            loss = loss + (batch.sigma_t[:, None] * out.score + batch.eps).pow(2).sum(1).mean()
        return loss, {}

    def meta(self, config, inputs: Mapping[str, Any], data: TrainingData) -> dict[str, Any]:
        """Method-specific values stored in the model's ``meta`` (beside the loop's)."""
        return {}

    def fingerprint(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """What of ``inputs`` a checkpoint is bound to (none: older checkpoints resume)."""
        return {}


class PairMethod(NeuralMethod):
    """A neural method on pairs per interval: a path composed with a coupling
    (:class:`~scflow.FlowMatcher`), as TorchCFM's variants."""

    def matcher(self, sigma: float) -> FlowMatcher:
        """The :class:`~scflow.FlowMatcher` of one interval at path noise ``sigma``."""
        raise NotImplementedError

    def training_data(self, tc, config, *, holdout, coupling, cache, inputs,
                      random_state=0, progress=None):
        from .data import pair_data

        return pair_data(tc, lambda span: self.matcher(self.interval_sigma(config.sigma, span)),
                         coupling, holdout, cache=cache, score=self.has_score)


class StaticMethod(Method):
    """A prediction with no network (the references beside the neural methods).

    Attributes
    ----------
    reference_of
        The protocols whose no-network reference it is (one method per protocol): every
        row of such a table sits beside it (:func:`reference`).
    """

    kind = "static"
    reference_of: ClassVar[tuple[str, ...]] = ()

    def predict(self, tc, t: float, *, start: int, holdout: int | None,
                random_state: int = 0, mass: Sequence[float] | None = None,
                spline: str = "natural", window: int | None = None,
                plan_cache: PlanCache | None = None) -> tuple[Tensor, Tensor | None]:
        """The prediction at model time ``t``: ``(points, weights)`` (``None``: uniform)."""
        raise NotImplementedError


_REGISTRY: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add one instance of ``cls`` to the registry (its name must be new)."""
    method = cls()
    if method.kind not in KINDS or method.shape not in SHAPES:
        raise ValueError(f"method {method.name!r}: kind must be one of {KINDS} and shape one "
                         f"of {SHAPES}, got {method.kind!r}, {method.shape!r}")
    bad = [p for p in method.protocols if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"method {method.name!r}: protocols must be among {PROTOCOLS}, "
                         f"got {bad}")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return cls


def _ordered() -> list[Method]:
    return sorted(_REGISTRY.values(), key=lambda m: m.order)


def get(name: str, what: str = "method") -> Method:
    """The registered method ``name``; a ``ValueError`` naming ``what`` otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"{what} must be one of {names()}, got {name!r}") from None


def names(kind: str | None = None, shape: str | None = None, **capabilities: Any
          ) -> tuple[str, ...]:
    """Registered names in their order, of one ``kind`` and ``shape`` (or all), and with the
    given capabilities (e.g. ``has_score=True``, ``learns_growth=True``)."""
    return tuple(m.name for m in _ordered()
                 if (kind is None or m.kind == kind) and (shape is None or m.shape == shape)
                 and all(getattr(m, k, None) == v for k, v in capabilities.items()))


def check(requested, what: str = "methods", kind: str | None = None) -> list[str]:
    """``requested`` names, each registered (of ``kind`` when given); else a ``ValueError``
    naming ``what`` and the known names."""
    if isinstance(requested, str):
        raise ValueError(f"{what} must be a list of method names, got the string "
                         f"{requested!r}")
    known = names(kind)
    unknown = [m for m in requested if m not in known]
    if unknown:
        raise ValueError(f"{what} must be among {known}, got {unknown}")
    return list(requested)


def default_methods(protocol: str) -> tuple[str, ...]:
    """The methods a protocol runs when none are named (those listing it), in order."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return tuple(m.name for m in _ordered() if protocol in m.protocols)


def fit_candidates() -> tuple:
    """What ``tl.fit(method="auto")`` chooses among: every neural method's candidates
    (a name, or ``{"method": name, **settings}``), in order."""
    return tuple(name if not s else {"method": name, **s}
                 for m in _ordered() if m.neural for s in m.candidates
                 for name in (m.name,))


def reference_candidates() -> tuple:
    """The static methods offered to nested selection beside :func:`fit_candidates`."""
    return tuple(m.name if not s else {"method": m.name, **s}
                 for m in _ordered() if not m.neural for s in m.candidates)


def reference(protocol: str) -> str:
    """The no-network reference of ``protocol`` (the static method whose ``reference_of``
    names it): static OT for leave-one-out, the chained plans for the roll-outs."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    chosen = [m.name for m in _ordered() if protocol in getattr(m, "reference_of", ())]
    if len(chosen) != 1:
        raise RuntimeError(f"exactly one method must be the reference of {protocol!r}, got "
                           f"{chosen}")
    return chosen[0]


def default_fit_method() -> str:
    """The method ``tl.fit`` and ``fit_flow`` use when none is named."""
    chosen = [m.name for m in _ordered() if getattr(m, "fit_default", False)]
    if len(chosen) != 1:
        raise RuntimeError(f"exactly one method must be the fit default, got {chosen}")
    return chosen[0]
