"""A synthetic time course drawn from a known bifurcating stochastic process.

Each cell is a particle of an overdamped Langevin process in ``latent_dim`` dimensions,

    dX = -grad_x U(X, s) ds + diffusion dW,    s = day / (n_timepoints - 1) in [0, 1],

with the pitchfork potential

    U(x, s) = -v x_1 + x_2**4 / 4 - mu(s) x_2**2 / 2 + sum_{k>2} x_k**2 / 2,
    mu(s) = mu_max (s - s_c) / (1 - s_c),

so every cell moves along axis 1 at constant speed ``v`` while the single valley of axis 2
(``mu < 0`` before ``s_c``) splits into two valleys at ``x_2 = +-sqrt(mu(s))`` that deepen
with time. Running the process on the unit interval keeps the same landscape for any number
of timepoints: more timepoints only observe it more often. Each particle is observed at one
timepoint only, as in a real snapshot experiment, but its whole path is kept.
"""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .._checks import integer, number

__all__ = ["simulate", "true_fate", "true_paths"]

_SPEED = 4.0  # v: distance travelled along axis 1 over the whole course
_MU_MAX = 16.0  # mu at the last timepoint: branches end near x_2 = +-4
_S_SPLIT = 0.1  # s_c: fraction of the course before the valley splits
_INIT_SD = 0.3  # spread of the cells at day 0
_MEASUREMENT_SD = 0.05  # isotropic gene-space measurement noise
_STEPS_PER_UNIT = 400  # Euler-Maruyama steps over the unit interval (at least 50 per interval)


def _drift(x: np.ndarray, s: float, *, speed: float = _SPEED, mu_max: float = _MU_MAX,
           s_split: float = _S_SPLIT) -> np.ndarray:
    """``-grad_x U(x, s)`` for an ``(..., latent_dim)`` array."""
    mu = mu_max * (s - s_split) / (1.0 - s_split)
    out = -x
    out[..., 0] = speed
    out[..., 1] = mu * x[..., 1] - x[..., 1] ** 3
    return out


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def simulate(
    n_cells: int = 2000,
    n_timepoints: int = 5,
    *,
    n_genes: int = 50,
    latent_dim: int = 2,
    n_pcs: int = 10,
    diffusion: float = 0.1,
    random_state: int = 0,
    branch_time: float = _S_SPLIT,
    speed: float = _SPEED,
) -> ad.AnnData:
    """Simulate snapshots of a bifurcating process with the true cell paths kept.

    Cells start near the origin, drift along latent axis 1 and split into an ``"upper"``
    and a ``"lower"`` branch along axis 2 (see the module docstring for the potential).
    Latent states are mapped into ``n_genes`` genes by a fixed random linear map plus a
    positive offset, and observed with small isotropic noise (sd 0.05).

    Parameters
    ----------
    n_cells
        Number of cells, split evenly at random over the timepoints (at least
        ``10 * n_timepoints``).
    n_timepoints
        Number of timepoints (at least 2); cells are observed at days ``0, 1, ...,
        n_timepoints - 1``.
    n_genes
        Number of genes (at least ``latent_dim``).
    latent_dim
        Dimension of the latent process (at least 2; axes beyond the second are
        Ornstein-Uhlenbeck noise around 0).
    n_pcs
        Number of principal components computed (1 to ``min(n_genes, n_cells)``).
    diffusion
        Noise scale of the Langevin dynamics per unit of the rescaled time (>= 0).
    random_state
        Seed of the ``numpy.random.Generator`` that draws everything.
    branch_time
        ``s_c``: the share of the course, in ``[0, 1)``, before which the valley of axis 2
        is single (``mu < 0``: every cell is pulled back to ``x_2 = 0`` and its fate is not
        yet decided); the branches open after it. Default 0.1.
    speed
        ``v``: the distance travelled along axis 1 over the whole course (>= 0). A small
        speed keeps the early cells close to the late ones (as a 2-D embedding of a
        differentiation that starts from one tight stem). Default 4.

    Returns
    -------
    anndata.AnnData
        ``X`` (float32 expression), ``obs["day"]`` (float), ``obs["time_label"]`` (ordered
        ``"t0"``, ``"t1"``, ...), ``obs["t_idx"]``, ``obs["branch"]`` (``"lower"`` /
        ``"upper"``: the sign of latent axis 2 at the last timepoint), ``obsm["X_pca"]`` with
        ``varm["PCs"]`` and ``uns["pca"]`` (``mean``, ``variance``, ``variance_ratio``) such
        that ``X_pca = (X - mean) @ PCs``, ``obsm["X_latent"]`` (observed latent state),
        ``obsm["X_true_path_latent"]`` ``(n, T * latent_dim)`` and
        ``obsm["X_true_path_pca"]`` ``(n, T * n_pcs)``: each cell's whole path at every
        timepoint, latent and noise-free in PCA coordinates; reshape with
        ``.reshape(n, T, d)`` or :func:`true_paths`. ``uns["scflow_dataset"]`` records the
        parameters.

    Raises
    ------
    ValueError
        If an argument is out of range (the message names it).

    Examples
    --------
    >>> adata = simulate(600, 3, random_state=1)
    >>> true_paths(adata, "latent").shape
    (600, 3, 2)
    """
    integer(n_timepoints, "n_timepoints", lower=2, expected="an integer >= 2")
    min_cells = 10 * n_timepoints
    integer(n_cells, "n_cells", lower=min_cells,
            expected=f"an integer >= 10 * n_timepoints ({min_cells})")
    integer(latent_dim, "latent_dim", lower=2, expected="an integer >= 2")
    integer(n_genes, "n_genes", lower=latent_dim,
            expected=f"an integer >= latent_dim ({latent_dim})")
    max_pcs = min(n_genes, n_cells)
    integer(n_pcs, "n_pcs", lower=1, upper=max_pcs,
            expected=f"an integer in 1..min(n_genes, n_cells) ({max_pcs})")
    integer(random_state, "random_state", lower=0, expected="a non-negative integer")
    number(diffusion, "diffusion", lower=0)
    branch_time = number(branch_time, "branch_time", lower=0)
    if branch_time >= 1:
        raise ValueError(f"branch_time must be in [0, 1), got {branch_time!r}")
    speed = number(speed, "speed", lower=0)
    shape = {"speed": speed, "s_split": branch_time}
    n, T, d = int(n_cells), int(n_timepoints), int(latent_dim)
    rng = np.random.default_rng(random_state)

    # Latent paths by Euler-Maruyama on s in [0, 1], recorded at every timepoint.
    per_interval = max(50, int(np.ceil(_STEPS_PER_UNIT / (T - 1))))
    ds = 1.0 / ((T - 1) * per_interval)
    x = rng.normal(0.0, _INIT_SD, size=(n, d))
    paths = np.empty((n, T, d))
    paths[:, 0] = x
    for k in range(1, T):
        for j in range(per_interval):
            s = ((k - 1) * per_interval + j) * ds
            noise = diffusion * np.sqrt(ds) * rng.standard_normal((n, d))
            x = x + _drift(x, s, **shape) * ds + noise
        paths[:, k] = x

    # Gene space: a fixed linear map, a positive offset and measurement noise.
    # Each gene reads a random direction of the latent space with a weight in [0.2, 1]: it
    # moves by at most |x| around an offset of 8 to 12, so values stay positive unless a
    # large diffusion carries cells beyond |x| = 8.
    loadings = rng.normal(size=(d, n_genes))
    loadings *= rng.uniform(0.2, 1.0, size=n_genes) / np.linalg.norm(loadings, axis=0)
    offset = rng.uniform(8.0, 12.0, size=n_genes)
    t_idx = np.sort(rng.permutation(np.arange(n) % T))  # balanced, cells ordered by time
    latent = paths[np.arange(n), t_idx]
    noise = rng.normal(0.0, _MEASUREMENT_SD, size=(n, n_genes))
    X = (latent @ loadings + offset + noise).astype(np.float32)

    # PCA by SVD on the centred matrix, sign fixed so each PC's largest loading is positive.
    mean = X.mean(axis=0, dtype=np.float64)
    _, sing, vt = np.linalg.svd(X - mean, full_matrices=False)
    pcs = vt[:n_pcs].T
    signs = np.sign(pcs[np.abs(pcs).argmax(axis=0), np.arange(n_pcs)])
    pcs = pcs * signs
    variance = sing**2 / (n - 1)
    X_pca = (X - mean) @ pcs
    clean_pca = (paths @ loadings + offset - mean) @ pcs  # (n, T, n_pcs), noise-free

    days = np.arange(T, dtype=np.float64)
    labels = [f"t{k}" for k in range(T)]
    branch = np.where(paths[:, -1, 1] > 0, "upper", "lower")
    obs = pd.DataFrame(
        {
            "day": days[t_idx],
            "time_label": pd.Categorical.from_codes(t_idx, categories=labels, ordered=True),
            "t_idx": t_idx.astype(np.int64),
            "branch": pd.Categorical(branch, categories=["lower", "upper"]),
        },
        index=pd.Index([f"cell{i}" for i in range(n)]),
    )
    var = pd.DataFrame(index=pd.Index([f"gene{g + 1}" for g in range(n_genes)]))
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.obsm["X_pca"] = X_pca.astype(np.float32)
    adata.obsm["X_latent"] = latent
    adata.obsm["X_true_path_latent"] = paths.reshape(n, T * d)
    adata.obsm["X_true_path_pca"] = clean_pca.reshape(n, T * n_pcs)
    adata.varm["PCs"] = pcs
    adata.uns["pca"] = {
        "mean": mean,
        "variance": variance[:n_pcs],
        "variance_ratio": variance[:n_pcs] / variance.sum(),
    }
    adata.uns["scflow_dataset"] = {
        "name": "simulate",
        "use_rep": "X_pca",
        "citation": "scflow.datasets.simulate (synthetic)",
        "source": "pitchfork overdamped Langevin process, see scflow.datasets._simulate",
        "n_timepoints": T,
        "params": {
            "n_cells": n,
            "n_timepoints": T,
            "n_genes": int(n_genes),
            "latent_dim": d,
            "n_pcs": int(n_pcs),
            "diffusion": float(diffusion),
            "random_state": int(random_state),
            "speed": speed,
            "mu_max": _MU_MAX,
            "s_split": branch_time,
            "init_sd": _INIT_SD,
            "measurement_sd": _MEASUREMENT_SD,
            "steps_per_interval": per_interval,
        },
    }
    return adata


def true_paths(adata: ad.AnnData, rep: str = "pca") -> np.ndarray:
    """The true path of every cell of a :func:`simulate` data set, as ``(n, T, d)``.

    Parameters
    ----------
    adata
        The output of :func:`simulate` (or a subset of its cells).
    rep
        ``"pca"`` (noise-free gene-space path in the data set's PCA coordinates) or
        ``"latent"`` (the latent process itself).

    Returns
    -------
    numpy.ndarray
        ``paths[i, k]`` is cell ``i``'s state at day ``k``.

    Raises
    ------
    ValueError
        If ``rep`` is neither ``"pca"`` nor ``"latent"``.
    KeyError
        If ``adata.obsm`` has no ``"X_true_path_<rep>"``.
    """
    _check("rep", rep, rep in ("pca", "latent"), '"pca" or "latent"')
    key = f"X_true_path_{rep}"
    if key not in adata.obsm:
        raise KeyError(f"adata.obsm has no {key!r}: expected the output of scflow simulate()")
    flat = np.asarray(adata.obsm[key])
    info = adata.uns.get("scflow_dataset", {})
    T = int(info.get("n_timepoints", 0)) or len(adata.obs["time_label"].cat.categories)
    return flat.reshape(flat.shape[0], T, flat.shape[1] // T)


#: elements of the (draws, cells, latent_dim) state advanced at once by :func:`true_fate`
_FATE_BLOCK = 2_000_000


def true_fate(adata: ad.AnnData, n_draws: int = 200, *, random_state: int = 0) -> pd.Series:
    """The true probability of each cell of a :func:`simulate` data set to end ``"upper"``.

    Each cell's observed latent state (``obsm["X_latent"]``, at its own timepoint
    ``obs["t_idx"]``) is the start of ``n_draws`` new runs of the *same* process that
    :func:`simulate` drew (drift, diffusion and Euler-Maruyama time grid read from
    ``uns["scflow_dataset"]["params"]``), carried to the last timepoint; the probability is
    the share of runs that end with latent axis 2 above 0, the rule of ``obs["branch"]``. A
    cell of the last timepoint has probability 0 or 1: its own branch.

    This is the target a fate estimate (:func:`scflow.tl.fate`) is scored against: unlike
    ``obs["branch"]``, one draw of the future, it is the expected fate given the state.

    Parameters
    ----------
    adata
        The output of :func:`simulate` (or a subset of its cells).
    n_draws
        Runs per cell (>= 1); the Monte-Carlo standard error is at most
        ``0.5 / sqrt(n_draws)``.
    random_state
        Seed of the ``numpy.random.Generator`` of the runs' noise (the global NumPy state
        is left alone).

    Returns
    -------
    pandas.Series
        ``P(upper)`` per cell in ``[0, 1]``, indexed by ``adata.obs_names``, named
        ``"p_upper"``.

    Raises
    ------
    KeyError
        If ``adata`` lacks what :func:`simulate` writes (``uns["scflow_dataset"]["params"]``,
        ``obsm["X_latent"]``, ``obs["t_idx"]``).
    ValueError
        If ``n_draws`` or ``random_state`` is out of range.

    Examples
    --------
    >>> adata = simulate(200, 3, random_state=1)
    >>> p = true_fate(adata, n_draws=50)
    >>> bool(((p >= 0) & (p <= 1)).all())
    True
    """
    n_draws = integer(n_draws, "n_draws", lower=1, expected="an integer >= 1")
    random_state = integer(random_state, "random_state", lower=0,
                           expected="a non-negative integer")
    info = adata.uns.get("scflow_dataset", {})
    params = info.get("params") if isinstance(info, dict) else None
    need = ("n_timepoints", "latent_dim", "diffusion", "speed", "mu_max", "s_split",
            "steps_per_interval")
    if info.get("name") != "simulate" or not isinstance(params, dict) or any(
            k not in params for k in need):
        raise KeyError("adata.uns['scflow_dataset']['params'] does not hold the process "
                       f"parameters {need}: expected the output of scflow simulate()")
    for key, where in (("X_latent", adata.obsm), ("t_idx", adata.obs)):
        if key not in where:
            raise KeyError(f"adata has no {key!r}: expected the output of scflow simulate()")
    T, per = int(params["n_timepoints"]), int(params["steps_per_interval"])
    diffusion = float(params["diffusion"])
    shape = {"speed": float(params["speed"]), "mu_max": float(params["mu_max"]),
             "s_split": float(params["s_split"])}
    x0 = np.asarray(adata.obsm["X_latent"], dtype=np.float64)
    t_idx = np.asarray(adata.obs["t_idx"], dtype=np.int64)
    if x0.ndim != 2 or x0.shape[1] != int(params["latent_dim"]) or t_idx.min(
            initial=0) < 0 or t_idx.max(initial=0) > T - 1:
        raise ValueError("obsm['X_latent'] / obs['t_idx'] do not match the stored "
                         "parameters of simulate()")
    rng = np.random.default_rng(random_state)
    ds = 1.0 / ((T - 1) * per)
    # Cells sorted by start time: at global step g the cells already started (t_idx * per
    # <= g) are a prefix of the order, advanced together with all their draws.
    order = np.argsort(t_idx, kind="stable")
    starts = t_idx[order] * per
    n, d = x0.shape
    hits = np.zeros(n)
    block = max(1, _FATE_BLOCK // max(1, n * d))
    for lo in range(0, n_draws, block):
        m = min(block, n_draws - lo)
        x = np.broadcast_to(x0[order], (m, n, d)).copy()
        for g in range((T - 1) * per):
            active = int(np.searchsorted(starts, g, side="right"))
            if active == 0:
                continue
            xa = x[:, :active]
            step = _drift(xa, g * ds, **shape) * ds
            if diffusion > 0:
                step += diffusion * np.sqrt(ds) * rng.standard_normal(xa.shape)
            x[:, :active] = xa + step
        hits[order] += (x[..., 1] > 0).sum(axis=0)
    return pd.Series(hits / n_draws, index=adata.obs_names.copy(), name="p_upper")
