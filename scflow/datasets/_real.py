"""Real single-cell time courses read from the directory named by ``SCFLOW_DATA_DIR``.

Every file is checked against the sha256 recorded in its folder's ``SOURCE.md`` before it
is read, so a loader either returns exactly the published numbers or raises.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_REP",
    "REGISTRY",
    "bargaje",
    "data_dir",
    "emt",
    "emt_umap",
    "schiebinger_subset",
    "weinreb",
]

ENV_VAR = "SCFLOW_DATA_DIR"

#: The ``obsm`` key each data set's embedding is stored under (``use_rep`` for ``scflow.tl``).
DEFAULT_REP: dict[str, str] = {
    "emt": "X_latent",
    "emt_umap": "X_umap",
    "weinreb": "X_emb",
    "larry": "X_emb",
    "bargaje": "X_emb",
    "schiebinger_subset": "X_pca",
    "eb": "X_pca",
    "cite": "X_pca",
    "multi": "X_pca",
    "simulate": "X_pca",
}

_COOK = "Cook & Vanderhyden (2020) Nat. Commun. 11:2142"

#: Folder, file, sha256 (from each ``SOURCE.md``), short citation and origin of each file;
#: full references are in the repository's ``data/README.md``.
REGISTRY: dict[str, dict[str, str]] = {
    "emt": {
        "folder": "emt_cook2020_deepruot_10d",
        "file": "emt_10d.npz",
        "sha256": "0492f4346ea4471b0fbbcb19a362d1778357fdf8d4f3cb97054657ff2b5c244f",
        "citation": _COOK,
        "source": "github.com/zhenyiizhang/DeepRUOT@2289c81 data/emt.csv (MIT), as npz",
    },
    "emt_umap": {
        "folder": "emt_cook2020_tigon_umap3d",
        "file": "emt_umap3d.npz",
        "sha256": "97b978bf0407dc14397dc923030f0f3e85760f2ca21c164613cdf3ea9196321d",
        "citation": _COOK,
        "source": "github.com/yutongo/TIGON@1ed92cf Input/EMT.npy (MIT), as npz",
    },
    "weinreb": {
        "folder": "weinreb2020_hematopoiesis_2d",
        "file": "weinreb_2d.npz",
        "sha256": "a350a67cd695ffd80b00160e362e562b8335c5cd2f8d9517ca83a7d10a58df82",
        "citation": "Weinreb, Rodriguez-Fraticelli, Camargo & Klein (2020) Science 367:eaaw3381",
        "source": "github.com/zhenyiizhang/DeepRUOT@2289c81 data/mouse_hematopoiesis.csv (MIT)",
    },
    "bargaje": {
        "folder": "bargaje2017_ipsc_cardiac_qpcr_4d",
        "file": "bargaje_4d.npz",
        "sha256": "e03ec60d1001de222fc2ef1f0745be711068d5e7acb51aa8b584b4246944ce36",
        "citation": "Bargaje et al. (2017) PNAS 114(9):2271-2276",
        "source": "github.com/yutongo/TIGON@1ed92cf Input/Bifurcation.npy (MIT), as npz",
    },
    "schiebinger_subset": {
        "folder": "schiebinger2019_moscot_test_subset",
        "file": "moscot_temporal_tests.h5ad",
        "sha256": "746a098fbf84e941e67e494bb4b61b741eff8945850e0056e6857cccd07f5885",
        "citation": "Schiebinger et al. (2019) Cell 176:928-943",
        "source": "github.com/theislab/moscot@89a7936 tests/data/ (BSD-3-Clause)",
    },
}


def data_dir() -> Path:
    """The directory holding the real data sets, from the ``SCFLOW_DATA_DIR`` variable.

    Returns
    -------
    pathlib.Path
        The directory; it contains one folder per data set (e.g.
        ``emt_cook2020_deepruot_10d/``), each with its files and a ``SOURCE.md``.

    Raises
    ------
    FileNotFoundError
        If ``SCFLOW_DATA_DIR`` is unset or does not name an existing directory.
    """
    value = os.environ.get(ENV_VAR, "")
    if not value or not Path(value).expanduser().is_dir():
        state = " is not set" if not value else f"={value!r} is not a directory"
        raise FileNotFoundError(
            f"{ENV_VAR}{state}: expected it to name the directory that holds the scflow data "
            f"set folders (e.g. {REGISTRY['emt']['folder']}/, see data/README.md)."
        )
    return Path(value).expanduser()


def sha256sum(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike[str], expected: str) -> str:
    """Verify ``path`` against ``expected``; return the digest or raise ``ValueError``."""
    actual = sha256sum(path)
    if actual != expected.lower():
        raise ValueError(
            f"sha256 mismatch for {os.fspath(path)}: expected {expected.lower()}, got {actual}. "
            "The file is corrupt or not the published version."
        )
    return actual


def _verified_file(name: str) -> tuple[Path, dict[str, str]]:
    entry = REGISTRY[name]
    path = data_dir() / entry["folder"] / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: expected {entry['folder']}/{entry['file']} under "
            f"{ENV_VAR}={os.environ.get(ENV_VAR)!r}."
        )
    check_sha256(path, entry["sha256"])
    return path, entry


def dataset_info(name: str, entry: dict[str, str], **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": name,
        "use_rep": DEFAULT_REP[name],
        "citation": entry["citation"],
        "source": entry["source"],
        "file": entry["file"],
        "sha256": entry["sha256"],
    }
    info.update(extra)
    return info


def time_obs(day: Any, prefix: str = "d") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Float days, their time index and one label per distinct day, from a numeric column."""
    values = pd.to_numeric(pd.Series(np.asarray(day, dtype=object))).to_numpy(np.float64)
    days = np.unique(values)
    return values, np.searchsorted(days, values).astype(np.int64), [f"{prefix}{d:g}" for d in days]


def embedding_adata(
    x: np.ndarray, day: np.ndarray, t_idx: np.ndarray, labels: Any, *, prefix: str, var: str
) -> ad.AnnData:
    """AnnData with ``X = x`` (float32) and ``obs`` ``day``, ``time_label``, ``t_idx``."""
    x = np.asarray(x, dtype=np.float32)
    t_idx = np.asarray(t_idx, dtype=np.int64)
    obs = pd.DataFrame(
        {
            "day": np.asarray(day, dtype=np.float64),
            "time_label": pd.Categorical.from_codes(t_idx, categories=list(labels), ordered=True),
            "t_idx": t_idx,
        },
        index=pd.Index([f"{prefix}_{i}" for i in range(x.shape[0])]),
    )
    names = pd.Index([f"{var}{j + 1}" for j in range(x.shape[1])])
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=names))


def _from_npz(name: str, prefix: str) -> ad.AnnData:
    """Build the AnnData of one of the converted ``*.npz`` embeddings."""
    path, entry = _verified_file(name)
    with np.load(path, allow_pickle=False) as npz:
        x, t_idx, t = npz["X"], npz["t_idx"], npz["t"]
        time_values = np.asarray(npz["time_values"], dtype=np.float64)
        labels = [str(label) for label in npz["time_labels"]]
    adata = embedding_adata(x, t, t_idx, labels, prefix=prefix, var="dim")
    adata.obsm[DEFAULT_REP[name]] = adata.X.copy()
    adata.uns["scflow_dataset"] = dataset_info(
        name, entry, time_values=time_values, time_labels=np.asarray(labels)
    )
    return adata


def emt() -> ad.AnnData:
    """EMT time course (A549 + TGF-beta1, Cook & Vanderhyden 2020), 10-D learned latent.

    DeepRUOT's ``emt.csv``: 3133 cells, 10 dims (each min-max scaled to [0, 1]), 4 time
    points 0d / 8h / 1d / 3d+7d with 577 / 885 / 788 / 883 cells. ``obs["day"]`` is in days
    (0, 1/3, 1, 3).

    Returns
    -------
    anndata.AnnData
        ``X`` and ``obsm["X_latent"]`` the embedding (float32), ``obs["day"]`` (float),
        ``obs["time_label"]`` (ordered categorical), ``obs["t_idx"]`` (int),
        ``uns["scflow_dataset"]`` (name, use_rep, citation, source, sha256, ...).
    """
    return _from_npz("emt", "emt")


def emt_umap() -> ad.AnnData:
    """EMT time course (Cook & Vanderhyden 2020) in TIGON's 3-D UMAP.

    3133 cells, 5 time points 0d / 8h / 1d / 3d / 7d with 577 / 885 / 788 / 754 / 129
    cells; ``obs["day"]`` in days (0, 1/3, 1, 3, 7). Embedding in ``obsm["X_umap"]``.

    Returns
    -------
    anndata.AnnData
        Same layout as :func:`emt`, with the embedding under ``obsm["X_umap"]``.
    """
    return _from_npz("emt_umap", "emtumap")


def weinreb() -> ad.AnnData:
    """Mouse haematopoiesis (Weinreb et al. 2020, LARRY in vitro), 2-D embedding.

    10998 cells at days 2 / 4 / 6 with 1429 / 3781 / 5788 cells. Embedding in
    ``obsm["X_emb"]``.

    Returns
    -------
    anndata.AnnData
        Same layout as :func:`emt`, with the embedding under ``obsm["X_emb"]``.
    """
    return _from_npz("weinreb", "weinreb")


def bargaje() -> ad.AnnData:
    """Human iPSC to cardiomyocyte single-cell qPCR (Bargaje et al. 2017), 4-D.

    1896 cells at 8 time points (231, 166, 93, 211, 122, 258, 456, 359 cells). The physical
    sampling times are not in the source file, so ``obs["day"]`` is the time index 0..7.
    Embedding in ``obsm["X_emb"]``.

    Returns
    -------
    anndata.AnnData
        Same layout as :func:`emt`, with the embedding under ``obsm["X_emb"]``.
    """
    return _from_npz("bargaje", "bargaje")


def schiebinger_subset() -> ad.AnnData:
    """250-cell subset of the Schiebinger et al. 2019 reprogramming time course (moscot tests).

    Genes only: ``X`` is the sparse 250 x 1479 matrix as published, days 10 / 10.5 / 11 with
    85 / 81 / 84 cells. ``X`` is already normalised and log-transformed (WOT's
    ``ExprMatrix.var.genes``: ``log1p`` of counts per 10,000, ``expm1(X)`` sums to 10,000
    per cell, over WOT's 1,479 variable genes): do not run ``sc.pp.normalize_total`` or
    ``sc.pp.log1p`` again (``uns["log1p"]`` is set, so scanpy warns if you do). There is no
    embedding: compute one yourself, e.g. ``sc.pp.pca(adata, n_comps=30)``, which writes the
    ``obsm["X_pca"]`` that ``uns["scflow_dataset"]["use_rep"]`` names.

    Returns
    -------
    anndata.AnnData
        The file's AnnData, with ``obs["day"]`` converted to float, ``obs["time_label"]``
        (ordered categorical ``"d10"``, ``"d10.5"``, ``"d11"``), ``obs["t_idx"]`` (int) and
        ``uns["scflow_dataset"]`` and ``uns["log1p"]`` (``{"base": None}``, scanpy's mark of
        a natural-log ``X``) added.
    """
    path, entry = _verified_file("schiebinger_subset")
    adata = ad.read_h5ad(path)
    day, t_idx, labels = time_obs(adata.obs["day"], prefix="d")
    adata.obs["day"] = day
    adata.obs["time_label"] = pd.Categorical.from_codes(t_idx, categories=labels, ordered=True)
    adata.obs["t_idx"] = t_idx
    adata.uns["scflow_dataset"] = dataset_info(
        "schiebinger_subset",
        entry,
        time_values=np.unique(day),
        time_labels=np.asarray(labels),
        note="X is already normalised and log-transformed (log1p of counts per 10,000, "
             "WOT's ExprMatrix): do not normalise or log1p it again. No embedding is stored: "
             "compute PCA first (e.g. sc.pp.pca), then use X_pca.",
    )
    adata.uns["log1p"] = {"base": None}
    return adata
