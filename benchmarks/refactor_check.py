"""The same rows before and after a refactor: leave-one-out and the hold-one-out roll-out on
EMT UMAP, every method, seed 0, 300 steps. Run it on both checkouts
(``PYTHONPATH=CHECKOUT python benchmarks/refactor_check.py OUT.json``) and compare the
files: issue 28 (one loop, methods as classes, the new layout) against 4729227 gave every
W1 identical to the last bit (benchmarks/results/refactor_check_28.json)."""
import json
import sys

import scflow
from scflow.protocols import leave_one_out_tc
from scflow.protocols.rollout import rollout_tc

adata = scflow.datasets.emt_umap()
tc = scflow.TimeCourse.from_arrays(adata.obsm["X_umap"], adata.obs["day"], whiten=True)
raw = scflow.TimeCourse.from_arrays(adata.obsm["X_umap"], adata.obs["day"], whiten=False)
methods = ["otcfm", "sbcfm", "icfm", "mmfm", "uotcfm", "static_ot", "static_spline",
           "static_partial", "static_mean_spline", "static_mix"]
loo = leave_one_out_tc(tc, methods, seeds=(0,), n_steps=300, device="cpu", progress=False)
ro = rollout_tc(raw, ["otcfm", "mmfm", "uotcfm", "static_spline", "static_chain"], seeds=(0,),
                holdouts=[1, 2], n_steps=300, device="cpu", progress=False)
out = {"loo": {f"{r.method}@{r.holdout_index}": r.w1 for r in loo.itertuples()},
       "rollout": {f"{r.method}@{r.holdout_index}": r.w1 for r in ro.itertuples()}}
json.dump(out, open(sys.argv[1], "w"), indent=1)
