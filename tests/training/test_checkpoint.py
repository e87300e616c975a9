"""Checkpoint and resume: a run killed mid-training resumes to the same weights."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from scflow import TimeCourse, TrainingDivergedError, fit_flow
from scflow.training.checkpoint import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
N_STEPS = 400
TRAIN = ["--n-steps", str(N_STEPS), "--batch-size", "256", "--hidden", "128,128,128",
         "--device", "cpu", "--random-state", "3"]


def _h5ad(path) -> None:
    rng = np.random.default_rng(0)
    day = np.repeat([0.0, 1.0, 2.0, 3.0], 80)
    x = rng.normal(size=(len(day), 4))
    x[:, 0] += day
    obs = pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(len(day))])
    adata = ad.AnnData(np.zeros((len(day), 2), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = x
    adata.write_h5ad(path)


def _cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scflow", "fit", *map(str, args), *TRAIN],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _method(name: str) -> list[str]:
    return ["--method", name]


def _weights(path) -> dict[str, torch.Tensor]:
    rec = ad.read_h5ad(path).uns["scflow"]
    return {k: torch.from_numpy(np.asarray(v)) for k, v in rec["model"]["weights"].items()}


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("method", ["otcfm", "uotcfm"])
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, method):
    """A real ``python -m scflow fit`` killed by SIGKILL (no clean-up runs) leaves a
    checkpoint that a second process resumes to the weights of an uninterrupted run, here
    run in this process (one thread, as the subprocesses); for a pair method and for the
    growth-aware one, which trains in the same loop. The in-process variant, an exception
    at a checkpoint, is test_cli_run_interrupted_in_process_resumes_exactly."""
    from scflow.cli import main

    data, ck = tmp_path / "d.h5ad", tmp_path / "ck.pt"
    _h5ad(data)
    run = _cli(data, "--out", tmp_path / "run.h5ad", "--checkpoint", ck,
               "--checkpoint-every", "50", *_method(method))
    deadline, step = time.monotonic() + 120, 0
    while step < 100:
        assert run.poll() is None, f"finished before it could be killed:\n{run.stdout.read()}"
        assert time.monotonic() < deadline, "no checkpoint with step >= 100 in time"
        if ck.exists():
            step = int(load_checkpoint(ck)["step"])
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL
    run.stdout.close()
    state = load_checkpoint(ck)
    assert 100 <= state["step"] < N_STEPS and state["step"] % 50 == 0
    assert len(state["losses"]) == state["step"]
    assert not (tmp_path / "run.h5ad").exists()

    resumed = _cli(data, "--out", tmp_path / "run.h5ad", "--checkpoint", ck,
                   "--checkpoint-every", "50", *_method(method))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the subprocesses
    try:  # the uninterrupted reference, while the resumed run goes on
        assert main(["fit", str(data), "--out", str(tmp_path / "ref.h5ad"), *TRAIN,
                     *_method(method)]) == 0
    finally:
        torch.set_num_threads(threads)
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out.decode()
    a, b = _weights(tmp_path / "ref.h5ad"), _weights(tmp_path / "run.h5ad")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = ad.read_h5ad(tmp_path / "ref.h5ad").uns["scflow"]["loss"]
    lb = ad.read_h5ad(tmp_path / "run.h5ad").uns["scflow"]["loss"]
    np.testing.assert_array_equal(la, lb)
    assert load_checkpoint(ck)["step"] == N_STEPS


def test_cli_run_interrupted_in_process_resumes_exactly(tmp_path, monkeypatch):
    """``scflow fit --checkpoint`` stopped by an exception right after the checkpoint of
    step 20 writes no output; run again, it resumes to the uninterrupted run's weights."""
    from scflow.cli import main
    from scflow.training import checkpoint as mod

    data, ck = tmp_path / "d.h5ad", tmp_path / "ck.pt"
    _h5ad(data)
    small = ["--n-steps", "40", "--batch-size", "16", "--hidden", "8,8", "--device", "cpu",
             "--method", "otcfm", "--random-state", "3"]
    assert main(["fit", str(data), "--out", str(tmp_path / "ref.h5ad"), *small]) == 0
    orig = mod.Checkpointer.after_step

    def crash(self, step):
        orig(self, step)
        if step == 20:
            raise KeyboardInterrupt

    resume = ["fit", str(data), "--out", str(tmp_path / "run.h5ad"), "--checkpoint", str(ck),
              "--checkpoint-every", "10", *small]
    with monkeypatch.context() as m:
        m.setattr(mod.Checkpointer, "after_step", crash)
        with pytest.raises(KeyboardInterrupt):
            main(resume)
    state = load_checkpoint(ck)
    assert state["step"] == 20 and len(state["losses"]) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "d.h5ad", "ref.h5ad"]
    assert main(resume) == 0
    a, b = _weights(tmp_path / "ref.h5ad"), _weights(tmp_path / "run.h5ad")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la = ad.read_h5ad(tmp_path / "ref.h5ad").uns["scflow"]["loss"]
    lb = ad.read_h5ad(tmp_path / "run.h5ad").uns["scflow"]["loss"]
    np.testing.assert_array_equal(la, lb)
    assert load_checkpoint(ck)["step"] == 40
    # the comparison can fail: the checkpoint's run with another seed differs
    assert main(["fit", str(data), "--out", str(tmp_path / "other.h5ad"),
                 *small[:-1], "4"]) == 0
    c = _weights(tmp_path / "other.h5ad")
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.fixture(scope="module")
def tc() -> TimeCourse:
    rng = np.random.default_rng(1)
    lab = np.repeat([0, 1, 2], 40)
    x = rng.normal(size=(len(lab), 3)) + lab[:, None]
    return TimeCourse.from_arrays(x, lab)


SMALL = dict(n_steps=40, batch_size=16, hidden=(8, 8), device="cpu", progress=False)


def _interrupted(tc, ck, at, **kw):
    """Run until ``at`` steps are checkpointed, then stop as a crash would."""
    from scflow.training import checkpoint as mod

    orig = mod.Checkpointer.after_step

    def crash(self, step):
        orig(self, step)
        if step == at:
            raise KeyboardInterrupt

    mod.Checkpointer.after_step = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL, **kw)
    finally:
        mod.Checkpointer.after_step = orig


def test_unset_growth_options_stay_out_of_the_fingerprint(tc, tmp_path):
    # checkpoints written before reg / reg_m / growth_weight existed must still resume
    ck = tmp_path / "ck.pt"
    _interrupted(tc, ck, 20)
    config = json.loads(load_checkpoint(ck)["config"])
    assert "n_steps" in config and "lr" in config
    assert not {"reg", "reg_m", "growth_weight"} & set(config)


@pytest.mark.parametrize("kw", [{}, {"ema": None}, {"method": "sbcfm"}, {"coupling": "minibatch"},
                                {"lr_schedule": "cosine", "ema": 0.9}, {"method": "uotcfm"},
                                {"method": "uotcfm", "coupling": "minibatch"}])
def test_resume_in_process_is_exact(tc, tmp_path, kw):
    ck = tmp_path / "ck.pt"
    ref = fit_flow(tc, **SMALL, **kw)
    _interrupted(tc, ck, 20, **kw)
    state = load_checkpoint(ck)
    assert state["step"] == 20
    assert {"model", "optimizer", "scheduler", "ema", "generator", "losses",
            "fingerprint", "config"} <= set(state)
    res = fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL, **kw)
    for (k, v), w in zip(ref.state_dict().items(), res.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    np.testing.assert_array_equal(ref.meta["loss"], res.meta["loss"])
    if ref.has_growth:  # the named parts of the loss are kept and resumed too
        assert set(state["parts"]) == {"growth_loss"}
        np.testing.assert_array_equal(ref.meta["growth_loss"], res.meta["growth_loss"])
    else:
        assert "parts" not in state  # checkpoints of the other methods are unchanged
    # a finished checkpoint gives the finished model again, without training
    again = fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL, **kw)
    assert all(torch.equal(v, w) for v, w in zip(res.state_dict().values(),
                                                  again.state_dict().values(), strict=True))


@pytest.mark.parametrize("change", [{"random_state": 1}, {"n_steps": 50}, {"batch_size": 8},
                                    {"lr": 1e-2}, {"method": "icfm"}])
def test_checkpoint_of_another_config_is_refused(tc, tmp_path, change):
    ck = tmp_path / "ck.pt"
    fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match=f"another configuration.*{next(iter(change))}"):
        fit_flow(tc, checkpoint=ck, checkpoint_every=10, **{**SMALL, **change})
    assert ck.read_bytes() == before


def test_checkpoint_of_other_data_is_refused(tc, tmp_path):
    ck = tmp_path / "ck.pt"
    fit_flow(tc, checkpoint=ck, **SMALL)
    other = TimeCourse([x + 1 for x in tc.xs], tc.times, tc.labels, tc.values, tc.mean,
                       tc.scale)
    with pytest.raises(ValueError, match="data_sha256"):
        fit_flow(other, checkpoint=ck, **SMALL)


def test_a_real_time_checkpoint_of_the_old_time_unit_is_refused(tmp_path):
    """A time_scale='real' checkpoint written before model time was divided by the mean gap
    (its times are the days from the first, here 0, 2, 4) is refused on resume, and says
    why; the same run in the new unit (0, 1, 2) writes and resumes its own."""
    x = np.random.default_rng(0).normal(size=(30, 2))
    days = np.repeat([0.0, 2.0, 4.0], 10)
    tc = TimeCourse.from_arrays(x, days, time_scale="real")
    np.testing.assert_array_equal(tc.times, [0.0, 1.0, 2.0])
    old = TimeCourse(tc.xs, tc.values - tc.values[0], tc.labels, tc.values, tc.mean, tc.scale)
    ck = tmp_path / "ck.pt"
    fit_flow(old, checkpoint=ck, checkpoint_every=10, **SMALL)
    with pytest.raises(ValueError, match=r"differs in: times\); model times differ: a "
                                         r"time_scale='real' checkpoint of an earlier scflow"):
        fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL)


def test_bad_checkpoint_arguments_and_files(tc, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        fit_flow(tc, checkpoint=tmp_path / "ck.pt", checkpoint_every=0, **SMALL)
    with pytest.raises(ValueError, match="is a directory"):
        fit_flow(tc, checkpoint=tmp_path, **SMALL)
    with pytest.raises(ValueError, match="does not exist"):
        fit_flow(tc, checkpoint=tmp_path / "nope" / "ck.pt", **SMALL)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read as a scflow checkpoint"):
        fit_flow(tc, checkpoint=junk, **SMALL)
    other = tmp_path / "other.pt"
    torch.save({"a": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="not a scflow checkpoint"):
        fit_flow(tc, checkpoint=other, **SMALL)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_pickled_objects_are_not_loaded(tmp_path):
    """``weights_only=True``: a checkpoint holding an arbitrary object is rejected."""
    bad = tmp_path / "bad.pt"
    torch.save({"format": "scflow-checkpoint", "obj": _Evil()}, bad)
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(bad)


class _Evil:
    pass


def test_tl_fit_threads_the_checkpoint(blobs_small, tmp_path):
    import scflow

    ck = tmp_path / "ck.pt"
    scflow.tl.fit(blobs_small, n_dims=2, n_steps=30, batch_size=16, hidden=(8,),
                  checkpoint=str(ck), checkpoint_every=10)
    assert load_checkpoint(ck)["step"] == 30
    w = blobs_small.uns["scflow"]["model"]["weights"]
    again = blobs_small.copy()
    scflow.tl.fit(again, n_dims=2, n_steps=30, batch_size=16, hidden=(8,),
                  checkpoint=str(ck), checkpoint_every=10)
    assert all(np.array_equal(w[k], again.uns["scflow"]["model"]["weights"][k]) for k in w)


@pytest.fixture
def blobs_small() -> ad.AnnData:
    rng = np.random.default_rng(2)
    day = np.repeat([0.0, 1.0, 2.0], 30)
    adata = ad.AnnData(np.zeros((len(day), 2), dtype=np.float32),
                       obs=pd.DataFrame({"day": day}, index=[f"c{i}" for i in range(90)]))
    adata.obsm["X_pca"] = rng.normal(size=(len(day), 3)) + day[:, None]
    return adata


def test_cli_fit_in_process_and_bad_paths(blobs_small, tmp_path, capsys):
    from scflow.cli import main

    src = tmp_path / "in.h5ad"
    blobs_small.write_h5ad(src)
    out = tmp_path / "out.h5ad"
    assert main(["fit", str(src), "--n-steps", "5", "--batch-size", "8", "--hidden", "8",
                 "--device", "cpu", "--n-dims", "2", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    back = ad.read_h5ad(out)
    rec = back.uns["scflow"]
    assert rec["params"]["n_steps"] == 5 and rec["params"]["n_dims"] == 2
    # the input streamed through: everything else is the input, byte for byte in value
    np.testing.assert_array_equal(back.X, blobs_small.X)
    np.testing.assert_array_equal(back.obsm["X_pca"], blobs_small.obsm["X_pca"])
    assert list(back.obs.columns) == list(blobs_small.obs.columns)
    from scflow import load_model

    assert torch.isfinite(load_model(back).velocity(0.5, torch.zeros(3, 2))).all()
    # fitting the output again replaces the record in place
    assert main(["fit", str(out), "--n-steps", "7", "--batch-size", "8", "--hidden", "8",
                 "--device", "cpu", "--n-dims", "2", "--out", str(out)]) == 0
    assert ad.read_h5ad(out).uns["scflow"]["params"]["n_steps"] == 7
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "nope.h5ad"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit", str(src), "--out", str(tmp_path / "no" / "out.h5ad")]) == 2
    assert "its folder" in capsys.readouterr().err
    assert main(["fit", str(src), "--time-key", "when", "--out", str(tmp_path / "x.h5ad")]) == 2
    assert "time_key='when'" in capsys.readouterr().err
    assert not (tmp_path / "x.h5ad").exists()


# ----- divergence: no NaN checkpoint written, none resumed -----
@pytest.mark.parametrize("part", ["model", "ema", "losses", "optimizer"])
def test_checkpoint_with_non_finite_values_is_refused_on_resume(tc, tmp_path, part):
    ck = tmp_path / "ck.pt"
    _interrupted(tc, ck, 20)
    state = torch.load(ck, weights_only=True)
    if part == "optimizer":
        state["optimizer"]["state"][0]["exp_avg"].fill_(float("nan"))
    elif part == "losses":
        state["losses"][7] = float("inf")
    else:
        next(iter(state[part].values())).fill_(float("nan"))
    torch.save(state, ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {str(ck)!r} holds non-finite "
                                                   f"values (in {part}") + "[.)].*diverged"):
        fit_flow(tc, checkpoint=ck, checkpoint_every=10, **SMALL)
    assert ck.read_bytes() == before


def test_a_diverging_run_writes_no_checkpoint(tc, tmp_path):
    ck = tmp_path / "ck.pt"
    with pytest.raises(TrainingDivergedError, match="at step 2 of 40"):
        fit_flow(tc, checkpoint=ck, checkpoint_every=5, **{**SMALL, "lr": 1e6})
    assert not ck.exists()


def test_checkpointer_refuses_to_save_non_finite_weights(tc, tmp_path):
    from scflow.training.checkpoint import Checkpointer

    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    opt = torch.optim.Adam(model.parameters())
    ck = Checkpointer(tmp_path / "ck.pt", 5, {"a": 1}, model=model, optimizer=opt,
                      scheduler=None, ema=None, generator=torch.Generator(),
                      losses=torch.zeros(10))
    with pytest.raises(TrainingDivergedError, match=r"not saving checkpoint .* at step 5: "
                                                    r"non-finite values in model.weight"):
        ck.save(5)
    assert not (tmp_path / "ck.pt").exists()


def test_cli_fit_with_a_divergent_lr_fails_and_writes_nothing(tmp_path, capsys):
    from scflow.cli import main

    data, out = tmp_path / "d.h5ad", tmp_path / "out.h5ad"
    _h5ad(data)
    status = main(["fit", str(data), "--out", str(out), "--n-steps", "20", "--lr", "1e6",
                   "--device", "cpu", "--hidden", "8,8"])
    # Progress lines (one every 10% in a log) may precede it; the error itself is one line.
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("scflow otcfm:")]
    assert status == 2
    assert len(err) == 1 and "diverged" in err[0] and "at step 2 of 20" in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["d.h5ad"]
