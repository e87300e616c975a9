"""scflow: flow matching for single-cell time courses."""

from __future__ import annotations

from . import couplings, metrics, paths
from ._settings import settings
from .integrate import integrate
from .matching import FlowMatcher, FlowSample, icfm, otcfm, sbcfm
from .model import FlowModel
from .timecourse import TimeCourse
from .train import fit_flow

__version__ = "0.1.0"

_LAZY = ("tl", "pl", "datasets")  # the AnnData-facing parts: imported on first use


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scflow' has no attribute {name!r}")

__all__ = [
    "FlowMatcher", "FlowModel", "FlowSample", "TimeCourse", "couplings", "datasets", "fit_flow",
    "icfm", "integrate", "metrics", "otcfm", "paths", "pl", "sbcfm", "settings", "tl",
]
