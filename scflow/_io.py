"""Atomic file writes: a crash mid-write never leaves a half-written file in place.

The temporary file lies beside the target, named ``.{name}.<random>.tmp`` (or the suffix
given), and is moved onto the target only once complete. It is removed on any Python
exception, ``KeyboardInterrupt`` (Ctrl-C) included; the command line also turns ``SIGTERM``
into an exception so that the clean-up runs. A process killed with ``SIGKILL`` (``kill -9``,
the out-of-memory killer) runs no code at all: its temporary file stays, the target is left
as it was (never half-written), and the ``.*.tmp`` file may be deleted by hand.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows.

    Linux shows it in ``/proc/self/status``; elsewhere it is read by setting and restoring
    it (under a lock, but another thread creating a file meanwhile could see umask 0).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to (by any means, e.g. h5py); on
    success it is synced and moved onto ``path`` (``os.replace``), on any error removed.

    The file gets the mode ``open`` would give a new file (``0o666`` less the umask, e.g.
    ``0o644`` under umask ``022``), also when it replaces an existing file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp creates it 0o600
        finally:
            os.close(fd)
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt and SystemExit (e.g. from SIGTERM) too
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """:func:`atomic_path`, opened: yield a binary handle to the temporary file."""
    with atomic_path(path, suffix) as tmp, open(tmp, "wb") as fh:
        yield fh
