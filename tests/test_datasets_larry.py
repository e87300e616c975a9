"""The LARRY loaders: the cells, the annotation on the cells it covers, the truth apart."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import scflow.datasets as D
from scflow.datasets import _larry


@pytest.fixture(scope="module")
def larry(data_dir: Path):
    return D.larry()


@pytest.mark.data
def test_larry_cells_and_annotation(larry) -> None:
    counts = larry.obs["day"].value_counts().sort_index()
    assert counts.to_dict() == {2.0: 20157, 4.0: 38143, 6.0: 38073}
    assert larry.obs["trajectory"].all() and larry.obsm["X_emb"].shape == (96373, 2)
    labelled = larry.obs["state_info"].notna()
    # every CoSpar cell on the trajectory is matched once: 492 of its 781
    assert labelled.sum() == 492
    by = larry.obs.loc[labelled].groupby("state_info", observed=True).size()
    assert by["Neutrophil"] == 106 and by["Monocyte"] == 201
    assert "X_clone" not in larry.obsm and not any("clone" in c for c in larry.obs.columns)


@pytest.mark.data
def test_larry_truth_scores_the_published_methods(larry) -> None:
    truth = D.larry_truth()
    assert len(truth) == 20157 and truth["heldout"].sum() == 10087
    assert truth.index.isin(larry.obs_names).all()
    assert (larry.obs.loc[truth.index, "day"] == 2.0).all()
    held = truth["heldout"].to_numpy()
    r = {m: np.corrcoef(truth[m][held], truth["truth"][held])[0, 1]
         for m in D.PUBLISHED_FATE_METHODS}
    # the figures of SOURCE.md, recomputed from the shipped arrays
    assert r == pytest.approx({"FateID": 0.690, "WOT": 0.640, "PBA": 0.609}, abs=5e-4)


@pytest.mark.data
def test_larry_cospar_is_named_as_the_full_set(larry) -> None:
    sub = D.larry_cospar()
    assert sub.shape == (781, 2481) and "X_clone" not in sub.obsm
    on_traj = sub.obs_names.isin(larry.obs_names)
    np.testing.assert_allclose(sub.obsm["X_emb"][on_traj],
                               larry[sub.obs_names[on_traj]].obsm["X_emb"], atol=0.01)
    np.testing.assert_array_equal(sub.obs["day"][on_traj],
                                  larry.obs.loc[sub.obs_names[on_traj], "day"])


@pytest.mark.data
def test_larry_tampered_file_raises(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / _larry.FOLDER
    shutil.copytree(data_dir / _larry.FOLDER, folder)
    path = folder / "heldout_mask.npy"
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    monkeypatch.setenv("SCFLOW_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="heldout_mask.npy"):
        D.larry_truth()
