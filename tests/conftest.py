"""Shared fixtures: small AnnData objects and the real-data directory."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch


def _data_dir() -> Path | None:
    env = os.environ.get("SCFLOW_DATA_DIR")
    if env and Path(env).is_dir():
        return Path(env)
    here = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return here.resolve() if here.is_dir() else None


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test that uses the real data (the ``data_dir`` fixture) as ``data``."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def data_dir(monkeypatch_session=None) -> Path:
    """The real data sets. Skips locally when absent, fails in CI (``CI=true``)."""
    path = _data_dir()
    if path is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("SCFLOW_DATA_DIR is not set to the shared data sets, and CI must use them")
        pytest.skip("real data not available (set SCFLOW_DATA_DIR)")
    os.environ["SCFLOW_DATA_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def mouse_quarter(data_dir):
    """A quarter of each day of the mouse 2-D set (``datasets.weinreb``: 1429, 3781, 5788
    cells), drawn with a fixed seed: 358, 946 and 1447 cells. Read-only: copy to modify."""
    import scflow

    adata = scflow.datasets.weinreb()
    day = adata.obs["day"].to_numpy()
    rng = np.random.default_rng(0)
    keep = [rng.choice(np.flatnonzero(day == d), -(-int((day == d).sum()) // 4), replace=False)
            for d in np.unique(day)]
    return adata[np.sort(np.concatenate(keep))].copy()


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def uneven_course():
    """A whitened 2-D time course: 4 timepoints of 40 / 55 / 50 / 60 cells drifting apart."""
    from scflow.flow.timecourse import TimeCourse

    g = np.random.default_rng(3)
    n = [40, 55, 50, 60]
    x = np.concatenate([g.normal([k, 0.5 * k], 1 + 0.2 * k, (m, 2)) for k, m in enumerate(n)])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(4), n), whiten=True)
