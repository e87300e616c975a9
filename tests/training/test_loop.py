"""Training on synthetic time courses: it moves populations, is seeded, validates input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import blobs

import scflow
from scflow.flow.integrate import integrate
from scflow.flow.timecourse import TimeCourse
from scflow.metrics import wasserstein


@pytest.fixture(scope="module")
def shifted_course() -> TimeCourse:
    """Three Gaussian blobs moving right and up, 150 cells each."""
    return blobs([[0.0, 0.0], [3.0, 1.0], [6.0, 0.0]], 150)


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
    """The blobs go up at t = 1 and back down: without it, the field runs straight."""
    tc = shifted_course
    model = scflow.fit_flow(tc, "otcfm", holdout=1, n_steps=300, progress=False)
    assert model.meta["holdout"] == 1
    mid = integrate(model, tc.xs[0], 0.0, 1.0, n_steps=50)
    end = integrate(model, mid, 1.0, 2.0, n_steps=50)
    assert wasserstein(end, tc.xs[2]) < 0.2 * wasserstein(tc.xs[0], tc.xs[2])
    # at t = 1 the bridged field sits on the chord (3, 0), not on the held-out blob (3, 1)
    centre = mid.mean(0)
    assert abs(float(centre[0]) - 3.0) < 0.3 and abs(float(centre[1])) < 0.3, centre
    trained_on_all = scflow.fit_flow(tc, "otcfm", n_steps=300, progress=False)
    through = integrate(trained_on_all, tc.xs[0], 0.0, 1.0, n_steps=50).mean(0)
    assert float(through[1]) > 0.7  # the same fit with the blob kept goes through it


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


@pytest.mark.slow  # two 800-step fits on 1500 cells
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
    from scflow.methods.static_spline import static_spline_predict
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


# ----- divergence, data scale, n_steps bound -----
@pytest.mark.parametrize("method", ["otcfm", "sbcfm", "mmfm"])
def test_divergent_learning_rate_stops_with_the_first_bad_step(shifted_course, method):
    """lr=1e6: the loss is infinite from step 2; training must not return a NaN model."""
    with pytest.raises(scflow.TrainingDivergedError, match=(
            r"training diverged: the loss was (inf|nan) \(not finite\) at step 2 of 250; try a "
            r"smaller lr than 1e\+06 \(e.g. 100000\), whiten=True, or check the data's scale"
    )) as info:
        scflow.fit_flow(shifted_course, method, lr=1e6, n_steps=250, progress=False)
    assert isinstance(info.value, FloatingPointError) and info.value.step == 2
    assert scflow.training.loop.TrainingDivergedError is scflow.TrainingDivergedError


def test_exploding_finite_loss_counts_as_divergence(shifted_course):
    with pytest.raises(scflow.TrainingDivergedError,
                       match=r"more than 1e\+12 times the first step's loss") as info:
        scflow.fit_flow(shifted_course, "otcfm", lr=1e3, n_steps=30, progress=False)
    assert np.isfinite(info.value.loss) and info.value.step == 2


def test_values_that_overflow_float32_are_refused_before_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)) * 1e30
    tc = TimeCourse.from_arrays(x, np.repeat([0, 1, 2], 20), whiten=False)
    with pytest.raises(ValueError, match=r"timepoint 0 hold values up to .*e\+30: their squared "
                                         r"distances overflow float32.*use whiten=True"):
        scflow.fit_flow(tc, n_steps=5, progress=False)
    x /= 1e30
    x[23, 1] = 1e39  # finite in float64, inf in float32
    tc = TimeCourse.from_arrays(x, np.repeat([0, 1, 2], 20), whiten=False)
    with pytest.raises(ValueError, match="timepoint 1 hold values that are not finite in "
                                         "float32.*use whiten=True"):
        scflow.fit_flow(tc, n_steps=5, progress=False)


def test_n_steps_above_the_bound_is_refused_before_allocating(shifted_course):
    assert scflow.training.loop.MAX_STEPS == 10**8
    with pytest.raises(ValueError, match=r"n_steps must be at most 100,000,000 "
                                         r"\(the loss of every step is kept\), got 10,000,000,000"):
        scflow.fit_flow(shifted_course, n_steps=10**10, progress=False)


# ----- coupling="auto" by default -----
def _sizes_course(*n: int) -> TimeCourse:
    """A 1-D time course with ``n[k]`` cells at timepoint ``k`` (cheap at any size)."""
    x = np.concatenate([np.linspace(k, k + 1, m) for k, m in enumerate(n)])[:, None]
    return TimeCourse.from_arrays(x, np.repeat(np.arange(len(n)), n), whiten=False)


def test_coupling_defaults_to_auto_everywhere():
    import inspect

    from scflow.cli import _parser
    from scflow.tl import fit

    assert inspect.signature(scflow.fit_flow).parameters["coupling"].default == "auto"
    assert inspect.signature(fit).parameters["coupling"].default == "auto"
    args = _parser().parse_args(["fit", "in.h5ad", "--out", "out.h5ad"])
    assert args.coupling == "auto"


@pytest.mark.parametrize("sizes,holdout,expected", [
    ((1429, 3781, 5788), None, "global"),  # Weinreb's mouse set: the benchmark keeps its plans
    ((20_000, 20_000), None, "minibatch"),  # the stalling case: 570 s and 16.5 GB of exact OT
    ((20_000, 38_000, 100), None, "minibatch"),  # LARRY's largest interval
    ((7000, 10, 7000), 1, "minibatch"),  # the bridged interval 0->2 is what counts
])
def test_auto_coupling_resolves_by_the_largest_interval(monkeypatch, caplog, sizes, holdout,
                                                        expected):
    import logging

    from scflow.training.loop import resolve_coupling

    monkeypatch.setattr(scflow.training.loop, "_available_memory", lambda dev: 64 * 2**30)
    tc = _sizes_course(*sizes)  # 1-D: cheap at any size
    with caplog.at_level(logging.INFO, logger="scflow"):
        got = resolve_coupling("auto", "otcfm", tc, holdout, torch.device("cpu"))
    assert got == expected
    assert f"coupling='auto' uses {expected!r}" in caplog.text


@pytest.mark.parametrize("sizes,n_steps,batch,expected", [
    ((5000, 5000), 10, 256, "minibatch"),  # issue 27: 10 steps behind a plan of 600 s and more
    ((5000, 5000), 3000, 256, "global"),  # the default run: its 3000 minibatch plans cost more
    ((2000, 2000), 100, 256, "minibatch"),
    ((500, 500), 100, 256, "global"),
    ((1000, 1000), 2, 16, "global"),  # small plans: solved in seconds, the rule starts above
    ((1429, 3781, 5788), 3000, 256, "global"),  # Weinreb's mouse set: growth rows unchanged
])
def test_auto_coupling_of_growth_weighs_the_global_plan_against_the_run(
        monkeypatch, caplog, sizes, n_steps, batch, expected):
    """``uotcfm``'s global plan is slow to solve (semi-relaxed Sinkhorn): ``"auto"`` takes it
    while it costs less than the run's minibatch plans (registry ``global_cost``); the
    balanced methods are not affected."""
    import logging

    from scflow.methods.uotcfm import GROWTH_GLOBAL_COST
    from scflow.training.loop import resolve_coupling

    monkeypatch.setattr(scflow.training.loop, "_available_memory", lambda dev: 64 * 2**30)
    tc = _sizes_course(*sizes)
    with caplog.at_level(logging.INFO, logger="scflow"):
        got = resolve_coupling("auto", "uotcfm", tc, None, torch.device("cpu"),
                                n_steps=n_steps, batch_size=batch)
    assert got == expected
    n, m = max(zip(sizes[:-1], sizes[1:], strict=True), key=lambda p: p[0] * p[1])
    cheap = n * m <= scflow.training.loop.AUTO_COST_MIN_ENTRIES
    assert (cheap or GROWTH_GLOBAL_COST * n * m <= n_steps * batch**2) == (expected == "global")
    assert (f"{GROWTH_GLOBAL_COST:g} x n x m <= n_steps x batch_size^2" in caplog.text) == (
        not cheap)
    # the balanced methods keep the memory rule alone
    assert resolve_coupling("auto", "otcfm", tc, None, torch.device("cpu"), n_steps=n_steps,
                             batch_size=batch) == "global"


def test_auto_on_a_large_course_trains_with_minibatch_plans():
    """20,000 x 20,000 cells with every default: no global plan is solved."""
    model = scflow.fit_flow(_sizes_course(20_000, 20_000), n_steps=2, batch_size=16,
                            progress=False, device="cpu")
    assert model.meta["coupling"] == "minibatch"


def test_global_plans_that_do_not_fit_in_memory_are_refused_up_front(shifted_course,
                                                                     monkeypatch):
    def unsolved(*args, **kwargs):
        raise AssertionError("a plan was solved")

    monkeypatch.setattr(scflow.training.loop, "_available_memory", lambda dev: 10**5)
    with monkeypatch.context() as m:
        m.setattr(scflow.couplings.ExactOT, "plan", unsolved)
        with pytest.raises(ValueError, match=(
                r"coupling='global' needs about 0.0 GB for the 150 x 150 plan of interval "
                r"0->1, more than the 0.0 GB available; use coupling='minibatch'")):
            scflow.fit_flow(shifted_course, "otcfm", coupling="global", n_steps=2,
                            progress=False)
        with pytest.raises(ValueError, match="coupling='global' needs about"):
            scflow.fit_flow(shifted_course, "mmfm", coupling="global", n_steps=2,
                            progress=False)
    # auto decides by the numbers of cells alone (the same model on every machine): global
    # here, refused for lack of memory; minibatch plans need none of it
    with pytest.raises(ValueError, match=r"coupling='auto' \(global plans here\) needs about "
                                         r".* GB available; use coupling='minibatch'"):
        scflow.fit_flow(shifted_course, "otcfm", n_steps=2, progress=False)
    model = scflow.fit_flow(shifted_course, "otcfm", coupling="minibatch", n_steps=2,
                            progress=False)
    assert model.meta["coupling"] == "minibatch"
    monkeypatch.setattr(scflow.training.loop, "AUTO_GLOBAL_MAX_ENTRIES", 100)
    with pytest.raises(ValueError, match="method 'mmfm' chains global plans"):
        scflow.fit_flow(shifted_course, "mmfm", n_steps=2, progress=False)


# ----- unwhitened data at scales training cannot follow -----
def _scaled_course(scale: float, offset: float = 0.0) -> TimeCourse:
    rng = np.random.default_rng(0)
    k = np.repeat([0, 1, 2], 30)
    x = rng.normal(0, 0.3, (90, 2)) + k[:, None]
    return TimeCourse.from_arrays(x * scale + offset, k, whiten=False)


@pytest.mark.parametrize(("scale", "match"), [
    (1e-10, r"sigma=0\.1 is \d\.\d+e\+09 times the cells' spread \(\d\.\d+e-11, RMS std in the "
            r"model's units\): the path noise hides the data; with whiten=False the model works "
            r"in use_rep's units: pass whiten=True"),
    (1e17, r"the cells spread over \d\.\d+e\+16 \(RMS std\) in the model's units, beyond 1e\+08: "
           r"training in float32 cannot follow \(Adam's squared gradients overflow"),
])
def test_unwhitened_scales_training_cannot_follow_are_refused(scale, match):
    """whiten=False at 1e-10 (the path noise 1e9 times the data: cells never moved right) and
    at 1e17 (Adam's second moments overflow: weights froze, loss 1.9e34): refused."""
    with pytest.raises(ValueError, match=match):
        scflow.fit_flow(_scaled_course(scale), n_steps=5, progress=False)


def test_unwhitened_noise_above_the_spread_warns():
    with pytest.warns(UserWarning, match=r"sigma=0\.1 is [2-9]\.\d+ times the cells' spread"):
        scflow.fit_flow(_scaled_course(0.03), n_steps=5, progress=False)


def test_an_unwhitened_offset_of_1e9_keeps_the_cells_apart():
    """Values around 1e9 with a spread of 1: float32 steps of 64 would merge the cells; the
    offset is removed (the scaler's mean), which moves no cell relative to another, and
    training follows as at offset 0."""
    near = _scaled_course(1.0)
    far = _scaled_course(1.0, offset=1e9)
    assert (near.mean == 0).all() and (far.scale == 1).all()
    shift = far.mean - 1e9  # the data's own mean, about (1, 1)
    np.testing.assert_allclose(shift, [1.0, 1.0], atol=0.1)
    centred = TimeCourse([x - torch.as_tensor(shift, dtype=torch.float32) for x in near.xs],
                         near.times, near.labels, near.values, shift, near.scale)
    for a, b in zip(centred.xs, far.xs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    kw = dict(n_steps=30, hidden=(8,), batch_size=16, progress=False)
    m_centred, m_far = scflow.fit_flow(centred, **kw), scflow.fit_flow(far, **kw)
    np.testing.assert_allclose(m_far.meta["loss"], m_centred.meta["loss"], rtol=1e-4)
