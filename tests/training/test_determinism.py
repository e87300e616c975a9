"""Determinism: same seed, data and device give identical results, whatever the global
random states, and in a fresh process as in this one."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _results() -> dict[str, np.ndarray]:
    """Fits (OT-CFM, SB-CFM), trajectories (ODE, SDE) and a leave-one-out table, seeded."""
    import anndata as ad
    import pandas as pd

    import scflow

    rng = np.random.default_rng(0)
    day = np.repeat([0.0, 1.0, 2.0, 3.0], 40)
    x = rng.normal(size=(len(day), 3))
    x[:, 0] += day
    x[:, 1] += np.where(np.arange(len(day)) % 2, 1.0, -1.0) * day
    adata = ad.AnnData(np.zeros((len(day), 2), dtype=np.float32),
                       obs=pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(len(day))]))
    adata.obsm["X_pca"] = x
    out = {}
    train = dict(n_steps=60, batch_size=32, hidden=(32, 32), device="cpu")
    for method in ("otcfm", "sbcfm"):
        scflow.tl.fit(adata, use_rep="X_pca", method=method, key_added=method,
                      random_state=7, **train)
        for k, w in adata.uns[method]["model"]["weights"].items():
            out[f"{method}/w/{k}"] = np.asarray(w)
        out[f"{method}/loss"] = adata.uns[method]["loss"]
        scflow.tl.trajectories(adata, key=method, n_steps=20, stochastic=method == "sbcfm",
                               random_state=3)
        out[f"{method}/paths"] = adata.uns[method]["trajectories"]["paths"]
    df = scflow.tl.leave_one_out(adata, "day", use_rep="X_pca", methods=("otcfm", "sbcfm"),
                                 seeds=(0, 1), n_euler=20, **train)
    for col in ("w1", "w2", "mmd", "floor"):
        out[f"loo/{col}"] = df[col].to_numpy(dtype=np.float64)
    return out


def _one_thread_results() -> dict[str, np.ndarray]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocess
    try:
        return _results()
    finally:
        torch.set_num_threads(threads)


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    assert any(k.endswith("/paths") for k in a)
    assert {"loo/w1", "loo/w2", "loo/mmd"} <= set(a)
    for k in a:
        assert a[k].size > 0, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # the comparison can tell different runs apart
    assert not np.array_equal(a["otcfm/paths"], a["sbcfm/paths"])


def test_same_seed_same_results_whatever_the_global_random_states():
    """Run twice in this process, the global torch, numpy and random states moved between:
    the results are identical (the global states are never used)."""
    first = _one_thread_results()
    torch.manual_seed(12345)
    torch.rand(17)
    np.random.seed(6789)  # noqa: NPY002 - moving the global state is the point
    np.random.rand(5)  # noqa: NPY002
    random.seed(3)
    _assert_same(first, _one_thread_results())


@pytest.mark.slow
@pytest.mark.subprocess
def test_same_seed_same_results_across_processes(tmp_path):
    """A fresh interpreter (its own hash seed, import order, global states) gives what this
    process, already used by other tests, gives."""
    out = tmp_path / "out.npz"
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(out)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    here = _one_thread_results()  # while the other process runs
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log.decode()[-3000:]
    with np.load(out) as there:
        _assert_same(dict(there), here)


if __name__ == "__main__":  # the other process of test_same_seed_same_results_across_processes
    torch.set_num_threads(1)
    np.savez(sys.argv[1], **_results())
