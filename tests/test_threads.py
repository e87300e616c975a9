"""Torch's intra-op threads while scflow trains: one unless the user chose (scflow._threads);
their count is restored afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scflow
from scflow import TimeCourse, _threads


@pytest.fixture
def tc() -> TimeCourse:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(k, 1.0, size=(40, 2)) for k in range(3)])
    return TimeCourse.from_arrays(x, np.repeat([0.0, 1.0, 2.0], 40))


@pytest.fixture
def seen(monkeypatch):
    """Torch's thread count at every optimiser step of any trainer; the caller's count,
    the environment and the setting restored after the test."""
    out: list[int] = []
    step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        out.append(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    for var in _threads.THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    before, setting = torch.get_num_threads(), scflow.settings.n_threads
    yield out
    torch.set_num_threads(before)
    scflow.settings.n_threads = setting


def _fit(tc, method: str = "otcfm") -> None:
    scflow.fit_flow(tc, method, n_steps=3, device="cpu", progress=False, hidden=(8,))


@pytest.mark.parametrize("method", ["otcfm", "uotcfm"])
def test_one_thread_while_training_then_the_callers_count(tc, seen, monkeypatch, method):
    torch.set_num_threads(2)
    monkeypatch.setattr(_threads, "_AT_IMPORT", 2)  # 2 is torch's own count: nobody chose
    _fit(tc, method)
    assert set(seen) == {_threads.TRAINING_THREADS} and len(seen) == 3
    assert torch.get_num_threads() == 2


def test_the_users_choice_is_kept(tc, seen, monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setattr(_threads, "_AT_IMPORT", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # set in the environment
    _fit(tc)
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(_threads, "_AT_IMPORT", 3)  # torch.set_num_threads since import
    _fit(tc)
    assert set(seen) == {2}
    scflow.settings.n_threads = None  # scflow told to leave torch alone
    monkeypatch.setattr(_threads, "_AT_IMPORT", 2)
    _fit(tc)
    assert set(seen) == {2}
    scflow.settings.n_threads = 3  # a number: that many while training, restored after
    seen.clear()
    _fit(tc)
    assert set(seen) == {3} and torch.get_num_threads() == 2


def test_restored_when_training_fails(tc, seen, monkeypatch):
    torch.set_num_threads(2)
    monkeypatch.setattr(_threads, "_AT_IMPORT", 2)
    with pytest.raises(ValueError, match="n_steps"):
        scflow.fit_flow(tc, "otcfm", n_steps=0, device="cpu", progress=False)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("value", [0, -1, 1.5, "all", True])
def test_bad_setting(value):
    with pytest.raises(ValueError, match="n_threads must be"):
        scflow.settings.n_threads = value
