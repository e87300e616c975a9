"""Data-parallel training: 2 gloo processes on the CPU follow the single-process run.

Two real ``torchrun`` launches (``python -m torch.distributed.run --nproc_per_node=2``):
``-m scflow fit`` on an .h5ad file, and this file run as a worker script, which checks the
global plan and the errors on every rank and writes what it saw to ``.npz`` files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import blobs

import scflow
from scflow.flow.timecourse import TimeCourse
from scflow.training import distributed
from scflow.training.loop import training_data

N_STEPS = 60
BATCH = 64


def _course() -> TimeCourse:
    """Three Gaussian blobs moving right and up, 100 cells each, 2-D, whitened."""
    return blobs([[0.0, 0.0], [3.0, 1.0], [6.0, 0.0]], 100, whiten=True)


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    # the worker imports the tests' factories, as the tests do
    tests = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tests, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *args]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    return res


def _fit_args(**kw) -> dict:
    return dict(n_steps=N_STEPS, batch_size=BATCH, hidden=(32, 32), ema=None, device="cpu",
                progress=False, **kw)


@pytest.mark.slow
@pytest.mark.subprocess
def test_torchrun_scflow_fit_matches_single_process(tmp_path):
    """``torchrun -m scflow fit`` on 2 processes: the same losses at every step and the
    same final weights as one process with the same global batch and seed; rank 0 alone
    writes the output."""
    import anndata as ad

    raw = blobs([[0.0, 0.0], [3.0, 1.0], [6.0, 0.0]], 100)
    x, day = np.concatenate([c.numpy() for c in raw.xs]), np.repeat([0, 1, 2], 100)
    adata = ad.AnnData(np.zeros((len(x), 1), dtype=np.float32))
    adata.obs["day"] = day
    adata.obsm["X_pca"] = x
    src = tmp_path / "course.h5ad"
    adata.write_h5ad(src)
    out = tmp_path / "fitted.h5ad"
    res = _torchrun("-m", "scflow", "fit", str(src), "--time-key", "day", "--use-rep", "X_pca",
                    "--method", "otcfm", "--n-steps", str(N_STEPS), "--batch-size", str(BATCH),
                    "--hidden", "32,32", "--ema", "0", "--device", "cpu", "--out", str(out),
                    cwd=tmp_path)
    assert res.stdout.count("wrote") == 1  # rank 0 only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course.h5ad", "fitted.h5ad"]
    fitted = ad.read_h5ad(out).uns["scflow"]
    loss_ddp = np.asarray(fitted["loss"])
    w_ddp = {k: np.asarray(v) for k, v in fitted["model"]["weights"].items()}

    def single(seed: int, batch: int = BATCH):
        one = adata.copy()
        scflow.tl.fit(one, "day", use_rep="X_pca", method="otcfm", n_steps=N_STEPS,
                      batch_size=batch, hidden=(32, 32), ema=None, device="cpu",
                      random_state=seed)
        u = one.uns["scflow"]
        return np.asarray(u["loss"]), {k: np.asarray(v) for k, v in u["model"]["weights"].items()}

    loss_1, w_1 = single(0)
    assert loss_ddp.shape == (N_STEPS,)
    np.testing.assert_allclose(loss_ddp, loss_1, rtol=1e-5, atol=1e-7)
    assert w_ddp.keys() == w_1.keys()
    for k in w_1:
        np.testing.assert_allclose(w_ddp[k], w_1[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # the comparison can fail: another seed, or each process's half batch alone, differs
    for other, _ in (single(1), single(0, BATCH // 2)):
        assert np.abs(other - loss_1).max() > 1e-3


@pytest.mark.slow
@pytest.mark.subprocess
def test_global_plan_shared_and_sbcfm_and_uotcfm_match_single_process(tmp_path):
    """The worker (this file under torchrun): every rank holds rank 0's plans; SB-CFM
    (velocity and score through DDP) and uotcfm (velocity and growth) give one process's
    losses and weights on both ranks;
    a batch that does not split, and different data per rank, are refused."""
    _torchrun(str(Path(__file__).resolve()), str(tmp_path), cwd=tmp_path)
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    plan_keys = [k for k in r0.files if k.startswith("plan")]
    assert len(plan_keys) == 2 * 3  # two intervals x (rows, cols, mass)
    for k in r0.files:
        if k.startswith(("plan", "forced", "loss", "w/", "uot")):
            np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    # the broadcast is real: rank 1 solved a plan on other cells, and holds rank 0's
    assert not np.array_equal(r1["own_mass"], r1["forced_mass"]) or not np.array_equal(
        r1["own_cols"], r1["forced_cols"])
    np.testing.assert_array_equal(r0["own_cols"], r1["forced_cols"])
    # the same pairs as one process's plan
    ivs = training_data(_course(), "otcfm", 0.1, "global", None).intervals
    for i, iv in enumerate(ivs):
        np.testing.assert_array_equal(r0[f"plan{i}_cols"], iv.plan.cols.numpy())
        np.testing.assert_array_equal(r0[f"plan{i}_mass"], iv.plan.mass.numpy())
    one = scflow.fit_flow(_course(), "sbcfm", random_state=3, **_fit_args())
    np.testing.assert_allclose(r0["loss"], one.meta["loss"], rtol=1e-5, atol=1e-7)
    for k, v in one.state_dict().items():
        np.testing.assert_allclose(r0[f"w/{k}"], v.numpy(), rtol=1e-4, atol=1e-6, err_msg=k)
    uot = scflow.fit_flow(_course(), "uotcfm", random_state=3, **_fit_args())
    np.testing.assert_allclose(r0["uot_loss"], uot.meta["loss"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r0["uot_growth_loss"], uot.meta["growth_loss"], rtol=1e-5,
                               atol=1e-7)
    for k, v in uot.state_dict().items():
        np.testing.assert_allclose(r0[f"uot/{k}"], v.numpy(), rtol=1e-4, atol=1e-6, err_msg=k)
    assert any(k.startswith("uot/growth_net") for k in r0.files)
    other = scflow.fit_flow(_course(), "sbcfm", random_state=4, **_fit_args())
    assert np.abs(other.meta["loss"] - r0["loss"]).max() > 1e-3
    for r in (r0, r1):  # each process's network saw its half of the 2 x 64 pairs
        np.testing.assert_array_equal(r["rows"], np.full(N_STEPS, BATCH))
        assert "batch_size=63" in str(r["batch_error"])
        assert "different time courses" in str(r["data_error"])


# ----- single process: helpers and argument checks -----

def test_shard_splits_rows_equally():
    x = torch.arange(12.0).reshape(6, 2)
    parts = [distributed.shard(x, r, 3) for r in range(3)]
    torch.testing.assert_close(torch.cat(parts), x)
    assert all(len(p) == 2 for p in parts)
    assert distributed.shard(None, 0, 2) is None
    with pytest.raises(ValueError, match="batch_size must be divisible"):
        distributed.shard(x, 0, 4)
    with pytest.raises(ValueError, match="batch_size=65 must be divisible"):
        distributed.check_batch_size(65, 2)
    distributed.check_batch_size(64, 2)


def test_without_process_group(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert not distributed.is_distributed() and not distributed.launched()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.resolve(None) is False and distributed.resolve(False) is False
    with pytest.raises(ValueError, match="distributed=True needs a process group"):
        scflow.fit_flow(_course(), n_steps=2, distributed=True, progress=False)
    with pytest.raises(ValueError, match="distributed must be"):
        scflow.fit_flow(_course(), n_steps=2, distributed="yes", progress=False)
    with pytest.raises(ValueError, match="launch with torchrun"):
        distributed.init()


def test_auto_coupling_is_global_when_small_minibatch_when_large(monkeypatch):
    tc = _course()
    small = scflow.fit_flow(tc, coupling="auto", n_steps=2, progress=False)
    assert small.meta["coupling"] == "global"
    monkeypatch.setattr(scflow.training.loop, "AUTO_GLOBAL_MAX_ENTRIES", 100 * 100 - 1)
    large = scflow.fit_flow(tc, coupling="auto", n_steps=2, progress=False)
    assert large.meta["coupling"] == "minibatch"
    ref = scflow.fit_flow(tc, coupling="minibatch", n_steps=2, progress=False)
    np.testing.assert_array_equal(large.meta["loss"], ref.meta["loss"])


# ----- the worker: run by torchrun from test_global_plan_shared_... -----

def _worker(out: Path) -> None:
    distributed.init(device="cpu")
    r = distributed.rank()
    tc = _course()
    found: dict[str, np.ndarray] = {}
    data = training_data(tc, "otcfm", 0.1, "global", None)
    distributed.broadcast_plans(distributed.plans_of(data))
    for i, iv in enumerate(data.intervals):
        for name in ("rows", "cols", "mass"):
            found[f"plan{i}_{name}"] = getattr(iv.plan, name).numpy()
    # a plan solved on other cells on rank 1 becomes rank 0's after the broadcast
    x0 = tc.xs[0] if r == 0 else tc.xs[0].flip(0)
    plan = scflow.couplings.ExactOT().discrete_plan(x0, tc.xs[1])
    found["own_cols"], found["own_mass"] = plan.cols.numpy(), plan.mass.numpy()
    distributed.broadcast_plans([plan])
    found["forced_cols"], found["forced_mass"] = plan.cols.numpy(), plan.mass.numpy()
    rows: list[int] = []  # rows each process's network sees per step
    call = distributed.DataParallel.__call__

    def spy(self, t, x):
        rows.append(len(x))
        return call(self, t, x)

    distributed.DataParallel.__call__ = spy
    model = scflow.fit_flow(tc, "sbcfm", random_state=3, **_fit_args())
    distributed.DataParallel.__call__ = call
    found["loss"], found["rows"] = model.meta["loss"], np.asarray(rows)
    for k, v in model.state_dict().items():
        found[f"w/{k}"] = v.numpy()
    growth = scflow.fit_flow(tc, "uotcfm", random_state=3, **_fit_args())  # growth in DDP
    found["uot_loss"], found["uot_growth_loss"] = (growth.meta["loss"],
                                                   growth.meta["growth_loss"])
    for k, v in growth.state_dict().items():
        found[f"uot/{k}"] = v.numpy()
    for key, call in (("batch_error", lambda: scflow.fit_flow(tc, n_steps=2, batch_size=63)),
                      ("data_error", lambda: distributed.check_same_data(
                          [x + r for x in tc.xs]))):
        try:
            call()
            found[key] = np.array("no error")
        except ValueError as err:
            found[key] = np.array(str(err))
    np.savez(out / f"rank{r}.npz", **found)
    distributed.destroy()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
