"""Tests of scflow.datasets: real data (SCFLOW_DATA_DIR), published-file loaders, simulate."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scflow import datasets as D
from scflow.datasets import _published, _real

# --------------------------------------------------------------------------- real data

REAL = {
    # name: (n_obs, dim, obsm key, {day: n_cells}, time labels)
    "emt": (3133, 10, "X_latent", {0.0: 577, 1 / 3: 885, 1.0: 788, 3.0: 883}, None),
    "emt_umap": (
        3133,
        3,
        "X_umap",
        {0.0: 577, 1 / 3: 885, 1.0: 788, 3.0: 754, 7.0: 129},
        ["0d", "8h", "1d", "3d", "7d"],
    ),
    "weinreb": (10998, 2, "X_emb", {2.0: 1429, 4.0: 3781, 6.0: 5788}, None),
    "bargaje": (
        1896,
        4,
        "X_emb",
        dict(enumerate([231, 166, 93, 211, 122, 258, 456, 359])),
        [f"tp{k}" for k in range(8)],
    ),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.data
@pytest.mark.parametrize("name", list(REAL))
def test_real_embeddings(data_dir: Path, name: str) -> None:
    n_obs, dim, rep, counts, labels = REAL[name]
    adata = getattr(D, name)()
    assert adata.shape == (n_obs, dim)
    assert adata.X.dtype == np.float32
    assert D.DEFAULT_REP[name] == rep
    np.testing.assert_array_equal(adata.obsm[rep], adata.X)
    assert list(adata.var_names) == [f"dim{j + 1}" for j in range(dim)]
    assert adata.obs_names.is_unique

    got = adata.obs["day"].value_counts().sort_index()
    assert adata.obs["day"].dtype == np.float64
    np.testing.assert_allclose(got.index.to_numpy(), sorted(counts))
    assert got.to_list() == [counts[k] for k in sorted(counts)]

    cat = adata.obs["time_label"].cat
    assert adata.obs["time_label"].cat.ordered
    np.testing.assert_array_equal(cat.codes.to_numpy(), adata.obs["t_idx"].to_numpy())
    assert adata.obs["time_label"].value_counts(sort=False).to_list() == got.to_list()
    if labels is not None:
        assert list(cat.categories) == labels

    info = adata.uns["scflow_dataset"]
    assert info["name"] == name and info["use_rep"] == rep
    assert info["sha256"] == _sha(data_dir / _real.REGISTRY[name]["folder"] / info["file"])


@pytest.mark.data
def test_real_value_ranges(data_dir: Path) -> None:
    # SOURCE.md: EMT 10-D columns min-max scaled to [0, 1]; UMAP and Weinreb centred, range 3.
    x = D.emt().X
    np.testing.assert_allclose(x.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(x.max(axis=0), 1.0, atol=1e-6)
    for loader in (D.emt_umap, D.weinreb):
        x = loader().X
        np.testing.assert_allclose(np.ptp(x, axis=0), 3.0, atol=1e-4)
    assert list(D.emt().obs["time_label"].cat.categories) == ["0d", "8h", "1d", "3d+7d"]
    assert list(D.weinreb().obs["time_label"].cat.categories) == ["day2", "day4", "day6"]


@pytest.mark.data
def test_schiebinger_subset(data_dir: Path) -> None:
    adata = D.schiebinger_subset()
    assert adata.shape == (250, 1479)
    assert sp.issparse(adata.X)
    assert adata.obs["day"].dtype == np.float64
    assert adata.obs["day"].value_counts().sort_index().to_dict() == {10.0: 85, 10.5: 81, 11.0: 84}
    assert list(adata.obs["time_label"].cat.categories) == ["d10", "d10.5", "d11"]
    assert adata.obs["cell_type"].value_counts()["Stromal"] == 97
    assert "tmap_10_105" in adata.uns  # the file's own content is kept
    info = adata.uns["scflow_dataset"]
    assert info["use_rep"] == "X_pca" and "PCA" in info["note"]
    assert "X_pca" not in adata.obsm
    # X is already log1p of counts per 10,000: the loader says so, and scanpy sees it
    assert "already normalised" in info["note"] and adata.uns["log1p"] == {"base": None}
    per_cell = np.expm1(adata.X.toarray().astype(np.float64)).sum(1)
    np.testing.assert_allclose(per_cell, 1e4, rtol=1e-3)


@pytest.mark.data
def test_real_tampered_file_raises(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    folder = _real.REGISTRY["weinreb"]["folder"]
    (tmp_path / folder).mkdir()
    copy = tmp_path / folder / "weinreb_2d.npz"
    shutil.copyfile(data_dir / folder / "weinreb_2d.npz", copy)
    raw = bytearray(copy.read_bytes())
    raw[-1] ^= 0xFF
    copy.write_bytes(bytes(raw))
    monkeypatch.setenv("SCFLOW_DATA_DIR", str(tmp_path))
    expected = _real.REGISTRY["weinreb"]["sha256"]
    with pytest.raises(ValueError, match="weinreb_2d.npz") as err:
        D.weinreb()
    assert expected in str(err.value) and _sha(copy) in str(err.value)


@pytest.mark.data
def test_real_registry_hash_mismatch(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setitem(_real.REGISTRY["emt"], "sha256", "0" * 64)
    with pytest.raises(ValueError, match="0{64}") as err:
        D.emt()
    assert _real.REGISTRY["emt_umap"]["sha256"] not in str(err.value)
    assert _sha(data_dir / _real.REGISTRY["emt"]["folder"] / "emt_10d.npz") in str(err.value)


def test_data_dir_errors(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SCFLOW_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="SCFLOW_DATA_DIR is not set"):
        D.data_dir()
    monkeypatch.setenv("SCFLOW_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="SCFLOW_DATA_DIR=.*not a directory"):
        D.emt()
    monkeypatch.setenv("SCFLOW_DATA_DIR", str(tmp_path))
    assert D.data_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="emt_cook2020_tigon_umap3d/emt_umap3d.npz"):
        D.emt_umap()


# ------------------------------------------------------------------ published files


def _write_eb(path: Path, n: int = 50, phate: bool = True, labels=None) -> str:
    rng = np.random.default_rng(1)
    arrays = {
        "pcs": rng.normal(size=(n, 100)).astype(np.float32),
        "sample_labels": np.arange(n) % 5 if labels is None else labels,
    }
    if phate:
        arrays["phate"] = rng.normal(size=(n, 2))
    np.savez(path, **arrays)
    return _sha(path)


def _write_h5ad(path: Path, *, day: bool = True, pca: bool = True) -> str:
    rng = np.random.default_rng(2)
    obs = pd.DataFrame(index=[f"c{i}" for i in range(40)])
    if day:
        obs["day"] = np.repeat([2, 3, 4, 7], 10)
    adata = ad.AnnData(X=rng.poisson(1.0, size=(40, 6)).astype(np.float32), obs=obs)
    if pca:
        adata.obsm["X_pca"] = rng.normal(size=(40, 5))
    adata.write_h5ad(path)
    return _sha(path)


def test_eb_loads_user_file(tmp_path: Path) -> None:
    path = tmp_path / "eb_velocity_v5.npz"
    digest = _write_eb(path)
    adata = D.eb(path, sha256=digest)
    with np.load(path) as npz:
        np.testing.assert_array_equal(adata.obsm["X_pca"], npz["pcs"])
        np.testing.assert_allclose(adata.obsm["X_phate"], npz["phate"].astype(np.float32))
    assert adata.shape == (50, 100)
    np.testing.assert_array_equal(adata.obs["day"].to_numpy(), np.arange(50) % 5)
    assert adata.obs["time_label"].cat.ordered
    assert list(adata.obs["time_label"].cat.categories) == [
        "Day 00-03",
        "Day 06-09",
        "Day 12-15",
        "Day 18-21",
        "Day 24-27",
    ]
    assert adata.obs["time_label"].iloc[1] == "Day 06-09"
    assert adata.uns["scflow_dataset"]["sha256"] == digest
    # a directory holding the file works too, and phate is optional
    digest = _write_eb(path, phate=False)
    assert "X_phate" not in D.eb(tmp_path, sha256=digest).obsm


def test_eb_hash_and_label_errors(tmp_path: Path) -> None:
    path = tmp_path / "eb.npz"
    digest = _write_eb(path)
    with pytest.raises(ValueError, match=_published.PUBLISHED["eb"]["sha256"]):
        D.eb(path)  # not the published file
    with pytest.raises(ValueError, match=f"expected {'a' * 64}, got {digest}"):
        D.eb(path, sha256="a" * 64)
    with pytest.raises(FileNotFoundError, match="download=True"):
        D.eb(tmp_path / "missing.npz", sha256=digest)
    bad = _write_eb(path, labels=np.full(50, 7))
    with pytest.raises(ValueError, match="0..4"):
        D.eb(path, sha256=bad)


def test_eb_download_from_file_url(tmp_path: Path) -> None:
    src = tmp_path / "src.npz"
    digest = _write_eb(src)
    dest = tmp_path / "cache" / "eb_velocity_v5.npz"
    adata = D.eb(dest, download=True, url=src.as_uri(), sha256=digest)
    assert dest.read_bytes() == src.read_bytes()
    assert adata.n_obs == 50


@pytest.mark.parametrize("loader", [D.cite, D.multi])
def test_h5ad_loaders(tmp_path: Path, loader) -> None:
    path = tmp_path / "file.h5ad"
    digest = _write_h5ad(path)
    adata = loader(path, sha256=digest)
    assert adata.obs["day"].dtype == np.float64
    assert adata.obs["day"].value_counts().sort_index().to_dict() == {2: 10, 3: 10, 4: 10, 7: 10}
    assert list(adata.obs["time_label"].cat.categories) == ["day2", "day3", "day4", "day7"]
    assert adata.obs["t_idx"].to_list() == list(np.repeat([0, 1, 2, 3], 10))
    assert adata.obsm["X_pca"].shape == (40, 5)
    assert adata.uns["scflow_dataset"]["use_rep"] == "X_pca"
    with pytest.raises(ValueError, match="sha256 mismatch"):
        loader(path, sha256="b" * 64)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        loader(path)


@pytest.mark.parametrize(
    ("kwargs", "missing"), [({"pca": False}, 'obsm\\["X_pca"\\]'), ({"day": False}, "day")]
)
def test_h5ad_missing_keys(tmp_path: Path, kwargs: dict, missing: str) -> None:
    path = tmp_path / "file.h5ad"
    digest = _write_h5ad(path, **kwargs)
    with pytest.raises(KeyError, match=missing):
        D.cite(path, sha256=digest)


def test_download_atomic_and_checked(tmp_path: Path) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(np.random.default_rng(3).bytes(3 << 20))  # several read chunks
    digest = _sha(src)
    out = tmp_path / "out"
    dest = out / "sub" / "file.bin"
    assert _published._download(src.as_uri(), dest, digest) == dest
    assert dest.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # no temp left

    # a bad hash raises, removes the temporary file and leaves an existing dest untouched
    dest.write_bytes(b"old")
    with pytest.raises(ValueError, match=f"expected {'c' * 64}, got {digest}"):
        _published._download(src.as_uri(), dest, "c" * 64)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]
    fresh = out / "fresh.bin"
    with pytest.raises(ValueError):
        _published._download(src.as_uri(), fresh, "c" * 64)
    assert not fresh.exists()
    # an unreachable URL leaves nothing behind either
    with pytest.raises(OSError):
        _published._download((tmp_path / "absent").as_uri(), fresh, digest)
    assert sorted(p.name for p in out.iterdir()) == ["sub"]


def test_published_urls() -> None:
    assert _published.EB_URL.endswith("TrajectoryNet/raw/master/data/eb_velocity_v5.npz")
    for url in (_published.CITE_URL, _published.MULTI_URL):
        assert url.startswith("https://data.mendeley.com/public-files/datasets/hhny5ff7yj/")


# ------------------------------------------------------------------------ simulate


@pytest.fixture(scope="module")
def sim() -> ad.AnnData:
    return D.simulate(2000, 5, random_state=0)


def test_simulate_layout() -> None:
    adata = D.simulate(300, 3, n_genes=20, latent_dim=3, n_pcs=5, random_state=4)
    n = 300
    assert adata.shape == (n, 20) and adata.X.dtype == np.float32
    assert adata.X.min() > 0  # expression-like
    assert adata.obsm["X_pca"].shape == (n, 5)
    assert adata.varm["PCs"].shape == (20, 5)
    assert adata.uns["pca"]["mean"].shape == (20,)
    assert adata.obsm["X_latent"].shape == (n, 3)
    assert adata.obsm["X_true_path_latent"].shape == (n, 3 * 3)
    assert adata.obsm["X_true_path_pca"].shape == (n, 3 * 5)
    assert adata.obs["day"].value_counts().sort_index().to_dict() == {0.0: 100, 1.0: 100, 2.0: 100}
    assert list(adata.obs["time_label"].cat.categories) == ["t0", "t1", "t2"]
    assert adata.obs["time_label"].cat.ordered
    assert set(adata.obs["branch"].cat.categories) == {"lower", "upper"}
    assert adata.obs_names.is_unique
    info = adata.uns["scflow_dataset"]
    assert info["name"] == "simulate" and info["use_rep"] == "X_pca"
    assert info["params"]["latent_dim"] == 3 and info["params"]["n_cells"] == n
    assert D.true_paths(adata, "latent").shape == (n, 3, 3)
    assert D.true_paths(adata).shape == (n, 3, 5)


def test_simulate_deterministic_and_local_rng() -> None:
    # the legacy global RNG is what simulate must leave alone
    np.random.seed(7)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    a = D.simulate(200, 4, random_state=3)
    b = D.simulate(200, 4, random_state=3)
    c = D.simulate(200, 4, random_state=4)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    np.testing.assert_array_equal(a.X, b.X)
    for key in ("X_pca", "X_true_path_latent", "X_true_path_pca"):
        np.testing.assert_array_equal(a.obsm[key], b.obsm[key])
    assert (a.obs["branch"] == b.obs["branch"]).all()
    assert not np.allclose(a.obsm["X_true_path_latent"], c.obsm["X_true_path_latent"])
    assert np.abs(a.X - c.X).mean() > 0.5


def test_simulate_branches_split(sim: ad.AnnData) -> None:
    paths = D.true_paths(sim, "latent")
    upper = (sim.obs["branch"] == "upper").to_numpy()
    assert 0.4 < upper.mean() < 0.6

    def gap(k: int) -> tuple[float, float]:
        up, lo = paths[upper, k, 1], paths[~upper, k, 1]
        return up.mean() - lo.mean(), np.sqrt((up.var() + lo.var()) / 2)

    end_gap, end_sd = gap(-1)
    start_gap, _ = gap(0)
    assert end_gap > 6.0 and end_gap > 10 * end_sd  # two separate valleys near +-4
    assert abs(start_gap) < 0.15 * end_gap  # one population at the start
    # the process moves along axis 1 at constant speed 4 over the course
    np.testing.assert_allclose(paths[:, :, 0].mean(axis=0), np.linspace(0, 4, 5), atol=0.05)
    # the split is visible in the observed data: last-day cells, in PCA space
    last = (sim.obs["t_idx"] == 4).to_numpy()
    xp = sim.obsm["X_pca"][:, :2]
    d = np.linalg.norm(xp[last & upper].mean(0) - xp[last & ~upper].mean(0))
    spread = np.sqrt(xp[last & upper].var(0).sum())
    assert d > 5 * spread


def test_simulate_branch_time_and_speed() -> None:
    """A later branch time keeps one population (and undecided fates) until then; the speed
    sets the distance along axis 1; both are recorded for ``true_fate``."""
    sim = D.simulate(1000, 5, diffusion=0.5, branch_time=0.5, speed=1.0, random_state=3)
    paths = D.true_paths(sim, "latent")
    upper = (sim.obs["branch"] == "upper").to_numpy()
    np.testing.assert_allclose(paths[:, :, 0].mean(axis=0), np.linspace(0, 1, 5), atol=0.05)
    gap = [abs(paths[upper, k, 1].mean() - paths[~upper, k, 1].mean()) for k in range(5)]
    assert max(gap[:3]) < 0.1 * gap[-1]  # s = 0, 0.25, 0.5: one valley
    assert gap[3] > 5 * max(gap[:3]) and gap[-1] > 6.0
    params = sim.uns["scflow_dataset"]["params"]
    assert (params["s_split"], params["speed"]) == (0.5, 1.0)
    p = D.true_fate(sim, 100, random_state=0).to_numpy()
    t = sim.obs["t_idx"].to_numpy()
    # before the branch the fate is undecided; the default branch time decides it early
    assert abs(p[t == 1].mean() - 0.5) < 0.1 and np.abs(p[t == 1] - 0.5).mean() < 0.15
    early = D.simulate(1000, 5, diffusion=0.5, random_state=3)
    q = D.true_fate(early, 100, random_state=0).to_numpy()
    assert np.abs(q[t == 1] - 0.5).mean() > 2 * np.abs(p[t == 1] - 0.5).mean()
    for bad in ({"branch_time": 1.0}, {"branch_time": -0.1}, {"speed": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            D.simulate(100, 2, **bad)


def test_simulate_pca_convention(sim: ad.AnnData) -> None:
    pcs, mean = sim.varm["PCs"], sim.uns["pca"]["mean"]
    np.testing.assert_allclose((sim.X - mean) @ pcs, sim.obsm["X_pca"], atol=1e-4)
    np.testing.assert_allclose(pcs.T @ pcs, np.eye(pcs.shape[1]), atol=1e-10)
    ratio = sim.uns["pca"]["variance_ratio"]
    assert np.all(np.diff(ratio) <= 0) and ratio[:2].sum() > 0.99  # a 2-D latent


def test_simulate_true_path_matches_observation(sim: ad.AnnData) -> None:
    rows = np.arange(sim.n_obs)
    t_idx = sim.obs["t_idx"].to_numpy()
    latent = D.true_paths(sim, "latent")
    np.testing.assert_array_equal(latent[rows, t_idx], sim.obsm["X_latent"])
    # noise-free PCA path vs observed PCA: differ only by projected measurement noise (sd .05)
    resid = D.true_paths(sim, "pca")[rows, t_idx] - sim.obsm["X_pca"]
    assert 0.03 < resid.std() < 0.07 and np.abs(resid).max() < 0.4
    # ... and a different day is far away
    other = D.true_paths(sim, "pca")[rows, (t_idx + 1) % 5] - sim.obsm["X_pca"]
    assert np.median(np.linalg.norm(other, axis=1)) > 0.5


def test_simulate_writes_h5ad(sim: ad.AnnData, tmp_path: Path) -> None:
    sim.write_h5ad(tmp_path / "sim.h5ad")
    back = ad.read_h5ad(tmp_path / "sim.h5ad")
    np.testing.assert_array_equal(D.true_paths(back), D.true_paths(sim))
    assert back.uns["scflow_dataset"]["params"]["diffusion"] == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_timepoints": 1}, "n_timepoints must be an integer >= 2"),
        ({"n_cells": 40}, r"n_cells must be an integer >= 10 \* n_timepoints \(50\)"),
        ({"n_cells": 100.0}, "n_cells must be an integer"),
        ({"diffusion": -0.1}, "diffusion must be a finite number >= 0"),
        ({"diffusion": float("nan")}, "diffusion must be"),
        ({"latent_dim": 1}, "latent_dim must be an integer >= 2"),
        ({"n_genes": 2, "latent_dim": 3}, r"n_genes must be an integer >= latent_dim \(3\)"),
        ({"n_pcs": 0}, r"n_pcs must be an integer in 1..min\(n_genes, n_cells\)"),
        ({"n_pcs": 51}, r"n_pcs .* \(50\), got 51"),
        ({"n_genes": 200, "n_pcs": 120}, r"n_pcs .* \(100\), got 120"),
    ],
)
def test_simulate_validation(kwargs: dict, message: str) -> None:
    args = {"n_cells": 100, "n_timepoints": 5} | kwargs
    with pytest.raises(ValueError, match=message):
        D.simulate(args.pop("n_cells"), args.pop("n_timepoints"), **args)


def test_true_paths_errors(sim: ad.AnnData) -> None:
    with pytest.raises(ValueError, match="rep must be"):
        D.true_paths(sim, "umap")
    with pytest.raises(KeyError, match="X_true_path_pca"):
        D.true_paths(ad.AnnData(np.zeros((3, 2), dtype=np.float32)))


# ------------------------------------------------------------------------ true_fate


@pytest.fixture(scope="module")
def sim_fate() -> tuple[ad.AnnData, pd.Series]:
    adata = D.simulate(800, 5, diffusion=0.3, random_state=2)
    return adata, D.true_fate(adata, n_draws=200, random_state=0)


@pytest.mark.slow  # sim_fate: 200 Monte-Carlo draws per cell
def test_true_fate_values(sim_fate) -> None:
    adata, p = sim_fate
    assert isinstance(p, pd.Series) and p.name == "p_upper"
    assert (p.index == adata.obs_names).all()
    assert ((p >= 0) & (p <= 1)).all()
    t_idx = adata.obs["t_idx"].to_numpy()
    upper = (adata.obs["branch"] == "upper").to_numpy()
    x2 = adata.obsm["X_latent"][:, 1]
    # the last timepoint: its own branch
    last = t_idx == 4
    np.testing.assert_array_equal(p[last], upper[last].astype(float))
    # late cells well inside a valley (near +-sqrt(mu)) stay there
    deep = t_idx == 3
    assert (p[deep & (x2 > 2.0)] > 0.99).all() and (p[deep & (x2 < -2.0)] < 0.01).all()
    assert (deep & (np.abs(x2) > 2.0)).sum() > 100
    # at day 0 the fate is open: probabilities spread, their mean the share of paths that
    # end upper (every cell's path reaches the last timepoint)
    first = t_idx == 0
    assert abs(p[first].mean() - upper.mean()) < 0.08
    assert ((p[first] > 0.1) & (p[first] < 0.9)).mean() > 0.3
    # P(upper) is the expectation of the branch given the state: at every timepoint the
    # mean probability matches the share of those same cells' paths that end upper
    for k in range(5):
        sel = t_idx == k
        assert abs(p[sel].mean() - upper[sel].mean()) < 0.07
    # the state predicts its own future: P(upper) rises with latent axis 2 at each time
    for k in range(4):
        sel = t_idx == k
        assert np.corrcoef(p[sel], x2[sel])[0, 1] > 0.6


@pytest.mark.slow
def test_true_fate_reproducible_and_local_rng(sim_fate) -> None:
    adata, p = sim_fate
    sub = adata[adata.obs["t_idx"] >= 2].copy()  # a subset of cells works as well
    np.random.seed(7)  # noqa: NPY002
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    a = D.true_fate(sub, n_draws=200, random_state=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    pd.testing.assert_series_equal(D.true_fate(sub, n_draws=200, random_state=0), a)
    other = D.true_fate(sub, n_draws=200, random_state=1)
    assert not np.array_equal(other, a)
    # the same cells' probabilities, up to Monte-Carlo error (sd <= 0.5 / sqrt(200))
    for q in (other, p[sub.obs_names]):
        assert np.abs(q - a).max() < 6 * 0.036


def test_true_fate_deterministic_without_diffusion() -> None:
    adata = D.simulate(200, 3, diffusion=0.0, random_state=1)
    p = D.true_fate(adata, n_draws=3)
    # no noise: every run is the cell's own recorded path, so the fate is its branch
    np.testing.assert_array_equal(p, (adata.obs["branch"] == "upper").to_numpy().astype(float))


def test_true_fate_errors() -> None:
    adata = D.simulate(200, 3, random_state=1)
    with pytest.raises(ValueError, match="n_draws must be an integer >= 1"):
        D.true_fate(adata, n_draws=0)
    with pytest.raises(ValueError, match="random_state must be"):
        D.true_fate(adata, random_state=-1)
    with pytest.raises(KeyError, match="simulate"):
        D.true_fate(ad.AnnData(np.zeros((3, 2), dtype=np.float32)))
    bad = adata[:10].copy()
    del bad.obsm["X_latent"]
    with pytest.raises(KeyError, match="X_latent"):
        D.true_fate(bad)
