"""Metrics against closed forms and SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from scflow import metrics


def test_wasserstein_of_a_translation_is_the_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    shift = np.array([3.0, -4.0, 0.0])
    assert metrics.wasserstein(x, x + shift) == pytest.approx(5.0, rel=1e-9)
    assert metrics.wasserstein(x, x + shift, p=2) == pytest.approx(5.0, rel=1e-9)
    assert metrics.wasserstein(torch.as_tensor(x), torch.as_tensor(x)) == pytest.approx(0.0,
                                                                                         abs=1e-7)


def test_wasserstein_1d_matches_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 1)), rng.gamma(2.0, size=(400, 1))
    ref = scipy.stats.wasserstein_distance(x[:, 0], y[:, 0])
    assert metrics.wasserstein(x, y) == pytest.approx(ref, rel=1e-8)


def test_weighted_wasserstein():
    x = np.array([[0.0], [10.0]])
    y = np.array([[0.0]])
    assert metrics.wasserstein(x, y, a=[0.75, 0.25]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="non-negative weights"):
        metrics.wasserstein(x, y, a=[1.0, -1.0])


def test_mmd_closed_form_for_two_points():
    x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    value = metrics.mmd(x, y, bandwidths=(2.0,), squared=True)
    assert value == pytest.approx(2 - 2 * math.exp(-25 / 8))
    assert metrics.mmd(x, x) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200, 2))
    assert metrics.mmd(a, a + 0.5) < metrics.mmd(a, a + 2.0)


def test_energy_distance_matches_scipy_in_1d():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(150, 1)), rng.normal(1.0, 2.0, size=(170, 1))
    ref = scipy.stats.energy_distance(x[:, 0], y[:, 0]) ** 2  # scipy returns the square root
    assert metrics.energy_distance(x, y) == pytest.approx(ref, rel=1e-8)


def test_sampling_floor_is_half_split_w1_and_seeded():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 2))
    f1 = metrics.sampling_floor(x, random_state=0)
    assert f1 == metrics.sampling_floor(x, random_state=0)
    assert f1 != metrics.sampling_floor(x, random_state=1)
    assert 0 < f1 < metrics.wasserstein(x[:200], x[200:] + 1.0)


def test_sampling_floor_splits_in_random_halves():
    """1-D, sorted, odd size: the mean of exact W1 (SciPy) between two random halves of
    ``n // 2`` points each, the split drawn by the seeded generator; not the first half
    against the second (which would be 1/2 of the range here)."""
    x = np.arange(401, dtype=np.float64)[:, None]
    floor = metrics.sampling_floor(x, n_splits=3, random_state=5)
    g = torch.Generator().manual_seed(5)
    expected = []
    for _ in range(3):
        perm = torch.randperm(401, generator=g).numpy()
        a, b = perm[:200], perm[200:400]
        expected.append(scipy.stats.wasserstein_distance(x[a, 0], x[b, 0]))
    assert floor == pytest.approx(np.mean(expected), rel=1e-9)
    assert floor < 40 < metrics.wasserstein(x[:200], x[200:400])  # ordered halves: 200
    # a cloud of two points: a random half holds both, so the floor is far below their gap
    two = np.repeat([[0.0], [100.0]], 50, axis=0)
    assert 0 < metrics.sampling_floor(two, random_state=0) < 20


def test_bad_input():
    with pytest.raises(ValueError, match="same number of dims"):
        metrics.wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        metrics.wasserstein(np.zeros((3, 2)), np.zeros((3, 2)), p=3)
    with pytest.raises(ValueError, match="2-D"):
        metrics.mmd(np.zeros(3), np.zeros((3, 1)))
