"""LARRY in vitro (Weinreb et al. 2020, Fig. 5): snapshots with a clonal fate truth.

:func:`larry` gives the cells (days 2 / 4 / 6, SPRING 2-D) and the CoSpar subset's cell
type annotation on the cells it covers; :func:`larry_truth` gives, apart, what a method
must never see: the neutrophil fate bias of the day-2 trajectory cells measured from their
clones, the held-out mask it is scored on, and the published predictions of WOT, PBA and
FateID. Every file is checked against its sha256 before it is read.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ._real import DEFAULT_REP, ENV_VAR, check_sha256, data_dir, dataset_info

__all__ = ["LARRY_FILES", "PUBLISHED_FATE_METHODS", "larry", "larry_cospar", "larry_truth"]

FOLDER = "weinreb2020_larry_invitro_fate"
CITATION = "Weinreb, Rodriguez-Fraticelli, Camargo & Klein (2020) Science 367:eaaw3381"
SOURCE = ("github.com/scDiffEq/LARRY-dataset@3966ea5 assets/files/Figure5_Weinreb2020/ (MIT); "
          "annotated subset: github.com/AllonKleinLab/cospar@ca54cad "
          "tests/data/test_adata_preprocessed.h5ad (MIT)")
#: file name -> sha256 (full digests of the files that SOURCE.md lists)
LARRY_FILES: dict[str, str] = {
    "coordinates_x.npy": "2cf25c8ac60b15e32e74c00b6db489d45782538a6ca2d529686b50e0b1683358",
    "coordinates_y.npy": "518d3a419ca866d6463a59744f4ba3a48abb52b6f4abb3afd50404a44cd91791",
    "timepoints.npy": "7bf1d321c09483e227ae230e5267e54bc463eaa73c96afda17834f27ffb7e3b2",
    "neutrophil_monocyte_trajectory_mask.npy":
        "53f959ecde12535abbe0baf2e01ae6307c15040f8a1289aded9520a94ef91c5b",
    "heldout_mask.npy": "403ab0c25b469c395025017302445025a9f141b497e0de62bcfe8d577decca70",
    "smoothed_groundtruth_from_heldout.npy":
        "1ef2f6e009a10f5dd6e4b662dd2461934857928a277c81f2024776512267e06a",
    "outliers_in_SPRING_plot.npy":
        "f9f9d088c6c4c40a647bd1ab1e68e5a280b000bb46fdff14dd85e30cc0efda7b",
    "early_cells.npy": "19080636a09488888e4e987cabbd4225880f0d0ccca73d80e3777dfbbb459e91",
    "WOT_predictions.npy": "55cbe8d1f48346b75c13f5f1a1a452fbb44a3641fe61cac46b44227f6b34c936",
    "PBA_predictions.npy": "c0d8797bc4c0e137df44aef3423e6f25721da93a5fa9e420dca0c5d0a6a4c529",
    "FateID_predictions.npy":
        "feb6aa535e25d33358128edb84dc516fb4da4d427b95b6035b5f9b194a5593bd",
    "cospar_larry_subset_annotated.h5ad":
        "3c9a5d728f402ff2b87cfecb3cd6639a7fa342fe3a7d44ad57ac526a5ef674af",
}
#: the published fate predictions shipped with the data (Weinreb et al. 2020, Fig. 5)
PUBLISHED_FATE_METHODS = ("FateID", "WOT", "PBA")
#: a CoSpar cell is the cell of the full set at the same day within this SPRING distance
_MATCH_TOL = 0.01


def _path(name: str):
    path = data_dir() / FOLDER / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: expected {FOLDER}/{name} under "
                                f"{ENV_VAR} (see data/README.md)")
    check_sha256(path, LARRY_FILES[name])
    return path


def _npy(name: str) -> np.ndarray:
    return np.load(_path(name), allow_pickle=False)


def _cell_names(n: int) -> pd.Index:
    return pd.Index([f"larry_{i}" for i in range(n)])


def larry(*, trajectory_only: bool = True) -> ad.AnnData:
    """LARRY in vitro time course: cells of days 2 / 4 / 6 in SPRING 2-D coordinates.

    130,887 cells (28,249 / 48,498 / 54,140 per day), of which the neutrophil / monocyte
    trajectory holds 20,157 / 38,143 / 38,073. No barcodes and no fate truth are in the
    returned object (see :func:`larry_truth`).

    Parameters
    ----------
    trajectory_only
        Keep only the cells of the neutrophil / monocyte trajectory (the benchmark's cells,
        the default); ``False`` keeps all 130,887.

    Returns
    -------
    anndata.AnnData
        ``X`` and ``obsm["X_emb"]``: SPRING coordinates (float32); ``obs["day"]`` (2, 4, 6),
        ``obs["time_label"]``, ``obs["t_idx"]``; ``obs["trajectory"]`` (bool);
        ``obs["state_info"]``: the cell type that the CoSpar subset (Wang et al. 2022)
        gives its 781 cells (matched to these cells by day and position), NaN for every
        other cell; ``uns["scflow_dataset"]``. Cell names are ``larry_<row>``, the row
        in the published arrays, as in :func:`larry_truth`.
    """
    x = np.stack([_npy("coordinates_x.npy"), _npy("coordinates_y.npy")], 1)
    day = _npy("timepoints.npy").astype(np.float64)
    traj = _npy("neutrophil_monocyte_trajectory_mask.npy").astype(bool)
    states = _annotation(x, day)
    days = np.unique(day)
    t_idx = np.searchsorted(days, day).astype(np.int64)
    obs = pd.DataFrame({
        "day": day,
        "time_label": pd.Categorical.from_codes(t_idx, categories=[f"d{d:g}" for d in days],
                                                ordered=True),
        "t_idx": t_idx,
        "trajectory": traj,
        "state_info": states,
    }, index=_cell_names(len(x)))
    adata = ad.AnnData(X=x.astype(np.float32), obs=obs,
                       var=pd.DataFrame(index=pd.Index(["SPRING1", "SPRING2"])))
    adata.obsm[DEFAULT_REP["larry"]] = adata.X.copy()
    entry = {"citation": CITATION, "source": SOURCE, "file": f"{FOLDER}/*.npy",
             "sha256": LARRY_FILES["coordinates_x.npy"]}
    adata.uns["scflow_dataset"] = dataset_info(
        "larry", entry, time_values=days, time_labels=np.asarray([f"d{d:g}" for d in days]),
        note="state_info covers only the 781 cells of the CoSpar subset (NaN elsewhere); "
             "fate truth: scflow.datasets.larry_truth()")
    if trajectory_only:
        adata = adata[traj].copy()
    return adata


def _cospar(x: np.ndarray, day: np.ndarray) -> tuple[ad.AnnData, np.ndarray]:
    """The CoSpar subset and, for each of its cells, its row in the full set (same day, same
    place within ``_MATCH_TOL``)."""
    sub = ad.read_h5ad(_path("cospar_larry_subset_annotated.h5ad"))
    emb = np.asarray(sub.obsm["X_emb"], dtype=np.float64)
    sub_day = sub.obs["time_info"].astype(float).to_numpy()
    rows = np.empty(sub.n_obs, dtype=np.int64)
    for d in np.unique(sub_day):
        cand = np.flatnonzero(day == d)
        dist, nn = cKDTree(x[cand]).query(emb[sub_day == d])
        if (dist > _MATCH_TOL).any():
            raise ValueError(f"{FOLDER}: {int((dist > _MATCH_TOL).sum())} annotated cells of "
                             f"day {d:g} match no cell of the full set")
        rows[sub_day == d] = cand[nn]
    return sub, rows


def _annotation(x: np.ndarray, day: np.ndarray) -> pd.Categorical:
    """The CoSpar subset's ``state_info`` on the cells it holds (matched by day and place)."""
    sub, rows = _cospar(x, day)
    labels = np.full(len(x), None, dtype=object)
    labels[rows] = sub.obs["state_info"].astype(str).to_numpy()
    return pd.Categorical(labels)


def larry_cospar() -> ad.AnnData:
    """The annotated CoSpar subset of LARRY in vitro, with expression, named as in :func:`larry`.

    781 cells (34 / 316 / 431 at days 2 / 4 / 6) × 2,481 genes, from CoSpar's test data
    (Wang et al. 2022). Its clonal barcodes (``obsm["X_clone"]``) are dropped: a fate method
    must not see them.

    Returns
    -------
    anndata.AnnData
        The file's AnnData (``X`` normalised expression, ``obsm["X_pca"]`` 40-D,
        ``obsm["X_emb"]`` SPRING, ``obs["state_info"]`` cell types), with ``obs_names`` the
        names of the same cells in :func:`larry` (``larry_<row>``), ``obs["day"]`` (float)
        and without ``obsm["X_clone"]``.
    """
    x = np.stack([_npy("coordinates_x.npy"), _npy("coordinates_y.npy")], 1)
    day = _npy("timepoints.npy").astype(np.float64)
    sub, rows = _cospar(x, day)
    sub.obs_names = _cell_names(len(x))[rows]
    sub.obs["day"] = sub.obs["time_info"].astype(float).to_numpy()
    del sub.obsm["X_clone"]
    return sub


def larry_truth() -> pd.DataFrame:
    """The clonal fate truth of the LARRY benchmark, for scoring only.

    One row per day-2 cell of the neutrophil / monocyte trajectory (20,157), indexed by the
    cell names of :func:`larry`.

    Returns
    -------
    pandas.DataFrame
        ``truth``: neutrophil fate bias measured from the cells' held-out clones
        (smoothed, as published); ``heldout``: the 10,087 cells a method is scored on;
        ``outlier``: drawn as an outlier in the paper's plot; ``FateID``, ``WOT``,
        ``PBA``: the published methods' predicted neutrophil bias. Score a prediction by
        the Pearson correlation with ``truth`` over ``heldout`` cells.
    """
    day = _npy("timepoints.npy")
    traj = _npy("neutrophil_monocyte_trajectory_mask.npy").astype(bool)
    rows = np.flatnonzero((day == 2) & traj)
    out = pd.DataFrame({
        "truth": _npy("smoothed_groundtruth_from_heldout.npy").astype(np.float64),
        "heldout": _npy("heldout_mask.npy").astype(bool),
        "outlier": _npy("outliers_in_SPRING_plot.npy").astype(bool),
    }, index=_cell_names(len(day))[rows])
    for m in PUBLISHED_FATE_METHODS:
        out[m] = _npy(f"{m}_predictions.npy").astype(np.float64)
    if len(out) != len(rows):  # pragma: no cover - guarded by the sha256 checks
        raise ValueError(f"{FOLDER}: truth arrays do not match the day-2 trajectory cells")
    return out
