"""The TorchCFM single-cell benchmark files (EB, CITE-seq, Multiome), from a user's path.

These files are not shipped with scflow. Give the path of your copy, or pass
``download=True`` to fetch it (from ``url=``, by default the address below). Either way
the file is checked against the sha256 of the published version before it is read; pass
``sha256=`` to accept another file deliberately.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .._io import atomic_file
from ._real import check_sha256, dataset_info, embedding_adata, time_obs

__all__ = ["EB_URL", "CITE_URL", "MULTI_URL", "PUBLISHED", "cite", "eb", "multi"]

#: TrajectoryNet's embryoid-body file (Moon et al. 2019 data), as used by TorchCFM.
EB_URL = "https://github.com/KrishnaswamyLab/TrajectoryNet/raw/master/data/eb_velocity_v5.npz"
_MENDELEY = "https://data.mendeley.com/public-files/datasets/hhny5ff7yj/files/{}/file_downloaded"
#: Mendeley Data dataset hhny5ff7yj v1 (https://data.mendeley.com/datasets/hhny5ff7yj/1).
#: File ids as listed by public download scripts; if Mendeley moves them, pass ``url=``.
CITE_URL = _MENDELEY.format("1862acf5-6294-4eb1-8644-d1c6d25e4126")
MULTI_URL = _MENDELEY.format("5f4b6e5b-f122-4f5a-8ede-0d188c5cf00c")

_OPEN_PROBLEMS = (
    "Open Problems - Multimodal Single-Cell Integration (Kaggle, NeurIPS 2022); subset and "
    "PCA by Tong et al. (2024) TMLR"
)

#: File name, expected sha256, default URL and short citation of each published file.
PUBLISHED: dict[str, dict[str, str]] = {
    "eb": {
        "file": "eb_velocity_v5.npz",
        "sha256": "17623d16dd4fe7b679aad80916d130cb2863a4cd4ee742f139a3c2eed91ba230",
        "url": EB_URL,
        "citation": "Moon et al. (2019) Nat. Biotechnol. 37:1482; Tong et al. (2020) ICML",
    },
    "cite": {
        "file": "op_cite_inputs_0.h5ad",
        "sha256": "fa1d117df3d6c23e0b80a997a259bcac3a79ad27d581e1a6654e107c39885e4c",
        "url": CITE_URL,
        "citation": _OPEN_PROBLEMS,
    },
    "multi": {
        "file": "op_train_multi_targets_0.h5ad",
        "sha256": "a16c28ef861503111bb2f4c6ab6b1d5ed3df07d49eb0baa7378515fc098af4d2",
        "url": MULTI_URL,
        "citation": _OPEN_PROBLEMS,
    },
}

EB_LABELS = ("Day 00-03", "Day 06-09", "Day 12-15", "Day 18-21", "Day 24-27")
_USER_AGENT = "Mozilla/5.0 (compatible; scflow dataset downloader)"
_CACHE_ENV = "SCFLOW_CACHE_DIR"


def _download(url: str, dest: str | os.PathLike[str], sha256: str, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its sha256.

    The body is streamed into a temporary file in ``dest``'s directory and hashed on the
    way; only bytes that hash to ``sha256`` are moved onto ``dest`` (``os.replace``), so
    ``dest`` never holds a partial or wrong file.

    Parameters
    ----------
    url
        Any URL ``urllib`` opens (``https://``, ``file://``, ...).
    dest
        Target file; its directory is created if needed.
    sha256
        Expected hex digest.
    timeout
        Seconds to wait for the connection.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    ValueError
        If the bytes do not hash to ``sha256``; the temporary file is deleted.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.sha256()
    with atomic_file(dest, suffix=".part") as out, \
            urllib.request.urlopen(request, timeout=timeout) as resp:
        for block in iter(lambda: resp.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
        actual = digest.hexdigest()
        if actual != sha256.lower():  # raising here removes the temporary file
            raise ValueError(
                f"sha256 mismatch for the download of {url} to {dest}: expected "
                f"{sha256.lower()}, got {actual}; nothing was written."
            )
    return dest


def _resolve(
    key: str, path: str | os.PathLike[str] | None, download: bool, url: str | None, sha256: str
) -> Path:
    """The verified local file for ``key``: the user's, the cached, or a fresh download."""
    name = PUBLISHED[key]["file"]
    if path is None:
        cache = os.environ.get(_CACHE_ENV) or Path.home() / ".cache" / "scflow"
        target = Path(cache) / name
    else:
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / name
    if not target.is_file():
        if not download:
            raise FileNotFoundError(
                f"{target} not found: expected the published {name} (sha256 {sha256}). "
                f"Pass its path, or download=True to fetch it from {url or PUBLISHED[key]['url']}."
            )
        return _download(url or PUBLISHED[key]["url"], target, sha256)
    check_sha256(target, sha256)
    return target


def _info(key: str, path: Path, sha256: str, **extra: Any) -> dict[str, Any]:
    entry = dict(PUBLISHED[key], source=PUBLISHED[key]["url"], file=path.name, sha256=sha256)
    return dataset_info(key, entry, **extra)


def eb(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
) -> ad.AnnData:
    """Embryoid-body differentiation (Moon et al. 2019), TrajectoryNet's ``eb_velocity_v5.npz``.

    Five time points (Day 00-03 ... Day 24-27) in 100 PCs; the TorchCFM benchmark uses the
    first 5 whitened PCs.

    Parameters
    ----------
    path
        Your copy of ``eb_velocity_v5.npz`` (or a directory holding it). Default:
        ``$SCFLOW_CACHE_DIR`` or ``~/.cache/scflow``.
    download
        If the file is missing, download it from ``url`` into ``path``.
    url
        Download address; default :data:`EB_URL`.
    sha256
        Expected sha256 of the file; default the published file's.

    Returns
    -------
    anndata.AnnData
        ``X`` and ``obsm["X_pca"]`` the PCs, ``obsm["X_phate"]`` when the file has it,
        ``obs["day"]`` the time index as float (0..4), ``obs["time_label"]`` (ordered
        categorical), ``obs["t_idx"]`` and ``uns["scflow_dataset"]``.

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``download`` is False.
    ValueError
        If the file's sha256 differs from ``sha256`` or its labels are not 0..4.
    """
    expected = (sha256 or PUBLISHED["eb"]["sha256"]).lower()
    target = _resolve("eb", path, download, url, expected)
    # TrajectoryNet reads this file with allow_pickle=True; allow pickles only when the bytes
    # are the published file's, never for a hash the caller chose.
    trusted = expected == PUBLISHED["eb"]["sha256"]
    with np.load(target, allow_pickle=trusted) as npz:
        for key in ("pcs", "sample_labels"):
            if key not in npz.files:
                raise KeyError(f"{target} has no {key!r} array (found {sorted(npz.files)})")
        pcs = np.asarray(npz["pcs"], dtype=np.float32)
        raw = np.asarray(npz["sample_labels"]).astype(np.float64)
        phate = np.asarray(npz["phate"], dtype=np.float32) if "phate" in npz.files else None
    if raw.shape != (pcs.shape[0],) or not np.all(np.isin(raw, np.arange(len(EB_LABELS)))):
        raise ValueError(
            f"{target}: expected sample_labels of shape ({pcs.shape[0]},) with values 0..4, "
            f"got shape {raw.shape} and values {np.unique(raw)[:10]}"
        )
    t_idx = raw.astype(np.int64)
    adata = embedding_adata(pcs, t_idx, t_idx, EB_LABELS, prefix="eb", var="PC")
    adata.obsm["X_pca"] = pcs.copy()
    if phate is not None:
        adata.obsm["X_phate"] = phate
    adata.uns["scflow_dataset"] = _info("eb", target, expected, time_labels=np.asarray(EB_LABELS))
    return adata


def _h5ad(key: str, path: Any, download: bool, url: str | None, sha256: str | None) -> ad.AnnData:
    expected = (sha256 or PUBLISHED[key]["sha256"]).lower()
    target = _resolve(key, path, download, url, expected)
    adata = ad.read_h5ad(target, backed=None)
    missing = [
        where
        for where, present in (
            ('obs["day"]', "day" in adata.obs.columns),
            ('obsm["X_pca"]', "X_pca" in adata.obsm),
        )
        if not present
    ]
    if missing:
        raise KeyError(f"{target} lacks {' and '.join(missing)}, which the {key} data set needs")
    try:
        day, t_idx, labels = time_obs(adata.obs["day"], prefix="day")
    except (TypeError, ValueError) as err:
        raise ValueError(f'{target}: obs["day"] must be numeric ({err})') from err
    adata.obs["day"] = day
    adata.obs["time_label"] = pd.Categorical.from_codes(t_idx, categories=labels, ordered=True)
    adata.obs["t_idx"] = t_idx
    adata.uns["scflow_dataset"] = _info(
        key, target, expected, time_values=np.unique(day), time_labels=np.asarray(labels)
    )
    return adata


def cite(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
) -> ad.AnnData:
    """CITE-seq inputs of the Open Problems multimodal data, donor 0 (TorchCFM's Cite set).

    ``op_cite_inputs_0.h5ad`` from Mendeley Data hhny5ff7yj v1: 31,240 cells x 22,050
    genes at days 2, 3, 4 and 7, with ``obsm["X_pca"]``.

    Parameters
    ----------
    path
        Your copy of the file (or a directory holding it). Default: ``$SCFLOW_CACHE_DIR``
        or ``~/.cache/scflow``.
    download
        If the file is missing, download it (about 1.2 GB) from ``url`` into ``path``.
    url
        Download address; default :data:`CITE_URL`. Mendeley file addresses can change:
        copy the current one from https://data.mendeley.com/datasets/hhny5ff7yj/1.
    sha256
        Expected sha256 of the file; default the published file's.

    Returns
    -------
    anndata.AnnData
        The file's AnnData with ``obs["day"]`` as float, ``obs["time_label"]`` (ordered
        categorical), ``obs["t_idx"]`` and ``uns["scflow_dataset"]`` added.

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``download`` is False.
    ValueError
        If the file's sha256 differs from ``sha256``.
    KeyError
        If the file has no ``obs["day"]`` or no ``obsm["X_pca"]``.
    """
    return _h5ad("cite", path, download, url, sha256)


def multi(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    sha256: str | None = None,
) -> ad.AnnData:
    """Multiome RNA targets of the Open Problems multimodal data, donor 0 (the Multi set).

    ``op_train_multi_targets_0.h5ad`` from Mendeley Data hhny5ff7yj v1, with ``obs["day"]``
    and ``obsm["X_pca"]``. Parameters, return value and errors are those of :func:`cite`;
    the default ``url`` is :data:`MULTI_URL` and the default ``sha256`` this file's.
    """
    return _h5ad("multi", path, download, url, sha256)
