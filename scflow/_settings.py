"""Global settings, scanpy style: ``scflow.settings.verbosity``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

__all__ = ["settings", "logger"]

logger = logging.getLogger("scflow")
_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.INFO,
           4: logging.DEBUG}


@dataclass
class _Settings:
    """``verbosity``: 0 errors, 1 warnings and progress bars (default), 2 info, 3 hints,
    4 debug, as in scanpy. ``figdir``: where ``save=`` writes figures when scanpy is not
    imported (with scanpy, ``scanpy.settings.figdir``). ``n_threads``: torch's intra-op
    threads while scflow trains on the CPU: ``"auto"`` (default: one, unless you set
    ``OMP_NUM_THREADS`` or called ``torch.set_num_threads``; see :mod:`scflow._threads`),
    a number, or ``None`` (never touched). ``max_memory_gb``: the most memory one call may
    take, estimated before it allocates (a larger estimate is refused with a ``ValueError``
    that gives it; default 8; raise it on a large machine)."""

    _verbosity: int = 1
    _figdir: Path = Path("figures")
    _n_threads: int | str | None = "auto"
    _max_memory_gb: float = 8.0

    @property
    def n_threads(self) -> int | str | None:
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value) -> None:
        if value is None or (isinstance(value, str) and value == "auto"):
            self._n_threads = value
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"n_threads must be 'auto', None or a positive integer, got "
                             f"{value!r}")
        self._n_threads = int(value)

    @property
    def max_memory_gb(self) -> float:
        return self._max_memory_gb

    @max_memory_gb.setter
    def max_memory_gb(self, value: float) -> None:
        value = float(value)
        if not value > 0 or value == float("inf"):
            raise ValueError(f"max_memory_gb must be a finite number > 0, got {value!r}")
        self._max_memory_gb = value

    @property
    def figdir(self) -> Path:
        return self._figdir

    @figdir.setter
    def figdir(self, value) -> None:
        self._figdir = Path(value)

    @property
    def verbosity(self) -> int:
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        value = int(value)
        if not 0 <= value <= 4:
            raise ValueError(f"verbosity must be between 0 and 4, got {value}")
        self._verbosity = value
        logger.setLevel(_LEVELS[value])


settings = _Settings()
logger.setLevel(_LEVELS[settings.verbosity])
if not logger.handlers:
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_h)
