"""Paired bootstrap of Pearson r: shared resamples, differences with their own interval."""

from __future__ import annotations

import numpy as np
import pytest

from scflow.benchmark import larry as fb
from scflow.benchmark.fate_paired import paired_pearson


def _data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.random(n)
    return t, t + rng.normal(0, 0.3, n), t + rng.normal(0, 0.35, n)


def test_each_row_is_pearson_ci_on_the_same_draws():
    t, a, b = _data()
    pp = paired_pearson({"a": a, "b": b}, t, n_boot=200, random_state=5)
    for name, x in (("a", a), ("b", b)):
        r, lo, hi = pp.interval(name)
        assert (r, lo, hi) == pytest.approx(fb.pearson_ci(x, t, n_boot=200, random_state=5),
                                            abs=1e-12)


def test_difference_is_paired_and_narrower_than_unpaired():
    t, a, b = _data()
    pp = paired_pearson({"a": a, "b": b}, t, n_boot=400)
    d, lo, hi = pp.difference("a", "b")
    assert d == pytest.approx(np.corrcoef(a, t)[0, 1] - np.corrcoef(b, t)[0, 1])
    assert lo < d < hi
    # the two scores move together over resamples: the paired interval is narrower than
    # the difference of two independent intervals would be
    _, alo, ahi = pp.interval("a")
    _, blo, bhi = pp.interval("b")
    assert hi - lo < np.hypot(ahi - alo, bhi - blo)
    # a row against itself: exactly 0 on every resample
    assert pp.difference("a", "a") == (0.0, 0.0, 0.0)
    # the mean over pairs (e.g. seeds) is the mean of the differences
    dm, _, _ = pp.difference(["a", "b"], ["b", "b"])
    assert dm == pytest.approx(d / 2)
    m, mlo, mhi = pp.mean(["a", "b"])
    assert m == pytest.approx((pp.r[0] + pp.r[1]) / 2) and mlo < m < mhi


def test_a_better_prediction_is_separated_and_a_constant_is_nan():
    rng = np.random.default_rng(1)
    t = rng.random(3000)
    good, bad = t + rng.normal(0, 0.1, 3000), t + rng.normal(0, 1.0, 3000)
    pp = paired_pearson({"good": good, "bad": bad, "flat": np.ones(3000)}, t, n_boot=200)
    assert pp.difference("good", "bad")[1] > 0
    assert np.isnan(pp.r[2]) and np.isnan(pp.interval("flat")[1])


def test_paired_pearson_refuses_bad_input():
    t, a, _ = _data(50)
    with pytest.raises(ValueError, match="at least one prediction"):
        paired_pearson({}, t)
    with pytest.raises(ValueError, match=r"not so for \['short'\]"):
        paired_pearson({"short": a[:10]}, t)
    with pytest.raises(ValueError, match=r"not so for \['nan'\]"):
        paired_pearson({"nan": np.where(a > 0.5, np.nan, a)}, t)
    with pytest.raises(ValueError, match="level"):
        paired_pearson({"a": a}, t, level=1.5)
    pp = paired_pearson({"a": a}, t, n_boot=10)
    with pytest.raises(KeyError, match="no prediction named 'b'"):
        pp.interval("b")
    with pytest.raises(ValueError, match="pair up"):
        pp.difference(["a"], ["a", "a"])
