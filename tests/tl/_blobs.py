"""Small synthetic time courses for the tl/pl tests (shared by both conftests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import torch

DAYS = (0.0, 1.0, 2.0, 4.0)
N_PER = 60
N_GENES = 40


def make_blobs(seed: int = 0) -> ad.AnnData:
    """Four timepoints of a bifurcating Gaussian blob in a 3-D latent, read out in 40 genes.

    ``obs``: ``day`` (float, 0/1/2/4), ``label`` (strings ``"D0"``...), ``branch`` (``up`` /
    ``down``, the branch each cell is on; it separates the cells from day 1 on).
    ``obsm["X_pca"]`` (5 comps), ``varm["PCs"]`` and ``uns["pca"]`` from ``sc.pp.pca``.
    """
    rng = np.random.default_rng(seed)
    day = np.repeat(DAYS, N_PER)
    up = np.tile(np.arange(N_PER) % 2 == 0, len(DAYS))
    sign = np.where(up, 1.0, -1.0)
    z = np.stack([day, 0.8 * sign * day, 0.2 * day], 1) + rng.normal(0, 0.3, (len(day), 3))
    w = rng.normal(0, 1, (3, N_GENES))
    x = (3.0 + z @ w + rng.normal(0, 0.1, (len(day), N_GENES))).astype(np.float32)
    obs = pd.DataFrame({
        "day": day,
        "label": [f"D{d:g}" for d in day],
        "branch": pd.Categorical(np.where(up, "up", "down")),
    }, index=[f"cell{i}" for i in range(len(day))])
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(N_GENES)]))
    sc.pp.pca(adata, n_comps=5)
    return adata


def snapshot(adata: ad.AnnData) -> dict:
    """Keys of every slot, to check that a failing call wrote nothing."""
    return {"uns": sorted(adata.uns.keys()), "obs": list(adata.obs.columns),
            "obsm": sorted(adata.obsm.keys()), "layers": sorted(adata.layers.keys()),
            "sub": {k: sorted(v.keys()) for k, v in adata.uns.items() if isinstance(v, dict)},
            "X": np.asarray(adata.obsm["X_pca"]).sum() if "X_pca" in adata.obsm else None}


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: on two shared cores more threads run ~20x slower (and
    numba, loaded by scanpy, can reset torch's OpenMP pool, so set it where it matters)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
