"""The leave-one-timepoint-out protocol, on synthetic data and on real EMT 10-D."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import blobs

import scflow
from scflow.flow.integrate import integrate
from scflow.flow.timecourse import TimeCourse
from scflow.metrics import wasserstein
from scflow.protocols import leave_one_out_tc, summarize
from scflow.references import (
    static_mean_spline_interpolant,
    static_ot_interpolant,
    static_partial_interpolant,
)


def test_static_ot_interpolant_of_a_translation():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(50, 3, generator=g, dtype=torch.float64)
    perm = torch.randperm(50, generator=g)
    x1 = x0[perm] + torch.tensor([4.0, 0.0, -2.0], dtype=torch.float64)
    pts, w = static_ot_interpolant(x0, x1, 0.25)
    assert len(pts) == 50
    torch.testing.assert_close(w, torch.full((50,), 1 / 50, dtype=torch.float64))
    expected = x0 + 0.25 * torch.tensor([4.0, 0.0, -2.0], dtype=torch.float64)
    assert wasserstein(pts, expected) == pytest.approx(0.0, abs=1e-7)


@pytest.fixture(scope="module")
def line_course() -> TimeCourse:
    return blobs([[2.0 * k, 0.0] for k in range(4)], 80, scale=0.3, seed=1)


def test_leave_one_out_table(line_course):
    df = leave_one_out_tc(line_course, ["otcfm", "static_ot"], seeds=[0, 1], n_steps=150,
                          progress=False)
    assert len(df) == 2 * 2 * 2
    assert set(df["holdout_index"]) == {1, 2}
    assert list(df.columns[:4]) == ["method", "holdout", "holdout_index", "seed"]
    static = df[df["method"] == "static_ot"]
    # deterministic baseline: the same numbers for every seed
    assert static.groupby("holdout_index")["w1"].nunique().eq(1).all()
    # on a straight translation both predict the held-out blob far better than not moving
    for k in (1, 2):
        stay = wasserstein(line_course.xs[k - 1], line_course.xs[k])
        assert (df[df["holdout_index"] == k]["w1"] < 0.3 * stay).all()
    s = summarize(df)
    assert set(s.columns) >= {"w1_mean", "w1_std", "floor_mean"}
    with pytest.raises(ValueError, match="interior"):
        leave_one_out_tc(line_course, ["static_ot"], holdouts=[0])
    with pytest.raises(ValueError, match="methods must be among"):
        leave_one_out_tc(line_course, ["foo"])


@pytest.mark.data
def test_otcfm_on_real_emt_beats_untrained_and_matches_static_ot(data_dir):
    """EMT 10-D, whitened, index time, held-out day 1 (index 2), TorchCFM's protocol."""
    adata = scflow.datasets.emt()
    tc = TimeCourse.from_arrays(adata.obsm["X_latent"], adata.obs["day"], whiten=True)
    k = 2
    df = leave_one_out_tc(tc, ["otcfm", "static_ot"], seeds=[0], holdouts=[k],
                          n_steps=3000, progress=False)
    w_ot = float(df.loc[df["method"] == "otcfm", "w1"].iloc[0])
    w_static = float(df.loc[df["method"] == "static_ot", "w1"].iloc[0])
    floor = float(df["floor"].iloc[0])
    torch.manual_seed(0)
    untrained = scflow.FlowModel(tc.dim)
    w_untrained = wasserstein(integrate(untrained, tc.xs[k - 1], k - 1, k), tc.xs[k])
    print(f"EMT 10-D held-out k={k}: otcfm {w_ot:.3f}, static_ot {w_static:.3f}, "
          f"untrained {w_untrained:.3f}, floor {floor:.3f}")
    assert w_ot < w_untrained - 0.2
    # the gap above the sampling floor is what a method controls: OT-CFM's is at most
    # static OT's (within 15% of that gap)
    assert w_ot - floor <= 1.15 * (w_static - floor)


def test_static_spline_is_seeded_and_in_the_table(line_course):
    df = leave_one_out_tc(line_course, ["static_spline", "static_ot"], seeds=[0, 1])
    sp = df[df.method == "static_spline"]
    assert len(sp) == 4 and (sp["w1"] > 0).all()
    for k in (1, 2):  # straight, evenly spaced blobs: both references land on the blob
        stay = wasserstein(line_course.xs[k - 1], line_course.xs[k])
        assert (df[df["holdout_index"] == k]["w1"] < 0.3 * stay).all()
    from scflow.methods.static_spline import static_spline_predict
    a = static_spline_predict(line_course, 1.0, start=0, holdout=1, random_state=0)
    b = static_spline_predict(line_course, 1.0, start=0, holdout=1, random_state=0)
    c = static_spline_predict(line_course, 1.0, start=0, holdout=1, random_state=1)
    assert torch.equal(a, b) and a.shape == line_course.xs[0].shape
    # equal blob sizes: every exact plan is a permutation, so the chains are the same for
    # every seed; with unequal sizes the plans split mass and the seed picks the draws
    assert torch.equal(a, c)  # every plan a permutation: the chain is deterministic
    uneven = TimeCourse(list(line_course.xs[:1]) + [line_course.xs[1][:50]]
                        + list(line_course.xs[2:]), line_course.times, line_course.labels,
                        line_course.values, line_course.mean, line_course.scale)
    d = static_spline_predict(uneven, 2.0, start=0, holdout=2, random_state=0)
    e = static_spline_predict(uneven, 2.0, start=0, holdout=2, random_state=1)
    assert torch.equal(d, static_spline_predict(uneven, 2.0, start=0, holdout=2,
                                                random_state=0))
    assert not torch.equal(d, e)
    with pytest.raises(ValueError, match="start must be a kept timepoint"):
        static_spline_predict(line_course, 1.0, start=1, holdout=1)


@pytest.mark.data
def test_multi_marginal_beats_static_ot_on_real_emt_umap(data_dir):
    """EMT UMAP 3-D, whitened, index time, held-out 1d (index 2): the spline through chained
    exact plans (with and without a network) against the McCann midpoint, same run."""
    adata = scflow.datasets.emt_umap()
    tc = TimeCourse.from_arrays(adata.obsm["X_umap"], adata.obs["day"], whiten=True)
    df = leave_one_out_tc(tc, ["mmfm", "static_spline", "static_ot"], seeds=[0],
                          holdouts=[2], n_steps=1500, progress=False)
    w = df.set_index("method")["w1"]
    floor = float(df["floor"].iloc[0])
    print(f"EMT UMAP held-out 1d: {w.to_dict()}, floor {floor:.3f}")
    # gap above the sampling floor at most half of static OT's
    assert w["static_spline"] - floor < 0.5 * (w["static_ot"] - floor)
    assert w["mmfm"] - floor < 0.5 * (w["static_ot"] - floor)


def test_static_partial_interpolant_grows_linearly_in_time():
    """Closed form: 2 cells move by (4, 0); 2 more appear far away, linearly in time."""
    x0 = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    born = torch.tensor([[40.0, 40.0], [41.0, 40.0]], dtype=torch.float64)
    x1 = torch.cat([x0 + torch.tensor([4.0, 0.0], dtype=torch.float64), born])
    for s in (0.0, 0.25, 1.0):
        pts, w = static_partial_interpolant(x0, x1, s)
        moved = x0 + s * torch.tensor([4.0, 0.0], dtype=torch.float64)
        expect_pts = torch.cat([moved, born])
        expect_w = torch.tensor([0.25, 0.25, 0.25 * s, 0.25 * s], dtype=torch.float64)
        assert float(w.sum()) == pytest.approx(0.5 + 0.5 * s)  # (1 - s) m0 + s m1
        # same weighted point set, in any order
        order = torch.argsort(pts[:, 0] * 1000 + pts[:, 1])
        eorder = torch.argsort(expect_pts[:, 0] * 1000 + expect_pts[:, 1])
        torch.testing.assert_close(pts[order], expect_pts[eorder])
        torch.testing.assert_close(w[order], expect_w[eorder])
    # the population shrinks the other way round: the far cells fade where they were
    pts, w = static_partial_interpolant(x1, x0, 0.25)
    assert float(w.sum()) == pytest.approx(0.75 + 0.25 * 0.5)
    # equal masses: the McCann interpolant of the exact plan
    pts, w = static_partial_interpolant(x0, x1, 0.5, mass=(1.0, 1.0))
    ref_pts, ref_w = static_ot_interpolant(x0, x1, 0.5)
    assert wasserstein(pts, ref_pts, a=w, b=ref_w) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="s must be in"):
        static_partial_interpolant(x0, x1, 1.5)


def test_static_partial_in_the_table_takes_masses(line_course):
    df = leave_one_out_tc(line_course, ["static_partial", "static_ot"], seeds=[0])
    w = df.set_index(["method", "holdout_index"])["w1"]
    # equal counts: partial transport is the exact plan, the same prediction
    for k in (1, 2):
        assert w[("static_partial", k)] == pytest.approx(w[("static_ot", k)], rel=1e-6)
    grown = leave_one_out_tc(line_course, ["static_partial"], seeds=[0],
                             mass=[1.0, 1.0, 1.0, 4.0])
    assert grown.set_index("holdout_index").loc[2, "w1"] != pytest.approx(w[("static_ot", 2)])
    with pytest.raises(ValueError, match="mass must hold one finite number > 0 per timepoint"):
        leave_one_out_tc(line_course, ["static_partial"], mass=[1.0, 2.0])
    with pytest.raises(ValueError, match="mass must hold one finite number > 0 per timepoint"):
        leave_one_out_tc(line_course, ["static_partial"], mass=[1.0, 1.0, 1.0, "4"])
    # NumPy numbers (e.g. counts from obs) are numbers: the same rows as Python floats
    as_numpy = leave_one_out_tc(line_course, ["static_partial"], seeds=[0],
                                mass=np.array([1, 1, 1, 4]))
    assert as_numpy["w1"].tolist() == grown["w1"].tolist()


@pytest.mark.data
def test_growth_aware_interpolant_beats_static_ot_on_real_mouse(data_dir):
    """Mouse haematopoiesis 2-D, held-out day 4, whitened, index time: the population grows
    (1429 -> 3781 -> 5788 cells), and partial transport weighted by cell counts (the
    relative-mass convention of TIGON / DeepRUOT) predicts day 4 far better than the
    balanced McCann midpoint. One cell in four of each day, drawn with a seed, keeps the
    exact W1 quick and the counts' ratios."""
    adata = scflow.datasets.weinreb()
    g = np.random.default_rng(0)
    day = adata.obs["day"].to_numpy()
    keep = np.concatenate([g.choice(np.flatnonzero(day == d), (day == d).sum() // 4,
                                    replace=False) for d in np.unique(day)])
    tc = TimeCourse.from_arrays(adata.obsm["X_emb"][keep], day[keep], whiten=True)
    df = leave_one_out_tc(tc, ["static_partial", "static_ot"], seeds=[0])
    w = df.set_index("method")["w1"]
    floor = float(df["floor"].iloc[0])
    print(f"mouse 2-D held-out day 4 (1/4 of the cells): {w.to_dict()}, floor {floor:.3f}")
    assert w["static_partial"] - floor < 0.7 * (w["static_ot"] - floor)


def _translated_course(offsets: np.ndarray, n: int = 40, seed: int = 0) -> TimeCourse:
    """One cloud, translated by ``offsets[r]`` at timepoint ``r`` (cells shuffled)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, offsets.shape[1]))
    x = np.concatenate([base[rng.permutation(n)] + c for c in offsets])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(len(offsets)), n), whiten=False)


def test_static_mean_spline_of_a_translated_cloud():
    """Closed form: the plan between translates is the identity, so the prediction is the
    cloud moved to the natural spline (SciPy's) through the kept offsets."""
    from scipy.interpolate import CubicSpline

    offsets = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.5], [4.0, 0.5], [4.5, -2.0]])
    tc = _translated_course(offsets)
    base = tc.xs[0].double() - torch.as_tensor(offsets[0])
    for k in (1, 2, 3):
        keep = [r for r in range(5) if r != k]
        spline = CubicSpline(np.asarray(keep, float), offsets[keep], bc_type="natural")(k)
        pts, w = static_mean_spline_interpolant(tc, k)
        torch.testing.assert_close(w.sum().double(), torch.tensor(1.0, dtype=torch.float64))
        expected = base + torch.as_tensor(spline)
        assert wasserstein(pts.double(), expected, a=w) == pytest.approx(0.0, abs=1e-5)
        # its centre is off the chord of the neighbours: static OT's is not
        chord = (offsets[k - 1] + offsets[k + 1]) / 2
        assert np.linalg.norm(spline - chord) > 0.1
        pts_ot, w_ot = static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1])
        assert wasserstein(pts_ot.double(), base + torch.as_tensor(chord),
                           a=w_ot) == pytest.approx(0.0, abs=1e-5)


def test_static_mean_spline_is_static_ot_on_a_straight_line(line_course):
    """Means at constant speed along a line: the spline is the chord, nothing moves."""
    offsets = np.array([[2.0 * r, -1.0 * r] for r in range(5)])
    tc = _translated_course(offsets, seed=3)
    for k in (1, 2, 3):
        pts, w = static_mean_spline_interpolant(tc, k)
        pts_ot, w_ot = static_ot_interpolant(tc.xs[k - 1], tc.xs[k + 1])
        torch.testing.assert_close(w, w_ot)
        torch.testing.assert_close(pts, pts_ot, atol=1e-5, rtol=0)


def test_static_mean_spline_centre_and_options(line_course):
    """On any data the weighted centre is the spline through the kept means; PCHIP and a
    window are passed through from the table's options; a bad k is refused."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal([r**2 / 2.0, np.sin(r)], 0.3 + 0.1 * r, size=(30 + 7 * r, 2))
                        for r in range(5)])
    tc = TimeCourse.from_arrays(x, np.repeat(np.arange(5), [30 + 7 * r for r in range(5)]),
                                whiten=False)
    k = 2
    keep = [0, 1, 3, 4]
    means = torch.stack([tc.xs[r].double().mean(0) for r in keep])
    pts, w = static_mean_spline_interpolant(tc, k)
    centre = (w.double()[:, None] * pts.double()).sum(0) / w.double().sum()
    expected = scflow.paths.SplinePath().mu_t(torch.tensor([2.0], dtype=torch.float64),
                                             means[None], torch.tensor(keep, dtype=torch.float64))
    torch.testing.assert_close(centre, expected[0], atol=1e-5, rtol=0)
    df = leave_one_out_tc(tc, ["static_mean_spline"], seeds=[0, 1], holdouts=[k])
    assert df["w1"].nunique() == 1  # deterministic: one solve, one row per seed
    pchip = leave_one_out_tc(tc, ["static_mean_spline"], seeds=[0], holdouts=[k],
                             spline="pchip")
    local = leave_one_out_tc(tc, ["static_mean_spline"], seeds=[0], holdouts=[k], window=1)
    assert pchip["w1"].iloc[0] != pytest.approx(df["w1"].iloc[0])
    # window 1: straight lines between kept means, i.e. the chord: static OT's prediction
    ot = leave_one_out_tc(tc, ["static_ot"], seeds=[0], holdouts=[k])
    assert local["w1"].iloc[0] == pytest.approx(ot["w1"].iloc[0], rel=1e-6)
    with pytest.raises(ValueError, match="k must be an interior timepoint index"):
        static_mean_spline_interpolant(tc, 4)


@pytest.mark.data
def test_mean_spline_beats_static_ot_and_the_cell_spline_on_real_emt(data_dir):
    """EMT 10-D, whitened, index time, every held-out time: static OT's cloud re-centred
    on the spline through the kept timepoints' means, against static OT and the spline
    through chained single cells, measured in the same run."""
    adata = scflow.datasets.emt()
    tc = TimeCourse.from_arrays(adata.obsm["X_latent"], adata.obs["day"], whiten=True)
    df = leave_one_out_tc(tc, ["static_mean_spline", "static_ot", "static_spline"], seeds=[0])
    gap = (df["w1"] - df["floor"]).groupby(df["method"]).mean()
    print(f"EMT 10-D mean gap above the floor: {gap.round(3).to_dict()}")
    assert gap["static_mean_spline"] < 0.6 * gap["static_ot"]
    assert gap["static_mean_spline"] < 0.6 * gap["static_spline"]


def test_bootstrap_intervals_over_cells_in_the_table(line_course):
    plain = leave_one_out_tc(line_course, ["static_ot", "static_spline"], seeds=[0],
                             holdouts=[1])
    assert plain["w1_lo"].isna().all() and plain["w1_hi"].isna().all()
    df = leave_one_out_tc(line_course, ["static_ot", "static_spline"], seeds=[0],
                          holdouts=[1], n_boot=30)
    np.testing.assert_array_equal(df["w1"], plain["w1"])  # the point estimate is unchanged
    assert (df["w1_lo"] < df["w1_hi"]).all() and (df["w1_lo"] > 0).all()
    s = summarize(df)
    np.testing.assert_allclose(s["w1_lo_mean"], df["w1_lo"])


def test_paired_difference_to_static_ot_in_the_table(line_course):
    """Every row carries W1 minus static OT's at the same held-out time, with the interval
    read off the same bootstrap resamples of the real cells (static OT solved for it when
    not listed); it is what paired_bootstrap_w1 gives on the same predictions."""
    from scflow.methods.static_spline import static_spline_predict
    from scflow.protocols.intervals import paired_bootstrap_w1

    df = leave_one_out_tc(line_course, ["static_spline"], seeds=[0, 1], holdouts=[1],
                          n_boot=30)
    tc = line_course
    ref = static_ot_interpolant(tc.xs[0], tc.xs[2], 0.5)
    for seed in (0, 1):
        row = df[df["seed"] == seed].iloc[0]
        spline = static_spline_predict(tc, 1.0, start=0, holdout=1, random_state=seed)
        want = paired_bootstrap_w1({"static_ot": ref, "static_spline": (spline, None)},
                                   tc.xs[1], reference="static_ot", n_boot=30)
        assert row["diff_static_ot"] == pytest.approx(want.diff["static_spline"], abs=1e-9)
        assert row["diff_static_ot_lo"] == pytest.approx(want.diff_lo["static_spline"])
        assert row["diff_static_ot_hi"] == pytest.approx(want.diff_hi["static_spline"])
        assert row["diff_static_ot_lo"] < row["diff_static_ot_hi"]
    both = leave_one_out_tc(line_course, ["static_ot", "static_spline"], seeds=[0],
                            holdouts=[1])
    w = both.set_index("method")["w1"]
    d = both.set_index("method")["diff_static_ot"]
    assert d["static_ot"] == 0.0
    assert d["static_spline"] == pytest.approx(w["static_spline"] - w["static_ot"])
    assert both["diff_static_ot_lo"].isna().all()  # no bootstrap: no interval
    s = summarize(df)
    np.testing.assert_allclose(s["diff_static_ot_mean"], df["diff_static_ot"].mean())
