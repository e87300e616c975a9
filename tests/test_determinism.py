"""Determinism: same seed, data and device give identical results in separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

SCRIPT = textwrap.dedent("""
    import sys

    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch

    import scflow

    torch.set_num_threads(1)
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
    np.savez(sys.argv[1], **out)
""")


def test_same_seed_same_results_across_processes(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    outs = [tmp_path / f"out{i}.npz" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, str(script), str(o)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for o in outs]
    for p in procs:
        log, _ = p.communicate(timeout=300)
        assert p.returncode == 0, log.decode()[-3000:]
    with np.load(outs[0]) as a, np.load(outs[1]) as b:
        assert a.files == b.files
        assert any(k.endswith("/paths") for k in a.files)
        assert {"loo/w1", "loo/w2", "loo/mmd"} <= set(a.files)
        for k in a.files:
            assert a[k].size > 0, k
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        # the comparison can tell different runs apart
        assert not np.array_equal(a["otcfm/paths"], a["sbcfm/paths"])
