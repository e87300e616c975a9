"""scflow: flow matching for single-cell time courses."""

from __future__ import annotations

from . import couplings, metrics, paths
from ._settings import settings
from .config import TrainConfig
from .integrate import integrate
from .matching import FlowMatcher, FlowSample, icfm, otcfm, sbcfm
from .model import FlowModel
from .timecourse import TimeCourse
from .train import TrainingDivergedError, fit_flow

__version__ = "0.1.0"

_LAZY = ("tl", "pl", "datasets")  # the AnnData-facing parts: imported on first use


def load_model(adata, key: str = "scflow", *, device="cpu") -> FlowModel:
    """The :class:`FlowModel` that :func:`scflow.tl.fit` stored in ``adata.uns[key]``.

    Raises ``KeyError`` when ``adata.uns[key]`` holds no model, ``ValueError`` when the
    stored model has another format or version. See :func:`scflow.tl.load_model`.
    """
    from .tl._store import load_model as _load  # AnnData-facing: imported on first use

    return _load(adata, key, device=device)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'scflow' has no attribute {name!r}")

__all__ = [
    "FlowMatcher", "FlowModel", "FlowSample", "TimeCourse", "TrainConfig",
    "TrainingDivergedError",
    "couplings", "datasets", "fit_flow",
    "icfm", "integrate", "load_model", "metrics", "otcfm", "paths", "pl", "sbcfm", "settings",
    "tl",
]
