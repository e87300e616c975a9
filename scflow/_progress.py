"""Progress of long work, wherever it runs: a bar in a terminal or a notebook, lines in a log.

``tqdm.auto`` is not imported at module level: in a Jupyter kernel without ipywidgets it
prints a ``TqdmWarning`` at import, and its fallback (a plain bar that stays silent when
``stderr`` is not a terminal) shows nothing under nbclient or in a log file. Here:

- in a Jupyter kernel: tqdm's notebook widget when ipywidgets is installed, else tqdm's
  text bar (the kernel renders its carriage returns);
- on a terminal: tqdm's text bar;
- anywhere else (a log file, a pipe, a batch job): one line every ``every`` of the work,
  ``scflow otcfm: 30% (900/3000), 12s, loss=0.5312``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

import numpy as np

from ._settings import settings

__all__ = ["Progress", "progress_mode", "announce"]

MODES = ("notebook", "bar", "log", "off")


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter (IPython kernel) process."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython state is just "not a kernel"
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def progress_mode(enabled: bool | None = None, file: IO[str] | None = None) -> str:
    """How progress is shown: ``"notebook"``, ``"bar"``, ``"log"`` or ``"off"``.

    ``enabled=None`` follows :attr:`scflow.settings.verbosity` (shown at 1 and above).
    """
    if enabled is None:
        enabled = settings.verbosity >= 1
    if not isinstance(enabled, (bool, np.bool_)):
        raise ValueError(f"progress must be True, False or None, got {enabled!r}")
    if not enabled:
        return "off"
    if _in_kernel():
        return "notebook" if _has_widgets() else "bar"
    file = sys.stderr if file is None else file
    isatty = getattr(file, "isatty", None)
    return "bar" if isatty is not None and isatty() else "log"


def announce(text: str, enabled: bool | None = None, file: IO[str] | None = None) -> bool:
    """Write ``text`` (a result the user waited for, e.g. what ``method="auto"`` chose) where
    progress is shown: at the default verbosity, and whenever ``enabled`` is ``True``;
    nothing with ``enabled=False`` or ``scflow.settings.verbosity = 0``. Returns whether it
    was written."""
    file = sys.stderr if file is None else file
    if progress_mode(enabled, file) == "off":
        return False
    file.write(text.rstrip("\n") + "\n")
    file.flush()
    return True


class Progress:
    """Progress over ``iterable`` (or ``total`` units advanced with :meth:`update`).

    Parameters
    ----------
    iterable
        Items to iterate over (its length is the total unless ``total`` is given).
    total
        Number of units of work.
    desc
        What runs, at the start of each line.
    enabled
        ``True``, ``False``, or ``None`` to follow ``scflow.settings.verbosity``.
    every
        In a log, write a line each time this fraction of the work is done (0.1: every 10%).
    file
        Stream to write to (default ``sys.stderr`` at construction time).
    mode
        Force a mode (``"notebook"``, ``"bar"``, ``"log"``, ``"off"``); default detected.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str = "scflow", enabled: bool | None = None, every: float = 0.1,
                 file: IO[str] | None = None, mode: str | None = None) -> None:
        if total is None:
            total = len(iterable) if iterable is not None else 0  # type: ignore[arg-type]
        if not 0 < every <= 1:
            raise ValueError(f"every must be in (0, 1], got {every!r}")
        self.iterable, self.total, self.desc, self.every = iterable, int(total), desc, every
        self.file = sys.stderr if file is None else file
        self.mode = progress_mode(enabled, self.file) if mode is None else mode
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.n, self._postfix, self._next, self._t0 = 0, "", 1, time.perf_counter()
        self._bar: Any = None
        if self.mode == "notebook":
            from tqdm.notebook import tqdm as tqdm_notebook

            self._bar = tqdm_notebook(total=self.total, desc=desc, leave=False)
        elif self.mode == "bar":
            from tqdm.std import tqdm as tqdm_std

            self._bar = tqdm_std(total=self.total, desc=desc, leave=False, file=self.file,
                                 disable=False, mininterval=0.5 if _in_kernel() else 0.1)

    @property
    def disable(self) -> bool:
        """Nothing is shown (tqdm's name, so a bar and this read the same)."""
        return self.mode == "off"

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("Progress was built without an iterable; call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Advance by ``n`` units."""
        self.n += int(n)
        if self._bar is not None:
            self._bar.update(int(n))
        elif self.mode == "log" and self.total > 0:
            done = self.n / self.total
            if done >= min(self._next * self.every, 1.0) - 1e-12:
                while self._next * self.every <= done + 1e-12:
                    self._next += 1
                self._line()

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the count (e.g. ``loss=0.53``)."""
        self._postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _line(self) -> None:
        pct = 100.0 * self.n / self.total
        secs = time.perf_counter() - self._t0
        tail = f", {self._postfix}" if self._postfix else ""
        self.file.write(f"{self.desc}: {pct:3.0f}% ({self.n}/{self.total}), {secs:.0f}s{tail}\n")
        self.file.flush()
