"""Heavy optional-at-import dependencies, imported on first use.

POT (``ot``) pulls in scikit-learn and SciPy's statistics when imported (about 2-5 s, most
of ``import scflow``), yet only the solvers need it; torchdiffeq imports
``scipy.integrate``, needed only by the ODE solvers. ``from ._lazy import ot`` gives a
module stand-in: the first attribute read (``ot.emd``, ``ot.dist``...) imports POT, every
later one reads from the imported module.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ["LazyModule", "ot", "torchdiffeq"]


class LazyModule(types.ModuleType):
    """A module imported by :func:`importlib.import_module` on its first attribute read."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        value = getattr(module, attr)
        setattr(self, attr, value)  # later reads find it in __dict__, not here
        return value

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))


ot = LazyModule("ot")
torchdiffeq = LazyModule("torchdiffeq")  # imports scipy.integrate (~0.5-0.8 s)
