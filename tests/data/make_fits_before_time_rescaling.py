"""Fits stored by scflow before the real-time rescaling (commit 4729227): the backward-
compatibility fixture of tests/tl/test_tl_times.py.

Made with that commit's package first on the path, from this folder::

    git archive 4729227 scflow | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python make_fits_before_time_rescaling.py
"""
import anndata as ad
import numpy as np
import pandas as pd
import torch

import scflow

torch.set_num_threads(1)
scflow.settings.verbosity = 0
rng = np.random.default_rng(0)
days = np.repeat([0.0, 1.0, 3.0], 12)
k = np.repeat(np.arange(3), 12)
x = rng.normal(0, 0.3, (len(days), 2))
x[:, 0] += k
a = ad.AnnData(np.zeros((len(days), 1), dtype=np.float32),
               obs=pd.DataFrame({"day": days,
                                 "branch": np.where(np.arange(len(days)) % 2, "A", "B")},
                                index=[f"c{i}" for i in range(len(days))]))
a.obsm["X_pca"] = x
kw = dict(n_steps=40, batch_size=8, hidden=(8,), use_rep="X_pca")
scflow.tl.fit(a, "day", time_scale="real", key_added="real", **kw)
scflow.tl.fit(a, "day", time_scale="real", method="sbcfm", key_added="sb", **kw)
scflow.tl.fit(a, "day", key_added="index", **kw)
exp = {}
for key in ("real", "sb", "index"):
    p = scflow.tl.predict(a, 2.0, key=key, from_time=1.0, n_steps=20)
    exp[f"{key}_predict"] = np.asarray(p.obsm["X_pca"], dtype=np.float64)
    b = a.copy()
    scflow.tl.velocity(b, key=key, units="time")
    exp[f"{key}_velocity"] = np.asarray(b.obsm[f"velocity_{key}"], dtype=np.float64)
p = scflow.tl.predict(a, 2.0, key="sb", from_time=1.0, n_steps=20, stochastic=True,
                      random_state=3)
exp["sb_sde"] = np.asarray(p.obsm["X_pca"], dtype=np.float64)
a.uns["expected"] = exp
a.write_h5ad("fits_before_time_rescaling.h5ad")
print({k: v.shape for k, v in exp.items()})
