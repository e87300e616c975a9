"""moscot and CellRank, called as a user calls them (imported on use: only the peers' venv,
``make peers``, has them).

- :func:`interpolate`: moscot's prediction of a held-out timepoint: a ``TemporalProblem``
  on the two kept neighbours, solved (moscot's defaults but ``epsilon``), then cells drawn
  from the coupling and placed at the held-out time by moscot's own interpolation
  (``TemporalProblem._interpolate_gex_with_ot``, the code behind its public
  ``compute_interpolated_distance``, with that method's default
  ``account_for_unbalancedness=False``). Its ``batch_size`` (documented on
  ``compute_interpolated_distance``: "number of rows/columns of the cost matrix to
  materialize during push or pull; larger value will require more memory") is set by
  :func:`interpolation_batch`: ott pushes a batch of ``b`` indicator columns through the
  ``n0 x n1`` kernel as one ``(n0, n1, b)`` array, so moscot's default ``b = 256`` needs
  8.5 GB on mouse 2-D (1,429 x 5,788 cells; measured: "Out of memory allocating
  8469557248 bytes"). The batch does not change the cells drawn (the same seed draws the
  same rows and columns in the same order), only the memory (tested).
- :func:`temporal_problem`: prepare + solve over every timepoint of an AnnData.
- :func:`pull_fates`: the annotated late labels pulled back to an early time (as WOT does:
  each label's cells as a distribution, pulled, then divided by the sum over labels).
- :func:`cellrank_fates`: CellRank 2's ``RealTimeKernel`` on moscot's couplings, fate
  probabilities towards the annotated terminal cells (GPCCA estimator).
"""

from __future__ import annotations

import os
import time

# JAX on the CPU, one thread (a shared 2-core machine); before jax is imported
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

#: ``TemporalProblem.solve``'s defaults that every call here keeps (epsilon aside)
SOLVE_DEFAULTS = {"tau_a": 1.0, "tau_b": 1.0, "scale_cost": "mean", "threshold": 1e-3}
#: bytes of the ``(n0, n1, batch)`` float32 array one interpolation batch may take
INTERPOLATION_BYTES = 2**30
#: moscot's default ``batch_size`` of ``compute_interpolated_distance``
MOSCOT_INTERPOLATION_BATCH = 256


def interpolation_batch(n0: int, n1: int, budget: int = INTERPOLATION_BYTES) -> int:
    """moscot's ``batch_size`` for interpolating between ``n0`` and ``n1`` cells: its
    default (256) unless ``256`` columns of the ``n0 x n1`` kernel (float32) exceed
    ``budget`` bytes, then as many as fit (at least 2: moscot 0.5.2 fails on a batch of
    one row, see :func:`interpolate`)."""
    if n0 < 1 or n1 < 1:
        raise ValueError(f"n0 and n1 must be positive cell counts, got {n0} and {n1}")
    fit = budget // (4 * int(n0) * int(n1))
    return int(max(2, min(MOSCOT_INTERPOLATION_BATCH, fit)))


def _quiet() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("moscot").setLevel(logging.ERROR)


def _converged(tp) -> dict[str, bool]:
    return {f"{a:g}->{b:g}": bool(sol.converged) for (a, b), sol in tp.solutions.items()}


def interpolate(x0: np.ndarray, x1: np.ndarray, t0: float, t1: float, s: float, *,
                epsilon: float, seeds=(0,), n_cells: int | None = None,
                batch_size: int | None = None) -> tuple[list, dict]:
    """moscot's cells at fraction ``s`` between ``x0`` (time ``t0``) and ``x1`` (``t1``).

    The balanced coupling of the two neighbours does not depend on the other kept
    timepoints, so only it is prepared and solved. One cloud of ``n_cells`` (default
    ``len(x0)``) per seed of ``seeds`` (moscot's sampling seed); ``batch_size``: moscot's
    interpolation batch (default :func:`interpolation_batch`).

    Returns
    -------
    ``(clouds, facts)``: one ``(n_cells, d)`` array per seed; ``converged``,
    ``solve_seconds``, ``seconds`` (all), ``epsilon``, ``interpolation_batch_size``.
    """
    from moscot.problems.time import TemporalProblem

    _quiet()
    start = time.perf_counter()
    adata = ad.AnnData(np.zeros((len(x0) + len(x1), 1), dtype=np.float32),
                       obs=pd.DataFrame({"t": np.r_[np.full(len(x0), t0),
                                                    np.full(len(x1), t1)]},
                                        index=[f"c{i}" for i in range(len(x0) + len(x1))]))
    adata.obsm["X_w"] = np.concatenate([x0, x1]).astype(np.float64)
    tp = TemporalProblem(adata).prepare("t", joint_attr="X_w")
    tp.solve(epsilon=epsilon)
    solved = time.perf_counter() - start
    prob = tp.problems[(t0, t1)]
    src, tgt = np.asarray(prob.xy.data_src), np.asarray(prob.xy.data_tgt)
    batch = int(batch_size or interpolation_batch(len(x0), len(x1)))
    clouds, batches = [], []
    for seed in seeds:
        b = batch
        while True:
            try:
                clouds.append(np.asarray(tp._interpolate_gex_with_ot(
                    number_cells=int(n_cells or len(x0)), source_data=src, target_data=tgt,
                    source=t0, target=t1, interpolation_parameter=float(s),
                    account_for_unbalancedness=False, batch_size=b, seed=int(seed))))
                break
            except IndexError:
                # moscot 0.5.2 squeezes a last batch of one row to 1-D and fails on it
                # (`col_p_given_row[:, i]`); one column less per batch draws the same cells
                if b <= 2:
                    raise
                b -= 1
        batches.append(b)
    finite = all(np.isfinite(c).all() for c in clouds)
    return clouds, {"converged": bool(tp.solutions[(t0, t1)].converged) and finite,
                    "finite": finite, "solve_seconds": solved,
                    "seconds": time.perf_counter() - start, "epsilon": float(epsilon),
                    "interpolation_batch_size": batches}


def temporal_problem(adata: ad.AnnData, time_key: str, joint_attr: str, *,
                     epsilon: float = 1e-3, **solve):
    """``TemporalProblem(adata).prepare(time_key, joint_attr=...).solve(epsilon, ...)``,
    every consecutive pair of timepoints; returns ``(tp, facts)`` with the seconds of each
    step and the convergence of every subproblem."""
    from moscot.problems.time import TemporalProblem

    _quiet()
    start = time.perf_counter()
    tp = TemporalProblem(adata).prepare(time_key, joint_attr=joint_attr)
    prepared = time.perf_counter()
    tp.solve(epsilon=epsilon, **solve)
    done = time.perf_counter()
    conv = _converged(tp)
    return tp, {"epsilon": float(epsilon), **solve, "prepare_seconds": prepared - start,
                "solve_seconds": done - prepared, "converged": conv,
                "all_converged": all(conv.values())}


def pull_fates(tp, labels_key: str, fates, source: float, target: float) -> pd.DataFrame:
    """Each label of ``fates`` (its cells at ``target`` as one distribution, moscot's
    ``normalize=True``) pulled back to ``source``; rows divided by their sum over labels
    (WOT's fate probabilities). Returns a cells-of-``source`` x fates frame."""
    cols = {}
    for fate in fates:
        out = tp.pull(source=source, target=target, data=labels_key, subset=[fate],
                      key_added=None)
        cols[fate] = np.asarray(out).ravel()  # the pulled mass at source
    obs = tp.adata.obs
    index = obs.index[obs[tp.temporal_key] == source]
    df = pd.DataFrame(cols, index=index)
    return df.div(df.sum(axis=1), axis=0)


def cellrank_fates(tp, terminal: dict[str, list[str]], *, n_neighbors: int = 30,
                   use_rep: str = "X_emb", sparse_mode: str | None = "min_row",
                   transformer: str | None = "sklearn") -> tuple[pd.DataFrame, dict]:
    """CellRank 2's ``RealTimeKernel.from_moscot(tp, sparse_mode=...)`` with CellRank's
    real-time tutorial settings (``self_transitions="all"``, ``conn_weight=0.2``,
    ``threshold="auto"``; the within-timepoint connectivities from ``sc.pp.neighbors`` on
    ``use_rep``), a GPCCA estimator with ``terminal`` (fate -> cell names) as terminal
    states and its fate probabilities (``solver="gmres"``, no PETSc).

    ``sparse_mode="min_row"`` (default): moscot sparsifies each coupling while it builds
    its rows in blocks (``sparsify(mode="min_row")``: entries below the smallest row
    maximum dropped, CellRank's ``threshold="auto_local"``), so no dense coupling is ever
    held (LARRY's 38k x 38k one is 11.6 GB in float64); CellRank then thresholds no
    further. ``None``: the dense couplings, thresholded by CellRank (``"auto"``, one value
    over all couplings). Returns every cell's probabilities and the facts (seconds, the
    transition matrix's size).

    ``transformer``: ``sc.pp.neighbors``'s kNN search, here and in CellRank's
    within-timepoint connectivities (``conn_kwargs``). ``"sklearn"`` (exact) by default:
    scanpy 1.11.5's default search on large data (pynndescent 0.7) hands back a
    ``csr_array`` on which scanpy then calls ``getnnz``, which scipy 1.16 no longer has
    (measured on LARRY's 70k cells: ``AttributeError``); ``None``: scanpy's default."""
    import cellrank as cr
    import scanpy as sc

    _quiet()
    start = time.perf_counter()
    adata = tp.adata
    knn = {"transformer": transformer} if transformer else {}
    sc.pp.neighbors(adata, use_rep=use_rep, n_neighbors=n_neighbors, random_state=0, **knn)
    kernel = cr.kernels.RealTimeKernel.from_moscot(tp, sparse_mode=sparse_mode)
    kernel.compute_transition_matrix(self_transitions="all", conn_weight=0.2,
                                     threshold="auto", conn_kwargs=knn)
    built = time.perf_counter()
    g = cr.estimators.GPCCA(kernel)
    g.set_terminal_states(terminal)
    g.compute_fate_probabilities(solver="gmres", use_petsc=False)
    fp = g.fate_probabilities
    probs = pd.DataFrame(np.asarray(fp), index=adata.obs_names, columns=list(fp.names))
    t = kernel.transition_matrix
    return probs, {"kernel_seconds": built - start,
                   "fate_seconds": time.perf_counter() - built,
                   "transition_nnz": int(t.nnz), "n_cells": int(t.shape[0]),
                   "settings": {"self_transitions": "all", "conn_weight": 0.2,
                                "threshold": "auto", "sparse_mode": sparse_mode,
                                "n_neighbors": n_neighbors, "solver": "gmres",
                                "transformer": transformer}}
