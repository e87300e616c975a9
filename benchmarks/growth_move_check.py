"""Fixed-seed growth rows, to check that the move of ``uotcfm`` / ``static_mix`` into the
method registry (branch growth2) left the numbers of branch ``growth`` unchanged.

Mouse 2-D (``datasets.weinreb``), seed 0, CPU: leave-one-out (whitened, day 4 held out,
300 steps, ``reg_m=3``, absolute then: since uotcfm reads ``reg_m`` relative to each
interval's mean squared distance, a rerun gives other numbers) of ``uotcfm``,
``static_mix``, ``static_partial``; the roll-out of
``uotcfm`` (raw units, 200 steps) held out at day 4 and trained on all. Run it on each
checkout (``PYTHONPATH`` picks it) and compare the JSON::

    PYTHONPATH=. OMP_NUM_THREADS=1 nice python benchmarks/growth_move_check.py OUT.json
"""
import json
import sys

import torch

import scflow
from scflow._adata.access import time_course
from scflow.protocols import leave_one_out_tc
from scflow.protocols.rollout import rollout_tc

torch.set_num_threads(1)
adata = scflow.datasets.weinreb()
use_rep = "X_emb" if "X_emb" in adata.obsm else next(iter(adata.obsm))
tc = time_course(adata, "day", use_rep, n_dims=None, whiten=True, time_scale="index")
df = leave_one_out_tc(tc, ("uotcfm", "static_mix", "static_partial"), seeds=(0,),
                      n_steps=300, device="cpu", reg_m=3.0)
raw = time_course(adata, "day", use_rep, n_dims=None, whiten=False, time_scale="index")
ro = rollout_tc(raw, ("uotcfm",), seeds=(0,), holdouts=(1,), n_steps=200, device="cpu")
ra = rollout_tc(raw, ("uotcfm",), seeds=(0,), n_steps=200, device="cpu")
out = {"loo": df.drop(columns=["seconds"]).to_dict("records"),
       "rollout_holdout": ro.drop(columns=["seconds"]).to_dict("records"),
       "rollout_all": ra.drop(columns=["seconds"]).to_dict("records")}
json.dump(out, open(sys.argv[1], "w"), indent=1, default=float)
for k, v in out.items():
    for r in v:
        print(k, r["method"], {c: r[c] for c in ("w1", "w2", "mmd") if c in r})
