"""scflow: flow matching for single-cell time courses."""

from __future__ import annotations

from . import couplings, methods, metrics, paths
from ._settings import settings
from .flow.integrate import integrate
from .flow.matching import FlowMatcher, FlowSample
from .flow.model import FlowModel
from .flow.timecourse import TimeCourse
from .methods.icfm import icfm
from .methods.otcfm import otcfm
from .methods.sbcfm import sbcfm
from .training import distributed
from .training.config import TrainConfig
from .training.loop import TrainingDivergedError, fit_flow

__version__ = "0.1.0"

_LAZY = ("tl", "pl", "datasets")  # the AnnData-facing parts: imported on first use


def load_model(adata, key: str = "scflow", *, device="cpu") -> FlowModel:
    """The :class:`FlowModel` that :func:`scflow.tl.fit` stored in ``adata.uns[key]``.

    Raises ``KeyError`` when ``adata.uns[key]`` holds no model, ``ValueError`` when the
    stored model has another format or version. See :func:`scflow.tl.load_model`.
    """
    from .tl import load_model as _load  # AnnData-facing: imported on first use

    return _load(adata, key, device=device)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scflow' has no attribute {name!r}")

__all__ = [
    "FlowMatcher", "FlowModel", "FlowSample", "TimeCourse", "TrainConfig",
    "TrainingDivergedError",
    "couplings", "datasets", "distributed", "fit_flow", "methods",
    "icfm", "integrate", "load_model", "metrics", "otcfm", "paths", "pl", "sbcfm", "settings",
    "tl",
]
