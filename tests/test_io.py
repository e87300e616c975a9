"""Atomic writes: the mode ``open`` would give, and no temporary file left on errors."""

from __future__ import annotations

import os
import signal
import stat

import pytest

from scflow._io import atomic_file, atomic_path, current_umask


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_take_the_umask_mode(tmp_path, umask_022):
    assert current_umask() == 0o022
    path = tmp_path / "a.bin"
    with atomic_file(path) as fh:
        fh.write(b"x")
    assert _mode(path) == 0o644
    with open(tmp_path / "plain", "wb"):  # the same as open gives
        pass
    assert _mode(tmp_path / "plain") == 0o644
    path.chmod(0o644)
    with atomic_path(path) as tmp:  # overwriting keeps a readable file
        tmp.write_bytes(b"y")
    assert _mode(path) == 0o644 and path.read_bytes() == b"y"
    os.umask(0o077)
    with atomic_file(tmp_path / "private") as fh:
        fh.write(b"z")
    assert _mode(tmp_path / "private") == 0o600


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt, SystemExit])
def test_temporary_file_removed_on_any_exception(tmp_path, exc):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(exc), atomic_file(path) as fh:
        fh.write(b"half")
        raise exc()
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_cli_turns_sigterm_into_a_clean_exit(tmp_path):
    from scflow.cli import _sigterm_as_exit

    path = tmp_path / "out.bin"
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info, _sigterm_as_exit(), atomic_file(path) as fh:
        fh.write(b"half")
        os.kill(os.getpid(), signal.SIGTERM)
    assert info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is previous
