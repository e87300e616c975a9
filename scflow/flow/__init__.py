"""The flow engine: a time course on tensors, the flow matcher, the model, integration.

:mod:`~scflow.flow.timecourse` (:class:`TimeCourse`: cells per timepoint, model times, the
scaler), :mod:`~scflow.flow.matching` (:class:`FlowMatcher`: a path composed with a
coupling), :mod:`~scflow.flow.model` (:class:`FlowModel`: the trained field, plain-array
serialisation) and :mod:`~scflow.flow.integrate` (ODE and SDE, torchdiffeq). The paths and
couplings it composes are the subpackages :mod:`scflow.paths` and :mod:`scflow.couplings`.
"""

from __future__ import annotations

from .integrate import SOLVERS, integrate
from .matching import FlowMatcher, FlowSample
from .model import FlowModel
from .timecourse import TimeCourse

__all__ = ["FlowMatcher", "FlowModel", "FlowSample", "SOLVERS", "TimeCourse", "integrate"]
