"""The methods, one class per module, each registered where it is defined.

Neural (a field trained by :func:`scflow.fit_flow`): :mod:`~scflow.methods.otcfm`,
:mod:`~scflow.methods.mmfm`, :mod:`~scflow.methods.sbcfm`, :mod:`~scflow.methods.icfm`,
:mod:`~scflow.methods.uotcfm`. Static (no network, the references):
:mod:`~scflow.methods.static_ot`, :mod:`~scflow.methods.static_spline`,
:mod:`~scflow.methods.static_partial`, :mod:`~scflow.methods.static_mean_spline`,
:mod:`~scflow.methods.static_chain`, :mod:`~scflow.methods.static_mix`.

Every list of methods (the CLI's choices and defaults, the protocols' default lists,
``method="auto"``'s candidates, the help texts) is read from the registry
(:func:`names`, :func:`default_methods`, :func:`fit_candidates`), and everything that
depends on what a method can do asks its class (``has_score``, ``learns_growth``,
``takes_mass``, ``shape``...) instead of comparing names. A new method is one module here
(a subclass of :class:`~scflow.methods.NeuralMethod` or
:class:`~scflow.methods.StaticMethod` with ``@register``) and its test: every module of
this package is imported here, in name order, and registers its method.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..training.registry import (
    KINDS,
    PROTOCOLS,
    SHAPES,
    Method,
    NeuralMethod,
    PairMethod,
    StaticMethod,
    check,
    default_fit_method,
    default_methods,
    fit_candidates,
    get,
    names,
    reference,
    reference_candidates,
    register,
)

__all__ = ["Method", "NeuralMethod", "PairMethod", "StaticMethod", "register", "get", "names",
           "check", "default_methods", "fit_candidates", "reference", "reference_candidates",
           "default_fit_method", "KINDS", "SHAPES", "PROTOCOLS"]

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
