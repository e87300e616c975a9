"""Torch's thread count while scflow trains its small networks.

scflow's fields are small MLPs (default 3 x 64) trained on batches of a few hundred pairs:
each step is a few small matrix products, too small to split across threads, so intra-op
threads mostly wait on each other (and on the other processes of a shared machine). Measured
by ``benchmarks/threads.py`` (``benchmarks/results/threads.json``): one intra-op thread
trains the default network faster than torch's default of one thread per core. So while
scflow trains (:func:`scflow.fit_flow`, every ``tl.fit``, ``tl.leave_one_out``...) on the
CPU, torch runs :data:`TRAINING_THREADS` intra-op thread(s), and the caller's setting is
restored afterwards, unless the caller chose a count:

- ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is set in the environment (the Makefile sets
  ``OMP_NUM_THREADS=1``), or
- ``torch.set_num_threads(n)`` was called after ``import scflow`` (the count differs from
  the one torch had then), or
- ``scflow.settings.n_threads`` is a number (that many threads while training) or ``None``
  (scflow never touches torch's threads).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from ._settings import settings

__all__ = ["TRAINING_THREADS", "training_threads", "user_chose_threads", "while_training"]

#: intra-op threads while training on the CPU when the user chose none (benchmarks/threads.py)
TRAINING_THREADS = 1
#: environment variables through which a user sets the thread count
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: torch's count when scflow was imported: a different count later is the user's choice
_AT_IMPORT = torch.get_num_threads()
_depth = 0


def user_chose_threads() -> bool:
    """Whether the user set torch's thread count (environment or ``torch.set_num_threads``
    since ``import scflow``)."""
    if any(os.environ.get(v, "").strip() for v in THREAD_VARIABLES):
        return True
    return torch.get_num_threads() != _AT_IMPORT


def _wanted() -> int | None:
    """The thread count to train with, or ``None`` to leave torch alone."""
    choice = settings.n_threads
    if choice is None:
        return None
    if choice != "auto":
        return int(choice)
    return None if user_chose_threads() else TRAINING_THREADS


@contextmanager
def training_threads(device: torch.device | str | None = None) -> Iterator[int]:
    """Train with :data:`TRAINING_THREADS` intra-op threads (see the module), restoring the
    caller's count on exit. Nested uses change nothing; a CUDA ``device`` is left alone.
    Yields the count in use."""
    global _depth
    dev = torch.device(device) if device is not None else torch.device("cpu")
    want = None if (_depth or dev.type != "cpu") else _wanted()
    before = torch.get_num_threads()
    _depth += 1
    try:
        if want is not None and want != before:
            torch.set_num_threads(want)
        yield torch.get_num_threads()
    finally:
        _depth -= 1
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _device_of(device) -> torch.device:
    """``"auto"``: CUDA when available, else CPU (as
    :func:`scflow.training.loop.resolve_device`)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):  # a bad device: the trainer's own check reports it
        return torch.device("cpu")


def while_training(fn: Callable) -> Callable:
    """Run a trainer (a function with a ``device`` argument) inside
    :func:`training_threads` for its device."""
    sig = inspect.signature(fn)
    default = sig.parameters["device"].default

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = sig.bind_partial(*args, **kwargs).arguments.get("device", default)
        with training_threads(_device_of(device)):
            return fn(*args, **kwargs)

    return wrapper
