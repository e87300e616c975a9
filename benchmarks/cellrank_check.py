"""The README's CellRank call, run as written, with the versions it was run under.

On the Schiebinger subset (tutorial 02: 30 PCs, the flow fitted on the first 10, below the
PCA width), this runs::

    scflow.tl.fit(adata, "day", use_rep="X_pca", n_dims=10)
    scflow.tl.velocity(adata)
    vk = cellrank.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca",
                                         vkey="velocity_scflow")
    vk.compute_transition_matrix()

then a short downstream step: the day-11 cells of each annotated cell type as terminal
states and CellRank's fate probabilities of every other cell (GPCCA estimator, direct
solver); and the same terminal states on the flow's own chain,
``scflow.tl.transition_matrix(adata)`` read by ``PrecomputedKernel(adata,
obsp_key="scflow_transitions")`` (only the annotated day-11 cells are terminal, the
"unknown" ones stay transient). CellRank is not a dependency of scflow; ``make cellrank``
builds a separate venv (``.venv-cellrank``) with the pinned versions and runs this script::

    make cellrank                       # or, in a venv with cellrank:
    SCFLOW_DATA_DIR=../shared/data python benchmarks/cellrank_check.py

Writes ``benchmarks/results/cellrank.json``: the package versions, the scflow commit and
either the result (transition matrix and fate probability summary) or the error. Exits 1
when the call fails.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from peers_core import commit, versions  # benchmarks/, beside this script

HERE = Path(__file__).resolve().parent
PACKAGES = ("cellrank", "scvelo", "numpy", "scipy", "pandas", "anndata", "scanpy", "torch",
            "pygpcca", "scflow")


def run(n_steps: int = 300, n_pcs: int = 30, n_dims: int = 10) -> dict:
    """Fit, velocity, VelocityKernel, fate probabilities; the facts of each step."""
    import cellrank as cr
    import numpy as np
    import scanpy as sc

    import scflow

    adata = scflow.datasets.schiebinger_subset()  # X is already log1p of counts per 10,000
    sc.pp.pca(adata, n_comps=n_pcs, random_state=0)
    sc.pp.neighbors(adata, use_rep="X_pca", n_neighbors=15, random_state=0)
    scflow.tl.fit(adata, "day", use_rep="X_pca", n_dims=n_dims, n_steps=n_steps,
                  random_state=0)
    scflow.tl.velocity(adata)
    result: dict = {"n_obs": adata.n_obs, "n_pcs": n_pcs, "n_dims": n_dims,
                    "n_steps": n_steps,
                    "velocity_shape": list(adata.obsm["velocity_scflow"].shape)}

    vk = cr.kernels.VelocityKernel(adata, attr="obsm", xkey="X_pca", vkey="velocity_scflow")
    vk.compute_transition_matrix()
    t = vk.transition_matrix
    rows = np.asarray(t.sum(axis=1)).ravel()
    result["transition_matrix"] = {"shape": list(t.shape), "nnz": int(t.nnz),
                                   "max_row_sum_error": float(np.abs(rows - 1).max()),
                                   "min_entry": float(t.min())}
    if result["transition_matrix"]["max_row_sum_error"] > 1e-6:
        raise RuntimeError(f"the transition matrix is not row-stochastic: {rows}")

    # downstream: day-11 cells of each type as terminal states, fate probabilities of all
    last = adata.obs["day"] == adata.obs["day"].max()
    types = adata.obs.loc[last, "cell_type"].value_counts()  # annotated types, 5+ cells
    types = [str(c) for c, n in types.items() if n >= 5 and c != "unknown"]
    g = cr.estimators.GPCCA(vk)
    g.set_terminal_states({c: list(adata.obs_names[last & (adata.obs["cell_type"] == c)])
                           for c in types})
    # a few hundred cells: exact solve (without use_petsc=False a missing petsc4py makes
    # CellRank swap "direct" for gmres)
    g.compute_fate_probabilities(solver="direct", use_petsc=False)
    fp = np.asarray(g.fate_probabilities)
    early = ~last.to_numpy()
    result["fate_probabilities"] = {
        "terminal_states": types,
        "max_row_sum_error": float(np.abs(fp.sum(1) - 1).max()),
        "mean_over_earlier_cells": dict(zip(types, np.round(fp[early].mean(0), 4).tolist(),
                                            strict=True)),
    }
    if not np.all(np.isfinite(fp)) or result["fate_probabilities"]["max_row_sum_error"] > 1e-4:
        raise RuntimeError("CellRank's fate probabilities are not finite rows summing to 1")

    # the flow's own chain (tl.transition_matrix) in CellRank's PrecomputedKernel, with the
    # same terminal states: only the annotated day-11 cells, the "unknown" ones transient
    scflow.tl.transition_matrix(adata)
    pk = cr.kernels.PrecomputedKernel(adata, obsp_key="scflow_transitions")
    g = cr.estimators.GPCCA(pk)
    g.set_terminal_states({c: list(adata.obs_names[last & (adata.obs["cell_type"] == c)])
                           for c in types})
    g.compute_fate_probabilities(solver="direct", use_petsc=False)
    fp = np.asarray(g.fate_probabilities)
    n_terminal = int(sum((last & (adata.obs["cell_type"] == c)).sum() for c in types))
    result["precomputed_kernel"] = {
        "call": 'PrecomputedKernel(adata, obsp_key="scflow_transitions")',
        "terminal_cells": n_terminal, "last_timepoint_cells": int(last.sum()),
        "components_of_last_timepoint": int(
            adata.uns["scflow_transitions_params"]["components"]),
        "max_row_sum_error": float(np.abs(fp.sum(1) - 1).max()),
        "mean_over_earlier_cells": dict(zip(types, np.round(fp[early].mean(0), 4).tolist(),
                                            strict=True)),
    }
    if not np.all(np.isfinite(fp)) or result["precomputed_kernel"]["max_row_sum_error"] > 1e-4:
        raise RuntimeError("the PrecomputedKernel's fate probabilities are not finite rows "
                           "summing to 1")
    return result


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    record: dict = {"call": 'VelocityKernel(adata, attr="obsm", xkey="X_pca", '
                            'vkey="velocity_scflow").compute_transition_matrix()',
                    "versions": versions(PACKAGES), "scflow_commit": commit()}
    start = time.perf_counter()
    try:
        record["result"] = run()
        record["status"] = "ok"
    except Exception as err:  # the failure is the finding: write it down, exit 1
        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        record["where"] = [f"{Path(f.filename).parent.name}/{Path(f.filename).name}:"
                           f"{f.lineno} in {f.name}: {f.line}"
                           for f in traceback.extract_tb(err.__traceback__)[1:]][:4]
    record["seconds"] = round(time.perf_counter() - start, 1)
    out = HERE / "results" / "cellrank.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("status", "versions")}, indent=2))
    print(record.get("error") or json.dumps(record["result"], indent=2))
    print(f"wrote {out}")
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
