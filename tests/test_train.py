"""Training on synthetic time courses: it moves populations, is seeded, validates input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scflow
from scflow.integrate import integrate
from scflow.metrics import wasserstein
from scflow.timecourse import TimeCourse


@pytest.fixture(scope="module")
def shifted_course() -> TimeCourse:
    """Three Gaussian blobs moving right and up, 150 cells each."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [3.0, 1.0], [6.0, 0.0]])
    x = np.concatenate([rng.normal(c, 0.5, size=(150, 2)) for c in centres])
    return TimeCourse.from_arrays(x, np.repeat([0, 1, 2], 150), whiten=False)


@pytest.mark.parametrize("method,coupling", [("otcfm", "global"), ("otcfm", "minibatch"),
                                             ("icfm", "global"), ("sbcfm", "global")])
def test_training_moves_population_onto_next(shifted_course, method, coupling):
    tc = shifted_course
    torch.manual_seed(0)
    untrained = scflow.FlowModel(2)
    model = scflow.fit_flow(tc, method, n_steps=300, batch_size=128, coupling=coupling,
                            random_state=0, progress=False)
    for k in (0, 1):
        pushed = integrate(model, tc.xs[k], k, k + 1, n_steps=50)
        start = wasserstein(tc.xs[k], tc.xs[k + 1])
        w_untrained = wasserstein(integrate(untrained, tc.xs[k], k, k + 1), tc.xs[k + 1])
        w = wasserstein(pushed, tc.xs[k + 1])
        assert w < 0.25 * start, (k, w, start)
        assert w < 0.25 * w_untrained
    loss = model.meta["loss"]
    assert loss.shape == (300,) and np.isfinite(loss).all()
    if method != "sbcfm":  # SB-CFM's loss holds the score term, noisy near the knots
        assert loss[-50:].mean() < 0.5 * loss[:50].mean()


def test_ot_pairs_give_straighter_lower_loss_than_independent(shifted_course):
    """OT-CFM's regression target has far less variance than I-CFM's (Tong et al. 2023)."""
    ot = scflow.fit_flow(shifted_course, "otcfm", n_steps=200, sigma=0.0, progress=False)
    ind = scflow.fit_flow(shifted_course, "icfm", n_steps=200, sigma=0.0, progress=False)
    assert ot.meta["loss"][-100:].mean() < 0.5 * ind.meta["loss"][-100:].mean()


def test_sbcfm_learns_score_and_sde_moves_population(shifted_course):
    tc = shifted_course
    model = scflow.fit_flow(tc, "sbcfm", n_steps=300, sigma=0.3, progress=False)
    assert model.has_score and model.sigma == 0.3
    out = integrate(model, tc.xs[0], 0.0, 1.0, stochastic=True,
                    generator=torch.Generator().manual_seed(0))
    assert wasserstein(out, tc.xs[1]) < 0.3 * wasserstein(tc.xs[0], tc.xs[1])


def test_holdout_is_bridged(shifted_course):
    tc = shifted_course
    model = scflow.fit_flow(tc, "otcfm", holdout=1, n_steps=300, progress=False)
    assert model.meta["holdout"] == 1
    end = integrate(model, tc.xs[0], 0.0, 2.0, n_steps=100)
    assert wasserstein(end, tc.xs[2]) < 0.2 * wasserstein(tc.xs[0], tc.xs[2])


def test_same_seed_same_weights_other_seed_differs(shifted_course):
    def weights(seed):
        m = scflow.fit_flow(shifted_course, "otcfm", n_steps=30, random_state=seed,
                            progress=False)
        return torch.cat([p.flatten() for p in m.parameters()])

    a, b, c = weights(3), weights(3), weights(4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_training_does_not_touch_global_random_state(shifted_course):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    scflow.fit_flow(shifted_course, "icfm", n_steps=5, progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_meta_records_protocol(shifted_course):
    m = scflow.fit_flow(shifted_course, "sbcfm", n_steps=5, progress=False, random_state=7)
    assert m.meta["method"] == "sbcfm" and m.meta["random_state"] == 7
    np.testing.assert_array_equal(m.meta["times"], [0.0, 1.0, 2.0])
    assert m.meta["holdout"] == -1


@pytest.mark.parametrize("kwargs,match", [
    (dict(method="ddpm"), "method must be one of"),
    (dict(coupling="local"), "coupling must be one of"),
    (dict(n_steps=0), "n_steps must be a positive integer, got 0"),
    (dict(n_steps=2.5), "n_steps must be a positive integer"),
    (dict(batch_size=-1), "batch_size must be a positive integer, got -1"),
    (dict(lr=0.0), "lr must be a finite number > 0, got 0.0"),
    (dict(sigma=-0.1), "sigma must be"),
    (dict(method="sbcfm", sigma=0.0), "sigma must be a finite number > 0, got 0.0"),
    (dict(holdout=0), "holdout must be an interior"),
    (dict(holdout=2), "holdout must be an interior"),
    (dict(device="cuda:7"), "CUDA is not available"),
])
def test_bad_arguments(shifted_course, kwargs, match):
    if "cuda" in str(kwargs.get("device", "")) and torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match=match):
        scflow.fit_flow(shifted_course, **{"n_steps": 5, **kwargs})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_stays_on_device(shifted_course):
    model = scflow.fit_flow(shifted_course, "otcfm", n_steps=200, device="cuda",
                            progress=False)
    assert model.device.type == "cuda"
    out = integrate(model, shifted_course.xs[0].cuda(), 0.0, 1.0)
    assert out.device.type == "cuda"
    assert wasserstein(out, shifted_course.xs[1]) < 0.3 * wasserstein(shifted_course.xs[0],
                                                                      shifted_course.xs[1])


def test_simulated_trajectories_follow_true_paths_better_than_independent_pairing():
    """On the simulated bifurcation, cells pushed from day 1 to the last day end closer to
    their own true end points with OT-CFM than with I-CFM (independent pairing)."""
    from scflow.datasets import simulate, true_paths

    adata = simulate(n_cells=1500, random_state=0)
    x = adata.obsm["X_pca"][:, :2]
    tc = TimeCourse.from_arrays(x, adata.obs["day"], whiten=True)
    truth = true_paths(adata, rep="pca")[:, -1, :2]
    start = adata.obs["t_idx"].to_numpy() == 1
    last = float(tc.times[-1])

    x0 = torch.as_tensor(tc.transform(x[start]), dtype=torch.float32)
    ends = {}
    for method in ("otcfm", "icfm"):
        model = scflow.fit_flow(tc, method, n_steps=800, progress=False, random_state=0)
        ends[method] = tc.inverse_transform(integrate(model, x0, 1.0, last, n_steps=300).numpy())

    def error(end: np.ndarray, target: np.ndarray) -> float:
        return float(np.linalg.norm(end - target, axis=1).mean())

    e_ot, e_ind = error(ends["otcfm"], truth[start]), error(ends["icfm"], truth[start])
    # the same predicted end points paired with other cells' true ends: no per-cell fidelity
    shuffled = error(ends["otcfm"], truth[start][np.random.default_rng(0).permutation(
        int(start.sum()))])
    assert e_ot < e_ind, (e_ot, e_ind)
    assert e_ot < 0.3 * shuffled, (e_ot, shuffled)


@pytest.fixture(scope="module")
def arc_course() -> TimeCourse:
    """Five blobs along a half circle (0, 45, ..., 180 degrees), 120 cells each."""
    rng = np.random.default_rng(3)
    angles = np.deg2rad([0, 45, 90, 135, 180])
    centres = 3 * np.stack([np.cos(angles), np.sin(angles)], 1)
    x = np.concatenate([rng.normal(c, 0.15, size=(120, 2)) for c in centres])
    return TimeCourse.from_arrays(x, np.repeat(np.arange(5), 120), whiten=False)


def test_mmfm_bends_through_a_held_out_timepoint_that_straight_lines_miss(arc_course):
    """Held-out 90 degrees: pairwise OT-CFM bridges 45 -> 135 in a straight chord; the
    spline through the chained cells follows the arc."""
    tc, k = arc_course, 2
    stay = wasserstein(tc.xs[k - 1], tc.xs[k])
    scores = {}
    for method in ("otcfm", "mmfm"):
        model = scflow.fit_flow(tc, method, holdout=k, n_steps=400, batch_size=128,
                                random_state=0, progress=False)
        scores[method] = wasserstein(integrate(model, tc.xs[k - 1], k - 1, k), tc.xs[k])
    from scflow.benchmark import static_spline_predict
    scores["static_spline"] = wasserstein(
        static_spline_predict(tc, k, start=k - 1, holdout=k), tc.xs[k])
    print(scores, stay)
    assert scores["static_spline"] < 0.5 * scores["otcfm"]
    assert scores["mmfm"] < 0.6 * scores["otcfm"]
    assert scores["mmfm"] < 0.5 * stay


def test_mmfm_options_recorded_and_checked(arc_course):
    model = scflow.fit_flow(arc_course, "mmfm", n_steps=20, spline="pchip", window=None,
                            progress=False)
    assert model.meta["method"] == "mmfm" and model.meta["spline"] == "pchip"
    assert model.meta["window"] == -1
    other = scflow.fit_flow(arc_course, "mmfm", n_steps=20, window=2, progress=False)
    assert other.meta["window"] == 2
    # same seed, another spline: other targets, so another loss curve
    assert not np.allclose(model.meta["loss"], other.meta["loss"])
    with pytest.raises(ValueError, match="spline must be one of"):
        scflow.fit_flow(arc_course, "mmfm", n_steps=5, spline="cubic")
    with pytest.raises(ValueError, match="coupling must be 'global' for method 'mmfm'"):
        scflow.fit_flow(arc_course, "mmfm", n_steps=5, coupling="minibatch")
    with pytest.raises(ValueError, match="window"):
        scflow.fit_flow(arc_course, "mmfm", n_steps=5, window=0)
