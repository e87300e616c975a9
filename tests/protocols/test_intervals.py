"""Bootstrap intervals of W1 over cells: coverage on a known case, width, seeds, input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scflow.metrics import wasserstein
from scflow.protocols.intervals import W1Interval, bootstrap_w1, format_w1


def _shifted(rng: np.random.Generator, n: int, shift: float = 3.0):
    """1-D Gaussians one ``shift`` apart: W1 between the distributions is ``shift``."""
    return rng.normal(shift, 1.0, size=(n, 1)), rng.normal(0.0, 1.0, size=(n, 1))


def test_covers_the_true_w1_of_a_shift_at_its_level():
    """Far apart, the empirical W1 is about ``shift + mean(x) - mean(y)``: normal with sd
    ``sqrt(2 / n)``. The 90% interval should cover ``shift`` about 90% of the time and be
    about ``2 * 1.645 * sqrt(2 / n)`` wide (resampling one cloud only: 1/sqrt(2) of that)."""
    rng = np.random.default_rng(0)
    n, trials = 60, 100
    covered, widths = 0, []
    for t in range(trials):
        pred, real = _shifted(rng, n)
        ci = bootstrap_w1(pred, real, n_boot=100, level=0.9, random_state=t)
        covered += ci.lo <= 3.0 <= ci.hi
        widths.append(ci.hi - ci.lo)
    assert 0.8 <= covered / trials <= 0.98
    assert np.mean(widths) == pytest.approx(2 * 1.645 * np.sqrt(2 / n), rel=0.15)


def test_interval_holds_the_point_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    width = {}
    for n in (50, 400):
        pred, real = _shifted(rng, n, shift=1.0)
        pred, real = np.hstack([pred, pred]), np.hstack([real, real])  # 2-D, W1 sqrt(2)
        ci = bootstrap_w1(pred, real, n_boot=60)
        assert ci.w1 == pytest.approx(wasserstein(pred, real), rel=1e-9)
        assert ci.lo < ci.w1 < ci.hi and ci.n_boot == 60 and ci.level == 0.95
        width[n] = ci.hi - ci.lo
    assert width[400] < 0.6 * width[50]  # sqrt(50 / 400) = 0.35 in theory


def test_seeded_and_leaves_global_state_alone():
    rng = np.random.default_rng(2)
    pred, real = torch.as_tensor(rng.normal(size=(40, 3))), rng.normal(size=(30, 3))
    state = np.random.get_state()  # noqa: NPY002 (checking that nothing draws from it)
    torch.manual_seed(7)
    a = bootstrap_w1(pred, real, n_boot=20, random_state=3)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) for u, v in zip(state, after, strict=True))
    assert torch.equal(torch.rand(1), torch.rand(1, generator=torch.Generator().manual_seed(7)))
    b = bootstrap_w1(pred, real, n_boot=20, random_state=3)
    c = bootstrap_w1(pred, real, n_boot=20, random_state=4)
    assert isinstance(a, W1Interval)
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, c.replicates)


def test_weights_are_masses_of_the_predicted_points():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(50, 2))
    pred = np.vstack([rng.normal(size=(20, 2)), [[100.0, 0.0]]])
    w = np.r_[np.full(20, 1.0), 0.0]  # the far point carries no mass: never drawn
    ci = bootstrap_w1(pred, real, n_boot=30, weights=w)
    assert ci.w1 == pytest.approx(wasserstein(pred[:20], real), rel=1e-9)
    assert ci.replicates.max() < 10  # with the far point in a draw, W1 would jump by ~5
    unweighted = bootstrap_w1(pred, real, n_boot=30)
    assert unweighted.replicates.max() > 10  # some draws hold it twice or more
    w2 = np.r_[np.full(10, 3.0), np.full(10, 1.0), 0.0]
    assert bootstrap_w1(pred, real, n_boot=10, weights=torch.as_tensor(w2)).w1 == \
        pytest.approx(wasserstein(pred, real, a=w2), rel=1e-9)


def test_bad_input_names_the_argument():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="n_boot must be an integer of at least 10"):
        bootstrap_w1(x, x, n_boot=5)
    with pytest.raises(ValueError, match="level must be in"):
        bootstrap_w1(x, x, level=1.0)
    with pytest.raises(ValueError, match="level must be a finite number > 0"):
        bootstrap_w1(x, x, level=0)
    with pytest.raises(ValueError, match="same number of dims"):
        bootstrap_w1(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="real must be a non-empty 2-D"):
        bootstrap_w1(x, np.zeros(5))
    with pytest.raises(ValueError, match="pred must hold finite"):
        bootstrap_w1(np.full((5, 2), np.nan), x)
    with pytest.raises(ValueError, match="weights must be 5 finite non-negative"):
        bootstrap_w1(x, x, weights=[1, 1, 1, 1, -1])
    with pytest.raises(ValueError, match="random_state must be an integer"):
        bootstrap_w1(x, x, random_state=0.5)


def test_format_w1():
    assert format_w1(0.12345, 0.1, 0.15) == "0.123 [0.100, 0.150]"
    assert format_w1(0.12345, float("nan"), float("nan")) == "0.123"
    assert format_w1(0.12345, 0.1, 0.15, digits=4) == "0.1235 [0.1000, 0.1500]"


def test_check_n_boot():
    from scflow.protocols.intervals import check_n_boot

    assert check_n_boot(0) == 0 and check_n_boot(np.int64(50)) == 50
    for bad in (5, -1, True, 20.0):
        with pytest.raises(ValueError, match="n_boot must be 0 \\(no interval\\) or an"):
            check_n_boot(bad)


def test_centred_interval_sits_on_the_score_where_resampling_inflates_w1():
    """10-D, two samples of one distribution: the replicates (fewer distinct points) sit
    above the score, so the percentile interval misses it; the centred one holds it and
    has the same width."""
    rng = np.random.default_rng(6)
    pred, real = rng.normal(size=(150, 10)), rng.normal(size=(150, 10))
    pc = bootstrap_w1(pred, real, n_boot=40, method="percentile")
    ce = bootstrap_w1(pred, real, n_boot=40)
    assert ce.method == "centred" and pc.excess == pytest.approx(ce.excess)
    assert pc.excess > 0 and pc.lo > pc.w1  # the plain interval misses its own score
    assert ce.lo < ce.w1 < ce.hi
    assert ce.hi - ce.lo == pytest.approx(pc.hi - pc.lo)
    assert ce.lo == pytest.approx(pc.lo - pc.excess)
    with pytest.raises(ValueError, match="method must be 'centred' or 'percentile'"):
        bootstrap_w1(pred, real, method="basic")


def test_centred_interval_is_clipped_at_zero():
    """A cloud scored against itself: W1 0, every replicate above it (mass moves between
    duplicated points): the centred interval would reach below zero."""
    x = np.random.default_rng(7).normal(size=(30, 5))
    ci = bootstrap_w1(x, x, n_boot=20)
    assert ci.w1 == pytest.approx(0.0, abs=1e-6) and ci.excess > 0.1
    assert ci.lo == 0.0 and ci.hi > 0


def test_paired_bootstrap_difference_on_shared_draws():
    """Two predictions of the same source cells, one shifted: the difference of each
    replicate is taken on the same real and predicted draws, and its interval excludes 0
    for the shifted one, not for an identical copy."""
    from scflow.protocols.intervals import paired_bootstrap_w1

    g = np.random.default_rng(0)
    real = g.normal(size=(300, 2))
    base = g.normal(size=(300, 2))
    preds = {"ref": base, "worse": base + np.array([0.3, 0.0]), "same": base.copy()}
    res = paired_bootstrap_w1(preds, real, reference="ref", n_boot=100)
    assert res.diff["worse"] > 0.1 and res.diff_lo["worse"] > 0
    assert res.separated("worse") and not res.separated("same")
    assert res.diff["same"] == 0.0 and res.diff_lo["same"] == 0.0 == res.diff_hi["same"]
    # identical clouds get identical replicates: the draws are shared
    np.testing.assert_array_equal(res.intervals["same"].replicates,
                                  res.intervals["ref"].replicates)
    # each W1 is the exact score of bootstrap_w1, whatever the draws
    assert abs(res.intervals["worse"].w1 - bootstrap_w1(preds["worse"], real, n_boot=10).w1) \
        < 1e-12
    again = paired_bootstrap_w1(preds, real, reference="ref", n_boot=100)
    assert again.diff_lo == res.diff_lo  # seeded


def test_paired_bootstrap_refuses_bad_input():
    from scflow.protocols.intervals import paired_bootstrap_w1

    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="reference"):
        paired_bootstrap_w1({"a": x}, x, reference="b")
    with pytest.raises(ValueError, match="preds"):
        paired_bootstrap_w1([x], x, reference="a")
    with pytest.raises(ValueError, match="dims"):
        paired_bootstrap_w1({"a": np.zeros((5, 3))}, x, reference="a")
